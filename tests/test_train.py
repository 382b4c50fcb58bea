import dataclasses
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from textdiff.data import save_rows
from textdiff.checkpoints import checkpoint_path, code_digest, file_sha256, load_trained
from textdiff.errors import CheckpointMismatch, DataError, NonFiniteLoss
from textdiff.models import model_names, model_spec
from textdiff.train import learning_rate, run_fingerprint, train
from tests.conftest import poison_ar_loss


@pytest.fixture
def rows_path(tmp_path):
    # 16 distinct tokens out of 300: even a unigram model has much to learn.
    rows = np.random.default_rng(0).integers(4, 20, size=(64, 16)).astype(np.uint16)
    save_rows(tmp_path / "train.npy", rows)
    return tmp_path / "train.npy"


def test_learning_rate_warms_up_then_decays_to_the_floor():
    lrs = [learning_rate(step, 1.0, 10, 100, 0.1) for step in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert learning_rate(100, 1.0, 10, 100, 0.1) == pytest.approx(0.1)


@pytest.mark.parametrize("model", model_names())
def test_training_writes_safetensors_and_learns(model, micro_params, rows_path, tmp_path):
    params = dataclasses.replace(micro_params, scale=dataclasses.replace(micro_params.scale, steps=30))
    summary = train(model, params, rows_path, tmp_path / model, tmp_path / "ckpt", progress=False)
    log = (tmp_path / model / "train_log.csv").read_text().splitlines()
    assert log[0] == "step,loss,lr,tokens_per_s,elapsed_s,mfu" and len(log) == 31
    losses = [float(line.split(",")[1]) for line in log[1:]]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    loaded, config = load_trained(tmp_path / model)
    assert config["spec"]["model"] == model and summary["parameters"] > 0
    assert not list((tmp_path / "ckpt").glob("*"))  # the resume checkpoint is gone once training is done


@pytest.mark.parametrize("model", model_names())
def test_learning_curve_scores_the_same_validation_rows_at_fixed_token_intervals(model, micro_params, rows_path,
                                                                                 tmp_path):
    valid = tmp_path / "valid.npy"
    save_rows(valid, np.random.default_rng(1).integers(4, 20, size=(20, 16)).astype(np.uint16))
    params = dataclasses.replace(micro_params, scale=dataclasses.replace(micro_params.scale, steps=30))
    summary = train(model, params, rows_path, tmp_path / model, tmp_path / "ckpt", progress=False,
                    valid_rows_path=valid)
    curve = np.genfromtxt(tmp_path / model / "learning_curve.csv", delimiter=",", names=True)
    every = params.train.curve_every_steps
    assert list(curve["step"]) == list(range(every, 31, every))
    assert list(curve["tokens"]) == [step * 4 * 16 for step in curve["step"]]  # batch 4 x 16 tokens
    assert curve["valid_nll"][-1] < curve["valid_nll"][0] and np.all(curve["valid_nll_standard_error"] > 0)
    assert summary["final_valid_nll"] == curve["valid_nll"][-1] and summary["curve_rows"] == 8
    if model == "sdd":
        assert "context_only_accuracy" in curve.dtype.names
    # 30 steps x 64 tokens over 64 rows x 16 tokens: 1.875 epochs, stated
    assert summary["epochs"] == pytest.approx(30 * 64 / (64 * 16)) and summary["distinct_train_tokens"] == 1024


def test_a_run_of_more_than_four_epochs_warns_in_one_line_naming_the_key(micro_params, rows_path, tmp_path, capsys):
    params = dataclasses.replace(micro_params, scale=dataclasses.replace(micro_params.scale, steps=80))
    train("ar", params, rows_path, tmp_path / "ar", tmp_path / "ckpt", progress=False)  # 80 x 64 / 1024 = 5 epochs
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "5.0 times" in warnings[0] and "scales.cpu.train_stories" in warnings[0]
    train("ar", micro_params, rows_path, tmp_path / "short", tmp_path / "ckpt", progress=False)
    assert "warning" not in capsys.readouterr().out


def with_recipe(params, **recipe):
    return dataclasses.replace(params, train=dataclasses.replace(params.train, **recipe))


# Every ingredient of the recipe at once: dropout's draws, the weight average and the scaled init must all resume.
FULL_RECIPE = {"dropout": 0.2, "ema_decay": 0.5, "scaled_residual_init": True}


@pytest.mark.parametrize("recipe", [{}, FULL_RECIPE], ids=["default", "every-ingredient"])
def test_resume_after_interruption_gives_identical_weights(recipe, micro_params, rows_path, tmp_path):
    valid = tmp_path / "valid.npy"
    save_rows(valid, np.random.default_rng(1).integers(4, 20, size=(20, 16)).astype(np.uint16))
    micro_params = with_recipe(micro_params, **recipe)
    train("mdlm", micro_params, rows_path, tmp_path / "straight", tmp_path / "ckpt_a", progress=False,
          valid_rows_path=valid)
    stopped = train("mdlm", micro_params, rows_path, tmp_path / "resumed", tmp_path / "ckpt_b", progress=False,
                    stop_after=3, valid_rows_path=valid)  # checkpoint_every=2: the checkpoint is at step 2
    assert stopped == {"stopped_at": 3} and list((tmp_path / "ckpt_b").glob("mdlm-*.safetensors"))
    torch.manual_seed(12345)  # another process state: nothing may depend on it
    train("mdlm", micro_params, rows_path, tmp_path / "resumed", tmp_path / "ckpt_b", progress=False,
          valid_rows_path=valid)
    curves = [(tmp_path / d / "learning_curve.csv").read_text() for d in ("straight", "resumed")]
    assert curves[0] == curves[1] and len(curves[0].splitlines()) == 3  # header, steps 3 and 6
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [(tmp_path / d / "train_log.csv").read_text().splitlines() for d in ("straight", "resumed")]
    assert [line.split(",")[:3] for line in losses[0]] == [line.split(",")[:3] for line in losses[1]]


def test_same_seed_gives_identical_weights(micro_params, rows_path, tmp_path):
    for run in ("one", "two"):
        train("sdd", micro_params, rows_path, tmp_path / run, tmp_path / "ckpt", progress=False)
    a, b = (load_file(tmp_path / run / "model.safetensors") for run in ("one", "two"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_another_config_is_refused(micro_params, rows_path, tmp_path):
    train("ar", micro_params, rows_path, tmp_path / "out", tmp_path / "ckpt", progress=False, stop_after=2)
    checkpoint = next((tmp_path / "ckpt").glob("ar-*.safetensors"))
    other = dataclasses.replace(micro_params, seed=micro_params.seed + 1)
    # Even renamed into the other config's place, the checkpoint is recognised as foreign.
    fingerprint = run_fingerprint(model_spec("ar", other), other, file_sha256(rows_path))
    checkpoint.rename(checkpoint_path(tmp_path / "ckpt", "ar", {**fingerprint, "code_sha256": code_digest()}))
    with pytest.raises(CheckpointMismatch, match="different config"):
        train("ar", other, rows_path, tmp_path / "out", tmp_path / "ckpt", progress=False)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_checkpoint(micro_params, rows_path, tmp_path,
                                                                         monkeypatch):
    poison_ar_loss(monkeypatch, at_call=4)
    with pytest.raises(NonFiniteLoss, match="at step 4"):
        train("ar", micro_params, rows_path, tmp_path / "out", tmp_path / "ckpt", progress=False)
    assert list((tmp_path / "ckpt").glob("ar-*.safetensors"))  # the step-2 checkpoint survives
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_rows_of_another_length_than_seq_len_stop_before_training(micro_params, rows_path, tmp_path):

    params = dataclasses.replace(micro_params, scale=dataclasses.replace(micro_params.scale, seq_len=32))
    with pytest.raises(DataError, match="rows of 16 tokens.*seq_len is 32"):
        train("ar", params, rows_path, tmp_path / "ar", tmp_path / "ckpt", progress=False)
    assert not (tmp_path / "ar").exists() and not list((tmp_path / "ckpt").glob("*"))


def test_an_unreadable_checkpoint_is_removed_and_training_starts_over(micro_params, rows_path, tmp_path, capsys):
    train("ar", micro_params, rows_path, tmp_path / "straight", tmp_path / "ckpt0", progress=False)
    train("ar", micro_params, rows_path, tmp_path / "out", tmp_path / "ckpt", progress=False, stop_after=2)
    checkpoint = next((tmp_path / "ckpt").glob("ar-*.safetensors"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # cut short, as by a kill or a full disk
    train("ar", micro_params, rows_path, tmp_path / "out", tmp_path / "ckpt", progress=False)
    assert "removed an unreadable checkpoint" in capsys.readouterr().out
    a, b = (load_file(tmp_path / run / "model.safetensors") for run in ("straight", "out"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_other_code_is_never_resumed(micro_params, rows_path, tmp_path, capsys, monkeypatch):
    train("ar", micro_params, rows_path, tmp_path / "out", tmp_path / "ckpt", progress=False, stop_after=2)
    monkeypatch.setattr("textdiff.train.code_digest", lambda: "another code")
    train("ar", micro_params, rows_path, tmp_path / "out", tmp_path / "ckpt", progress=False)
    out = capsys.readouterr().out
    assert "resuming" not in out and "written by other code or another config" in out


def test_a_truncated_token_row_file_is_a_one_line_error(micro_params, rows_path, tmp_path):
    rows_path.write_bytes(rows_path.read_bytes()[:150])
    with pytest.raises(DataError, match="not a complete token-row file.*rerun the pack stage"):
        train("ar", micro_params, rows_path, tmp_path / "out", tmp_path / "ckpt", progress=False)



def _constrained(params, unique_rows, epochs=None):
    return dataclasses.replace(params, train=dataclasses.replace(params.train, unique_rows=unique_rows, epochs=epochs))


def test_a_data_constrained_run_trains_on_one_seeded_subset_for_every_model_whatever_ran_before(micro_params,
                                                                                              rows_path, tmp_path):
    from textdiff.train import set_up
    params = _constrained(micro_params, 10)
    seen = {}
    for order in (("ar", "mdlm", "udlm"), ("udlm", "ar", "mdlm")):  # another order, a fresh process state
        torch.manual_seed(len(seen))
        for model in order:
            run = set_up(model, params, rows_path, None, tmp_path / "ckpt", model)
            seen.setdefault(model, []).append(run.rows)
    subsets = [rows for runs in seen.values() for rows in runs]
    assert all(torch.equal(subsets[0], rows) for rows in subsets) and len(subsets[0]) == 10
    everything = {tuple(row) for row in np.load(rows_path).tolist()}
    assert {tuple(row) for row in subsets[0].tolist()} <= everything  # rows of the file, not made up
    assert not torch.equal(subsets[0], torch.from_numpy(np.load(rows_path)[:10].astype("int64")))  # not its head


def test_epochs_count_the_subset_and_set_the_steps(micro_params, rows_path, tmp_path):
    params = _constrained(micro_params, 16, epochs=6)  # 6 passes over 16 rows at batch 4: 24 steps
    summary = train("ar", params, rows_path, tmp_path / "ar", tmp_path / "ckpt", progress=False)
    assert summary["steps"] == 24 and summary["distinct_train_tokens"] == 16 * 16
    assert summary["epochs"] == pytest.approx(6.0)


def test_a_subset_larger_than_the_rows_is_a_one_line_error_before_training(micro_params, rows_path, tmp_path):
    with pytest.raises(DataError) as error:
        train("ar", _constrained(micro_params, 65), rows_path, tmp_path / "ar", tmp_path / "ckpt", progress=False)
    assert str(error.value) == (f"params.yaml: train.unique_rows=65 asks for more rows than {rows_path} holds (64); "
                                "lower it or set it to null (all rows)")
    assert not (tmp_path / "ar").exists()


def test_the_judge_ignores_a_data_constrained_runs_keys(micro_params):
    from textdiff.judge import judge_params
    judge = judge_params(_constrained(micro_params, 10, epochs=3))
    assert judge.train.unique_rows is None and judge.train.epochs is None


def test_a_wider_model_is_built_for_the_studys_models_but_not_the_judge(micro_params):
    from textdiff.judge import judge_params
    from textdiff.study import training_params
    wide = dataclasses.replace(micro_params, train=dataclasses.replace(micro_params.train, d_model=64, d_ff=128))
    spec = model_spec("mdlm", training_params(wide, "mdlm"))
    assert (spec["d_model"], spec["d_ff"], spec["n_layers"], spec["n_heads"]) == (64, 128, 1, 2)
    judge = judge_params(wide)
    assert judge.train.d_model is None and model_spec("ar", judge)["d_model"] == micro_params.scale.d_model


def test_with_a_weight_average_the_saved_weights_are_the_exponential_average_of_every_steps_weights(
        micro_params, rows_path, tmp_path, monkeypatch):
    import textdiff.train as training
    decay, trained = 0.7, []
    original = training.training_step

    def recording(run, model, *args):
        result = original(run, model, *args)
        trained.append({name: value.detach().clone() for name, value in model.state_dict().items()})
        return result

    monkeypatch.setattr(training, "training_step", recording)
    train("ar", with_recipe(micro_params, ema_decay=decay), rows_path, tmp_path / "ar", tmp_path / "ckpt",
          progress=False)
    average = dict(trained[0])
    for weights in trained[1:]:
        average = {name: decay * average[name] + (1 - decay) * weights[name] for name in average}
    saved = load_file(tmp_path / "ar" / "model.safetensors")
    assert len(trained) == micro_params.scale.steps
    assert all(torch.allclose(saved[name], average[name], atol=1e-6) for name in saved)
    assert not torch.allclose(saved["embed.weight"], trained[-1]["embed.weight"])  # not the last step's weights


def test_dropout_changes_training_and_the_judge_keeps_its_own_recipe(micro_params, rows_path, tmp_path):
    from textdiff.judge import judge_params
    for run, recipe in (("plain", {}), ("dropout", {"dropout": 0.3})):
        train("ar", with_recipe(micro_params, **recipe), rows_path, tmp_path / run, tmp_path / "ckpt", progress=False)
    a, b = (load_file(tmp_path / run / "model.safetensors") for run in ("plain", "dropout"))
    assert not torch.equal(a["embed.weight"], b["embed.weight"])
    judge = judge_params(with_recipe(micro_params, **FULL_RECIPE, weight_decay=0.0))
    assert (judge.train.dropout, judge.train.ema_decay, judge.train.scaled_residual_init) == (0.0, None, False)


def test_the_summary_states_where_a_likelihood_models_curve_leaves_the_unigram_plateau(micro_params, tmp_path):
    from textdiff.plateau import PLATEAU_MARGIN, unigram_nll
    # Each row repeats one token: no context, and a unigram model pays log 16; with it, AR soon pays little.
    rows = np.repeat(np.random.default_rng(0).integers(4, 20, size=(64, 1)), 16, axis=1).astype(np.uint16)
    save_rows(tmp_path / "train.npy", rows)
    save_rows(tmp_path / "valid.npy", rows[:20])
    params = dataclasses.replace(micro_params, scale=dataclasses.replace(micro_params.scale, steps=60, lr=0.01))
    for model in ("ar", "sdd"):
        summary = train(model, params, tmp_path / "train.npy", tmp_path / model, tmp_path / "ckpt", progress=False,
                        valid_rows_path=tmp_path / "valid.npy")
        if model == "sdd":  # a denoising cross-entropy: no unigram level to leave
            assert "plateau_exit_step" not in summary
            continue
        curve = np.genfromtxt(tmp_path / model / "learning_curve.csv", delimiter=",", names=True)
        level = unigram_nll(rows, rows[:20], 300)  # the training rows' frequencies on the validation rows
        assert summary["unigram_nll"] == pytest.approx(level, abs=1e-5) and level > math.log(10)
        below = [int(step) for step, nll in zip(curve["step"], curve["valid_nll"])
                 if nll < summary["unigram_nll"] - PLATEAU_MARGIN]
        assert below and summary["plateau_exit_step"] == below[0] < 60
        assert summary["plateau_exit_tokens"] == below[0] * 4 * 16


def test_epochs_that_whole_steps_cannot_train_are_refused_before_training(micro_params, micro_raw, rows_path,
                                                                          tmp_path):
    from textdiff.errors import ParamError
    from textdiff.study import parse_params
    # 1 row x 4 epochs at batch 4 is one step, which trains 4 passes... of a 1-row subset: 4 epochs, fine; but
    # 3 rows x 1 epoch at batch 4 is one step of 4 rows: 1.33 epochs, not what was asked.
    with pytest.raises(ParamError) as error:
        train("ar", _constrained(micro_params, 3, epochs=1), rows_path, tmp_path / "ar", tmp_path / "ckpt",
              progress=False)
    assert str(error.value) == ("params.yaml: train.epochs=1 of 3 rows in batches of scales.cpu.batch_size=4 would "
                                "train 1 step, which is 1.33 epochs; raise train.epochs or train.unique_rows")
    assert not (tmp_path / "ar").exists()
    micro_raw["train"].update(unique_rows=3, epochs=1)
    with pytest.raises(ParamError, match="would train 1 step, which is 1.33 epochs"):
        parse_params(micro_raw)  # check_params says so before any stage starts


def test_advice_on_steps_names_the_key_that_set_them(micro_params, rows_path, tmp_path, capsys):
    from textdiff.train import cpu_time_notice, steps_key
    # All 64 rows for 400 epochs: 6,400 steps, asked for by train.epochs, not by the scale.
    params = _constrained(micro_params, None, epochs=400)
    train("ar", params, rows_path, tmp_path / "ar", tmp_path / "ckpt", progress=False, stop_after=1)
    warning = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:"))
    assert warning.endswith("over 4 epochs a model overfits: lower train.epochs")
    assert steps_key(micro_params, "ar", "ar") == "scales.cpu.steps"
    assert steps_key(micro_params, "ar", "judge") == "judge.steps_factor"
    factor = with_recipe(micro_params, steps_factor={**micro_params.train.steps_factor, "ar": 4})
    assert steps_key(factor, "ar", "ar") == "train.steps_factor.ar"
    notice = cpu_time_notice("ar", torch.device("cpu"), 0.04, 1_000_000, "train.epochs")
    assert notice == ("notice: ar on the CPU takes 0.04 s a step, about 11 h for its 1,000,000 steps left: lower "
                      "train.epochs, or train on a GPU (train.device: cuda)")
