"""The report's inputs, checked before anything is rendered: a missing field, a value that is not a number, or
a number that is not finite or out of its range is a one-line DataError naming the file and the field, so no
table ever prints "nan ± 2.13" and reports/metrics.json never holds NaN (which is not JSON)."""
from __future__ import annotations

import math
import numbers
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..io import read_json
from ..models import MODELS, StudyModel

POSITIVE, NON_NEGATIVE, FRACTION = (0, math.inf, True), (0, math.inf, False), (0, 1, False)

#: Fields of eval/<model>/metrics.json the report reads, with their range: (low, high, low excluded).
METRIC_FIELDS = {
    "perplexity": POSITIVE, "nll_per_token": NON_NEGATIVE, "accuracy": FRACTION,
    "sample_judge_perplexity": POSITIVE, "sample_entropy": NON_NEGATIVE, "sample_distinct_1": FRACTION,
    "sample_distinct_2": FRACTION, "sample_distinct_3": FRACTION, "sample_repeat_4gram_rate": FRACTION,
    "sample_ms_per_sample": POSITIVE, "gen_ms_per_sample": POSITIVE, "parameters": POSITIVE,
    "train_steps": POSITIVE, "train_tokens": POSITIVE, "train_wall_s": NON_NEGATIVE, "gen_temperature": POSITIVE,
}
#: Fields checked where present (a standard error is None with fewer than two rows).
OPTIONAL_FIELDS = {"perplexity_standard_error": NON_NEGATIVE, "nll_standard_error": NON_NEGATIVE,
                   "accuracy_standard_error": NON_NEGATIVE, "context_only_accuracy": FRACTION,
                   "sample_judge_perplexity_standard_error": NON_NEGATIVE, "train_epochs": NON_NEGATIVE}
REFERENCE_FIELDS = {"judge_perplexity": POSITIVE, "entropy": NON_NEGATIVE, "judge_valid_perplexity": POSITIVE,
                    "distinct_1": FRACTION, "distinct_2": FRACTION, "distinct_3": FRACTION,
                    "repeat_4gram_rate": FRACTION, "judge_steps": POSITIVE}
#: Numeric columns of each CSV input.
CSV_COLUMNS = {"train_log.csv": ("step", "loss"), "learning_curve.csv": ("step", "tokens", "valid_nll"),
               "sweep.csv": ("steps", "temperature", "ms_per_sample", "judge_perplexity", "entropy")}


def check_number(where: str, field: str, value, bounds) -> None:
    low, high, low_open = bounds
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"{where}: {field} must be a number, got {value!r}; rerun the stage that writes it (dvc repro)")
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise DataError(f"{where}: {field} = {value!r} is not a finite number in {interval}; "
                        "rerun the stage that writes it (dvc repro)")


def check_fields(where: str, data: dict, required: dict, optional: dict | None = None) -> dict:
    if not isinstance(data, dict):
        raise DataError(f"{where}: must hold a JSON object; rerun the stage that writes it (dvc repro)")
    for field, bounds in required.items():
        if field not in data:
            raise DataError(f"{where}: lacks the field {field}; rerun the stage that writes it (dvc repro)")
        check_number(where, field, data[field], bounds)
    for field, bounds in (optional or {}).items():
        if data.get(field) is not None:
            check_number(where, field, data[field], bounds)
    return data


def model_metrics(path: Path, name: str) -> dict:
    """eval/<model>/metrics.json, checked; a model with diagnostics must have them (the report's SDD section)."""
    metrics = check_fields(str(path), read_json(path), METRIC_FIELDS, OPTIONAL_FIELDS)
    if MODELS[name].diagnostics is not StudyModel.diagnostics and not isinstance(metrics.get("diagnostics"), dict):
        raise DataError(f"{path}: lacks the field diagnostics, which {MODELS[name].display_name}'s evaluation writes; "
                        "rerun the stage that writes it (dvc repro)")
    return metrics


def reference_metrics(path: Path) -> dict:
    return check_fields(str(path), read_json(path), REFERENCE_FIELDS)


def numeric_csv(path: Path) -> pd.DataFrame:
    """A CSV input whose known columns hold finite numbers only."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:  # missing, unreadable or not CSV
        raise DataError(f"{path}: {str(error).splitlines()[0][:80]}; rerun the stage that writes it (dvc repro)") \
            from None
    for column in CSV_COLUMNS.get(Path(path).name, ()):
        if column not in table:
            raise DataError(f"{path}: lacks the column {column}; rerun the stage that writes it (dvc repro)")
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | ~values.apply(lambda v: math.isfinite(v) if isinstance(v, float) else True)
        if bad.any():
            row = int(bad.idxmax())
            value = table[column][row]
            shown = repr(value) if isinstance(value, str) else str(value)
            raise DataError(f"{path}: row {row + 1} of column {column} is {shown}, not a finite "
                            "number; rerun the stage that writes it (dvc repro)")
    return table


def collected_group(path: Path) -> dict:
    """eval/experiments/<group>.json, checked like every other input: JSON that holds a group's runs, each model's
    metrics with finite numbers in range. No stage writes it, so a bad one is told to be collected again."""
    again = f"collect it again: python stages/experiments.py {path.stem} --collect-only"
    try:
        data = read_json(path)
    except DataError as error:
        raise DataError(str(error).split("; ")[0] + f"; {again}") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict) or not isinstance(data.get("models"), list):
        raise DataError(f"{path}: must hold a collected group (its runs and models); {again}")
    for run, collected in data["runs"].items():
        for model, figures in (collected.get("models") or {}).items():
            if "metrics" not in figures and "learning_curve" in figures:
                continue  # a training-only group's run: its learning curves are checked where they are read
            try:
                check_fields(f"{path}: run {run}, {model}", figures.get("metrics"), METRIC_FIELDS, OPTIONAL_FIELDS)
            except DataError as error:
                raise DataError(str(error).split("; rerun")[0] + f"; {again}") from None
    return data
