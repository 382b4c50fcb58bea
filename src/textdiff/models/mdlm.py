"""MDLM: masked discrete diffusion as Sahoo et al. (2024) do it.

Forward process: every token is replaced by MASK independently with
probability 1 - alpha_t. SUBS parameterisation: the network never predicts
MASK, and an unmasked position carries its token over, so only masked
positions cost anything. Loss: the continuous-time NELBO
    sum over masked positions of w(t) * -log p(x_0 | x_t),  w(t) = -alpha'(t) / (1 - alpha(t)),
per token, with t drawn low-discrepancy over the batch (or, with `mdlm.loss: unweighted`, the plain mean
cross-entropy of the masked positions, w(t) dropped: a recipe ingredient; validation still reports the NELBO).
The output head runs at
masked positions only (carry-over is exact, so nothing else is scored). Sampling
is ancestral from all-MASK, with the network output reused while no token changes;
options (each off by default): confidence- or margin-ordered unmasking, ReMDM
remasking, nucleus sampling.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from ..backbone import BackboneConfig
from ..checks import choice, number
from ..tokenizer import SPECIAL_IDS
from . import register
from .base import (DiffusionModel, DiffusionParams, ModelCard, averaged_over_t_draws, low_discrepancy_times, nucleus,
                   sample_categorical, sampling_steps, top_p_option)


ORDERS = ("ancestral", "confidence", "margin")  # which masked positions a step unmasks
REMASKING = ("cap", "rescale")  # ReMDM's strategies for sigma_t
LOSSES = ("nelbo", "unweighted")  # what training minimises; validation reports the NELBO either way


@dataclasses.dataclass(frozen=True)
class MaskedDiffusionParams(DiffusionParams):
    loss: str = "nelbo"  # a key of LOSSES


@register
class MaskedDiffusionLM(DiffusionModel):
    card = ModelCard("mdlm", "MDLM", loss_meaning="NELBO per token (masked cross-entropy weighted by 1/t)",
                     nll_kind="bound", accuracy_definition="argmax accuracy on masked tokens at the validation t draws")
    benchmark_cases = {"cached": {"use_cache": True}, "uncached": {"use_cache": False}}
    Params = MaskedDiffusionParams

    @classmethod
    def parse_params(cls, raw, vocab_size):
        shared = super().parse_params(raw, vocab_size)
        return MaskedDiffusionParams(**dataclasses.asdict(shared),
                                     loss=choice(raw[cls.name], "loss", f"{cls.name}.", LOSSES))

    @classmethod
    def parse_sampling(cls, group, prefix):
        remask = choice(group, "remask", prefix, ("none",) + REMASKING)
        return {**super().parse_sampling(group, prefix), "steps": sampling_steps(group, prefix),
                "order": choice(group, "order", prefix, ORDERS), "remask": None if remask == "none" else remask,
                "remask_eta": number(group, "remask_eta", prefix, 0, 1), "top_p": top_p_option(group, prefix)}

    def __init__(self, vocab_size: int, backbone: BackboneConfig, tie_embeddings: bool, schedule: str, t_eps: float,
                 loss: str = "nelbo", mask_id: int = SPECIAL_IDS["mask"]):
        super().__init__(vocab_size, backbone, tie_embeddings, schedule, t_eps)
        self.loss, self.mask_id = loss, mask_id

    def training_loss(self, rows, generator):
        """The NELBO per token (DiffusionModel's), or with loss "unweighted" the mean cross-entropy over the batch's
        masked positions: every masked token weighs the same, where the NELBO weighs a masked token of a row at
        time t by w(t) (1/t for the log-linear schedule), large on the few masks of rows at small t: the same
        expectation per row, a noisier gradient."""
        if self.loss == "nelbo":
            return super().training_loss(rows, generator)
        t = low_discrepancy_times(rows.shape[0], self.t_eps, generator, rows.device)
        _, log_probs, masked = self.nelbo_terms(rows, t, generator)
        return -log_probs.gather(-1, rows[masked][:, None]).sum() / masked.sum().clamp(min=1)

    def denoiser_log_probs(self, noisy: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """log p_theta(x_0 | x_t) [M, V] at the M positions where `at` [B, L] is true (masked ones), in
        row-major order. SUBS: MASK gets no mass, and an unmasked position carries its token over with
        probability 1, so nothing needs computing there: the head and the log-softmax (about 40% of a
        forward pass's multiply-adds at the CPU default) run at the masked positions only."""
        logits = self.head(self.hidden(noisy)[at]).float()
        logits[:, self.mask_id] = -math.inf
        return logits.log_softmax(dim=-1)

    def add_noise(self, rows: torch.Tensor, t: torch.Tensor, generator) -> torch.Tensor:
        mask_prob = 1 - self.schedule.alpha(t)
        masked = torch.rand(rows.shape, generator=generator, device=rows.device) < mask_prob[:, None]
        return torch.where(masked, torch.full_like(rows, self.mask_id), rows)

    def nelbo_terms(self, rows, t, generator):
        """Per-row NELBO [B] (nats, summed over positions) at times t [B]; the denoiser's log-probs [M, V]
        at the masked positions, and where those are [B, L]. An unmasked position costs nothing (SUBS
        carries it over exactly), so only masked positions are scored."""
        noisy = self.add_noise(rows, t, generator)
        masked = noisy == self.mask_id
        log_probs = self.denoiser_log_probs(noisy, masked)
        masked_nll = -log_probs.gather(-1, rows[masked][:, None]).squeeze(-1)
        token_nll = torch.zeros(rows.shape, dtype=masked_nll.dtype, device=rows.device).masked_scatter(
            masked, masked_nll)
        return self.schedule.weight(t) * token_nll.sum(dim=1), log_probs, masked

    @torch.no_grad()
    def validation_sums(self, rows, generator, t_draws: int = 4):
        """Per row: the NELBO averaged over t_draws stratified t, an upper bound on the NLL (so PPL is '<='),
        and the argmax accuracy at the masked positions of those draws."""
        def terms(t):
            nelbo, log_probs, masked = self.nelbo_terms(rows, t, generator)
            hits = torch.zeros_like(masked).masked_scatter(masked, log_probs.argmax(-1) == rows[masked])
            return nelbo, {"correct": hits.sum(1), "predicted": masked.sum(1)}
        return averaged_over_t_draws(rows, t_draws, self.t_eps, generator, terms)

    @torch.no_grad()
    def generate(self, batch_size, length, generator, steps: int = 64, temperature: float = 1.0,
                 use_cache: bool = True, order: str = "ancestral", remask: str | None = None,
                 remask_eta: float = 0.0, top_p: float | None = None):
        """From all-MASK at t=1 to t=0 in `steps` steps; tokens drawn (float64) from p_theta(x_0 | x_t) at
        `temperature`, within its nucleus `top_p` where set.

        order "ancestral" (the default) draws from q(x_s | x_t): a masked position unmasks with probability
        (alpha_s - alpha_t) / (1 - alpha_t). The draw is split into "does it unmask" and "which token", the
        same distribution (SUBS gives MASK no mass) with tokens drawn only where needed; with the cache, the
        network runs only when some position unmasks, its output reused until the input changes.
        order "confidence" / "margin" (MaskGIT; LLaDA's low-confidence remasking) draws a token at every
        masked position and unmasks, per row, those the network is surest of (the drawn token's probability;
        or the gap between its two most probable tokens), as many as keep the masks on schedule:
        round(length * (1 - alpha_s)) remain at s.
        remask "cap" / "rescale" (ReMDM, Wang et al. 2025) masks a placed token again with probability sigma_t
        (min(remask_eta, sigma_max) or remask_eta * sigma_max, sigma_max = min(1, (1 - alpha_s) / alpha_t)),
        and the ancestral unmasking probability becomes (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t), so
        the masks stay on schedule in expectation, and none remain at t = 0 (sigma_0 = 0). Without remasking
        a placed token never changes.
        """
        tokens = torch.full((batch_size, length), self.mask_id, dtype=torch.long, device=self.device)
        times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64, device=self.device)
        probs = None  # the denoiser's distribution at the positions masked when it last ran, row-major
        for t, s in zip(times[:-1], times[1:]):
            alpha_t, alpha_s = self.schedule.alpha(t), self.schedule.alpha(s)
            sigma = remasking_probability(remask, remask_eta, alpha_t, alpha_s)
            masked = tokens == self.mask_id
            if sigma > 0:
                again = ~masked & (torch.rand(tokens.shape, dtype=torch.float64, generator=generator,
                                              device=self.device) < sigma)
                if again.any():
                    tokens, probs = tokens.masked_fill(again, self.mask_id), None
            elif not masked.any():
                break
            if order != "ancestral":
                tokens = self._unmask_surest(tokens, round(length * (1 - alpha_s.item())), order, temperature,
                                             top_p, generator)
                continue
            unmask_prob = (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)
            u = torch.rand(tokens.shape, dtype=torch.float64, generator=generator, device=self.device)
            unmask = masked & (u < unmask_prob)
            if probs is None or not use_cache:
                if use_cache and not unmask.any():
                    continue  # nothing changes, and nothing needs the network
                probs = nucleus(torch.softmax(self.denoiser_log_probs(tokens, tokens == self.mask_id).double()
                                              / temperature, dim=-1), top_p)
            if unmask.any():
                # probs has a row per position masked when it ran (unchanged since): pick the unmasking ones
                tokens = tokens.masked_scatter(unmask, sample_categorical(probs[unmask[tokens == self.mask_id]],
                                                                          generator))
                probs = None  # the network's input changed: its output is stale
        return tokens

    def _unmask_surest(self, tokens, masks_left: int, order: str, temperature: float, top_p, generator):
        """tokens with, per row, all but masks_left of its masked positions unmasked: those whose drawn token
        the network is surest of (order "confidence": its probability; "margin": top-1 minus top-2)."""
        masked = tokens == self.mask_id
        unmask_count = masked.sum(1) - masks_left
        if not (unmask_count > 0).any():
            return tokens
        probs = nucleus(torch.softmax(self.denoiser_log_probs(tokens, masked).double() / temperature, dim=-1), top_p)
        probs = probs / probs.sum(-1, keepdim=True)
        drawn = sample_categorical(probs, generator)
        if order == "confidence":
            sureness = probs.gather(-1, drawn[:, None]).squeeze(-1)
        else:
            top2 = probs.topk(2, dim=-1).values
            sureness = top2[:, 0] - top2[:, 1]
        grid = torch.full(tokens.shape, -math.inf, dtype=torch.float64, device=tokens.device)
        grid = grid.masked_scatter(masked, sureness)
        rank = grid.argsort(dim=1, descending=True, stable=True).argsort(dim=1)  # 0: the surest position
        unmask = masked & (rank < unmask_count[:, None])
        candidates = torch.zeros_like(tokens).masked_scatter(masked, drawn)
        return torch.where(unmask, candidates, tokens)


def remasking_probability(strategy: str | None, eta: float, alpha_t, alpha_s) -> float:
    """ReMDM's sigma_t for a step from t to s (0 without remasking): "cap" min(eta, sigma_max), "rescale"
    eta * sigma_max, with sigma_max = min(1, (1 - alpha_s) / alpha_t), the most that keeps the unmasking
    probability a probability."""
    if strategy is None or eta == 0:
        return 0.0
    sigma_max = 1.0 if alpha_t <= 0 else min(1.0, float((1 - alpha_s) / alpha_t))
    return min(eta, sigma_max) if strategy == "cap" else eta * sigma_max
