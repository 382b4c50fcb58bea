"""The committed study travels: a fresh clone gets its outputs from the git-tracked DVC remote (no network, no
training), regenerates reports/ byte for byte, binds every collected run as the committed repository does, and judges a rerun whose
weights differ (as another CPU's would) figure by figure against the seed spread."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from textdiff.experiments import read_groups
from textdiff.report.groups import group_runs
from textdiff.reproduction import moved, reproduction
from tests.conftest import REPO

SPREAD = {"ar": {"perplexity": {"min": 40.0, "max": 44.0, "seeds": 3}, "accuracy": {"min": 0.30, "max": 0.31,
                                                                                     "seeds": 3}}}


def lock_with(md5s: dict[str, str]) -> dict:
    return {"stages": {f"train@{m}": {"outs": [{"path": f"models/{m}/model.safetensors", "md5": md5}]}
                       for m, md5 in md5s.items()}}


def test_same_weights_and_figures_are_bitwise_and_same():
    diff = {"ar.ppl_exact": {"old": 42.0, "new": 42.0}, "ar.acc": {"old": 0.3, "new": 0.3}}
    result = reproduction(lock_with({"ar": "a", "judge": "j"}), lock_with({"ar": "a", "judge": "j"}), diff, SPREAD)
    assert result["ar"]["weights"] == "bitwise" and result["judge"]["weights"] == "bitwise"
    assert moved(result) == []


def test_a_figure_that_moved_is_within_or_beyond_the_seed_spread():
    diff = {"ar.ppl_exact": {"old": 42.0, "new": 45.0}, "ar.acc": {"old": 0.30, "new": 0.33},
            "ar.judge_ppl": {"old": 80.0, "new": 81.0}}
    result = reproduction(lock_with({"ar": "a"}), lock_with({"ar": "b"}), diff, SPREAD)
    assert result["ar"]["weights"] == "other weights"
    ppl = result["ar"]["figures"]["ppl_exact"]
    assert (ppl["difference"], ppl["spread"], ppl["verdict"]) == (3.0, 4.0, "within")
    assert result["ar"]["figures"]["acc"]["verdict"] == "beyond"  # 0.03 against a spread of 0.01
    assert result["ar"]["figures"]["judge_ppl"]["verdict"] == "no seed spread"
    assert sorted(moved(result)) == [("ar", "acc", "beyond"), ("ar", "judge_ppl", "no seed spread"),
                                     ("ar", "ppl_exact", "within")]


def run(command, cwd, env, check=True):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert not check or result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def cached_outputs(lock: dict) -> dict[str, str]:
    """path -> md5 of every output dvc.lock keeps in DVC's cache (a cache: false output is in git)."""
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])
            if out["path"] not in tracked}


def test_the_git_tracked_remote_holds_every_cached_output_of_the_committed_lock():
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    outputs = cached_outputs(lock)
    assert "models/judge/model.safetensors" in outputs and "models/mdlm/model.safetensors" in outputs
    for path, md5 in outputs.items():
        stored = REPO / "artifacts" / "files" / "md5" / md5[:2] / md5[2:]
        assert stored.is_file(), f"{path} ({md5}) is not in artifacts/: run `dvc push` and commit artifacts/"
        assert hashlib.md5(stored.read_bytes()).hexdigest() == md5


@pytest.fixture(scope="module")
def restored_clone(tmp_path_factory):
    """A fresh clone of the committed repository, restored as README says (`make restore` is `dvc pull`)."""
    work = tmp_path_factory.mktemp("clone") / "repo"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(work / "src"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "t@example.com"}
    run(["git", "clone", "-q", str(REPO), str(work)], REPO, env)
    run(["dvc", "pull"], work, env)
    return work, env


def bindings(root: Path) -> dict[str, dict]:
    """By group: the collected runs the report shows for the study in root ("bound") and those it does not, with
    their reasons ("excluded")."""
    raw = yaml.safe_load((root / "params.yaml").read_text())
    defined = read_groups(root / "params.yaml")
    found = {}
    for path in sorted((root / "eval" / "experiments").glob("*.json")):
        runs = group_runs(json.loads(path.read_text()), raw, defined, root)
        found[path.stem] = {"bound": sorted(runs["runs"]), "excluded": runs["excluded"]}
    return found


def bound_runs(work: Path) -> dict[str, list[str]]:
    """The runs the clone's report shows, by group; some must be (what once dropped every group on another
    machine). That they are the committed study's is shown by the report regenerating byte for byte."""
    shown = {name: group["bound"] for name, group in bindings(work).items()}
    assert any(shown.values())
    return shown


def test_a_fresh_clone_restores_the_study_and_regenerates_the_report_byte_for_byte(restored_clone):
    work, env = restored_clone
    assert "Data and pipelines are up to date" in run(["dvc", "status"], work, env).stdout
    bound_runs(work)
    run(["dvc", "repro", "--force", "--single-item", "report"], work, env)
    assert run(["git", "status", "--porcelain"], work, env).stdout == ""


def test_a_rerun_with_other_weights_keeps_every_group_and_is_judged_against_the_seed_spread(restored_clone):
    work, env = restored_clone
    shown = bound_runs(work)
    weights = work / "models" / "ar" / "model.safetensors"
    tensors = load_file(weights)
    generator = torch.Generator().manual_seed(0)
    tensors = {name: t + 0.02 * torch.randn(t.shape, generator=generator) if t.is_floating_point() else t
               for name, t in tensors.items()}
    weights.unlink()  # DVC checks outputs out read-only
    save_file(tensors, weights)
    run(["dvc", "commit", "--force", "train@ar"], work, env)  # as if train@ar had written these weights
    ran = run(["dvc", "repro"], work, env).stdout
    assert "Running stage 'evaluate@ar'" in ran and "Running stage 'train@ar'" not in ran
    assert bound_runs(work) == shown  # the model's weights are no group's evidence: every bound run is still shown
    verdict = run([sys.executable, "stages/reproduce.py"], work, env, check=False)
    assert verdict.returncode in (0, 1), verdict.stderr
    rows = [line.split(" | ") for line in verdict.stdout.splitlines() if line.startswith("| ar |")]
    assert rows and all(row[1] == "other weights" for row in rows)
    assert {row[-1].rstrip(" |") for row in rows} <= {"within", "beyond", "same"}
    assert any(row[-1].rstrip(" |") in ("within", "beyond") for row in rows)  # a figure moved, and was judged
    others = [line for line in verdict.stdout.splitlines() if line.startswith(("| mdlm |", "| judge |"))]
    assert others and all("| bitwise |" in line for line in others)
    assert all(line.endswith("| same |") for line in others if "| mdlm |" in line)
