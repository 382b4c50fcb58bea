"""The study's params with every registered model's own groups checked: what stages that build a model load.

params.py knows only the shared keys, so the stages that build no model (prepare, tokenizer, pack)
depend on no model file; this module adds the registry (models/__init__.py).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import params
from .models import MODELS


def parse_params(raw: dict) -> params.StudyParams:
    return params.parse_params(raw, MODELS)


def load_params(path: str | Path = "params.yaml") -> params.StudyParams:
    return params.load_params(path, MODELS)


def training_params(study: params.StudyParams, model_name: str) -> params.StudyParams:
    """The params model_name trains with: the scale's peak learning rate and steps times the model's
    train.lr_factor and train.steps_factor (warmup unchanged), so that its learning-curve and
    training-length runs are each a full schedule of their own; train.d_model and train.d_ff where set."""
    scale, train = study.scale, study.train
    steps = max(1, round(scale.steps * train.steps_factor[model_name]))
    return dataclasses.replace(study, scale=dataclasses.replace(
        scale, steps=steps, lr=scale.lr * train.lr_factor[model_name], d_model=train.d_model or scale.d_model,
        d_ff=train.d_ff or scale.d_ff))
