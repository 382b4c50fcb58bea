"""SDD (Sparse Distribution Diffusion), faithful to the seed project.

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
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..backbone import Backbone, BackboneConfig, init_weights, sinusoidal_embedding
from .base import StudyModel

MIN_PROB = 1e-12  # keeps log p finite for candidates whose softmax probability underflowed


def noise_level(t: torch.Tensor) -> torch.Tensor:
    """sigma(t) = 1 - cos(pi t / 2): 0 at t=0, 1 at t=1."""
    return 1 - torch.cos(math.pi / 2 * t)


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
                 clean_other_prob: float, embed_noise_std: float, use_k_curriculum: bool):
        super().__init__()
        self.vocab_size, self.k = vocab_size, k
        self.clean_other_prob, self.embed_noise_std = clean_other_prob, embed_noise_std
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
    def clean_state(self, rows: torch.Tensor, k: int, generator):
        """Slot 0: the true token at 1 - p_other*(k-1); slots 1..k-1: random tokens at p_other."""
        batch, length = rows.shape
        others = torch.randint(self.vocab_size, (batch, length, k - 1), generator=generator, device=rows.device)
        tokens = torch.cat((rows[..., None], others), dim=-1)
        probs = torch.full(tokens.shape, self.clean_other_prob, device=rows.device)
        probs[..., 0] = 1 - self.clean_other_prob * (k - 1)
        return probs, tokens

    def flatten_probs(self, probs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = noise_level(t)[:, None, None]
        return (1 - sigma) * probs + sigma / self.vocab_size

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
            embedded = embedded + noise_level(t)[:, None, None, None] * self.embed_noise_std * gaussian
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
        probs, tokens = self.clean_state(rows, k, generator)
        return self(self.flatten_probs(probs, t), tokens, t, generator).float()

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
    def generate(self, batch_size, length, generator, steps: int = 64, temperature: float = 1.0):
        probs, tokens = self.prior(batch_size, length, generator)
        times = torch.linspace(1.0, 0.0, steps + 1, device=self.device)[:-1]
        for t in times:
            logits = self(probs, tokens, t.expand(batch_size)).float()
            probs, tokens = torch.softmax(logits / temperature, dim=-1).topk(self.k, dim=-1)
        return tokens[..., 0]
