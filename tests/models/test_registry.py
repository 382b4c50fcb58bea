"""The model registry: a new model is one class (here a throw-away one defined in this file), and the
library's train, evaluate and report functions take it without any change to a library module."""
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from textdiff import models
from textdiff.checks import integer, section
from textdiff.data import save_rows
from textdiff.evaluate import evaluate, write_outputs
from textdiff.flops import transformer_training_flops
from textdiff.io import write_json
from textdiff.models import StudyModel, register, sample_categorical
from textdiff.report import build_report
from textdiff.study import parse_params
from textdiff.tokenizer import train_tokenizer
from textdiff.train import train
from tests.conftest import micro_params_dict


@dataclass(frozen=True)
class BigramParams:
    width: int


class BigramLM(StudyModel):
    """Next token from the previous token alone: an embedding and a head, no backbone."""
    name = "bigram"
    display_name = "Bigram"
    loss_meaning = "next-token cross-entropy from the previous token"
    nll_kind = "exact"
    accuracy_definition = "next-token argmax accuracy"
    Params = BigramParams

    @classmethod
    def parse_params(cls, raw, vocab_size):
        return BigramParams(integer(section(raw, "bigram"), "width", "bigram."))

    def __init__(self, vocab_size, backbone, width):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.head = nn.Linear(width, vocab_size)

    def _logits(self, rows):
        previous = torch.cat((torch.ones_like(rows[:, :1]), rows[:, :-1]), dim=1)
        return self.head(self.embed(previous)).float()

    def training_loss(self, rows, generator):
        return F.cross_entropy(self._logits(rows).flatten(0, 1), rows.flatten())

    @torch.no_grad()
    def validation_sums(self, rows, generator=None):
        logits = self._logits(rows)
        nll = F.cross_entropy(logits.flatten(0, 1), rows.flatten(), reduction="none").view(rows.shape)
        tokens = torch.full((len(rows),), rows.shape[1])
        return {"nll": nll.sum(1), "tokens": tokens, "correct": (logits.argmax(-1) == rows).sum(1),
                "predicted": tokens}

    @torch.no_grad()
    def generate(self, batch_size, length, generator, temperature=1.0):
        tokens = torch.ones((batch_size, 1), dtype=torch.long, device=self.device)
        for _ in range(length):
            probs = torch.softmax(self.head(self.embed(tokens[:, -1])).double() / temperature, dim=-1)
            tokens = torch.cat((tokens, sample_categorical(probs, generator)[:, None]), dim=1)
        return tokens[:, 1:]

    def training_flops_per_row(self, seq_len):
        return 6.0 * self.head.weight.numel() * seq_len


@pytest.fixture
def with_bigram():
    register(BigramLM)  # for this test only
    raw = micro_params_dict()
    raw["bigram"] = {"width": 8}
    raw["train"]["lr_factor"]["bigram"] = 1.0
    raw["train"]["steps_factor"]["bigram"] = 1
    raw["sample"]["bigram"] = {"temperature": 1.0, "sweep": True}
    try:
        yield parse_params(raw)
    finally:
        models.MODELS.pop("bigram")


def test_every_committed_model_has_all_its_pieces():
    for model in models.MODELS.values():
        assert register(model) is model  # register() checks every piece
        assert model.display_name and model.loss_meaning and model.accuracy_definition


@pytest.mark.parametrize("missing", ["display_name", "loss_meaning", "Params", "generate", "training_flops_per_row"])
def test_a_model_that_lacks_a_piece_is_refused_when_registered(missing):
    pieces = {key: value for key, value in vars(BigramLM).items() if key != missing}
    lacking = type("Lacking", (StudyModel,), pieces)
    with pytest.raises(TypeError, match=f"Lacking lacks {missing}"):
        register(lacking)


def test_a_fourth_model_trains_evaluates_and_is_reported(with_bigram, tmp_path):
    params = with_bigram
    assert params.models["bigram"] == BigramParams(8) and "bigram" in models.model_names()
    rows = np.random.default_rng(0).integers(4, 40, size=(64, 16)).astype(np.uint16)
    save_rows(tmp_path / "train.npy", rows)
    save_rows(tmp_path / "valid.npy", rows[:8])
    tokenizer = train_tokenizer(["once upon a time there was a cat"] * 20, params.scale.vocab_size)
    train("ar", params, tmp_path / "train.npy", tmp_path / "models" / "judge", tmp_path / "ckpt", progress=False,
          label="judge", valid_rows_path=tmp_path / "valid.npy")
    summary = train("bigram", params, tmp_path / "train.npy", tmp_path / "models" / "bigram", tmp_path / "ckpt",
                    progress=False, valid_rows_path=tmp_path / "valid.npy")
    assert summary["parameters"] == 300 * 8 + 8 * 300 + 300  # embedding, head weights and bias
    metrics, samples, sweep = evaluate(tmp_path / "models" / "bigram", tmp_path / "valid.npy", tokenizer, params,
                                       "bigram", tmp_path / "models" / "judge")
    assert metrics["perplexity_kind"] == "exact" and metrics["valid_tokens"] == 8 * 16
    assert metrics["sample_judge_perplexity"] > 1 and "diagnostics" not in metrics
    assert {row["temperature"] for row in sweep} == {1.0, *params.evaluate.sweep_temperatures}
    write_outputs(tmp_path / "eval" / "bigram", metrics, samples, sweep)

    # What the rest of the pipeline would have written, at its smallest.
    write_json(tmp_path / "data" / "prepared" / "manifest.json",
               {"train_stories": 1, "valid_stories": 1, "source": "test", "validation": "test", "sha256": "0" * 64})
    write_json(tmp_path / "data" / "packed" / "stats.json",
               {"vocab_size": 300, "seq_len": 16, "train_tokens": 1024, "valid_tokens": 128, "train_rows": 64,
                "valid_rows": 8, "unigram_valid_perplexity": 40.0})
    write_json(tmp_path / "eval" / "reference" / "metrics.json",
               {"num_samples": 2, "length": 8, "judge_perplexity": 30.0, "entropy": 2.0, "distinct_1": 0.5,
                "distinct_2": 0.6, "distinct_3": 0.7, "repeat_4gram_rate": 0.0, "judge_valid_perplexity": 30.0,
                "judge_steps": 18})
    for stage in ("prepare", "tokenizer", "pack", "train@bigram", "judge", "evaluate@bigram"):
        write_json(tmp_path / "timings" / f"{stage}.json", {"wall_s": 1.0})
    write_json(tmp_path / "eval" / "experiments" / "sdd_variants.json",
               {"group": "sdd_variants", "models": ["sdd"], "runs": {}, "command": "", "not_run": []})
    build_report(tmp_path / "eval", tmp_path / "models", tmp_path / "data", tmp_path / "reports", ["bigram"],
                 tmp_path / "timings", tmp_path / "eval" / "experiments")
    report = (tmp_path / "reports" / "report.md").read_text()
    assert "| Bigram |" in report and "**Bigram**: perplexity = exp(validation NLL per token)" in report
    assert "Bigram: next-token cross-entropy from the previous token" not in report  # that is the plot's legend
    assert (tmp_path / "reports" / "training_loss.png").read_bytes()[:4] == b"\x89PNG"
