"""The unigram plateau: where a likelihood model's learning curve starts to use context.

A model that uses no context scores the NLL of the unigram model of the training tokens. Diffusion models sit at
that level for a while before they learn to read their context, and when they leave it is partly chance, so each
run's summary states when it left (train.run_summary), and the report compares runs by it (analysis.recipe_effect).
Kept apart from analysis.py, whose rules change with the report, because training imports it.
"""
from __future__ import annotations

import math

import numpy as np

from .data import unigram_perplexity

#: How far below the unigram model's NLL a learning curve must fall to count as using context (nats per token).
PLATEAU_MARGIN = 0.1


def unigram_nll(train_rows: np.ndarray, rows: np.ndarray, vocab_size: int) -> float:
    """NLL per token (nats) of `rows` under the training rows' token frequencies, add-1/2 smoothed: the level a
    model reaches without using any context."""
    return math.log(unigram_perplexity(train_rows, rows, vocab_size))


def plateau_exit(curve: list[dict], unigram_nll: float) -> dict:
    """When a likelihood model leaves the unigram plateau: the first learning-curve point (step, tokens) whose
    validation figure (an exact NLL or a bound on it) is more than PLATEAU_MARGIN below the NLL of the unigram model
    of the training tokens, which uses no context. A bound below that level means the model uses context, since the
    true NLL is lower still. {"step": None, "last_step": ...} where the curve never gets there."""
    for point in curve:
        if point["valid_nll"] < unigram_nll - PLATEAU_MARGIN:
            return {"step": int(point["step"]), "tokens": int(point["tokens"]), "last_step": int(curve[-1]["step"])}
    return {"step": None, "tokens": None, "last_step": int(curve[-1]["step"]) if curve else 0}
