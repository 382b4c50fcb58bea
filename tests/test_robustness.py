"""Interruption, determinism, atomic outputs and safe loading (the README's robustness table)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from textdiff.data import save_rows
from textdiff.errors import DataError
from textdiff.evaluate import evaluate
from textdiff.io import atomic_path, write_json
from textdiff.tokenizer import train_tokenizer
from textdiff.checkpoints import load_trained
from textdiff.train import train
from textdiff.models import model_names
from tests.conftest import REPO, micro_params_dict


def test_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"perplexity": 1.0})
    with pytest.raises(TypeError):
        write_json(target, {"perplexity": object()})  # fails half-way through serialising
    assert yaml.safe_load(target.read_text()) == {"perplexity": 1.0}
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "new.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def make_study_dir(tmp_path, steps, checkpoint_every):
    raw = micro_params_dict()
    raw["scales"]["cpu"]["steps"] = steps
    raw["train"].update(checkpoint_every=checkpoint_every, curve_every_steps=max(1, steps // 10))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    rows = np.random.default_rng(0).integers(4, 40, size=(256, 16)).astype(np.uint16)
    save_rows(tmp_path / "train.npy", rows)
    save_rows(tmp_path / "valid.npy", rows[:16])
    return tmp_path


def train_command(out):
    return [sys.executable, str(REPO / "stages" / "train.py"), "ar", "--rows", "train.npy", "--valid-rows",
            "valid.npy", "--out", out, "--checkpoints", "ckpt"]


def test_sigkill_midway_then_rerun_resumes_to_bitwise_identical_weights(tmp_path):
    work = make_study_dir(tmp_path, steps=1000, checkpoint_every=50)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run(train_command("straight"), cwd=work, env=env, check=True, capture_output=True, timeout=600)
    victim = subprocess.Popen(train_command("resumed"), cwd=work, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list((work / "ckpt").glob("ar-*.safetensors")) and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # kill somewhere after the first checkpoint, mid-step or mid-write
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "training finished before it could be killed"
    assert not (work / "resumed" / "model.safetensors").exists()
    rerun = subprocess.run(train_command("resumed"), cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and "resuming ar from step" in rerun.stdout
    a = load_file(work / "straight" / "model.safetensors")
    b = load_file(work / "resumed" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = [(work / d / "train_log.csv").read_text().splitlines() for d in ("straight", "resumed")]
    assert [line.split(",")[:3] for line in logs[0]] == [line.split(",")[:3] for line in logs[1]]
    curves = [(work / d / "learning_curve.csv").read_text() for d in ("straight", "resumed")]
    assert curves[0] == curves[1] and len(curves[0].splitlines()) == 11


def test_same_params_and_seed_give_identical_evaluation_metrics(tmp_path, micro_params, shared_data):
    stories = (shared_data / "train.txt").read_text(encoding="utf-8").split("<|endoftext|>")[:200]
    tokenizer = train_tokenizer(stories, micro_params.scale.vocab_size)
    rows = np.random.default_rng(0).integers(4, 300, size=(64, 16)).astype(np.uint16)
    save_rows(tmp_path / "rows.npy", rows)
    for name in ("mdlm", "judge"):
        train("ar" if name == "judge" else name, micro_params, tmp_path / "rows.npy", tmp_path / name,
              tmp_path / "ckpt", progress=False)
    runs = [evaluate(tmp_path / "mdlm", tmp_path / "rows.npy", tokenizer, micro_params, "mdlm", tmp_path / "judge")
            for _ in range(2)]
    timing = {"gen_ms_per_sample", "gen_ms_min", "gen_timing_busy", "sample_ms_per_sample", "train_wall_s",
              "train_tokens_per_s"}
    first, second = ({k: v for k, v in metrics.items() if k not in timing} for metrics, _, _ in runs)
    assert first == second
    assert runs[0][1] == runs[1][1]  # the same samples


def test_weights_of_another_config_are_refused(tmp_path, micro_params):
    save_rows(tmp_path / "rows.npy", np.random.default_rng(0).integers(4, 300, size=(32, 16)).astype(np.uint16))
    train("ar", micro_params, tmp_path / "rows.npy", tmp_path / "ar", tmp_path / "ckpt", progress=False)
    config = json.loads((tmp_path / "ar" / "config.json").read_text())
    config["spec"]["d_model"] = 64
    (tmp_path / "ar" / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_trained(tmp_path / "ar")


def test_unknown_model_is_a_one_line_error(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(micro_params_dict()))
    result = subprocess.run([sys.executable, str(REPO / "stages" / "train.py"), "gpt"], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: unknown model 'gpt'; expected one of {', '.join(model_names())}"


def test_a_model_file_changed_between_interruption_and_rerun_starts_training_over(tmp_path):
    """The resume fingerprint covers the code: weights of two codes are never mixed."""
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    work = make_study_dir(tmp_path, steps=8, checkpoint_every=2)
    script = ("import sys, yaml; from textdiff.study import parse_params; from textdiff.train import train; "
              "params = parse_params(yaml.safe_load(open('params.yaml'))); "
              "train('ar', params, 'train.npy', 'out', 'ckpt', progress=False, "
              "stop_after=int(sys.argv[1]) if len(sys.argv) > 1 else None)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    subprocess.run([sys.executable, "-c", script, "4"], cwd=work, env=env, check=True, timeout=300)
    assert list((work / "ckpt").glob("ar-*.safetensors"))
    with open(tmp_path / "src" / "textdiff" / "models" / "ar.py", "a") as model_file:
        model_file.write("\n# a change to the model's code\n")
    rerun = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, check=True, timeout=300,
                           capture_output=True, text=True)
    assert "resuming" not in rerun.stdout and "written by other code or another config" in rerun.stdout


def test_truncated_weights_are_a_one_line_error(tmp_path, micro_params):
    rows = np.random.default_rng(0).integers(4, 40, size=(64, 16)).astype(np.uint16)
    save_rows(tmp_path / "train.npy", rows)
    train("ar", micro_params, tmp_path / "train.npy", tmp_path / "ar", tmp_path / "ckpt", progress=False)
    weights = tmp_path / "ar" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(DataError, match="model.safetensors: not complete safetensors weights.*rerun its train stage"):
        load_trained(tmp_path / "ar")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error(tmp_path, micro_raw):
    micro_raw["train"]["device"] = "cuda"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(micro_raw))
    result = subprocess.run([sys.executable, str(REPO / "stages" / "train.py"), "ar", "--rows", "train.npy"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml: train.device is cuda, but this machine has no CUDA device; set it to auto or cpu"]


@pytest.mark.parametrize("damage", ["missing", "malformed", "lacks a field"])
def test_a_bad_report_input_is_a_one_line_error(tmp_path, damage):
    metrics = tmp_path / "eval" / "ar" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    if damage == "malformed":
        metrics.write_text('{"perplexity": ')
    elif damage == "lacks a field":
        metrics.write_text("{}")
    for name in ("samples.json",):
        (metrics.parent / name).write_text("{}")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(micro_params_dict()))  # valid: the inputs are what fail
    result = subprocess.run([sys.executable, str(REPO / "stages" / "report.py")], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and "dvc repro" in result.stderr


def test_a_killed_write_leaves_its_temporary_outside_the_output_and_outputs_are_readable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = Path("eval") / "ar" / "metrics.json"
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            assert tmp.parent.resolve() == (tmp_path / ".cache" / "tmp").resolve()  # not inside eval/ar
            raise RuntimeError("killed")
    write_json(out, {"perplexity": 1.0})
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.json"]
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_batch1_timing_from_a_busy_machine_is_flagged_and_keeps_its_minimum():
    from textdiff.evaluate import timing_metrics
    from textdiff.report.format import gen_time

    quiet = timing_metrics([130.0, 128.0, 131.0, 129.0, 133.0])
    busy = timing_metrics([130.0, 1044.0, 990.0, 1010.0, 128.0])  # another process took a core midway
    assert not quiet["gen_timing_busy"] and busy["gen_timing_busy"]
    assert busy["gen_ms_min"] == 128.0 and busy["gen_threads"] == torch.get_num_threads()
    assert gen_time(busy) == "990 ms (min 128) ⚠" and gen_time(quiet) == "130 ms (min 128)"


@pytest.mark.parametrize("typo", ["sed: 3", "scales.seed.stepz", "train.checkpoint_evry"])
def test_an_unknown_key_is_refused_by_the_report_stage_which_reruns_on_any_params_change(tmp_path, typo):
    # Issue 23 row 1: a typo in a key no model stage reads reruns only the report (it depends on all of
    # params.yaml), which must refuse it before reading any input.
    raw = micro_params_dict()
    if typo == "sed: 3":
        raw["sed"] = 3
    else:
        *path, last = typo.split(".")
        node = raw
        for key in path:
            node = node[key]
        node[last] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    result = subprocess.run([sys.executable, str(REPO / "stages" / "report.py")], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True,
                            timeout=120)
    key = typo.split(":")[0]
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        next(line for line in result.stderr.splitlines() if line.startswith(f"error: params.yaml: unknown key {key}"))]
    assert not (tmp_path / "reports").exists()


def test_ctrl_c_ends_a_stage_with_one_line_and_exit_130(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text("from textdiff.cli import run_stage\n"
                      "def main():\n    raise KeyboardInterrupt\n"
                      f"run_stage(main, timing_path={str(tmp_path / 'timing.json')!r})\n")
    result = subprocess.run([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 130 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("interrupted: ") and not (tmp_path / "timing.json").exists()


def test_ctrl_c_while_a_stage_is_still_importing_is_one_line_and_exit_130(tmp_path):
    # The interrupt lands after cli's first lines, while the stage's imports still run (torch's take seconds).
    script = tmp_path / "stage.py"
    script.write_text("import os, signal\nimport textdiff.cli\nos.kill(os.getpid(), signal.SIGINT)\n"
                      "import time\ntime.sleep(30)\n")
    result = subprocess.run([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 130
    assert result.stderr.splitlines() == ["interrupted: the stage stopped while starting, before it read or wrote "
                                          "anything"]


def test_a_warmup_that_outlasts_the_run_warns_and_the_summary_states_the_peak_reached(tmp_path, capsys):
    import dataclasses

    from textdiff.study import parse_params
    params = parse_params(micro_params_dict())
    params = dataclasses.replace(params, scale=dataclasses.replace(params.scale, steps=4, warmup_steps=1000))
    rows = np.random.default_rng(0).integers(4, 20, size=(16, 16)).astype(np.uint16)
    save_rows(tmp_path / "train.npy", rows)
    summary = train("ar", params, tmp_path / "train.npy", tmp_path / "ar", tmp_path / "ckpt", progress=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if "warmup" in line]
    peak = params.scale.lr * 4 / 1000
    assert lines == [f"warning: ar never leaves its warmup (scales.cpu.warmup_steps=1000 >= its 4 steps): its "
                     f"learning rate peaks at {peak:.3g}, not {params.scale.lr:g}"]
    assert summary["peak_lr_reached"] == pytest.approx(peak) and summary["lr"] == params.scale.lr


def test_a_cpu_run_that_would_take_hours_says_so_with_its_estimate():
    from textdiff.train import cpu_time_notice

    notice = cpu_time_notice("sdd", torch.device("cpu"), 14.0, 9997, "scales.seed.steps")
    assert notice == ("notice: sdd on the CPU takes 14 s a step, about 39 h for its 9,997 steps left: lower "
                      "scales.seed.steps, or train on a GPU (train.device: cuda)")
    assert cpu_time_notice("sdd", torch.device("cpu"), 0.5, 400, "scales.cpu.steps") is None
    assert cpu_time_notice("sdd", torch.device("cuda"), 14.0, 9997, "scales.seed.steps") is None


@pytest.mark.parametrize("field, value, message", [
    ("perplexity", "abc", "perplexity must be a number, got 'abc'"),
    ("perplexity", float("nan"), "perplexity = nan is not a finite number"),
    ("perplexity", -3.0, "perplexity = -3.0 is not a finite number in (0, inf]"),
    ("accuracy", 1.5, "accuracy = 1.5 is not a finite number in [0, 1]"),
    ("diagnostics", None, "lacks the field diagnostics, which SDD's evaluation writes"),
    ("sample_entropy", None, "lacks the field sample_entropy"),
])
def test_a_report_input_with_a_bad_value_is_refused_naming_file_and_field(tmp_path, field, value, message):
    # Issue 23 rows 5 and 6: a non-number, a non-finite or out-of-range value or a missing field is one line.
    from textdiff.errors import DataError
    from textdiff.report.inputs import model_metrics
    from tests.test_analysis import sdd_metrics
    m = {**sdd_metrics(judge_ppl=40.0, entropy=3.5, train_acc=0.5, context_acc=0.1), "perplexity": 4.0,
         "sample_distinct_2": 0.5, "sample_distinct_3": 0.8, "sample_ms_per_sample": 3.0, "gen_ms_per_sample": 5.0,
         "parameters": 1000, "train_steps": 10, "train_tokens": 100, "gen_temperature": 1.0}
    if value is None:
        m.pop(field)
    else:
        m[field] = value
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(m))  # json writes NaN as NaN, which Python's reader accepts
    with pytest.raises(DataError) as error:
        model_metrics(path, "sdd")
    assert str(error.value).startswith(f"{path}: {message}") and "\n" not in str(error.value)


@pytest.mark.parametrize("table, message", [
    ("step,loss\n1,abc\n", "row 1 of column loss is 'abc', not a finite number"),
    ("step,loss\n1,inf\n", "row 1 of column loss is inf, not a finite number"),
    ("step\n1\n", "lacks the column loss"),
])
def test_a_non_numeric_training_log_is_refused_naming_row_and_column(tmp_path, table, message):
    from textdiff.errors import DataError
    from textdiff.report.inputs import numeric_csv
    path = tmp_path / "train_log.csv"
    path.write_text(table)
    with pytest.raises(DataError, match=message):
        numeric_csv(path)


def test_a_null_judge_perplexity_in_the_reference_is_refused(tmp_path):
    from textdiff.errors import DataError
    from textdiff.report.inputs import reference_metrics
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"judge_perplexity": None}))
    with pytest.raises(DataError, match="judge_perplexity must be a number, got None"):
        reference_metrics(path)


@pytest.mark.parametrize("damage, message", [
    (lambda g: g["runs"]["seed1"]["models"]["ar"]["metrics"].update(perplexity=float("nan")),
     "run seed1, ar: perplexity = nan is not a finite number"),
    (lambda g: g["runs"]["seed1"]["models"]["ar"]["metrics"].update(accuracy=-0.5),
     "run seed1, ar: accuracy = -0.5 is not a finite number in [0, 1]"),
    (lambda g: g.pop("runs"), "must hold a collected group"),
])
def test_a_collected_group_with_bad_figures_is_refused_and_told_how_to_collect_it_again(tmp_path, damage, message):
    # Issue 37, item 5: NaN or negative figures in eval/experiments/<group>.json passed with exit 0, and a truncated
    # one was told to rerun `dvc repro -f <stage>`, though no stage writes it.
    from textdiff.errors import DataError
    from textdiff.report.inputs import collected_group
    group = json.loads((REPO / "eval" / "experiments" / "seeds.json").read_text())
    damage(group)
    path = tmp_path / "seeds.json"
    path.write_text(json.dumps(group))
    with pytest.raises(DataError) as error:
        collected_group(path)
    text = str(error.value)
    assert message in text and "\n" not in text
    assert text.endswith("collect it again: python stages/experiments.py seeds --collect-only")


def test_a_truncated_group_file_is_told_to_be_collected_again_not_rerun_by_dvc(tmp_path):
    from textdiff.errors import DataError
    from textdiff.report.inputs import collected_group
    path = tmp_path / "samplers.json"
    path.write_text((REPO / "eval" / "experiments" / "samplers.json").read_text()[:500])
    with pytest.raises(DataError, match=r"not valid JSON .*; collect it again: python stages/experiments.py "
                                        r"samplers --collect-only$"):
        collected_group(path)
