"""SDD (Sparse Distribution Diffusion), faithful to the seed project by default.

Every position holds k (probability, token) candidates. Training noises a
clean candidate state (true token in slot 0, k-1 random tokens) by flattening
the probabilities towards 1/V ("coarse-grained": at full noise each candidate
has 1/V, so the k probabilities sum to less than 1) and by adding Gaussian
noise to the candidate embeddings; candidate indices are never changed. The
network attends over all L*k candidates with a key bias lambda * log p, reads
each position out with a learned query over its k candidates, and is trained
with cross-entropy against the true token. Its loss is a denoising
cross-entropy, not a likelihood.

Sampling starts from k uniformly random tokens at 1/V each and, for t from 1
to 0, replaces the state by the top-k (probability, token) pairs of
softmax(f(state, t) / temperature), unrenormalised and without re-noising.

Variants (params; each default is the seed's behaviour), to test why SDD repeats:
- training noise: a linear schedule; index swapping (the true token replaced
  by a random one with probability sigma(t), or with probability one minus its
  own noised probability); candidates shuffled across slots;
- sampler: a temperature moving linearly in t; k candidates drawn without
  replacement from the softmax instead of the top k; weights renormalised to
  sum to 1; the state re-flattened by sigma(t) before each step, as in training.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..backbone import Backbone, BackboneConfig, init_weights, sinusoidal_embedding
from .base import StudyModel

MIN_PROB = 1e-12  # keeps log p finite for candidates whose softmax probability underflowed


def noise_level(t: torch.Tensor, schedule: str = "cosine") -> torch.Tensor:
    """sigma(t), 0 at t=0 and 1 at t=1: 1 - cos(pi t / 2) (the seed's) or t."""
    return 1 - torch.cos(math.pi / 2 * t) if schedule == "cosine" else t


def k_curriculum(k: int, progress: float) -> int:
    """k doubles 1, 2, 4, ... up to k over equal shares of training (the seed's curriculum)."""
    stages = [2**i for i in range(int(math.log2(k)) + 1)]
    if stages[-1] != k:
        stages.append(k)
    return stages[min(len(stages) - 1, int(progress * len(stages)))]


class SparseDistributionLM(StudyModel):
    nll_kind = "denoising cross-entropy"
    accuracy_definition = "argmax accuracy at all positions of a training-noised candidate state, t ~ U(0, 1)"

    def __init__(self, vocab_size: int, backbone: BackboneConfig, k: int, embed_dim: int,
                 clean_other_prob: float, embed_noise_std: float, use_k_curriculum: bool,
                 schedule: str = "cosine", index_swap: str = "none", shuffle_slots: bool = False):
        super().__init__()
        self.vocab_size, self.k = vocab_size, k
        self.clean_other_prob, self.embed_noise_std = clean_other_prob, embed_noise_std
        self.schedule, self.index_swap, self.shuffle_slots = schedule, index_swap, shuffle_slots
        self.use_k_curriculum = use_k_curriculum
        self.train_k = 1 if use_k_curriculum else k
        d_model = backbone.d_model
        self.token_embed = nn.Embedding(vocab_size, embed_dim)
        self.prob_mlp = nn.Sequential(nn.Linear(1, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))
        self.in_proj = nn.Linear(embed_dim, d_model)
        self.time_mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.backbone = Backbone(backbone)
        self.attn_bias_scale = nn.Parameter(torch.tensor(1.0))  # lambda of the key bias lambda * log p
        self.readout_query = nn.Parameter(torch.zeros(d_model))
        self.readout_bias_scale = nn.Parameter(torch.tensor(1.0))
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        init_weights(self)
        nn.init.normal_(self.readout_query, std=0.02)
        self.register_buffer("flat_index_code", sinusoidal_embedding(
            torch.arange(backbone.max_positions * k), d_model), persistent=False)

    # --- the noising process -------------------------------------------------------------
    def clean_weights(self, k: int, device=None) -> torch.Tensor:
        """Candidate weights [k] of a clean state: slot 0 (the true token) at 1 - p_other*(k-1), the rest at p_other."""
        weights = torch.full((k,), self.clean_other_prob, device=device)
        weights[0] = 1 - self.clean_other_prob * (k - 1)
        return weights

    def clean_state(self, rows: torch.Tensor, k: int, generator):
        """Slot 0: the true token; slots 1..k-1: random tokens; weighted by `clean_weights`."""
        batch, length = rows.shape
        others = torch.randint(self.vocab_size, (batch, length, k - 1), generator=generator, device=rows.device)
        tokens = torch.cat((rows[..., None], others), dim=-1)
        return self.clean_weights(k, rows.device).repeat(batch, length, 1), tokens

    def noise_level(self, t: torch.Tensor) -> torch.Tensor:
        return noise_level(t, self.schedule)

    def flatten_probs(self, probs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = self.noise_level(t)[:, None, None]
        return (1 - sigma) * probs + sigma / self.vocab_size

    def noised_state(self, rows: torch.Tensor, t: torch.Tensor, k: int, generator):
        """A training state (probs, tokens) [B, L, k] at times t [B]: the clean state, flattened,
        then (variants) with the true token swapped out and the slots shuffled."""
        probs, tokens = self.clean_state(rows, k, generator)
        probs = self.flatten_probs(probs, t)
        if self.index_swap != "none":
            # uniform: the state says nothing about the token at t=1, like MDLM's mask;
            # probability: a candidate is the true token exactly as often as its weight says.
            keep = (1 - self.noise_level(t))[:, None] if self.index_swap == "uniform" else probs[..., 0]
            swapped = torch.rand(rows.shape, generator=generator, device=rows.device) >= keep
            random_tokens = torch.randint(self.vocab_size, rows.shape, generator=generator, device=rows.device)
            tokens[..., 0] = torch.where(swapped, random_tokens, tokens[..., 0])
        if self.shuffle_slots:
            order = torch.rand(tokens.shape, generator=generator, device=rows.device).argsort(dim=-1)
            probs, tokens = probs.gather(-1, order), tokens.gather(-1, order)
        return probs, tokens

    def prior(self, batch_size: int, length: int, generator):
        tokens = torch.randint(self.vocab_size, (batch_size, length, self.k), generator=generator, device=self.device)
        return torch.full(tokens.shape, 1 / self.vocab_size, device=self.device), tokens

    # --- the network -----------------------------------------------------------------------
    def forward(self, probs, tokens, t, generator=None):
        """Logits [B, L, V] from a candidate state probs/tokens [B, L, k] at times t [B].

        With a generator, candidate embeddings get the training noise sigma(t) * N(0, std^2).
        """
        batch, length, k = tokens.shape
        embedded = self.token_embed(tokens)
        if generator is not None and self.embed_noise_std > 0:
            gaussian = torch.randn(embedded.shape, generator=generator, device=embedded.device)
            embedded = embedded + self.noise_level(t)[:, None, None, None] * self.embed_noise_std * gaussian
        x = self.in_proj(embedded + self.prob_mlp(probs[..., None]))
        x = x + self.flat_index_code[: length * k].view(length, k, -1)
        x = x + self.time_mlp(sinusoidal_embedding(t * 1000, x.shape[-1]))[:, None, None, :]
        log_p = probs.clamp_min(MIN_PROB).log()
        positions = torch.arange(length, device=tokens.device).repeat_interleave(k)  # k candidates share a position
        key_bias = (self.attn_bias_scale * log_p).view(batch, 1, 1, length * k)
        hidden = self.backbone(x.view(batch, length * k, -1), positions, key_bias=key_bias)
        hidden = hidden.view(batch, length, k, -1)
        scores = hidden @ self.readout_query.to(hidden.dtype) / math.sqrt(hidden.shape[-1])
        weights = torch.softmax(scores.float() + self.readout_bias_scale * log_p, dim=-1)
        return self.head((weights[..., None].to(hidden.dtype) * hidden).sum(dim=2))

    # --- the study interface ---------------------------------------------------------------
    @property
    def positions_per_token(self) -> int:
        return self.train_k

    def on_training_progress(self, progress: float):
        if self.use_k_curriculum:
            self.train_k = k_curriculum(self.k, progress)

    def _denoising_logits(self, rows, generator, k):
        t = torch.rand((rows.shape[0],), generator=generator, device=rows.device)
        probs, tokens = self.noised_state(rows, t, k, generator)
        return self(probs, tokens, t, generator).float()

    def training_loss(self, rows, generator):
        logits = self._denoising_logits(rows, generator, self.train_k)
        return F.cross_entropy(logits.flatten(0, 1), rows.flatten())

    @torch.no_grad()
    def validation_sums(self, rows, generator):
        logits = self._denoising_logits(rows, generator, self.k)
        nll = F.cross_entropy(logits.flatten(0, 1), rows.flatten(), reduction="sum")
        correct = (logits.argmax(-1) == rows).sum()
        return {"nll": nll.item(), "tokens": rows.numel(), "correct": correct.item(), "predicted": rows.numel()}

    @torch.no_grad()
    def generate(self, batch_size, length, generator, steps: int = 64, temperature: float = 1.0,
                 final_temperature: float | None = None, candidates: str = "top_k", renormalise: bool = False,
                 renoise: bool = False, on_step=None):
        """Tokens [B, length]: the top candidate after `steps` refinements from the prior.

        on_step(t, probs, tokens), if given, sees each state as the network is fed it.
        """
        probs, tokens = self.prior(batch_size, length, generator)
        times = torch.linspace(1.0, 0.0, steps + 1, device=self.device)[:-1]
        for t in times:
            if renoise:
                probs = self.flatten_probs(probs, t.expand(batch_size))
            if on_step is not None:
                on_step(t, probs, tokens)
            step_temperature = temperature if final_temperature is None else (
                final_temperature + (temperature - final_temperature) * t.item())
            softmax = torch.softmax(self(probs, tokens, t.expand(batch_size)).float() / step_temperature, dim=-1)
            if candidates == "top_k":
                probs, tokens = softmax.topk(self.k, dim=-1)
            else:
                tokens = draw_without_replacement(softmax, self.k, generator)
                probs = softmax.gather(-1, tokens)
            if renormalise:
                probs = probs / probs.sum(dim=-1, keepdim=True)
        return tokens.gather(-1, probs.argmax(dim=-1, keepdim=True)).squeeze(-1)


def draw_without_replacement(probs: torch.Tensor, k: int, generator) -> torch.Tensor:
    """k distinct indices per row of probs [..., V], drawn as successive categorical draws without
    replacement (Gumbel top-k, in float64 so that rare tokens keep their share)."""
    uniform = torch.rand(probs.shape, generator=generator, device=probs.device, dtype=torch.float64)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(torch.float64).tiny)))
    return (probs.double().clamp_min(torch.finfo(torch.float64).tiny).log() + gumbel).topk(k, dim=-1).indices
