import copy
import os
from pathlib import Path

import pytest
import torch
import yaml

from textdiff.study import parse_params

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "tinystories"

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def micro_params_dict() -> dict:
    """The committed params.yaml shrunk to a size that trains in well under a second per model."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw["data"].update(valid_stories=30)
    raw["scales"]["cpu"].update(vocab_size=300, seq_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64,
                                batch_size=4, steps=6, warmup_steps=2, train_stories=200)
    raw["train"].update(checkpoint_every=2, curve_every_steps=3, curve_rows=8)
    raw["evaluate"].update(max_valid_rows=8, num_samples=2, sample_length=8, timing_runs=1)
    raw["sample"]["mdlm"]["steps"] = 4
    raw["sample"]["sdd"]["steps"] = 4
    return raw


@pytest.fixture
def micro_raw():
    return micro_params_dict()


@pytest.fixture
def micro_params():
    return parse_params(micro_params_dict())


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"offline TinyStories copy not found at {SHARED_DATA}")
    return SHARED_DATA


def poison_ar_loss(monkeypatch, at_call: int) -> list:
    """Makes AR's training loss NaN at its at_call-th call (from 1); returns the list its calls are counted in."""
    from textdiff.models.ar import AutoregressiveLM

    original, calls = AutoregressiveLM.training_loss, []

    def poisoned(self, rows, generator):
        calls.append(1)
        loss = original(self, rows, generator)
        return loss * float("nan") if len(calls) == at_call else loss
    monkeypatch.setattr(AutoregressiveLM, "training_loss", poisoned)
    return calls
