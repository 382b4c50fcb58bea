"""SDD's variant experiments, run as DVC experiments outside the default `dvc repro`.

Each variant in params.yaml's `sdd_variants` is `dvc exp run --temp` of evaluate@sdd (and so
train@sdd) with a few params overridden, judged at the default sampling setting only. The
workspace is left as it is: each result is an experiment commit (`dvc exp show` lists them).
`collect` reads each variant's newest experiment commit into eval/sdd_variants.json, which
the report stage reads like any other input.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from .io import write_json
from .params import ParamError

# The variant runs judge the default sampling setting only: the sweep would double their cost.
CHEAP_EVALUATION = {"sample.sdd.sweep": False}
COLLECTED_FILES = {"metrics": "eval/sdd/metrics.json", "samples": "eval/sdd/samples.json"}
SAMPLES_KEPT = 4


def read_variants(params_path="params.yaml") -> dict[str, dict]:
    raw = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))
    variants = raw.get("sdd_variants")
    if not isinstance(variants, dict) or not variants:
        raise ParamError("params.yaml: sdd_variants must map variant names to params overrides")
    for name, overrides in variants.items():
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise ParamError(f"params.yaml: sdd_variants name must be letters, digits, - or _, got {name!r}")
        if not isinstance(overrides, dict) or not overrides:
            raise ParamError(f"params.yaml: sdd_variants.{name} must be a non-empty mapping, got {overrides!r}")
    return variants


def experiment_name(variant: str) -> str:
    return f"sdd-{variant}"


def exp_run_command(variant: str, overrides: dict) -> list[str]:
    command = ["dvc", "exp", "run", "--temp", "--name", experiment_name(variant)]
    for key, value in {**overrides, **CHEAP_EVALUATION}.items():
        command += ["--set-param", f"{key}={json.dumps(value)}"]  # JSON scalars are YAML scalars
    return command + ["evaluate@sdd"]


def _git(*args: str, cwd=".") -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def newest_experiment(variant: str, cwd=".") -> str | None:
    """The newest experiment commit named for the variant, from any baseline (None if never run)."""
    refs = _git("for-each-ref", "--sort=-committerdate", "--format=%(objectname) %(refname)", "refs/exps/",
                cwd=cwd).split("\n")
    for line in refs:
        if line.endswith("/" + experiment_name(variant)):
            return line.split()[0]
    return None


def run_variant(variant: str, overrides: dict, cwd=".") -> None:
    if newest_experiment(variant, cwd):  # an experiment name is unique per baseline; the rerun replaces it
        subprocess.run(["dvc", "exp", "remove", experiment_name(variant)], cwd=cwd, capture_output=True)
    # The experiment runs in a temporary copy of the repository; a relative PYTHONPATH makes its stages
    # import that copy's library rather than an editable install of this workspace, which may change meanwhile.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ("src", os.environ.get("PYTHONPATH"))))}
    subprocess.run(exp_run_command(variant, overrides), cwd=cwd, check=True, env=env)


def collect(variants: dict[str, dict], out_path, cwd=".") -> dict:
    """Each variant's overrides, experiment commit, metrics and first samples, written to out_path."""
    collected = {}
    for variant, overrides in variants.items():
        rev = newest_experiment(variant, cwd)
        if rev is None:
            continue
        files = {key: json.loads(_git("show", f"{rev}:{path}", cwd=cwd)) for key, path in COLLECTED_FILES.items()}
        collected[variant] = {
            "overrides": overrides,
            "experiment": experiment_name(variant),
            "experiment_commit": rev,
            "baseline_commit": _git("rev-parse", f"{rev}^", cwd=cwd).strip(),
            "metrics": files["metrics"],
            "samples": files["samples"]["samples"][:SAMPLES_KEPT],
        }
    not_run = [variant for variant in variants if variant not in collected]
    write_json(out_path, {"command": "python stages/sdd_variants.py", "variants": collected, "not_run": not_run})
    return collected
