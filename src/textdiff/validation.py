"""A model's validation figure over rows, with its standard error: what evaluation, the judge and the
learning curves all report.

A model's `validation_sums` gives, per row, its NLL and token count and the counts behind each of its
accuracies; the figures here are ratios of sums over rows (NLL per token, hits per prediction), and
each comes with the standard error of that ratio over rows, so that a difference between two runs can
be read against it.
"""
from __future__ import annotations

import math
from collections import defaultdict

import torch
from tqdm import tqdm

from .models import PERPLEXITY_MEANING


def ratio_and_standard_error(numerator: torch.Tensor, denominator: torch.Tensor) -> tuple[float, float | None]:
    """sum(a) / sum(b) over rows, and its standard error over rows (the ratio estimator's, by the delta
    method: sqrt(sum((a - R b)^2) / (n (n - 1))) / mean(b)); None with fewer than two rows."""
    a, b = numerator.double(), denominator.double()
    ratio = (a.sum() / b.sum()).item() if b.sum() > 0 else 0.0
    n = len(a)
    if n < 2 or b.sum() == 0:
        return ratio, None
    return ratio, math.sqrt(((a - ratio * b) ** 2).sum().item() / (n * (n - 1))) / b.mean().item()


def per_row_sums(model, rows: torch.Tensor, batch_size: int, generator, progress: bool = True,
                 **options) -> dict[str, torch.Tensor]:
    """model.validation_sums over all rows in batches, concatenated: each key a tensor [N] on the CPU."""
    columns = defaultdict(list)
    for start in tqdm(range(0, len(rows), batch_size), desc="validate", leave=False, dynamic_ncols=True,
                      disable=not progress):
        for key, value in model.validation_sums(rows[start:start + batch_size], generator, **options).items():
            columns[key].append(value.detach().double().cpu())
    return {key: torch.cat(parts) for key, parts in columns.items()}


def _rounded(value: float | None, digits: int):
    return None if value is None else round(value, digits)


def validation_metrics(model, rows: torch.Tensor, batch_size: int, generator, progress: bool = True,
                       **options) -> dict:
    """The validation NLL per token, perplexity and every accuracy of the model over rows, each with its
    standard error over rows (`<figure>_standard_error`; the perplexity's by the delta method)."""
    sums = per_row_sums(model, rows, batch_size, generator, progress, **options)
    nll, nll_se = ratio_and_standard_error(sums["nll"], sums["tokens"])
    metrics = {
        "nll_per_token": round(nll, 5),
        "nll_standard_error": _rounded(nll_se, 5),
        "perplexity": round(math.exp(nll), 3),
        "perplexity_standard_error": _rounded(None if nll_se is None else math.exp(nll) * nll_se, 3),
        "perplexity_kind": model.nll_kind,
        "perplexity_meaning": PERPLEXITY_MEANING[model.nll_kind],
    }
    for name, (hits, predictions) in model.validation_accuracies.items():
        accuracy, accuracy_se = ratio_and_standard_error(sums[hits], sums[predictions])
        metrics[name] = round(accuracy, 5)
        metrics[f"{name}_standard_error"] = _rounded(accuracy_se, 5)  # e.g. accuracy_standard_error
    metrics.update(accuracy_definition=model.accuracy_definition, valid_rows=len(rows),
                   valid_tokens=int(sums["tokens"].sum().item()))
    return metrics
