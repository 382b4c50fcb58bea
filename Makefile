# Two commands set everything up on a fresh machine:
#   make study   # installs into .venv, then runs the whole study (dvc repro)
#   make test    # installs into .venv, then runs the test suite
# Offline, point the study at a local TinyStories copy: TINYSTORIES_DIR=../shared/data/tinystories make study
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: study test
study: $(VENV)/.installed
	dvc repro

test: $(VENV)/.installed
	python -m pytest -q

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@
