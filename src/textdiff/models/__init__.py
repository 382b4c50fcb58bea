"""The three generators of the study, built by name from a plain-dict spec.

`model_spec` picks from the study's params exactly what defines a model; the
spec is stored beside the trained weights, so evaluation rebuilds the model
that was trained, whatever params.yaml says now.
"""
from __future__ import annotations

from ..backbone import BackboneConfig
from ..tokenizer import SPECIAL_IDS
from .ar import AutoregressiveLM
from .base import StudyModel, sample_categorical
from .mdlm import MaskedDiffusionLM
from .sdd import SparseDistributionLM

MODEL_NAMES = ("ar", "mdlm", "sdd")


def model_spec(name: str, params) -> dict:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    s = params.scale
    spec = {"model": name, "vocab_size": s.vocab_size, "seq_len": s.seq_len, "d_model": s.d_model,
            "n_layers": s.n_layers, "n_heads": s.n_heads, "d_ff": s.d_ff}
    if name == "ar":
        spec.update(tie_embeddings=params.ar.tie_embeddings)
    elif name == "mdlm":
        spec.update(tie_embeddings=params.mdlm.tie_embeddings, schedule=params.mdlm.schedule, t_eps=params.mdlm.t_eps)
    else:
        spec.update(k=params.k, embed_dim=params.sdd.embed_dim, clean_other_prob=params.sdd.clean_other_prob,
                    embed_noise_std=params.sdd.embed_noise_std, k_curriculum=params.sdd.k_curriculum,
                    schedule=params.sdd.schedule, index_swap=params.sdd.index_swap,
                    shuffle_slots=params.sdd.shuffle_slots)
    return spec


def build_model(spec: dict) -> StudyModel:
    backbone = BackboneConfig(spec["d_model"], spec["n_layers"], spec["n_heads"], spec["d_ff"],
                              max_positions=spec["seq_len"])
    if spec["model"] == "ar":
        return AutoregressiveLM(spec["vocab_size"], backbone, SPECIAL_IDS["bos"], spec["tie_embeddings"])
    if spec["model"] == "mdlm":
        return MaskedDiffusionLM(spec["vocab_size"], backbone, SPECIAL_IDS["mask"], spec["tie_embeddings"],
                                 spec["schedule"], spec["t_eps"])
    if spec["model"] == "sdd":
        return SparseDistributionLM(spec["vocab_size"], backbone, spec["k"], spec["embed_dim"],
                                    spec["clean_other_prob"], spec["embed_noise_std"], spec["k_curriculum"],
                                    spec["schedule"], spec["index_swap"], spec["shuffle_slots"])
    raise ValueError(f"unknown model {spec['model']!r}; expected one of {', '.join(MODEL_NAMES)}")


__all__ = ["MODEL_NAMES", "StudyModel", "build_model", "model_spec", "sample_categorical"]
