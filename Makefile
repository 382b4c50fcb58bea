# Two commands set everything up on a fresh machine:
#   make study   # installs into .venv, then runs the whole study (dvc repro), keeping the committed judge
#   make test    # installs into .venv, then runs the test suite
# Without training:
#   make restore # the committed study's data, models and judge from the DVC remote (artifacts/, in git)
#   make report  # rewrites reports/ from them (byte for byte what is committed)
#   make reproduced  # after `make study`: did this run reproduce the committed figures?
# Offline, point the study at a local TinyStories copy: TINYSTORIES_DIR=../shared/data/tinystories make study
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: study test restore report reproduced
# The judge is an instrument, not a result: its committed weights are pulled, so a rerun on another CPU or a GPU
# judges with the same judge (DVC retrains it only where its own code, params or data changed).
study: $(VENV)/.installed
	dvc pull judge
	dvc repro

test: $(VENV)/.installed
	python -m pytest -q

restore: $(VENV)/.installed
	dvc pull

report: restore
	dvc repro --force --single-item report

reproduced: $(VENV)/.installed
	python stages/reproduce.py

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@
