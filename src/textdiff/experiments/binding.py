"""What a collected run rests on (its code, packed data and judge, from its dvc.lock) and whether it is still
evidence for the current study: run_binding says why not, or nothing."""
from __future__ import annotations

from .runner import upstream_stages

JUDGE_WEIGHTS = "models/judge/model.safetensors"


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



def run_binding(run: dict, entry: dict | None, study: dict) -> list[str]:
    """Why a collected experiment run (experiments.collect) is not evidence for the current study; [] if it is.

    entry: the run's overrides as its group in params.yaml now states them (with the group's `set`), None if
    the group no longer has it. study: the current study's "params" (experiments.study_params) and the md5 of
    every file a run may rest on ("md5": path -> md5 or None). A run matches when it ran exactly the current
    params with its entry applied, and its code, packed data and judge are the current ones, byte for byte.
    """
    if "params" not in run:
        return ["it was collected before runs recorded what they ran with"]
    reasons = []
    ran = {**run["overrides"], **run["set"]}
    if entry is None:
        reasons.append("params.yaml no longer lists it")
    elif entry != ran:
        reasons.append(f"params.yaml now sets {_settings(entry)} for it, but it ran {_settings(ran)}")
    expected = {**study["params"], **ran}
    differing = sorted(key for key in expected.keys() | run["params"].keys()
                       if expected.get(key) != run["params"].get(key))
    if differing:
        reasons.append("it ran with other params: " + ", ".join(
            f"{key} = {run['params'].get(key)!r} (now {study['params'].get(key)!r})" for key in differing[:4])
            + (f" and {len(differing) - 4} more" if len(differing) > 4 else ""))
    code = sorted(path for path, md5 in run["code"].items() if study["md5"].get(path) != md5)
    if code:
        reasons.append(f"it ran other code ({', '.join(code[:3])}{' …' if len(code) > 3 else ''})")
    # A training-only run (its models carry learning curves, no evaluation) scored no samples: no judge behind it.
    judged = not run.get("models") or any("metrics" in model for model in run["models"].values())
    for kind, what in (("data", "it trained on other packed data"),
                       ("judge", "its samples were scored by another judge")):
        if kind == "judge" and not judged:
            continue
        if not run[kind] or any(study["md5"].get(path) != md5 for path, md5 in run[kind].items()):
            reasons.append(what)
    return reasons


def _settings(overrides: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in overrides.items()) or "nothing"
