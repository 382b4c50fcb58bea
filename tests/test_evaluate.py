"""Which rows evaluation scores: the whole validation split, or a seeded uniform sample of it, never its head."""
import dataclasses

import numpy as np
import torch

from textdiff import evaluate as evaluation
from textdiff.data import save_rows, uniform_rows
from textdiff.judge import reference_quality
from textdiff.tokenizer import train_tokenizer
from textdiff.train import train


def scored_rows(monkeypatch, params, tmp_path, valid: np.ndarray) -> torch.Tensor:
    """The rows evaluate() hands to the validation figure."""
    save_rows(tmp_path / "valid.npy", valid)
    seen = []
    real = evaluation.validation_metrics

    def spy(model, rows, *args, **kwargs):
        seen.append(rows.clone())
        return real(model, rows, *args, **kwargs)
    monkeypatch.setattr(evaluation, "validation_metrics", spy)
    tokenizer = train_tokenizer(["once upon a time there was a cat"] * 20, params.scale.vocab_size)
    metrics, _, _ = evaluation.evaluate(tmp_path / "ar", tmp_path / "valid.npy", tokenizer, params, "ar",
                                        tmp_path / "ar")
    assert metrics["valid_rows"] == len(seen[0]) and metrics["valid_rows_in_split"] == len(valid)
    return seen[0]


def test_evaluation_scores_the_whole_split_or_a_seeded_uniform_sample(monkeypatch, micro_params, tmp_path):
    rows = np.random.default_rng(0).integers(4, 300, size=(64, 16)).astype(np.uint16)
    save_rows(tmp_path / "train.npy", rows)
    train("ar", micro_params, tmp_path / "train.npy", tmp_path / "ar", tmp_path / "ckpt", progress=False)
    valid = np.random.default_rng(1).integers(4, 300, size=(40, 16)).astype(np.uint16)
    whole = dataclasses.replace(micro_params, evaluate=dataclasses.replace(micro_params.evaluate, max_valid_rows=None))
    assert torch.equal(scored_rows(monkeypatch, whole, tmp_path, valid), torch.from_numpy(valid.astype("int64")))
    sample = scored_rows(monkeypatch, micro_params, tmp_path, valid)  # max_valid_rows = 8 of 40
    assert torch.equal(sample, torch.from_numpy(uniform_rows(valid, 8).astype("int64")))
    assert not torch.equal(sample, torch.from_numpy(valid[:8].astype("int64")))  # not the head of the file


def test_the_real_text_reference_is_drawn_from_the_whole_split(monkeypatch):
    from textdiff import judge as judging

    seen = []
    monkeypatch.setattr(judging, "sample_quality", lambda windows, judge: seen.append(windows) or {})
    valid = torch.arange(200)[:, None] * torch.ones(1, 16, dtype=torch.long)  # every token of row i is i
    reference = reference_quality(None, valid, 10, 8)
    assert reference["drawn_from_rows"] == 200 and reference["num_samples"] == 10
    assert torch.equal(seen[0], uniform_rows(valid, 10)[:, :8]) and seen[0][:, 0].max() > 100  # not the head
