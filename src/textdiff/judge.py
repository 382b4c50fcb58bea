"""The fixed judge that scores every model's samples: an AR model trained once, in its own stage,
on the same training rows as the study's models but for `judge.steps_factor` times as many steps.

The study's own AR model is not used as the judge: it would score its own samples and flatter the AR row.
"""
from __future__ import annotations

import dataclasses

import torch

from .data import uniform_rows
from .sample_quality import sample_quality


#: How the judge trains, apart from the recipe the study's models train with (TrainParams' ingredients).
JUDGE_RECIPE = {"weight_decay": 0.0, "dropout": 0.0, "ema_decay": None, "scaled_residual_init": False}


def judge_params(params):
    """The study's params with the judge's training budget and its own seed (so that the study's seed runs
    are all judged by the same judge)."""
    scale = params.scale
    steps = scale.steps * params.judge.steps_factor
    # The judge trains on every row for its own steps, whatever a data-constrained run sets, and with its own
    # recipe whatever the study's models adopt, so that the instrument does not change with what it measures.
    train = dataclasses.replace(params.train, unique_rows=None, epochs=None, d_model=None, d_ff=None, **JUDGE_RECIPE)
    return dataclasses.replace(params, scale=dataclasses.replace(scale, steps=steps), seed=params.judge.seed,
                               train=train)


def reference_quality(judge, valid_rows: torch.Tensor, num_samples: int, length: int) -> dict:
    """The sample-quality measures on real text: the first `length` tokens of `num_samples` validation rows
    drawn uniformly from the whole split (the same rows for every run)."""
    windows = uniform_rows(valid_rows, num_samples)[:, :length]
    return {"model": "reference", "num_samples": len(windows), "length": length,
            "drawn_from_rows": len(valid_rows), **sample_quality(windows, judge)}
