"""Experiment groups: named sets of params overrides, each run as a DVC experiment outside `dvc repro`.

params.yaml's `experiments` maps a group name to
    stages: the stages each run reproduces (their upstream stages come along when their inputs change);
    set:    overrides common to every run of the group (optional);
    runs:   run name -> its own params overrides (dotted keys, as `dvc exp run -S` takes them);
    start_from: run name -> "<group>/<run>" whose trained models it reuses (optional; see seeded_workspace).
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
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    start_from: dict[str, str] = field(default_factory=dict)  # run -> "<group>/<run>" it starts from

    @property
    def models(self) -> tuple[str, ...]:
        """The models whose evaluation the group's runs produce (all of them if it reproduces the report)."""
        evaluated = tuple(stage.split("@", 1)[1] for stage in self.stages if stage.startswith("evaluate@"))
        return model_names() if "report" in self.stages or not evaluated else evaluated


def _name_ok(name) -> bool:
    return isinstance(name, str) and bool(name) and name.replace("-", "").replace("_", "").isalnum()


def read_yaml(path) -> dict:
    """params.yaml as read; a missing or malformed file is a one-line ParamError."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamError(f"{path}: file not found (run from the repository root)") from None
    except yaml.YAMLError as error:
        raise ParamError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None


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
            if not isinstance(overrides, dict) or not overrides:
                raise ParamError(f"params.yaml: {key}.runs.{run} must be a non-empty mapping, got {overrides!r}")
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


def source_name(group: Group, run: str) -> str | None:
    """The experiment name of the run that `run` starts from ("<group>/<run>" -> "<group>-<run>"), if any."""
    source = group.start_from.get(run)
    return source.replace("/", "-", 1) if source else None


def source_experiment(group: Group, run: str, cwd=".", required: bool = True) -> str | None:
    """The newest experiment commit of the run whose trained models `run` reuses (None: it starts from the
    workspace). A required source with no experiment here is a one-line error, raised before anything is queued."""
    name = source_name(group, run)
    commit = newest_experiment(name, cwd) if name else None
    if name and commit is None and required:
        raise ParamError(f"{group.name} / {run} starts from {group.start_from[run]}, which has no experiment here: "
                         "run it first")
    return commit


def _git_bytes(commit: str, path: str, cwd=".") -> bytes | None:
    """A file as the commit holds it; None where git does not hold it (an output in DVC's cache)."""
    shown = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=cwd, capture_output=True)
    return shown.stdout if shown.returncode == 0 else None


@contextmanager
def seeded_workspace(source: str | None, stages, cwd="."):
    """The workspace as if the source experiment's runs of the stages that `stages` rest on had been made here:
    the dvc.lock entries of those it ran differently, and their outputs that git holds, taken from its commit and
    put back on leaving. A run queued or started inside finds those stages up to date, and DVC checks their
    outputs out of its cache instead of rerunning them. DVC's run cache would do this by itself, but it skips
    every stage with a `cache: false` output (treeverse/dvc#8738), as each training stage here has. A stage whose
    code has changed since still reruns: DVC compares the entry's dependencies with the files. Yields each stage
    taken, by name, with the code files it ran on that differ from this workspace's (which will make it rerun)."""
    if source is None:
        yield {}
        return
    root = Path(cwd)
    saved = {root / "dvc.lock": (root / "dvc.lock").read_bytes()}  # path -> its bytes before (None: absent)
    here = yaml.safe_load(saved[root / "dvc.lock"])
    there = yaml.safe_load(_git_bytes(source, "dvc.lock", cwd))
    taken = sorted(name for name in upstream_stages(there, stages)
                   if there["stages"][name] != here["stages"].get(name))
    current = {dep["path"]: dep.get("md5") for stage in here["stages"].values() for dep in stage.get("deps", [])}
    changed = {name: [dep["path"] for dep in there["stages"][name].get("deps", [])
                      if dep["path"].startswith(("src/", "stages/"))
                      and current.get(dep["path"], dep.get("md5")) != dep.get("md5")]
               for name in taken}
    try:
        for name in taken:
            for out in there["stages"][name].get("outs", []):
                content = _git_bytes(source, out["path"], cwd)
                if content is not None:
                    path = root / out["path"]
                    saved.setdefault(path, path.read_bytes() if path.exists() else None)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
            here["stages"][name] = there["stages"][name]
        (root / "dvc.lock").write_text(yaml.safe_dump(here, sort_keys=False))
        yield changed
    finally:
        for path, content in saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)


PREVIOUS = "-previous"  # a run's earlier experiment is kept under <name>-previous until its rerun succeeds
STANDALONE = Path(".dvc") / "tmp" / "exps" / "standalone"  # where DVC copies the repository for a --temp run


def experiment_env(threads: int | None = None) -> dict:
    """The environment of a run's stages. The experiment runs in a temporary copy of the repository; a relative
    PYTHONPATH makes its stages import that copy's library rather than an editable install of this workspace,
    which may change meanwhile. threads: torch's threads per run (OMP_NUM_THREADS), so that parallel runs
    share the cores instead of oversubscribing them."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ("src", os.environ.get("PYTHONPATH"))))}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _dvc(*args: str, cwd=".") -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], cwd=cwd, capture_output=True, text=True)


def set_aside(names: list[str], cwd=".") -> list[str]:
    """Renames each name's earlier experiment to <name>-previous (an experiment name is unique per baseline):
    it is removed only once its rerun succeeds (settle). Returns the names set aside."""
    aside = []
    for name in names:
        if newest_experiment(name + PREVIOUS, cwd):  # left by an interrupted rerun: the older one goes
            _dvc("exp", "remove", name + PREVIOUS, cwd=cwd)
        if newest_experiment(name, cwd) and _dvc("exp", "rename", name, name + PREVIOUS, cwd=cwd).returncode == 0:
            aside.append(name)
    return aside


def settle(aside: list[str], succeeded: set[str], cwd=".") -> None:
    """After the reruns: the earlier experiment of each name that succeeded is removed; the others get their
    earlier experiment back under its own name (so what eval/experiments/ names is still held by a ref)."""
    for name in aside:
        if name in succeeded:
            _dvc("exp", "remove", name + PREVIOUS, cwd=cwd)
        else:
            if newest_experiment(name, cwd):
                _dvc("exp", "remove", name, cwd=cwd)
            _dvc("exp", "rename", name + PREVIOUS, name, cwd=cwd)


def standalone_copies(cwd=".") -> set[Path]:
    folder = Path(cwd) / STANDALONE
    return set(folder.iterdir()) if folder.is_dir() else set()


def run_experiment(group: Group, run: str, cwd=".") -> bool:
    """Runs one run of the group (`dvc exp run --temp`); False (and its failure printed) if it failed. Its earlier
    experiment is removed only if it succeeds; Ctrl-C leaves the earlier one and no temporary copy behind."""
    name = experiment_name(group, run)
    source = source_experiment(group, run, cwd)
    aside, before = set_aside([name], cwd), standalone_copies(cwd)
    succeeded = False
    try:
        with seeded_workspace(source, group.stages, cwd):
            succeeded = subprocess.run(exp_run_command(group, run), cwd=cwd, env=experiment_env()).returncode == 0
    finally:
        for leftover in standalone_copies(cwd) - before:  # an interrupted --temp run leaves its copy
            shutil.rmtree(leftover, ignore_errors=True)
        settle(aside, {name} if succeeded else set(), cwd)
    return succeeded


def queue_command(group: Group, run: str) -> list[str]:
    command = exp_run_command(group, run)
    return command[:3] + ["--queue"] + command[4:]  # `dvc exp run --queue --name ...` instead of --temp


def run_in_queue(selection: list[tuple[Group, str]], jobs: int, cwd=".", poll_s: float = 10.0) -> list[tuple[Group, str]]:
    """Runs the (group, run) pairs through DVC's own queue, in their order, `jobs` at a time (`dvc queue start
    --jobs`), each on cores // jobs torch threads; returns the pairs that failed. Runs of several groups share one
    queue, so no core waits for a group's last run while another group's runs wait. As with run_experiment, an
    earlier experiment is removed only where its rerun succeeded, and Ctrl-C stops the queue's workers."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    names = {experiment_name(group, run): (group, run) for group, run in selection}
    for group, run in selection:  # a queued run is set up when queued, before any run of its queue has run
        if source_name(group, run) in names:
            raise ParamError(f"{group.name} / {run} starts from {group.start_from[run]}, which is in the same queue: "
                             "queue it after its source has run")
    sources = {name: source_experiment(group, run, cwd) for name, (group, run) in names.items()}
    aside = set_aside(list(names), cwd)
    before = {name: newest_experiment(name, cwd) for name in names}
    try:
        for group, run in selection:
            with seeded_workspace(sources[experiment_name(group, run)], group.stages, cwd) as taken:
                queued = subprocess.run(queue_command(group, run), cwd=cwd, env=experiment_env(threads),
                                        capture_output=True, text=True)
            if taken:
                stale = sorted({path for paths in taken.values() for path in paths})
                print(f"{group.name} / {run} starts from {group.start_from[run]}: {', '.join(taken)}"
                      + (f"; its code has changed since ({', '.join(stale)}), so DVC reruns what rests on it"
                         if stale else ""), flush=True)
            if queued.returncode:
                raise ParamError(f"dvc could not queue {group.name} / {run}: {queued.stderr.strip().splitlines()[-1]}")
        def start_workers(count: int):
            """Starts `count` more workers. (`dvc queue start --jobs n` skips only the workers that answer celery's
            broadcast, and a worker busy with a run cannot: it runs it in its only process. So with every worker
            busy it starts n new ones, and asking it for `jobs` again once ran three runs on two cores.)"""
            returncode, errors = run_detaching(["dvc", "queue", "start", "--jobs", str(count)], cwd,
                                               experiment_env(threads))
            if returncode:
                raise ParamError(f"dvc queue start failed: {errors}")
        start_workers(jobs)
        print(f"queued {len(selection)} runs; {jobs} at a time on {threads} torch thread(s) each", flush=True)
        wait_for_queue(jobs, lambda: queue_states(cwd), start_workers, poll_s)
    except KeyboardInterrupt:
        _dvc("queue", "kill", *names, cwd=cwd)
        _dvc("queue", "remove", "--queued", cwd=cwd)
        raise
    finally:
        _dvc("queue", "stop", cwd=cwd)
        # Whatever stopped the wait, a run that made its experiment keeps it (and its earlier one goes).
        succeeded = {name for name in names if newest_experiment(name, cwd) not in (None, before[name])}
        settle(aside, succeeded, cwd)
    return [pair for name, pair in names.items() if name not in succeeded]


def run_detaching(command: list[str], cwd, env) -> tuple[int, str]:
    """(exit status, stderr) of a command that leaves detached children behind, as `dvc queue start` leaves its
    workers. They inherit its stdout and stderr, so these go to a file, not a pipe: reading a pipe to its end
    waits for the last child to close it (here, for the queue to empty: the runner once sat that way for most of an
    hour, unable to restart a worker that had left)."""
    with tempfile.TemporaryFile() as errors:
        returncode = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors).returncode
        errors.seek(0)
        return returncode, errors.read().decode(errors="replace").strip()


RESTART_AFTER_S = 120.0  # a worker short for this long, with runs still queued, is started again


def wait_for_queue(jobs: int, states, start_workers, poll_s: float, clock=time.monotonic, sleep=time.sleep) -> None:
    """Waits until the queue has no run queued or running. DVC's workers can stop with runs still queued
    (treeverse/dvc#10562: one finished its run and left while the other's ran on for an hour), so where fewer
    than `jobs` run while some wait, for RESTART_AFTER_S (a started worker takes a while to show its run as
    running), the missing workers are started again."""
    short_since = None
    while True:
        current = states().values()
        running, queued = sum(s == "Running" for s in current), sum(s == "Queued" for s in current)
        if not running and not queued:
            return
        if queued and running < jobs:
            short_since = clock() if short_since is None else short_since
            if clock() - short_since >= RESTART_AFTER_S:
                start_workers(min(jobs - running, queued))  # the missing workers only
                short_since = None
        else:
            short_since = None
        sleep(poll_s)


def collected_sessions(collected: dict) -> list[dict]:
    """A collected group's sessions (files from before `sessions` hold the last one as `session`)."""
    return collected.get("sessions") or ([collected["session"]] if collected.get("session") else [])


def sessions_after(previous: list[dict], session: dict | None) -> list[dict]:
    """The sessions behind a group's collected runs: a new session's runs replace their earlier experiments, so
    an earlier session is kept only while some run it made has not been rerun since (a session that made none
    goes)."""
    sessions = previous + ([session] if session else [])
    return [s for i, s in enumerate(sessions)
            if set(s["runs"]) - {run for later in sessions[i + 1:] for run in later["runs"]}]


def queue_states(cwd=".") -> dict[str, str]:
    """`dvc queue status` as experiment name -> state (Queued, Running, Success, Failed)."""
    states = {}
    for line in _dvc("queue", "status", cwd=cwd).stdout.splitlines():
        words = line.split()
        for state in ("Queued", "Running", "Success", "Failed"):
            if state in words:
                states[words[1] if len(words) > 2 else words[0]] = state
    return states


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


def csv_value(text: str):
    """A CSV cell as collected: a number where it is one (None where empty), else the text (a sweep's model)."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def entry(group: Group, run: str) -> dict | None:
    """The overrides params.yaml now gives a run of the group (its own and the group's `set`); None if none."""
    return {**group.runs[run], **group.common} if run in group.runs else None


def reproduced_stage_seconds(lock: dict, earlier_locks: list[dict], read) -> dict[str, float]:
    """The wall time of each stage a run reproduced: those whose dvc.lock entry differs from that of its baseline
    and of the experiment it started from (earlier_locks). read(path) gives a file of the run's commit. Not the
    timings files themselves: they hold a wall time to 0.01 s, which a short stage can take twice."""
    return {name: read(f"timings/{name}.json")["wall_s"] for name, entry in lock["stages"].items()
            if all(earlier["stages"].get(name) != entry for earlier in earlier_locks)
            and any(out["path"] == f"timings/{name}.json" for out in entry.get("outs", []))}


def collect(group: Group, out_dir=COLLECTED_DIR, cwd=".", session: dict | None = None) -> dict:
    """Each run's experiment commit, what it ran (params, overrides, code, data and judge hashes) and the
    metrics and first samples of the group's models, written to <out_dir>/<group>.json. session: how the runs
    just made were run ({"runs", "jobs", "threads_per_job", "cores", "wall_s", and "queued_with": the other
    groups that shared its queue}), added to `sessions`, where it stays while a run it made is not rerun."""
    out_path = Path(cwd) / out_dir / f"{group.name}.json"
    # A run with no experiment here keeps what was collected for it before (from another clone, or before runs
    # recorded what they ran with): the report binds it to the study or lists it as excluded, saying why.
    previous = json.loads(out_path.read_text()) if out_path.exists() else {}
    earlier = previous.get("runs", {})
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
                return [{key: csv_value(value) for key, value in row.items()}
                        for row in csv.DictReader(io.StringIO(text))]
            return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        def read_optional(path: str):
            """None for a file the experiment commit lacks (runs from before it was written)."""
            try:
                return read(path)
            except subprocess.CalledProcessError:
                return None
        baseline = _git("rev-parse", f"{rev}^", cwd=cwd).strip()
        source = source_experiment(group, run, cwd, required=False)  # its newest experiment, as when the run was queued

        lock = read("dvc.lock")
        earlier_locks = [yaml.safe_load(text) for text in
                         (_git_bytes(commit, "dvc.lock", cwd) for commit in filter(None, (baseline, source))) if text]
        ran = study_params(read("params.yaml"))
        overrides = changed_keys(study_params(read("params.yaml", baseline)), ran)
        collected[run] = {
            "overrides": {key: value for key, value in overrides.items() if key not in group.common},
            "set": {key: value for key, value in overrides.items() if key in group.common},
            "experiment": experiment_name(group, run),
            "experiment_commit": rev,
            "baseline_commit": baseline,
            **({"started_from": {"run": group.start_from[run], "commit": source}} if source else {}),
            "params": ran,
            **study_hashes(lock, group.stages),
            "stage_seconds": reproduced_stage_seconds(lock, earlier_locks, read),
            "models": {model: {"metrics": read(f"eval/{model}/metrics.json"),
                               "samples": read(f"eval/{model}/samples.json")["samples"][:SAMPLES_KEPT],
                               "learning_curve": read_optional(f"models/{model}/learning_curve.csv"),
                               "sweep": read_optional(f"eval/{model}/sweep.csv")}
                       for model in group.models},
        }
    result = {"group": group.name, "command": f"{COMMAND} {group.name}", "stages": list(group.stages),
              "models": list(group.models), "runs": collected,
              "not_run": [run for run in group.runs if run not in collected]}
    result["sessions"] = sessions_after(collected_sessions(previous), session)
    write_json(out_path, result)
    return result
