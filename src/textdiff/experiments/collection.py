"""Collecting a group: each run's newest experiment commit, what it ran with and the figures of the group's models,
into eval/experiments/<group>.json, which the report reads like any other input."""
from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import yaml

from ..io import write_json
from .binding import study_hashes
from .groups import COMMAND, Group, changed_keys, experiment_name, study_params
from .runner import git_file, git_out, newest_experiment, source_experiment

COLLECTED_DIR = "eval/experiments"
SAMPLES_KEPT = 4


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


def csv_value(text: str):
    """A CSV cell as collected: a number where it is one (None where empty), else the text (a sweep's model)."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


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
            text = git_out("show", f"{commit}:{path}", cwd=cwd)
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
        baseline = git_out("rev-parse", f"{rev}^", cwd=cwd).strip()
        source = source_experiment(group, run, cwd, required=False)  # its newest experiment, as when the run was queued

        lock = read("dvc.lock")
        earlier_locks = [yaml.safe_load(text) for text in
                         (git_file(commit, "dvc.lock", cwd) for commit in filter(None, (baseline, source))) if text]
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
            "models": {model: ({"metrics": read(f"eval/{model}/metrics.json"),
                                "samples": read(f"eval/{model}/samples.json")["samples"][:SAMPLES_KEPT],
                                "sweep": read_optional(f"eval/{model}/sweep.csv")} if group.evaluates else
                               {"train_summary": read(f"models/{model}/train_summary.json")})
                               | {"learning_curve": read_optional(f"models/{model}/learning_curve.csv")}
                       for model in group.models},
        }
    result = {"group": group.name, "command": f"{COMMAND} {group.name}", "stages": list(group.stages),
              "models": list(group.models), "runs": collected,
              "not_run": [run for run in group.runs if run not in collected]}
    result["sessions"] = sessions_after(collected_sessions(previous), session)
    write_json(out_path, result)
    return result
