"""params.yaml, read and checked once, before any stage does expensive work.

Every problem is a ParamError whose message is one line naming the key, e.g.
"params.yaml: k must be an integer in [1, vocab_size=4096], got 0".
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import yaml


class ParamError(ValueError):
    """An invalid value in params.yaml; the message names the key."""


@dataclass(frozen=True)
class Scale:
    vocab_size: int
    seq_len: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    batch_size: int
    steps: int
    lr: float
    warmup_steps: int


@dataclass(frozen=True)
class DataParams:
    hf_dataset: str
    train_stories: int | None
    valid_stories: int | None
    valid_fraction: float


@dataclass(frozen=True)
class TrainParams:
    weight_decay: float
    grad_clip: float
    min_lr_ratio: float
    checkpoint_every: int
    device: str
    compile: bool


@dataclass(frozen=True)
class ModelParams:  # the ar and mdlm groups
    tie_embeddings: bool
    schedule: str = "loglinear"
    t_eps: float = 1e-3


@dataclass(frozen=True)
class SDDParams:
    embed_dim: int
    clean_other_prob: float
    embed_noise_std: float
    k_curriculum: bool
    schedule: str = "cosine"
    index_swap: str = "none"
    shuffle_slots: bool = False


@dataclass(frozen=True)
class EvaluateParams:
    max_valid_rows: int | None
    mdlm_t_draws: int
    batch_size: int
    num_samples: int
    sample_length: int
    timing_runs: int
    sweep_steps: tuple[int, ...]
    sweep_temperatures: tuple[float, ...]


@dataclass(frozen=True)
class JudgeParams:
    steps_factor: int


@dataclass(frozen=True)
class StudyParams:
    scale_name: str
    scale: Scale
    k: int
    seed: int
    data: DataParams
    train: TrainParams
    ar: ModelParams
    mdlm: ModelParams
    sdd: SDDParams
    evaluate: EvaluateParams
    sample: dict[str, dict]  # per model: the keyword arguments of its generate()
    sweep: dict[str, bool]  # per model: judge the whole sampling sweep (false: the default setting only)
    judge: JudgeParams


def _fail(key: str, message: str, value) -> None:
    raise ParamError(f"params.yaml: {key} {message}, got {value!r}")


def _section(raw: dict, key: str) -> dict:
    value = raw.get(key)
    if not isinstance(value, dict):
        _fail(key, "must be a mapping", value)
    return value


def _int(section: dict, key: str, prefix: str, low: int = 1, high: int | None = None, optional=False):
    value = section.get(key)
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
            high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        _fail(prefix + key, f"must be an integer {bound}", value)
    return int(value)


def _float(section: dict, key: str, prefix: str, low: float, high: float, low_open=False, high_open=False):
    value = section.get(key)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        _fail(prefix + key, f"must be a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}",
              value)
    return float(value)


def _bool(section: dict, key: str, prefix: str) -> bool:
    value = section.get(key)
    if not isinstance(value, bool):
        _fail(prefix + key, "must be true or false", value)
    return value


def _choice(section: dict, key: str, prefix: str, choices) -> str:
    value = section.get(key)
    if value not in choices:
        _fail(prefix + key, f"must be one of {', '.join(choices)}", value)
    return value


def _list(section: dict, key: str, prefix: str, parse) -> tuple:
    values = section.get(key)
    if not isinstance(values, list) or not values:
        _fail(prefix + key, "must be a non-empty list", values)
    return tuple(parse({key: value}, key, prefix) for value in values)


SDD_SCHEDULES = ("cosine", "linear")
SDD_INDEX_SWAPS = ("none", "uniform", "probability")
SDD_CANDIDATE_DRAWS = ("top_k", "stochastic")


def _sdd_sampler(group: dict) -> dict:
    prefix = "sample.sdd."
    final = group.get("final_temperature")
    return {
        "final_temperature": None if final is None else _float(group, "final_temperature", prefix, 0, 100,
                                                               low_open=True),
        "candidates": _choice(group, "candidates", prefix, SDD_CANDIDATE_DRAWS),
        "renormalise": _bool(group, "renormalise", prefix),
        "renoise": _bool(group, "renoise", prefix),
    }


def parse_params(raw: dict) -> StudyParams:
    if not isinstance(raw, dict):
        raise ParamError("params.yaml: must be a mapping of keys to values")
    scales = _section(raw, "scales")
    scale_name = raw.get("scale")
    if scale_name not in scales:
        _fail("scale", f"must name one of scales ({', '.join(scales)})", scale_name)
    s, p = _section(scales, scale_name), f"scales.{scale_name}."
    scale = Scale(
        vocab_size=_int(s, "vocab_size", p, low=256, high=65535),  # ids are stored as uint16
        seq_len=_int(s, "seq_len", p, low=2, high=8192),
        d_model=_int(s, "d_model", p),
        n_layers=_int(s, "n_layers", p),
        n_heads=_int(s, "n_heads", p),
        d_ff=_int(s, "d_ff", p),
        batch_size=_int(s, "batch_size", p),
        steps=_int(s, "steps", p),
        lr=_float(s, "lr", p, 0, 1, low_open=True),
        warmup_steps=_int(s, "warmup_steps", p, low=0),
    )
    if scale.d_model % scale.n_heads or (scale.d_model // scale.n_heads) % 2:
        _fail(p + "n_heads", f"must divide d_model={scale.d_model} into an even head size", scale.n_heads)
    k = _int(raw, "k", "", high=scale.vocab_size)
    _int(raw, "seed", "", low=0)

    d = _section(raw, "data")
    if not isinstance(d.get("hf_dataset"), str) or not d["hf_dataset"]:
        _fail("data.hf_dataset", "must be a dataset name", d.get("hf_dataset"))
    data = DataParams(d["hf_dataset"], _int(d, "train_stories", "data.", optional=True),
                      _int(d, "valid_stories", "data.", optional=True),
                      _float(d, "valid_fraction", "data.", 0, 1, low_open=True, high_open=True))

    t = _section(raw, "train")
    train = TrainParams(
        weight_decay=_float(t, "weight_decay", "train.", 0, 10),
        grad_clip=_float(t, "grad_clip", "train.", 0, 1e6, low_open=True),
        min_lr_ratio=_float(t, "min_lr_ratio", "train.", 0, 1),
        checkpoint_every=_int(t, "checkpoint_every", "train."),
        device=_choice(t, "device", "train.", ("auto", "cpu", "cuda")),
        compile=_bool(t, "compile", "train."),
    )
    a, m = _section(raw, "ar"), _section(raw, "mdlm")
    ar = ModelParams(_bool(a, "tie_embeddings", "ar."))
    mdlm = ModelParams(_bool(m, "tie_embeddings", "mdlm."), _choice(m, "schedule", "mdlm.", ("loglinear", "cosine")),
                       _float(m, "t_eps", "mdlm.", 0, 1, low_open=True, high_open=True))
    sd = _section(raw, "sdd")
    sdd = SDDParams(
        embed_dim=_int(sd, "embed_dim", "sdd."),
        clean_other_prob=_float(sd, "clean_other_prob", "sdd.", 0, 1 / k if k > 1 else 1),
        embed_noise_std=_float(sd, "embed_noise_std", "sdd.", 0, 10),
        k_curriculum=_bool(sd, "k_curriculum", "sdd."),
        schedule=_choice(sd, "schedule", "sdd.", SDD_SCHEDULES),
        index_swap=_choice(sd, "index_swap", "sdd.", SDD_INDEX_SWAPS),
        shuffle_slots=_bool(sd, "shuffle_slots", "sdd."),
    )
    e = _section(raw, "evaluate")
    evaluate = EvaluateParams(
        max_valid_rows=_int(e, "max_valid_rows", "evaluate.", optional=True),
        mdlm_t_draws=_int(e, "mdlm_t_draws", "evaluate."),
        batch_size=_int(e, "batch_size", "evaluate."),
        num_samples=_int(e, "num_samples", "evaluate."),
        sample_length=_int(e, "sample_length", "evaluate.", high=scale.seq_len),
        timing_runs=_int(e, "timing_runs", "evaluate."),
        sweep_steps=_list(e, "sweep_steps", "evaluate.", lambda *a: _int(*a, high=100000)),
        sweep_temperatures=_list(e, "sweep_temperatures", "evaluate.",
                                 lambda *a: _float(*a, low=0, high=100, low_open=True)),
    )
    sm = _section(raw, "sample")
    sample, sweeps = {}, {}
    for name, has_steps in (("ar", False), ("mdlm", True), ("sdd", True)):
        group = _section(sm, name)
        sample[name] = {"temperature": _float(group, "temperature", f"sample.{name}.", 0, 100, low_open=True)}
        if has_steps:
            sample[name]["steps"] = _int(group, "steps", f"sample.{name}.", high=100000)
        if name == "sdd":
            sample[name].update(_sdd_sampler(group))
        sweeps[name] = _bool(group, "sweep", f"sample.{name}.")
    judge = JudgeParams(_int(_section(raw, "judge"), "steps_factor", "judge.", high=1000))
    return StudyParams(scale_name, scale, k, raw["seed"], data, train, ar, mdlm, sdd, evaluate, sample, sweeps, judge)


def load_params(path: str | Path = "params.yaml") -> StudyParams:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ParamError(f"{path}: file not found (run from the repository root)") from None
    except yaml.YAMLError as error:
        raise ParamError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return parse_params(raw)
