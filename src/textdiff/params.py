"""params.yaml, read and checked once, before any stage does expensive work.

Every problem is a ParamError whose message is one line naming the key, e.g.
"params.yaml: k must be an integer in [1, vocab_size=4096], got 0".
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from .checks import boolean, choice, fail, integer, listing, number, section
from .errors import ParamError


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
    train_stories: int | None  # stories taken from the source's train split (None: all it has)


@dataclass(frozen=True)
class DataParams:
    hf_dataset: str
    train_stories: int | None  # the scale's
    valid_stories: int | None
    valid_fraction: float
    train_stories_key: str = "train_stories"  # where train_stories is set, for messages


@dataclass(frozen=True)
class TrainParams:
    weight_decay: float
    grad_clip: float
    min_lr_ratio: float
    checkpoint_every: int
    device: str
    compile: bool
    curve_every_steps: int  # a learning-curve point (validation on curve_rows fixed rows) every this many steps
    curve_rows: int
    # Per model: its peak learning rate and its steps as multiples of the scale's (the learning-rate and
    # training-length experiments), so that one model's run can change without retraining the others or the judge.
    lr_factor: dict[str, float]
    steps_factor: dict[str, float]
    # Data-constrained runs: train on this many packed rows, a seeded uniform subset the same for every model
    # and run (None: all), for this many epochs of them (None: the scale's steps times steps_factor).
    unique_rows: int | None = None
    epochs: float | None = None
    # A wider model than the scale's (the data_reuse group's larger models), the same layers and heads; the judge
    # keeps the scale's width (None: the scale's).
    d_model: int | None = None
    d_ff: int | None = None
    # The training recipe's ingredients (issue 36), shared by every model of the study so that the comparison stays
    # fair, each off by default; the judge keeps its own recipe (judge.judge_params). Dropout on the backbone's
    # residual branches; an exponential moving average of the weights (this decay per step), which the learning
    # curve, the saved weights and so evaluation use; GPT-2's residual-projection init.
    dropout: float = 0.0
    ema_decay: float | None = None
    scaled_residual_init: bool = False


@dataclass(frozen=True)
class EvaluateParams:
    max_valid_rows: int | None
    batch_size: int
    num_samples: int
    sample_length: int
    timing_runs: int
    sweep_steps: tuple[int, ...]
    sweep_temperatures: tuple[float, ...]


@dataclass(frozen=True)
class JudgeParams:
    steps_factor: int
    seed: int  # its own: the ruler stays the same while the study's seed varies


@dataclass(frozen=True)
class StudyParams:
    scale_name: str
    scale: Scale
    seed: int
    data: DataParams
    train: TrainParams
    models: dict[str, object]  # per model: its params group as its own dataclass (models/<name>.py)
    evaluate: EvaluateParams
    sample: dict[str, dict]  # per model: the keyword arguments of its generate() at the default setting
    validation: dict[str, dict]  # per model: the keyword arguments of its validation_sums()
    sweep: dict[str, bool]  # per model: judge the whole sampling sweep (false: the default setting only)
    judge: JudgeParams


class _Reads(dict):
    """A params mapping that records which of its keys the parser read, so that a key nobody reads (a typo,
    a setting that no longer exists) is named instead of silently ignored."""

    def __init__(self, data: dict):
        super().__init__({key: _Reads(value) if isinstance(value, dict) else value for key, value in data.items()})
        self.read: set = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def unread(self, prefix: str = "", skip=()):
        """(dotted key, the keys read beside it) of every key never read, here and below what was read
        (apart from the keys in skip)."""
        for key, value in self.items():
            if key in skip:
                continue
            if key not in self.read:
                yield prefix + str(key), [prefix + str(k) for k in self.read if k in self]
            elif isinstance(value, _Reads):
                yield from value.unread(f"{prefix}{key}.")


def _refuse_unread(raw: _Reads, sections) -> None:
    # The experiment groups are checked by experiments.read_groups.
    for key, known in (item for name in sections for item in
                       (raw[name].unread(f"{name}.") if name else raw.unread(skip=("experiments",)))):
        nearest = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        raise ParamError(f"params.yaml: unknown key {key}" + (f" (did you mean {nearest[0]}?)" if nearest else
                                                                "") + "; remove it or fix its name")


def _scale(s: dict, p: str) -> Scale:
    scale = Scale(
        vocab_size=integer(s, "vocab_size", p, low=256, high=65535),  # ids are stored as uint16
        seq_len=integer(s, "seq_len", p, low=2, high=8192),
        d_model=integer(s, "d_model", p),
        n_layers=integer(s, "n_layers", p),
        n_heads=integer(s, "n_heads", p),
        d_ff=integer(s, "d_ff", p),
        batch_size=integer(s, "batch_size", p),
        steps=integer(s, "steps", p),
        lr=number(s, "lr", p, 0, 1, low_open=True),
        warmup_steps=integer(s, "warmup_steps", p, low=0),
        train_stories=integer(s, "train_stories", p, optional=True),
    )
    if scale.d_model % scale.n_heads or (scale.d_model // scale.n_heads) % 2:
        fail(p + "n_heads", f"must divide d_model={scale.d_model} into an even head size", scale.n_heads)
    return scale


def _per_model(group: dict, key: str, models: dict | None) -> dict[str, float]:
    """train.<key>: a positive factor per model (without models: read whole, checked by the stages that train)."""
    factors = section(group, key, "train.")
    if models is None:
        factors.read.update(factors)
        return {}
    return {name: number(factors, name, f"train.{key}.", 0, 1000, low_open=True) for name in models}


def parse_params(raw: dict, models: dict | None = None) -> StudyParams:
    """The study's params. models (name -> model class, see textdiff.study) also parses each model's own
    groups; without it, `models`, `sample`, `validation` and `sweep` are empty (stages that build no model).
    A key that nothing reads is refused, naming the nearest valid key (without models: in the shared sections)."""
    if not isinstance(raw, dict):
        raise ParamError("params.yaml: must be a mapping of keys to values")
    raw = _Reads(raw)
    scales = section(raw, "scales")
    scale_name = raw.get("scale")
    if scale_name not in scales:
        fail("scale", f"must name one of scales ({', '.join(scales)})", scale_name)
    for name in scales:  # every scale is checked, so that a typo in one not run now is found too
        _scale(section(scales, name, "scales."), f"scales.{name}.")
    scale = _scale(scales[scale_name], f"scales.{scale_name}.")
    seed = integer(raw, "seed", "", low=0, high=2**32 - 1)  # step seeds are seed * 1_000_003 + step < 2**64

    d = section(raw, "data")
    if not isinstance(d.get("hf_dataset"), str) or not d["hf_dataset"]:
        fail("data.hf_dataset", "must be a dataset name", d.get("hf_dataset"))
    data = DataParams(d["hf_dataset"], scale.train_stories,
                      integer(d, "valid_stories", "data.", optional=True),
                      number(d, "valid_fraction", "data.", 0, 1, low_open=True, high_open=True),
                      f"scales.{scale_name}.train_stories")

    t = section(raw, "train")
    train = TrainParams(
        weight_decay=number(t, "weight_decay", "train.", 0, 10),
        grad_clip=number(t, "grad_clip", "train.", 0, 1e6, low_open=True),
        min_lr_ratio=number(t, "min_lr_ratio", "train.", 0, 1),
        checkpoint_every=integer(t, "checkpoint_every", "train."),
        device=choice(t, "device", "train.", ("auto", "cpu", "cuda")),
        compile=boolean(t, "compile", "train."),
        curve_every_steps=integer(t, "curve_every_steps", "train."),
        curve_rows=integer(t, "curve_rows", "train."),
        lr_factor=_per_model(t, "lr_factor", models),
        steps_factor=_per_model(t, "steps_factor", models),
        unique_rows=integer(t, "unique_rows", "train.", optional=True),
        epochs=number(t, "epochs", "train.", 0, 100000, low_open=True, optional=True),
        d_model=integer(t, "d_model", "train.", optional=True),
        d_ff=integer(t, "d_ff", "train.", optional=True),
        dropout=number(t, "dropout", "train.", 0, 1, high_open=True),
        ema_decay=number(t, "ema_decay", "train.", 0, 1, low_open=True, high_open=True, optional=True),
        scaled_residual_init=boolean(t, "scaled_residual_init", "train."),
    )
    if train.unique_rows is not None and train.epochs is not None:
        epoch_steps(train.epochs, train.unique_rows, scale.batch_size, f"scales.{scale_name}.batch_size")
    if train.d_model is not None and (train.d_model % scale.n_heads or (train.d_model // scale.n_heads) % 2):
        fail("train.d_model", f"must split into the scale's n_heads={scale.n_heads} heads of an even size",
             train.d_model)
    e = section(raw, "evaluate")
    evaluate = EvaluateParams(
        max_valid_rows=integer(e, "max_valid_rows", "evaluate.", optional=True),
        batch_size=integer(e, "batch_size", "evaluate."),
        num_samples=integer(e, "num_samples", "evaluate."),
        sample_length=integer(e, "sample_length", "evaluate.", high=scale.seq_len),
        timing_runs=integer(e, "timing_runs", "evaluate."),
        sweep_steps=listing(e, "sweep_steps", "evaluate.", lambda *a: integer(*a, high=100000)),
        sweep_temperatures=listing(e, "sweep_temperatures", "evaluate.",
                                   lambda *a: number(*a, low=0, high=100, low_open=True)),
    )
    # Each model checks its own groups: its params group, and its `sample.<name>` settings.
    model_params, sample, validation, sweeps = {}, {}, {}, {}
    for name, model in (models or {}).items():
        model_params[name] = model.parse_params(raw, scale.vocab_size)
        group, prefix = section(section(raw, "sample"), name, "sample."), f"sample.{name}."
        sample[name] = model.parse_sampling(group, prefix)
        validation[name] = model.parse_validation(group, prefix)
        sweeps[name] = boolean(group, "sweep", prefix)
    j = section(raw, "judge")
    judge = JudgeParams(integer(j, "steps_factor", "judge.", high=1000), integer(j, "seed", "judge.", low=0, high=2**32 - 1))
    _refuse_unread(raw, [""] if models is not None else ["scales", "data", "train", "evaluate", "judge"])
    return StudyParams(scale_name, scale, seed, data, train, model_params, evaluate, sample, validation, sweeps, judge)


def epoch_steps(epochs: float, rows: int, batch_size: int, batch_key: str) -> int:
    """The steps of a schedule of `epochs` passes over `rows` rows in batches of batch_size; refused where whole
    steps cannot come within 5% of the epochs asked (fewer rows than a batch, say), which would silently train
    another number of epochs."""
    steps = max(1, round(epochs * rows / batch_size))
    trained = steps * batch_size / rows
    if abs(trained - epochs) > 0.05 * epochs:
        raise ParamError(f"params.yaml: train.epochs={epochs:g} of {rows:,} rows in batches of {batch_key}="
                         f"{batch_size} would train {steps:,} step{'s' * (steps != 1)}, which is {trained:.3g} "
                         f"epochs; raise train.epochs or train.unique_rows")
    return steps


def read_yaml(path) -> dict:
    """A YAML file as read; a missing or malformed file is a one-line ParamError naming where it breaks."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamError(f"{path}: file not found (run from the repository root)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ParamError(f"{path}: not valid YAML{where} ({problem})") from None


def load_params(path: str | Path = "params.yaml", models: dict | None = None) -> StudyParams:
    return parse_params(read_yaml(path), models)
