import subprocess

import pytest
import yaml

from textdiff.cli import UsageError
from textdiff.errors import ParamError
from textdiff.experiments import (changed_keys, collected_sessions, exp_run_command, flatten, read_groups,
                                  reproduced_stage_seconds, seeded_workspace, sessions_after, study_hashes,
                                  study_params, upstream_stages)
from textdiff.models import model_names
from tests.conftest import REPO


def test_committed_groups_are_valid_params_overrides():
    groups = read_groups(REPO / "params.yaml")
    assert {"k1", "k2", "k4", "curriculum"} <= set(groups["sdd_variants"].runs)  # the seed's k claims are re-tested
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for group in groups.values():
        for overrides in [group.common, *group.runs.values()]:
            for key in overrides:
                node = raw
                for part in key.split("."):
                    assert part in node, f"{group.name}: {key} is not a key of params.yaml"
                    node = node[part]


def test_a_run_is_a_dvc_experiment_of_its_groups_stages_with_the_group_settings():
    group = read_groups(REPO / "params.yaml")["sdd_variants"]
    assert group.models == ("sdd",)
    command = exp_run_command(group, "swap-uniform")
    assert command[:6] == ["dvc", "exp", "run", "--temp", "--name", "sdd_variants-swap-uniform"]
    assert command[-1] == "evaluate@sdd"  # train@sdd and evaluate@sdd, nothing of AR or MDLM
    sets = [command[i + 1] for i, word in enumerate(command) if word == "--set-param"]
    assert sets == ['sdd.index_swap="uniform"', "sdd.shuffle_slots=true", "sample.sdd.sweep=false"]


def test_a_group_that_reproduces_the_report_collects_every_model(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0, "experiments": {"seeds": {"stages": ["report"], "runs": {"s1": {"seed": 1}}}}}))
    assert read_groups(path)["seeds"].models == model_names()


@pytest.mark.parametrize("groups", [None, {}, {"bad name!": {"stages": ["report"], "runs": {"a": {"k": 2}}}},
                                    {"g": {"stages": [], "runs": {"a": {"k": 2}}}},
                                    {"g": {"stages": ["report"], "runs": {"a": {}}}},
                                    {"g": {"stages": ["report"], "set": [1], "runs": {"a": {"k": 2}}}},
                                    {"g": {"stages": ["report"], "runs": {"bad name!": {"k": 2}}}},
                                    {"g": {"stages": ["report"], "runs": {"a": {"k": 2}}, "start_from": {"b": "g/a"}}},
                                    {"g": {"stages": ["report"], "runs": {"a": {"k": 2}}, "start_from": {"a": "h/a"}}},
                                    {"g": {"stages": ["report"], "runs": {"a": {"k": 2}}, "start_from": {"a": "g-a"}}}])
def test_bad_groups_are_one_line_errors(tmp_path, groups):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"k": 8, "experiments": groups}))
    with pytest.raises(ParamError, match="experiments") as error:
        read_groups(path)
    assert "\n" not in str(error.value)


def test_a_run_with_no_overrides_of_its_own_is_its_groups_set_alone(tmp_path):
    # A confirmation group's reference (recipe_reuse's `default`) trains at the group's regime with nothing else set;
    # without a `set` such a run would be the study itself, and stays refused (test_bad_groups_are_one_line_errors).
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"k": 8, "seed": 0, "experiments": {
        "g": {"stages": ["report"], "set": {"k": 4}, "runs": {"default": {}, "default-seed1": {"seed": 1}}}}}))
    group = read_groups(path)["g"]
    sets = [word for command in (exp_run_command(group, "default"), exp_run_command(group, "default-seed1"))
            for word in command if "=" in word]
    assert sets == ["k=4", "seed=1", "k=4"]
    assert read_groups(REPO / "params.yaml")["recipe_reuse"].runs["default"] == {}


def test_a_run_records_the_code_data_and_judge_of_the_stages_it_rests_on():
    def stage(deps, outs):
        return {"deps": [{"path": p, "md5": m} for p, m in deps], "outs": [{"path": p, "md5": m} for p, m in outs]}
    lock = {"stages": {
        "pack": stage([("src/textdiff/data.py", "d1")], [("data/packed/train.npy", "t1"), ("data/packed/stats.json", "s1")]),
        "judge": stage([("src/textdiff/judge.py", "j1"), ("data/packed/train.npy", "t1")],
                       [("models/judge/model.safetensors", "w1")]),
        "train@sdd": stage([("src/textdiff/models/sdd.py", "m1"), ("data/packed/train.npy", "t1")],
                           [("models/sdd/model.safetensors", "w2")]),
        "train@ar": stage([("src/textdiff/models/ar.py", "a1")], [("models/ar/model.safetensors", "w3")]),
        "evaluate@sdd": stage([("stages/evaluate.py", "e1"), ("models/sdd/model.safetensors", "w2"),
                               ("models/judge/model.safetensors", "w1")], []),
    }}
    assert upstream_stages(lock, ["evaluate@sdd"]) == {"evaluate@sdd", "train@sdd", "judge", "pack"}
    hashes = study_hashes(lock, ["evaluate@sdd"])
    assert hashes["code"] == {"src/textdiff/data.py": "d1", "src/textdiff/judge.py": "j1",
                              "src/textdiff/models/sdd.py": "m1", "stages/evaluate.py": "e1"}  # not ar.py
    assert hashes["data"] == {"data/packed/train.npy": "t1", "data/packed/stats.json": "s1"}
    assert hashes["judge"] == {"models/judge/model.safetensors": "w1"}


def test_overrides_are_what_changed_against_the_baseline():
    before = flatten({"k": 8, "sdd": {"index_swap": "none", "shuffle_slots": False}, "evaluate": {"sweep_steps": [8]}})
    after = flatten({"k": 8, "sdd": {"index_swap": "uniform", "shuffle_slots": False}, "evaluate": {"sweep_steps": [8]}})
    assert changed_keys(before, after) == {"sdd.index_swap": "uniform"}
    assert study_params({"k": 8, "experiments": {"g": {}}}) == {"k": 8}


def test_a_run_that_sets_a_key_params_yaml_lacks_is_refused_before_any_run(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["experiments"]["sdd_variants"]["runs"]["typo"] = {"sdd.index_swpa": "uniform"}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamError, match=r"runs.typo sets sdd.index_swpa, which is not a key of params.yaml "
                                         r"\(did you mean sdd.index_swap\?\)"):
        read_groups(path)


def test_a_failing_run_is_reported_and_the_rest_of_its_group_still_runs(monkeypatch, capsys):
    import runpy

    import textdiff.experiments as experiments

    ran = []
    monkeypatch.setattr(experiments, "run_experiment", lambda group, run: ran.append(run) or run != "k2")
    monkeypatch.setattr(experiments, "collect", lambda group, session=None: {"runs": {}})
    monkeypatch.setattr("sys.argv", ["experiments.py", "sdd_variants", "k1", "k2", "k4"])
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_status:
        runpy.run_path(str(REPO / "stages" / "experiments.py"), run_name="__main__")
    assert exit_status.value.code == 1 and ran == ["k1", "k2", "k4"]
    captured = capsys.readouterr()
    assert "sdd_variants / k2 failed" in captured.out and "1 run(s) failed: sdd_variants / k2" in captured.err


def test_collecting_a_group_keeps_the_runs_other_runs_start_from(monkeypatch):
    import runpy

    import textdiff.experiments as experiments

    kept = []
    monkeypatch.setattr(experiments, "collect", lambda group, session=None: {"runs": {}})
    monkeypatch.setattr(experiments, "keep_source", lambda name, stages: kept.append(name))
    monkeypatch.setattr("sys.argv", ["experiments.py", "training_length", "--collect-only"])
    monkeypatch.chdir(REPO)
    runpy.run_path(str(REPO / "stages" / "experiments.py"), run_name="__main__")
    assert sorted(kept) == ["training_length-ar-x16", "training_length-mdlm-x16", "training_length-udlm-x16"]


def experiments_cli():
    import runpy
    return runpy.run_path(str(REPO / "stages" / "experiments.py"))


def test_arguments_name_groups_each_followed_by_any_of_its_runs():
    cli, groups = experiments_cli(), read_groups(REPO / "params.yaml")
    assert cli["selected_runs"](["training_length", "ar-x4", "mdlm-x4", "learning_rates"], groups) == {
        "training_length": ["ar-x4", "mdlm-x4"], "learning_rates": ["lr-half", "lr-double"]}
    with pytest.raises(UsageError, match="unknown run lr-half of training_length; it has ar-x4"):
        cli["selected_runs"](["training_length", "lr-half"], groups)
    with pytest.raises(UsageError, match="unknown experiment group 'ar-x4'"):
        cli["selected_runs"](["ar-x4"], groups)


def test_a_session_stays_on_record_while_a_run_it_made_is_not_rerun():
    first = {"runs": ["a", "b"], "wall_s": 10.0}
    second = {"runs": ["a"], "wall_s": 5.0}
    assert sessions_after([first], second) == [first, second]  # b is still first's
    third = {"runs": ["b"], "wall_s": 7.0}
    assert sessions_after([first, second], third) == [second, third]  # first's runs were all rerun
    assert sessions_after([first], None) == [first]  # collecting alone changes no session
    assert sessions_after([first], {"runs": [], "wall_s": 3.0}) == [first]  # a session whose runs all failed
    assert collected_sessions({"session": first}) == [first]  # a file from before `sessions`


def test_workers_that_left_with_runs_still_queued_are_started_again():
    """DVC's workers can stop while runs wait (treeverse/dvc#10562): the runner starts the missing ones again,
    but not while a just-started worker has yet to show its run as running."""
    from textdiff.experiments import RESTART_AFTER_S, wait_for_queue
    poll = 30.0
    both = {"a": "Running", "b": "Running", "c": "Queued"}
    one_left = {"a": "Success", "b": "Running", "c": "Queued"}  # a's worker left; c waits
    restarted = {"a": "Success", "b": "Running", "c": "Running"}
    done = {"a": "Success", "b": "Success", "c": "Success"}
    short = int(RESTART_AFTER_S // poll) + 2  # polls in which one worker is missing
    timeline = iter([both, both] + [one_left] * short + [restarted, done])
    now, started = [0.0], []

    def sleep(seconds):
        now[0] += seconds
    wait_for_queue(2, lambda: next(timeline), started.append, poll, clock=lambda: now[0], sleep=sleep)
    # Once, only after RESTART_AFTER_S short, asking DVC for all `jobs`: it numbers its workers and starts those
    # that do not answer, so the busy one stays. Asking for the one missing checked worker 1 only, which was busy.
    assert started == [2]
    timeline = iter([both, both, one_left, restarted, done])  # a worker that shows up in time: nothing to do
    started.clear()
    wait_for_queue(2, lambda: next(timeline), started.append, poll, clock=lambda: now[0], sleep=sleep)
    assert started == []
    both_left = {"a": "Success", "b": "Success", "c": "Queued", "d": "Queued", "e": "Queued"}
    timeline = iter([both_left] * short + [{"c": "Running", "d": "Running", "e": "Queued"}, done])
    wait_for_queue(2, lambda: next(timeline), started.append, poll, clock=lambda: now[0], sleep=sleep)
    assert started == [2]  # both missing: both started


def test_a_rerun_waiting_in_the_queue_is_not_read_as_its_earlier_tasks_success(monkeypatch):
    # DVC lists a rerun's earlier, finished tasks under the same name, after the waiting ones. The runner once read
    # 13 waiting reruns as Success, took the queue for empty, stopped the workers and reported them as not run.
    import subprocess

    from textdiff.experiments import queue
    listing = ("Task     Name          Created    Status\n"
               "4dae66a  recipe-wd     07:02 PM   Running\n"
               "17a687b  recipe-ema    07:02 PM   Queued\n"
               "fb616b8  recipe-wd     01:29 PM   Success\n"
               "27a8184  recipe-ema    01:29 PM   Success\n"
               "31c786a  recipe-lr     12:47 PM   Failed\n"
               "be50392  recipe-lr     03:29 PM   Success\n\nWorker status: 2 active, 0 idle\n")
    monkeypatch.setattr(queue, "run_dvc", lambda *args, cwd=".": subprocess.CompletedProcess(args, 0, listing, ""))
    assert queue.queue_states() == {"recipe-wd": "Running", "recipe-ema": "Queued", "recipe-lr": "Success"}
    assert queue.queue_tasks()[1] == ("17a687b", "recipe-ema", "Queued")  # what Ctrl-C removes: the task, by id
    monkeypatch.setattr(queue, "run_dvc", lambda *args, cwd=".": subprocess.CompletedProcess(args, 1, "", "lock"))
    assert queue.queue_states() is None


def test_a_queue_status_that_failed_does_not_end_the_wait():
    from textdiff.experiments import wait_for_queue
    timeline = iter([{"a": "Running"}, None, {"a": "Running"}, {"a": "Success"}])
    read = []

    def states():
        read.append(1)
        return next(timeline)
    wait_for_queue(2, states, lambda count: None, 10.0, clock=lambda: 0.0, sleep=lambda s: None)
    assert len(read) == 4  # a failed reading (None) is asked again, not taken for an empty queue


def test_a_run_starts_from_the_trained_stages_of_its_source_and_the_workspace_is_put_back(tmp_path):
    """seeded_workspace takes from the source experiment's commit the dvc.lock entries of the stages the run rests
    on that it ran differently, with their outputs git holds; everything else stays, and leaving restores it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()
    def lock(train_md5, report_md5):
        return {"schema": "2.0", "stages": {
            "train@ar": {"cmd": "train", "deps": [{"path": "src/ar.py", "md5": "c1"}],
                         "outs": [{"path": "models/ar/model.safetensors", "md5": train_md5},
                                  {"path": "models/ar/train_summary.json", "md5": train_md5 + "s"}]},
            "evaluate@ar": {"cmd": "evaluate", "deps": [{"path": "models/ar/model.safetensors", "md5": train_md5}],
                            "outs": [{"path": "eval/ar/metrics.json", "md5": "m"}]},
            "report": {"cmd": "report", "deps": [{"path": "eval/ar/metrics.json", "md5": "m"}],
                       "outs": [{"path": "reports/report.md", "md5": report_md5}]}}}
    git("init", "-q")
    for key, value in {"user.name": "t", "user.email": "t@example.com"}.items():
        git("config", key, value)
    (tmp_path / "models" / "ar").mkdir(parents=True)
    (tmp_path / "reports").mkdir()
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock("w0", "r0")))
    (tmp_path / "reports" / "report.md").write_text("report of the study")
    git("add", "-A")
    git("commit", "-qm", "study")
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock("w16", "r16")))
    (tmp_path / "models" / "ar" / "train_summary.json").write_text('{"steps": 6400}')
    (tmp_path / "reports" / "report.md").write_text("report of the longer run")
    git("add", "-A")
    git("commit", "-qm", "the source experiment")
    source = git("rev-parse", "HEAD")
    git("reset", "-q", "--hard", "HEAD^")
    before = (tmp_path / "dvc.lock").read_bytes()

    with seeded_workspace(source, ["evaluate@ar"], tmp_path) as taken:
        seeded = yaml.safe_load((tmp_path / "dvc.lock").read_text())
        assert list(taken) == ["evaluate@ar", "train@ar"]  # not the report: the run does not rest on it
        assert taken["train@ar"] == []  # trained on the workspace's code
        assert seeded["stages"]["train@ar"]["outs"][0]["md5"] == "w16"
        assert seeded["stages"]["report"]["outs"][0]["md5"] == "r0"
        assert (tmp_path / "models" / "ar" / "train_summary.json").read_text() == '{"steps": 6400}'
        assert (tmp_path / "reports" / "report.md").read_text() == "report of the study"
    assert (tmp_path / "dvc.lock").read_bytes() == before
    assert not (tmp_path / "models" / "ar" / "train_summary.json").exists()  # absent before, absent after
    assert git("status", "--porcelain") == ""
    with seeded_workspace(None, ["evaluate@ar"], tmp_path) as taken:  # a run with no source: nothing changes
        assert taken == {} and (tmp_path / "dvc.lock").read_bytes() == before
    changed = lock("w16", "r16")
    changed["stages"]["train@ar"]["deps"][0]["md5"] = "c2"  # a source trained on other code
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(changed))
    git("commit", "-qam", "a source on other code")
    other = git("rev-parse", "HEAD")
    git("reset", "-q", "--hard", "HEAD^")
    with seeded_workspace(other, ["evaluate@ar"], tmp_path) as taken:
        assert taken["train@ar"] == ["src/ar.py"]


def test_a_fresh_clone_starts_from_a_source_another_clone_trained_and_kept(tmp_path):
    """DVC's experiments stay in the clone that ran them. A run others start from is kept in artifacts/ (its commit
    bundled, its cached outputs in the study's remote), so a fresh clone reuses its trained model, not retrains it."""
    from textdiff.experiments import Group, keep_source
    from textdiff.experiments.runner import source_experiment

    first, clone = tmp_path / "first", tmp_path / "clone"

    def run(*args, cwd=first):
        return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
    first.mkdir()
    run("git", "init", "-q")
    for key, value in {"user.name": "t", "user.email": "t@example.com"}.items():
        run("git", "config", key, value)
    run("dvc", "init", "-q")
    run("dvc", "remote", "add", "-d", "study", "../artifacts")
    (first / "params.yaml").write_text("steps: 1\n")
    (first / "train.py").write_text("import pathlib, yaml\nsteps = yaml.safe_load(open('params.yaml'))['steps']\n"
                                    "pathlib.Path('models').mkdir(exist_ok=True)\n"
                                    "pathlib.Path('models/model.bin').write_text(f'trained {steps} steps')\n"
                                    "pathlib.Path('models/summary.json').write_text(str(steps))\n")
    (first / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "train": {"cmd": "python train.py", "deps": ["train.py"], "params": ["steps"],
                  "outs": ["models/model.bin", {"models/summary.json": {"cache": False}}]},
        "use": {"cmd": "cp models/model.bin used.txt", "deps": ["models/model.bin"], "outs": ["used.txt"]}}}))
    run("dvc", "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "study")
    run("dvc", "exp", "run", "--temp", "-q", "--name", "g-long", "-S", "steps=16", "train")
    assert keep_source("g-long", ["train"], first) and not keep_source("g-long", ["train"], first)  # kept once
    run("git", "add", "-A")
    run("git", "commit", "-qm", "kept")

    run("git", "clone", "-q", str(first), str(clone))
    group = Group("h", ("use",), {}, {"x": {}}, {"x": "g/long"})
    source = source_experiment(group, "x", clone)  # not run in this clone: brought from artifacts/
    assert source is not None
    with seeded_workspace(source, ["use"], clone) as taken:
        assert list(taken) == ["train"]
        run("dvc", "checkout", "-q", "train", cwd=clone)  # from the cache, fetched from the remote: no training
        assert (clone / "models" / "model.bin").read_text() == "trained 16 steps"
        assert (clone / "models" / "summary.json").read_text() == "16"


def test_a_run_times_the_stages_it_reproduced_even_when_they_took_as_long_as_before():
    """A stage counts as reproduced when its dvc.lock entry differs from the baseline's and from the source
    experiment's, not when its timings file does: a short stage can take the same 0.01 s twice (it did in CI)."""
    def stage(name, params, wall_md5):
        return {"cmd": name, "params": {"params.yaml": params},
                "outs": [{"path": f"timings/{name}.json", "md5": wall_md5}]}
    baseline = {"stages": {"train@ar": stage("train@ar", {"steps": 1}, "t1"),
                           "evaluate@ar": stage("evaluate@ar", {"temperature": 1.0}, "same")}}
    source = {"stages": {"train@ar": stage("train@ar", {"steps": 2}, "t2"),
                         "evaluate@ar": stage("evaluate@ar", {"temperature": 1.0}, "same")}}
    run = {"stages": {"train@ar": stage("train@ar", {"steps": 2}, "t2"),  # taken from the source: not rerun
                      "evaluate@ar": stage("evaluate@ar", {"temperature": 0.7}, "same"),  # rerun, same wall time
                      "report": {"cmd": "report", "outs": [{"path": "reports/report.md", "md5": "r"}]}}}
    wall = {"timings/train@ar.json": {"wall_s": 9.0}, "timings/evaluate@ar.json": {"wall_s": 1.25}}
    assert reproduced_stage_seconds(run, [baseline, source], wall.__getitem__) == {"evaluate@ar": 1.25}
    assert reproduced_stage_seconds(run, [baseline], wall.__getitem__) == {"train@ar": 9.0, "evaluate@ar": 1.25}


def test_a_run_is_not_queued_with_the_run_it_starts_from(tmp_path):
    """A queued run is set up when it is queued, so its source must have run before: in the same queue it would
    start from the source's earlier experiment (or none) and retrain."""
    from textdiff.experiments import run_in_queue
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"k": 8, "experiments": {
        "g": {"stages": ["report"], "runs": {"a": {"k": 2}, "b": {"k": 2}}, "start_from": {"b": "g/a"}}}}))
    group = read_groups(path)["g"]
    with pytest.raises(ParamError, match="g / b starts from g/a, which is in the same queue"):
        run_in_queue([(group, "a"), (group, "b")], jobs=1, cwd=tmp_path)


def waves_group(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"k": 8, "experiments": {
        "g": {"stages": ["report"], "runs": {"a": {"k": 2}, "b": {"k": 3}, "c": {"k": 4}}, "start_from": {"b": "g/a"}}}}))
    return read_groups(path)["g"]


def test_one_command_runs_a_source_and_then_the_run_that_starts_from_it(monkeypatch, tmp_path):
    # A fresh clone holds no experiment of an earlier session: the source must be trained in the same command.
    import textdiff.experiments.queue as queue
    group, queued = waves_group(tmp_path), []
    monkeypatch.setattr(queue, "run_in_queue",
                        lambda pairs, jobs, cwd, poll_s: queued.append([run for _, run in pairs]) or ([], []))
    assert queue.run_in_waves([(group, "b"), (group, "a"), (group, "c")], jobs=2, cwd=tmp_path) == ([], [])
    assert queued == [["a", "c"], ["b"]]


def test_a_run_whose_source_failed_does_not_run(monkeypatch, tmp_path):
    import textdiff.experiments.queue as queue
    group, queued = waves_group(tmp_path), []

    def fake_queue(pairs, jobs, cwd, poll_s):
        queued.append([run for _, run in pairs])
        return [pair for pair in pairs if pair[1] == "a"], []
    monkeypatch.setattr(queue, "run_in_queue", fake_queue)
    failed, not_run = queue.run_in_waves([(group, "a"), (group, "b"), (group, "c")], jobs=2, cwd=tmp_path)
    assert queued == [["a", "c"]] and [run for _, run in failed] == ["a"] and [run for _, run in not_run] == ["b"]


def test_starting_workers_does_not_wait_for_the_workers_it_leaves_behind():
    """`dvc queue start` returns while its detached workers run on with its stdout and stderr; a runner reading
    those pipes to their end would wait for the queue to empty, unable to restart a worker that left."""
    import time

    from textdiff.experiments import run_detaching
    tic = time.monotonic()
    returncode, errors = run_detaching(["bash", "-c", "sleep 60 & echo started; echo warned >&2"], ".", None)
    assert (returncode, errors) == (0, "warned") and time.monotonic() - tic < 30
    assert run_detaching(["bash", "-c", "echo failed >&2; exit 3"], ".", None) == (3, "failed")


class FakeQueue:
    """DVC's queue as run_in_queue sees it: experiment refs, queue states, and the dvc commands it was given."""

    def __init__(self, monkeypatch, states_after_start: dict[str, str], interrupt: bool = True):
        import textdiff.experiments.queue as queue
        import textdiff.experiments.runner as runner
        self.refs = {"g-a": "old-a", "g-b": "old-b", "g-c": "old-c"}  # each run's collected experiment
        self.states, self.commands = {}, []

        def run_dvc(*args, cwd="."):
            self.commands.append(args)
            if args[:2] == ("exp", "rename"):
                self.refs[args[3]] = self.refs.pop(args[2])
            elif args[:2] == ("exp", "remove"):
                self.refs.pop(args[2], None)
            return subprocess.CompletedProcess(args, 0, "", "")

        def wait(*_args):
            self.states = dict(states_after_start)
            if interrupt:
                raise KeyboardInterrupt
        for module in (queue, runner):
            monkeypatch.setattr(module, "run_dvc", run_dvc)
            monkeypatch.setattr(module, "newest_experiment", lambda name, cwd=".": self.refs.get(name))
        monkeypatch.setattr(queue, "queue_tasks",  # task ids as DVC gives them: not the experiment's name
                            lambda cwd=".": [(f"task-{name}", name, state) for name, state in self.states.items()])
        monkeypatch.setattr(queue, "source_experiment", lambda group, run, cwd=".": None)
        monkeypatch.setattr(queue.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "", ""))
        monkeypatch.setattr(queue, "run_detaching", lambda *a: (0, ""))
        monkeypatch.setattr(queue, "wait_for_queue", wait)


def queue_group(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"k": 8, "experiments": {"g": {"stages": ["report"],
                                                                  "runs": {"a": {"k": 1}, "b": {"k": 2}, "c": {"k": 4}}}}}))
    return read_groups(path)["g"]


def test_ctrl_c_in_the_queue_removes_the_waiting_runs_and_keeps_every_earlier_experiment(monkeypatch, tmp_path):
    # Issue 37, item 2: SIGINT in queue mode said the outputs were unchanged while the running runs went on to
    # Success in DVC's workers, and the settling that followed left the collected experiment of a rerun that went on
    # without a ref. The old runner killed (`dvc queue kill`) and settled every run; now the running ones go on,
    # keep their earlier experiment aside, and are named.
    from textdiff.experiments import QueueInterrupted, run_in_queue
    group = queue_group(tmp_path)
    fake = FakeQueue(monkeypatch, {"g-a": "Success", "g-b": "Running", "g-c": "Queued"})
    with pytest.raises(QueueInterrupted) as stopped:
        run_in_queue([(group, "a"), (group, "b"), (group, "c")], jobs=2, cwd=tmp_path)
    assert (stopped.value.going_on, stopped.value.removed) == (["g-b"], ["g-c"])
    assert ("queue", "remove", "task-g-c") in fake.commands
    assert not any(c[:2] == ("queue", "kill") for c in fake.commands)
    # b goes on: its collected experiment stays held, aside; c never ran: its own comes back; a made none here.
    assert fake.refs["g-b-previous"] == "old-b" and fake.refs["g-c"] == "old-c" and fake.refs["g-a"] == "old-a"


def test_a_run_already_in_the_queue_is_not_queued_again(monkeypatch, tmp_path):
    from textdiff.experiments import run_in_queue
    group = queue_group(tmp_path)
    fake = FakeQueue(monkeypatch, {}, interrupt=False)
    fake.states = {"g-b": "Running"}
    with pytest.raises(ParamError, match=r"g-b already queued or running \(dvc queue status\)"):
        run_in_queue([(group, "a"), (group, "b")], jobs=2, cwd=tmp_path)
    assert fake.commands == []  # nothing set aside, nothing queued


def test_more_jobs_than_runs_start_one_worker_a_run(monkeypatch, tmp_path):
    import textdiff.experiments.queue as queue
    from textdiff.experiments import run_in_queue
    group = queue_group(tmp_path)
    FakeQueue(monkeypatch, {}, interrupt=False)
    started = []
    monkeypatch.setattr(queue, "run_detaching", lambda command, cwd, env: started.append(command) or (0, ""))
    run_in_queue([(group, "a")], jobs=4, cwd=tmp_path)
    assert started == [["dvc", "queue", "start", "--jobs", "1"]]


def test_a_rerun_that_went_on_after_ctrl_c_is_settled_by_the_next_call():
    """set_aside: a <name>-previous left by an interrupted queue is removed where the run went on to make its
    experiment, and is the run's experiment again where it did not."""
    import textdiff.experiments.runner as runner
    refs = {"g-a": "new-a", "g-a-previous": "old-a", "g-b-previous": "old-b"}

    def run_dvc(*args, cwd="."):
        if args[:2] == ("exp", "rename"):
            refs[args[3]] = refs.pop(args[2])
        elif args[:2] == ("exp", "remove"):
            refs.pop(args[2], None)
        return subprocess.CompletedProcess(args, 0, "", "")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "run_dvc", run_dvc)
        patch.setattr(runner, "newest_experiment", lambda name, cwd=".": refs.get(name))
        assert runner.set_aside(["g-a", "g-b"]) == ["g-a", "g-b"]
    assert refs == {"g-a-previous": "new-a", "g-b-previous": "old-b"}


def test_the_interrupted_line_says_what_goes_on_and_how_to_collect_it():
    from textdiff.experiments import QueueInterrupted
    line = experiments_cli()["interrupted_line"]({"g": ["a", "b", "c"]}, QueueInterrupted(["g-b"], ["g-c"]))
    assert line == ("interrupted: nothing was collected; 1 queued run(s) taken out of the queue (g-c); 1 run(s) go on "
                    "in DVC's workers to their end (g-b): once `dvc queue status` shows them done, python "
                    "stages/experiments.py g --collect-only")
    assert "keeps its earlier experiment" in experiments_cli()["interrupted_line"]({"g": ["a"]}, KeyboardInterrupt())


def test_a_training_only_group_collects_the_models_it_trains_and_no_evaluation(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"k": 8, "experiments": {
        "t": {"stages": ["train@mdlm", "train@udlm"], "runs": {"a": {"k": 1}}},
        "e": {"stages": ["evaluate@ar"], "runs": {"a": {"k": 1}}}}}))
    groups = read_groups(path)
    assert groups["t"].models == ("mdlm", "udlm") and not groups["t"].evaluates
    assert groups["e"].models == ("ar",) and groups["e"].evaluates


def test_a_run_taken_out_of_the_queue_did_not_run_and_did_not_fail(monkeypatch, tmp_path):
    # Runs removed with `dvc queue remove` before they ran were reported as failed, "`dvc queue logs` shows why".
    from textdiff.experiments import run_in_queue
    group = queue_group(tmp_path)
    fake = FakeQueue(monkeypatch, {"g-a": "Failed"}, interrupt=False)  # g-b: no longer in the queue
    failed, removed = run_in_queue([(group, "a"), (group, "b")], jobs=2, cwd=tmp_path)
    assert [run for _, run in failed] == ["a"] and [run for _, run in removed] == ["b"]
    assert fake.refs["g-a"] == "old-a" and fake.refs["g-b"] == "old-b"  # each keeps its earlier experiment
