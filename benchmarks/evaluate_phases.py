"""Benchmark: where an evaluate@<model> stage spends its time, phase by phase.

Runs the stage's own `textdiff.evaluate.evaluate` on the workspace's trained model (after a `dvc repro`)
with each phase timed: the validation figures over the whole split, the batch-1 generation timings, the
model's diagnostics, the judged sample sweep (its generations, and the judge's scoring of them apart).
The shares, not the seconds, are what carries across machines and thread counts: they say which cut
would shorten the study (the 30-minute target) and by how much. Writes nothing under eval/.

    python benchmarks/evaluate_phases.py sdd [--threads 1]   # -> reports/benchmarks/evaluate_phases.json
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import textdiff.evaluate as evaluation  # noqa: E402
from textdiff.io import read_json, write_json  # noqa: E402
from textdiff.study import load_params  # noqa: E402

OUT = REPO / "reports" / "benchmarks" / "evaluate_phases.json"
# The phase each timed function is, in the order evaluate() runs them. timed_generation is called by both
# the batch-1 timings and the sweep; the sweep's generations are what is left of it after the timings.
PHASES = {"validation_metrics": "validation", "generation_runs_ms": "batch1_timing",
          "timed_generation": "generation", "sample_quality": "judge_scoring"}


def timed_phases(model_name: str) -> dict[str, float]:
    """Seconds per phase of one evaluation of models/<model_name>, as the stage runs it."""
    seconds = dict.fromkeys(list(PHASES.values()) + ["diagnostics"], 0.0)

    def timed(phase, function):
        def wrapper(*args, **kwargs):
            tic = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[phase] += time.perf_counter() - tic
        return wrapper

    originals = {name: getattr(evaluation, name) for name in [*PHASES, "load_trained"]}
    for name, phase in PHASES.items():
        setattr(evaluation, name, timed(phase, originals[name]))

    def load_trained(*args, **kwargs):
        model, config = originals["load_trained"](*args, **kwargs)
        model.diagnostics = timed("diagnostics", model.diagnostics)
        return model, config
    evaluation.load_trained = load_trained
    try:
        tic = time.perf_counter()
        evaluation.evaluate(REPO / "models" / model_name, REPO / "data" / "packed" / "valid.npy",
                            Tokenizer.from_file(str(REPO / "data" / "tokenizer.json")), load_params(REPO / "params.yaml"),
                            model_name, REPO / "models" / "judge", "cpu")
        total = time.perf_counter() - tic
    finally:
        for name, function in originals.items():
            setattr(evaluation, name, function)
    seconds["sweep_generation"] = seconds.pop("generation") - seconds["batch1_timing"]
    seconds["other"] = total - sum(seconds.values())
    return {"total": total, **seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="models whose trained weights are in models/<name>")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for name in args.models:
        seconds = timed_phases(name)
        results[name] = {"seconds": {k: round(v, 1) for k, v in seconds.items()},
                         "share": {k: round(v / seconds["total"], 3) for k, v in seconds.items() if k != "total"},
                         "stage_wall_s_in_timings": read_json(REPO / "timings" / f"evaluate@{name}.json")["wall_s"]}
        print(name, results[name]["seconds"], flush=True)
    write_json(OUT, {"threads": torch.get_num_threads(), "date": datetime.date.today().isoformat(),
                     "note": args.note, "models": results})


if __name__ == "__main__":
    main()
