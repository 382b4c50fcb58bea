"""The small interface every generator of the study implements.

The trainer calls `training_loss`, the evaluator calls `validation_sums` and
`generate`; neither needs to know which model it holds.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class StudyModel(nn.Module):
    #: What `validation_sums`' NLL is: "exact", "bound" or "denoising cross-entropy".
    nll_kind: ClassVar[str]
    #: What `validation_sums`' accuracy counts, in words for the report.
    accuracy_definition: ClassVar[str]
    #: Backbone positions per token (SDD: its k candidates), for FLOP estimates.
    positions_per_token: int = 1

    def training_loss(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Scalar loss to minimise for a batch of token rows [B, L]."""
        raise NotImplementedError

    @torch.no_grad()
    def validation_sums(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Sums over a batch: nll (nats), tokens (NLL denominator), correct, predicted (accuracy denominator)."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(self, batch_size: int, length: int, generator: torch.Generator, **sampling) -> torch.Tensor:
        """Token ids [batch_size, length] drawn from the model."""
        raise NotImplementedError

    def on_training_progress(self, progress: float):
        """Called by the trainer before each step with the fraction of training done (for curricula)."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def sample_categorical(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row of probs [..., V] (need not be normalised), by inverse CDF in float64.

    float32 categorical/Gumbel sampling truncates small probabilities and lowers
    the effective temperature (Zheng et al. 2024), so every sampler of the study
    draws through here.
    """
    probs = probs.to(torch.float64)
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(probs.shape[:-1] + (1,), dtype=torch.float64, generator=generator, device=probs.device)
    index = torch.searchsorted(cdf, u * cdf[..., -1:], right=True)
    return index.squeeze(-1).clamp_(max=probs.shape[-1] - 1)
