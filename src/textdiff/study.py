"""The study's params with every registered model's own groups checked: what stages that build a model load.

params.py knows only the shared keys, so the stages that build no model (prepare, tokenizer, pack)
depend on no model file; this module adds the registry (models/__init__.py).
"""
from __future__ import annotations

from pathlib import Path

from . import params
from .models import MODELS


def parse_params(raw: dict) -> params.StudyParams:
    return params.parse_params(raw, MODELS)


def load_params(path: str | Path = "params.yaml") -> params.StudyParams:
    return params.load_params(path, MODELS)
