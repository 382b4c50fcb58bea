"""Integration: the real dvc.yaml on micro params in a throw-away git repo."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from textdiff.models import model_names
from tests.conftest import REPO, micro_params_dict


def run(command, cwd, env):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    shared = REPO.parent / "shared" / "data" / "tinystories"
    if not shared.is_dir():
        pytest.skip(f"offline TinyStories copy not found at {shared}")
    work = tmp_path_factory.mktemp("study")
    for name in ("dvc.yaml", "stages", "src", ".dvc", ".gitignore", ".dvcignore"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / name)
    for local in (".dvc/cache", ".dvc/tmp", ".dvc/config.local"):
        shutil.rmtree(work / local, ignore_errors=True)
    (work / "params.yaml").write_text(yaml.safe_dump(micro_params_dict(), sort_keys=False))
    (work / "eval" / "experiments").mkdir(parents=True)
    (work / "eval" / "experiments" / "sdd_variants.json").write_text(  # no variant experiment run yet
        '{"group": "sdd_variants", "models": ["sdd"], "runs": {}, "command": "", "not_run": []}')
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "TINYSTORIES_DIR": str(shared),
           "PYTHONPATH": str(work / "src"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "t@example.com"}
    run(["git", "init", "-q"], work, env)
    run(["git", "add", "-A"], work, env)
    run(["git", "commit", "-qm", "micro study"], work, env)
    first = run(["dvc", "repro"], work, env)
    run(["git", "add", "-A"], work, env)
    run(["git", "commit", "-qm", "ran"], work, env)
    return work, env, first


def test_repro_runs_every_stage_and_writes_the_report(study):
    work, _, first = study
    assert stages_run(first) == {"check_params", "prepare", "tokenizer", "pack", "judge", "report",
                                 *(f"{stage}@{name}" for stage in ("train", "evaluate") for name in model_names())}
    report = (work / "reports" / "report.md").read_text()
    assert "| AR |" in report and "| MDLM | ≤ " in report and "denoising cross-entropy" in report
    for plot in ("training_loss.png", "judge_perplexity_vs_entropy.png", "quality_vs_time.png"):
        assert (work / "reports" / plot).read_bytes()[:4] == b"\x89PNG"
    assert "| validation text |" in report and "writes best" in report


def test_no_change_repro_runs_nothing(study):
    work, env, _ = study
    output = run(["dvc", "repro"], work, env)
    assert stages_run(output) == set() and "up to date" in output


def test_lock_lists_k_and_sdd_noise_only_for_sdd(study):
    work, _, _ = study
    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    for stage in ("train@ar", "train@mdlm"):
        keys = lock[stage]["params"]["params.yaml"]
        assert "k" not in keys and "sdd" not in keys, keys
    assert {"k", "sdd"} <= set(lock["train@sdd"]["params"]["params.yaml"])


def test_sdd_variant_runs_as_an_experiment_that_reaches_only_the_report(study):
    work, env, _ = study
    output = run([sys.executable, "stages/experiments.py", "sdd_variants", "swap-uniform"], work, env)
    # check_params reruns on any params change (in a second; its output is unchanged, so it reruns nothing else)
    assert stages_run(output) == {"check_params", "train@sdd", "evaluate@sdd"}
    status = run(["git", "status", "--porcelain"], work, env)
    # The workspace is left as it was, but for the collected group and, as swap-uniform is a run others start from,
    # its experiment kept for other clones: the bundle, and its trained model in the study's remote.
    assert status.split() == ["M", "eval/experiments/sdd_variants.json", "??", "artifacts/"], status
    assert (work / "artifacts" / "experiments" / "sdd_variants-swap-uniform.bundle").exists()
    assert any((work / "artifacts" / "files").rglob("*"))
    collected = json.loads((work / "eval" / "experiments" / "sdd_variants.json").read_text())
    variant = collected["runs"]["swap-uniform"]
    assert collected["models"] == ["sdd"] and set(variant["models"]) == {"sdd"}
    assert set(variant["stage_seconds"]) == {"train@sdd", "evaluate@sdd"}  # the stages the run reproduced
    assert "k1" in collected["not_run"]
    exp_params = yaml.safe_load(run(["git", "show", f"{variant['experiment_commit']}:params.yaml"], work, env))
    assert exp_params["sdd"]["index_swap"] == "uniform" and exp_params["sdd"]["shuffle_slots"] is True
    assert exp_params["sample"]["sdd"]["sweep"] is False
    assert variant["models"]["sdd"]["metrics"]["diagnostics"]["by_t_bucket"] and variant["models"]["sdd"]["samples"]
    # What it ran, read from its experiment commit: overrides against its baseline, code, data and judge hashes.
    assert variant["overrides"] == {"sdd.index_swap": "uniform", "sdd.shuffle_slots": True}
    assert variant["set"] == {"sample.sdd.sweep": False} and variant["params"]["sdd.index_swap"] == "uniform"
    assert "src/textdiff/models/sdd.py" in variant["code"]
    assert not any(path.startswith("src/textdiff/report") for path in variant["code"])  # rendering binds nothing
    assert set(variant["judge"]) == {"models/judge/model.safetensors"} and "data/packed/train.npy" in variant["data"]
    assert stages_run(run(["dvc", "repro"], work, env)) == {"report"}
    report = (work / "reports" / "report.md").read_text()
    assert "| swap-uniform |" in report and "Collected but not shown" not in report, report[report.find("Collected"):][:600]

    # Its entry edited after it ran: the label stays what it ran, and the report leaves it out, saying why.
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["experiments"]["sdd_variants"]["runs"]["swap-uniform"] = {"sdd.index_swap": "probability"}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        run([sys.executable, "stages/experiments.py", "sdd_variants", "--collect-only"], work, env)
        recollected = json.loads((work / "eval" / "experiments" / "sdd_variants.json").read_text())
        assert recollected["runs"]["swap-uniform"]["overrides"] == variant["overrides"]
        run(["dvc", "repro"], work, env)
        report = (work / "reports" / "report.md").read_text()
        assert "| swap-uniform |" not in report
        assert "- swap-uniform: params.yaml now sets sdd.index_swap=probability" in report
    finally:
        (work / "params.yaml").write_text(yaml.safe_dump(micro_params_dict(), sort_keys=False))
        run([sys.executable, "stages/experiments.py", "sdd_variants", "--collect-only"], work, env)
        run(["dvc", "repro"], work, env)


def test_changing_k_reruns_exactly_sdd_and_the_report(study):
    work, env, _ = study
    output = run(["dvc", "exp", "run", "-S", "k=4"], work, env)
    assert stages_run(output) == {"check_params", "train@sdd", "evaluate@sdd", "report"}
    # dvc exp show lists the headline figures only: a few per model, each perplexity named by its kind.
    header = run(["dvc", "exp", "show", "--csv"], work, env).splitlines()[0].split(",")
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], work, env))
    columns = [f"{model}.{key}" for files in metrics.values() for data in files["data"].values()
               for model, figures in data["data"].items() for key in figures]
    assert {"ar.ppl_exact", "mdlm.ppl_bound", "sdd.ppl_dce"} <= set(columns) and len(columns) <= 20, columns
    assert set(columns) <= set(header) and not any("wall_s" in column or "gen_ms" in column for column in header)


def test_bad_param_fails_in_one_line_before_any_work(study):
    work, env, _ = study
    env = {**env}
    broken = micro_params_dict()
    broken["k"] = 0
    (work / "params.yaml").write_text(yaml.safe_dump(broken, sort_keys=False))
    result = subprocess.run([sys.executable, "stages/train.py", "sdd"], cwd=work, env=env, capture_output=True,
                            text=True, timeout=120)
    (work / "params.yaml").write_text(yaml.safe_dump(micro_params_dict(), sort_keys=False))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: params.yaml: k must be an integer")


def test_groups_run_through_one_dvc_queue_two_at_a_time_each_on_its_share_of_the_cores(study):
    work, env, _ = study
    params = micro_params_dict()
    params["experiments"]["queued"] = {"stages": ["evaluate@ar"], "set": {"sample.ar.sweep": False},
                                       "runs": {"t07": {"sample.ar.temperature": 0.7},
                                                "t09": {"sample.ar.temperature": 0.9}}}
    params["experiments"]["queued_too"] = {"stages": ["evaluate@ar"], "set": {"sample.ar.sweep": False},
                                           "runs": {"t08": {"sample.ar.temperature": 0.8},
                                                    "t06": {"sample.ar.temperature": 0.6}}}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-qam", "two queued groups"], work, env)
    try:
        # Every run of `queued` and one of `queued_too`, in one queue.
        run([sys.executable, "stages/experiments.py", "queued", "queued_too", "t08", "--jobs", "2"], work, env)
        collected = json.loads((work / "eval" / "experiments" / "queued.json").read_text())
        too = json.loads((work / "eval" / "experiments" / "queued_too.json").read_text())
        assert set(collected["runs"]) == {"t07", "t09"} and set(too["runs"]) == {"t08"} and too["not_run"] == ["t06"]
        session = collected["sessions"][-1]
        assert session["jobs"] == 2 and session["queued_with"] == ["queued_too"]
        assert too["sessions"][-1]["queued_with"] == ["queued"] and too["sessions"][-1]["runs"] == ["t08"]
        threads = max(1, (os.cpu_count() or 1) // 2)
        assert session["threads_per_job"] == threads
        for name, run_ in collected["runs"].items():  # each job ran its stages on its share of the cores
            assert run_["models"]["ar"]["metrics"]["gen_threads"] == threads, name
        assert not list((work / ".dvc" / "tmp" / "exps" / "standalone").glob("*"))
        # The report shows a group it has no section for, generically.
        run(["dvc", "repro"], work, env)
        report = (work / "reports" / "report.md").read_text()
        assert "## Experiment group `queued`" in report and "| t07 |" in report
    finally:
        (work / "params.yaml").write_text(yaml.safe_dump(micro_params_dict(), sort_keys=False))
        (work / "eval" / "experiments" / "queued.json").unlink(missing_ok=True)
        (work / "eval" / "experiments" / "queued_too.json").unlink(missing_ok=True)
        run(["git", "commit", "-qam", "back", "--allow-empty"], work, env)


def test_a_run_that_starts_from_another_groups_run_reuses_its_trained_model(study):
    """DVC's run cache skips our training stages (their `cache: false` outputs, treeverse/dvc#8738), so a
    sampler-only run on a longer-trained model would retrain it; with start_from it evaluates that run's model."""
    work, env, _ = study
    params = micro_params_dict()
    params["experiments"]["trained"] = {"stages": ["evaluate@ar"], "set": {"sample.ar.sweep": False},
                                        "runs": {"x2": {"train.steps_factor.ar": 2}}}
    params["experiments"]["reused"] = {"stages": ["evaluate@ar"], "set": {"sample.ar.sweep": False},
                                       "runs": {"x2-t07": {"train.steps_factor.ar": 2, "sample.ar.temperature": 0.7}},
                                       "start_from": {"x2-t07": "trained/x2"}}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-qam", "a run that starts from another"], work, env)
    try:
        run([sys.executable, "stages/experiments.py", "trained", "--jobs", "1"], work, env)
        output = run([sys.executable, "stages/experiments.py", "reused", "--jobs", "1"], work, env)
        started = next(line for line in output.splitlines() if line.startswith("reused / x2-t07 starts from trained/x2"))
        assert "train@ar" in started and "its code has changed" not in started
        # The workspace is put back as it was.
        assert run(["git", "diff", "--name-only", "HEAD", "--", "dvc.lock", "models", "timings"], work, env) == ""
        trained = json.loads((work / "eval" / "experiments" / "trained.json").read_text())["runs"]["x2"]
        reused = json.loads((work / "eval" / "experiments" / "reused.json").read_text())["runs"]["x2-t07"]
        assert set(reused["stage_seconds"]) == {"evaluate@ar"}  # it trained nothing
        assert reused["started_from"] == {"run": "trained/x2", "commit": trained["experiment_commit"]}
        lock = {name: yaml.safe_load(run(["git", "show", f"{r['experiment_commit']}:dvc.lock"], work, env))
                for name, r in (("trained", trained), ("reused", reused))}
        assert lock["reused"]["stages"]["train@ar"] == lock["trained"]["stages"]["train@ar"]  # the same weights
        assert reused["models"]["ar"]["metrics"]["train_steps"] == 2 * params["scales"][params["scale"]]["steps"]
    finally:
        (work / "params.yaml").write_text(yaml.safe_dump(micro_params_dict(), sort_keys=False))
        for name in ("trained", "reused"):
            (work / "eval" / "experiments" / f"{name}.json").unlink(missing_ok=True)
        run(["git", "commit", "-qam", "back", "--allow-empty"], work, env)


def test_ctrl_c_during_a_rerun_keeps_the_earlier_experiment_and_leaves_nothing_behind(study):
    from textdiff.experiments import newest_experiment
    work, env, _ = study
    name = "sdd_variants-k2"
    run([sys.executable, "stages/experiments.py", "sdd_variants", "k2"], work, env)
    earlier = newest_experiment(name, work)
    # The rerun trains 200 times longer (seconds, not milliseconds), so that Ctrl-C lands inside its training
    # even on a busy machine: at the micro size a rerun once finished before the signal arrived.
    slow = micro_params_dict()
    slow["experiments"]["sdd_variants"]["runs"]["k2"] = {"k": 2, "train.steps_factor.sdd": 200}
    (work / "params.yaml").write_text(yaml.safe_dump(slow, sort_keys=False))
    run(["git", "commit", "-qam", "a rerun long enough to interrupt"], work, env)
    try:
        interrupt_a_rerun(work, env, name, earlier)
    finally:
        (work / "params.yaml").write_text(yaml.safe_dump(micro_params_dict(), sort_keys=False))
        run(["git", "commit", "-qam", "back", "--allow-empty"], work, env)


def interrupt_a_rerun(work, env, name, earlier):
    import signal
    import threading

    from textdiff.experiments import newest_experiment
    # Ctrl-C's default action restored in the child: a shell starts its background jobs (`pytest &`) with SIGINT
    # ignored, which every child inherits and Python then keeps, so the run would finish as if never interrupted.
    process = subprocess.Popen([sys.executable, "stages/experiments.py", "sdd_variants", "k2"], cwd=work, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Wait for the run's training progress bar on stderr: from then on the run is inside its stages. (Its
    # checkpoints are no signal: a run removes them at the end.)
    chunks, training = [], threading.Event()

    def read_stderr():
        for chunk in iter(lambda: process.stderr.read1(4096), b""):
            chunks.append(chunk)
            if b"train sdd" in b"".join(chunks[-2:]):
                training.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    standalone = work / ".dvc" / "tmp" / "exps" / "standalone"
    assert training.wait(timeout=300), b"".join(chunks).decode()
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    process.wait(timeout=120)
    reader.join(timeout=30)
    stderr = b"".join(chunks).decode()
    assert process.returncode != 0 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: "), stderr
    said = [line for line in stderr.splitlines() if line.startswith("interrupted: ")]
    assert len(said) == len(set(said)), stderr  # the stage's line and the runner's own, never one line twice
    assert newest_experiment(name, work) == earlier and newest_experiment(name + "-previous", work) is None
    assert not (standalone.is_dir() and any(standalone.iterdir()))


def test_a_yaml_syntax_error_is_one_line_for_the_experiments_runner(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 0\nexperiments: {seeds: [\n")
    result = subprocess.run([sys.executable, str(REPO / "stages" / "experiments.py")], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    # Issue 37, item 7: the line is named (the error once said only "while parsing a flow sequence")
    assert result.stderr.startswith("error: params.yaml: not valid YAML at line 3, column 1 (expected the node content"), \
        result.stderr


def test_an_unknown_key_or_a_bad_scale_stops_dvc_before_any_stage_removes_its_outputs(study):
    work, env, _ = study
    prepared = sorted(p.name for p in (work / "data" / "prepared").iterdir())
    for line in ("sed: 3\n", None):
        text = yaml.safe_dump(micro_params_dict(), sort_keys=False)
        text = text + line if line else text.replace("scale: cpu", "scale: nope")
        (work / "params.yaml").write_text(text)
        result = subprocess.run(["dvc", "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode != 0
        assert re.search(r"error: params.yaml: (unknown key sed|scale must name one of scales \(cpu, seed\))",
                         result.stdout + result.stderr)
        assert stages_run(result.stdout) == {"check_params"}
        assert sorted(p.name for p in (work / "data" / "prepared").iterdir()) == prepared
        # "nothing was run or removed" holds for check_params' own output too (issue 37, item 7: it is `persist`)
        assert (work / "data" / "params_checked.txt").is_file()
    (work / "params.yaml").write_text(yaml.safe_dump(micro_params_dict(), sort_keys=False))
    run(["dvc", "repro"], work, env)


def test_a_typo_inside_an_experiment_group_costs_no_report_output(study):
    # Issue 37, item 1: a typo in a run of a group passed check_params (which reads the study's keys, not the
    # groups'), so the report stage started, DVC removed its outputs (cache: false: only git could bring them
    # back), and report.py refused the key only then. Its outputs are `persist` now, and it replaces them whole.
    work, env, _ = study
    reports = {p.name: p.read_bytes() for p in (work / "reports").iterdir() if p.is_file()}
    broken = micro_params_dict()
    broken["experiments"]["seeds"]["runs"]["seed1"] = {"seed": 1, "sample.ar.temprature": 0.5}
    (work / "params.yaml").write_text(yaml.safe_dump(broken, sort_keys=False))
    try:
        for command in (["dvc", "repro"], ["dvc", "repro", "--single-item", "report"]):
            result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
            assert result.returncode != 0
            assert "sets sample.ar.temprature, which is not a key of params.yaml" in result.stdout + result.stderr
            assert {p.name: p.read_bytes() for p in (work / "reports").iterdir() if p.is_file()} == reports
    finally:
        (work / "params.yaml").write_text(yaml.safe_dump(micro_params_dict(), sort_keys=False))
    run(["dvc", "repro"], work, env)
