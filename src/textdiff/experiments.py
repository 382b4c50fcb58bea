"""Experiment groups: named sets of params overrides, each run as a DVC experiment outside `dvc repro`.

params.yaml's `experiments` maps a group name to
    stages: the stages each run reproduces (their upstream stages come along when their inputs change);
    set:    overrides common to every run of the group (optional);
    runs:   run name -> its own params overrides (dotted keys, as `dvc exp run -S` takes them).
Each run is `dvc exp run --temp --name <group>-<run> -S ... <stages>`: the workspace is left as it
is and the result is an experiment commit (`dvc exp show` lists it). `collect` reads each run's
newest experiment commit, and from it the metrics and first samples of every model the group
evaluates, into eval/experiments/<group>.json, which the report stage reads like any other input.
One runner serves every group; a new question is a new group in params.yaml.

A collected run is evidence only for the study it ran in, so `collect` also records what that
was, all read from the experiment commit itself: the params it ran with (and the overrides that
made them, against its baseline commit), and from its dvc.lock the hashes of the code, the
packed data and the judge behind its results. analysis.run_binding compares them with the
current study.
"""
from __future__ import annotations

import csv
import difflib
import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ParamError
from .io import write_json
from .models import model_names

COLLECTED_DIR = "eval/experiments"
COMMAND = "python stages/experiments.py"
SAMPLES_KEPT = 4


@dataclass(frozen=True)
class Group:
    name: str
    stages: tuple[str, ...]
    common: dict  # the group's `set`
    runs: dict[str, dict]

    @property
    def models(self) -> tuple[str, ...]:
        """The models whose evaluation the group's runs produce (all of them if it reproduces the report)."""
        evaluated = tuple(stage.split("@", 1)[1] for stage in self.stages if stage.startswith("evaluate@"))
        return model_names() if "report" in self.stages or not evaluated else evaluated


def _name_ok(name) -> bool:
    return isinstance(name, str) and bool(name) and name.replace("-", "").replace("_", "").isalnum()


def read_groups(params_path="params.yaml") -> dict[str, Group]:
    raw = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))
    groups = raw.get("experiments") if isinstance(raw, dict) else None
    if not isinstance(groups, dict) or not groups:
        raise ParamError("params.yaml: experiments must map group names to {stages, set, runs}")
    parsed = {}
    for name, group in groups.items():
        key = f"experiments.{name}"
        if not _name_ok(name) or not isinstance(group, dict):
            raise ParamError(f"params.yaml: {key} must be a mapping named with letters, digits, - or _")
        stages, common, runs = group.get("stages"), group.get("set", {}), group.get("runs")
        if not isinstance(stages, list) or not stages or not all(isinstance(s, str) and s for s in stages):
            raise ParamError(f"params.yaml: {key}.stages must be a non-empty list of stage names, got {stages!r}")
        if not isinstance(common, dict):
            raise ParamError(f"params.yaml: {key}.set must be a mapping of params overrides, got {common!r}")
        if not isinstance(runs, dict) or not runs:
            raise ParamError(f"params.yaml: {key}.runs must map run names to params overrides, got {runs!r}")
        for run, overrides in runs.items():
            if not _name_ok(run):
                raise ParamError(f"params.yaml: {key}.runs name must be letters, digits, - or _, got {run!r}")
            if not isinstance(overrides, dict) or not overrides:
                raise ParamError(f"params.yaml: {key}.runs.{run} must be a non-empty mapping, got {overrides!r}")
        known = study_params(raw)
        for where, overrides in [(f"{key}.set", common), *((f"{key}.runs.{run}", o) for run, o in runs.items())]:
            for param in overrides:
                if param not in known:  # caught here, before any run starts, not by the run that would fail
                    nearest = difflib.get_close_matches(str(param), known, n=1, cutoff=0.6)
                    raise ParamError(f"params.yaml: {where} sets {param}, which is not a key of params.yaml"
                                     + (f" (did you mean {nearest[0]}?)" if nearest else ""))
        parsed[name] = Group(name, tuple(stages), common, runs)
    return parsed


def experiment_name(group: Group, run: str) -> str:
    return f"{group.name}-{run}"


def exp_run_command(group: Group, run: str) -> list[str]:
    command = ["dvc", "exp", "run", "--temp", "--name", experiment_name(group, run)]
    for key, value in {**group.runs[run], **group.common}.items():
        command += ["--set-param", f"{key}={json.dumps(value)}"]  # JSON scalars are YAML scalars
    return command + list(group.stages)


def _git(*args: str, cwd=".") -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def newest_experiment(name: str, cwd=".") -> str | None:
    """The newest experiment commit of that name, from any baseline (None if never run)."""
    refs = _git("for-each-ref", "--sort=-committerdate", "--format=%(objectname) %(refname)", "refs/exps/",
                cwd=cwd).split("\n")
    for line in refs:
        if line.endswith("/" + name):
            return line.split()[0]
    return None


def run_experiment(group: Group, run: str, cwd=".") -> bool:
    """Runs one run of the group; False (and its failure printed) if it failed."""
    name = experiment_name(group, run)
    if newest_experiment(name, cwd):  # an experiment name is unique per baseline; the rerun replaces it
        subprocess.run(["dvc", "exp", "remove", name], cwd=cwd, capture_output=True)
    # The experiment runs in a temporary copy of the repository; a relative PYTHONPATH makes its stages
    # import that copy's library rather than an editable install of this workspace, which may change meanwhile.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ("src", os.environ.get("PYTHONPATH"))))}
    return subprocess.run(exp_run_command(group, run), cwd=cwd, env=env).returncode == 0


def flatten(params: dict, prefix: str = "") -> dict:
    """{"sdd": {"k_curriculum": true}} -> {"sdd.k_curriculum": true}: params as `dvc exp run -S` names them."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def study_params(params: dict) -> dict:
    """A params.yaml mapping without its experiment groups (which no stage reads), flattened."""
    return flatten({key: value for key, value in params.items() if key != "experiments"})


def changed_keys(before: dict, after: dict) -> dict:
    """The flattened keys whose value differs in `after` (or is new there), with that value."""
    return {key: value for key, value in after.items() if before.get(key, object()) != value}


def upstream_stages(lock: dict, stages) -> set[str]:
    """The stages of a dvc.lock that produced `stages`' inputs, transitively, and `stages` themselves."""
    produced_by = {out["path"]: name for name, stage in lock["stages"].items() for out in stage.get("outs", [])}
    found, todo = set(), list(stages)
    while todo:
        name = todo.pop()
        if name in found or name not in lock["stages"]:
            continue
        found.add(name)
        for dep in lock["stages"][name].get("deps", []):
            todo += [stage for out, stage in produced_by.items()
                     if dep["path"] == out or dep["path"].startswith(out.rstrip("/") + "/")]
    return found


def study_hashes(lock: dict, stages) -> dict:
    """What a run's results rest on, from its dvc.lock: the md5 of every code file the stages it reproduced
    (with their upstream stages) depend on, of the packed data, and of the judge's weights."""
    code, outputs = {}, {}
    for name in sorted(upstream_stages(lock, stages)):
        stage = lock["stages"][name]
        for dep in stage.get("deps", []):
            if dep["path"].startswith(("src/", "stages/")):
                code[dep["path"]] = dep["md5"]
        for out in stage.get("outs", []):
            outputs[out["path"]] = out.get("md5")
    return {"code": dict(sorted(code.items())),
            "data": {path: md5 for path, md5 in outputs.items() if path.startswith("data/packed/")},
            "judge": {path: md5 for path, md5 in outputs.items() if path == JUDGE_WEIGHTS}}


JUDGE_WEIGHTS = "models/judge/model.safetensors"


def entry(group: Group, run: str) -> dict | None:
    """The overrides params.yaml now gives a run of the group (its own and the group's `set`); None if none."""
    return {**group.runs[run], **group.common} if run in group.runs else None


def collect(group: Group, out_dir=COLLECTED_DIR, cwd=".") -> dict:
    """Each run's experiment commit, what it ran (params, overrides, code, data and judge hashes) and the
    metrics and first samples of the group's models, written to <out_dir>/<group>.json."""
    out_path = Path(cwd) / out_dir / f"{group.name}.json"
    # A run with no experiment here keeps what was collected for it before (from another clone, or before runs
    # recorded what they ran with): the report binds it to the study or lists it as excluded, saying why.
    earlier = json.loads(out_path.read_text())["runs"] if out_path.exists() else {}
    collected = {}
    for run in group.runs:
        rev = newest_experiment(experiment_name(group, run), cwd)
        if rev is None:
            if run in earlier:
                collected[run] = earlier[run]
            continue

        def read(path: str, commit: str = rev):
            text = _git("show", f"{commit}:{path}", cwd=cwd)
            if path.endswith(".csv"):
                return [{key: float(value) if value else None for key, value in row.items()}
                        for row in csv.DictReader(io.StringIO(text))]
            return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        def read_optional(path: str):
            """None for a file the experiment commit lacks (runs from before it was written)."""
            try:
                return read(path)
            except subprocess.CalledProcessError:
                return None
        baseline = _git("rev-parse", f"{rev}^", cwd=cwd).strip()

        def stage_seconds() -> dict[str, float]:
            """The wall time of each stage the run reproduced: those whose timings file differs from its baseline's."""
            seconds = {}
            for path in _git("ls-tree", "--name-only", f"{rev}:timings", cwd=cwd).split():
                timing = read(f"timings/{path}")
                try:
                    unchanged = read(f"timings/{path}", baseline) == timing
                except subprocess.CalledProcessError:
                    unchanged = False
                if not unchanged:
                    seconds[path.removesuffix(".json")] = timing["wall_s"]
            return seconds
        ran = study_params(read("params.yaml"))
        overrides = changed_keys(study_params(read("params.yaml", baseline)), ran)
        collected[run] = {
            "overrides": {key: value for key, value in overrides.items() if key not in group.common},
            "set": {key: value for key, value in overrides.items() if key in group.common},
            "experiment": experiment_name(group, run),
            "experiment_commit": rev,
            "baseline_commit": baseline,
            "params": ran,
            **study_hashes(read("dvc.lock"), group.stages),
            "stage_seconds": stage_seconds(),
            "models": {model: {"metrics": read(f"eval/{model}/metrics.json"),
                               "samples": read(f"eval/{model}/samples.json")["samples"][:SAMPLES_KEPT],
                               "learning_curve": read_optional(f"models/{model}/learning_curve.csv")}
                       for model in group.models},
        }
    result = {"group": group.name, "command": f"{COMMAND} {group.name}", "stages": list(group.stages),
              "models": list(group.models), "runs": collected,
              "not_run": [run for run in group.runs if run not in collected]}
    write_json(out_path, result)
    return result
