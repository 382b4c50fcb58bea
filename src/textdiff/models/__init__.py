"""The registry of the study's generators, and models built by name from a plain-dict spec.

Every module of this package (but base.py) defines one model class (see base.StudyModel) and
registers it with `@register`; importing the package imports them all, in alphabetical order,
which is the order the study's tables list them. So a new model is a new file here, and no
other module names it. `model_spec`
picks from the study's params exactly what defines a model; the spec is stored beside the
trained weights, so evaluation rebuilds the model that was trained, whatever params.yaml
says now.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil

from ..errors import ParamError
from .base import PERPLEXITY_MEANING, StudyModel, TokenModel, sample_categorical

#: name -> model class, in the order the study's tables list them.
MODELS: dict[str, type[StudyModel]] = {}

#: What every model class must define for the rest of the study to use it (checked by `register`).
REQUIRED = ("name", "display_name", "loss_meaning", "nll_kind", "accuracy_definition", "Params")
REQUIRED_METHODS = ("parse_params", "training_loss", "validation_sums", "generate", "training_flops_per_row")


def register(model_class: type[StudyModel]) -> type[StudyModel]:
    """Adds a model class to the study (usable as a decorator); refuses one that lacks a piece."""
    missing = [attr for attr in REQUIRED if not hasattr(model_class, attr)]
    missing += [m for m in REQUIRED_METHODS if getattr(model_class, m) is getattr(StudyModel, m)]
    if getattr(model_class, "nll_kind", None) not in PERPLEXITY_MEANING:
        missing.append(f"nll_kind in ({', '.join(PERPLEXITY_MEANING)})")
    if not dataclasses.is_dataclass(getattr(model_class, "Params", None)):
        missing.append("Params as a dataclass")
    if missing:
        raise TypeError(f"model class {model_class.__name__} lacks {', '.join(missing)}")
    MODELS[model_class.name] = model_class
    return model_class


for _module in sorted(module.name for module in pkgutil.iter_modules(__path__)):
    if _module != "base":
        importlib.import_module(f"{__name__}.{_module}")  # each registers its model class


def model_names() -> tuple[str, ...]:
    return tuple(MODELS)


def model_class(name: str) -> type[StudyModel]:
    if name not in MODELS:
        raise ParamError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return MODELS[name]


def model_spec(name: str, params) -> dict:
    """What defines the model `name` under the study's params: the backbone size and its own params."""
    s = params.scale
    return {"model": name, "vocab_size": s.vocab_size, "seq_len": s.seq_len, "d_model": s.d_model,
            "n_layers": s.n_layers, "n_heads": s.n_heads, "d_ff": s.d_ff,
            **dataclasses.asdict(params.models[name])}


def build_model(spec: dict) -> StudyModel:
    return model_class(spec["model"]).from_spec(spec)


__all__ = ["MODELS", "PERPLEXITY_MEANING", "StudyModel", "TokenModel", "build_model", "model_class", "model_names",
           "model_spec", "register", "sample_categorical"]
