"""Experiment groups as params.yaml's `experiments` defines them: each a named set of params overrides, checked
before any run starts, and the `dvc exp run` command of each run."""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

from ..errors import ParamError
from ..models import model_names
from ..params import read_yaml

COMMAND = "python stages/experiments.py"


@dataclass(frozen=True)
class Group:
    name: str
    stages: tuple[str, ...]
    common: dict  # the group's `set`
    runs: dict[str, dict]
    start_from: dict[str, str] = field(default_factory=dict)  # run -> "<group>/<run>" it starts from

    @property
    def models(self) -> tuple[str, ...]:
        """The models whose evaluation the group's runs produce (all of them if it reproduces the report), or, for a
        group that only trains (train@<model> stages), the models it trains."""
        evaluated = tuple(stage.split("@", 1)[1] for stage in self.stages if stage.startswith("evaluate@"))
        if "report" in self.stages or evaluated:
            return model_names() if "report" in self.stages else evaluated
        trained = tuple(stage.split("@", 1)[1] for stage in self.stages if stage.startswith("train@"))
        return trained or model_names()

    @property
    def evaluates(self) -> bool:
        """Whether its runs evaluate their models (a training-only group collects learning curves alone)."""
        return "report" in self.stages or any(stage.startswith("evaluate@") for stage in self.stages)


def _name_ok(name) -> bool:
    return isinstance(name, str) and bool(name) and name.replace("-", "").replace("_", "").isalnum()


def read_groups(params_path="params.yaml") -> dict[str, Group]:
    raw = read_yaml(params_path)
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
            # An empty run is the group's `set` alone (a confirmation group's reference); without a `set`, the study.
            if not isinstance(overrides, dict) or not (overrides or common):
                raise ParamError(f"params.yaml: {key}.runs.{run} must be a non-empty mapping (a run with no overrides "
                                 f"of its own needs the group's `set`), got {overrides!r}")
        known = study_params(raw)
        for where, overrides in [(f"{key}.set", common), *((f"{key}.runs.{run}", o) for run, o in runs.items())]:
            for param in overrides:
                if param not in known:  # caught here, before any run starts, not by the run that would fail
                    nearest = difflib.get_close_matches(str(param), known, n=1, cutoff=0.6)
                    raise ParamError(f"params.yaml: {where} sets {param}, which is not a key of params.yaml"
                                     + (f" (did you mean {nearest[0]}?)" if nearest else ""))
        start_from = group.get("start_from", {})
        if not isinstance(start_from, dict) or not all(run in runs for run in start_from):
            raise ParamError(f"params.yaml: {key}.start_from must map runs of the group to \"<group>/<run>\", "
                             f"got {start_from!r}")
        parsed[name] = Group(name, tuple(stages), common, runs, start_from)
    for name, group in parsed.items():  # a source must exist before any run starts
        for run, source in group.start_from.items():
            source_group, _, source_run = str(source).partition("/")
            if source_run not in getattr(parsed.get(source_group), "runs", {}):
                raise ParamError(f"params.yaml: experiments.{name}.start_from.{run} must name a run of another "
                                 f"group as <group>/<run>, got {source!r}")
    return parsed


def experiment_name(group: Group, run: str) -> str:
    return f"{group.name}-{run}"


def exp_run_command(group: Group, run: str) -> list[str]:
    command = ["dvc", "exp", "run", "--temp", "--name", experiment_name(group, run)]
    for key, value in {**group.runs[run], **group.common}.items():
        command += ["--set-param", f"{key}={json.dumps(value)}"]  # JSON scalars are YAML scalars
    return command + list(group.stages)


def queue_command(group: Group, run: str) -> list[str]:
    command = exp_run_command(group, run)
    return command[:3] + ["--queue"] + command[4:]  # `dvc exp run --queue --name ...` instead of --temp


def source_name(group: Group, run: str) -> str | None:
    """The experiment name of the run that `run` starts from ("<group>/<run>" -> "<group>-<run>"), if any."""
    source = group.start_from.get(run)
    return source.replace("/", "-", 1) if source else None


def entry(group: Group, run: str) -> dict | None:
    """The overrides params.yaml now gives a run of the group (its own and the group's `set`); None if none."""
    return {**group.runs[run], **group.common} if run in group.runs else None


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
