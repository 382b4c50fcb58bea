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
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backbone import Backbone, BackboneConfig, init_weights, sinusoidal_embedding
from ..checks import boolean, choice, integer, number, section
from ..flops import transformer_training_flops
from . import register
from .base import ModelCard, StudyModel, sampling_steps

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


SCHEDULES = ("cosine", "linear")
INDEX_SWAPS = ("none", "uniform", "probability")
CANDIDATE_DRAWS = ("top_k", "stochastic")


@dataclass(frozen=True)
class SDDParams:
    k: int  # candidates per position: params.yaml's top-level `k`
    embed_dim: int
    clean_other_prob: float
    embed_noise_std: float
    k_curriculum: bool
    schedule: str = "cosine"
    index_swap: str = "none"
    shuffle_slots: bool = False


@register
class SparseDistributionLM(StudyModel):
    card = ModelCard("sdd", "SDD", loss_meaning="denoising cross-entropy at random t", nll_kind="denoising cross-entropy",
                     accuracy_definition="argmax accuracy at all positions of a training-noised candidate state, "
                                         "t ~ U(0, 1)")
    # context_only_accuracy (see validation_sums): the same states with the true token removed from 15% of positions
    Params = SDDParams
    validation_accuracies = {"accuracy": ("correct", "predicted"),
                             "context_only_accuracy": ("context_only_correct", "context_only_predicted")}

    @classmethod
    def parse_params(cls, raw, vocab_size):
        k = integer(raw, "k", "", high=vocab_size)
        group, p = section(raw, "sdd"), "sdd."
        return SDDParams(
            k=k,
            embed_dim=integer(group, "embed_dim", p),
            clean_other_prob=number(group, "clean_other_prob", p, 0, 1 / k if k > 1 else 1),
            embed_noise_std=number(group, "embed_noise_std", p, 0, 10),
            k_curriculum=boolean(group, "k_curriculum", p),
            schedule=choice(group, "schedule", p, SCHEDULES),
            index_swap=choice(group, "index_swap", p, INDEX_SWAPS),
            shuffle_slots=boolean(group, "shuffle_slots", p),
        )

    @classmethod
    def parse_sampling(cls, group, prefix):
        return {
            **super().parse_sampling(group, prefix),
            "steps": sampling_steps(group, prefix),
            "final_temperature": number(group, "final_temperature", prefix, 0, 100, low_open=True, optional=True),
            "candidates": choice(group, "candidates", prefix, CANDIDATE_DRAWS),
            "renormalise": boolean(group, "renormalise", prefix),
            "renoise": boolean(group, "renoise", prefix),
        }

    def __init__(self, vocab_size: int, backbone: BackboneConfig, k: int, embed_dim: int,
                 clean_other_prob: float, embed_noise_std: float, k_curriculum: bool,
                 schedule: str = "cosine", index_swap: str = "none", shuffle_slots: bool = False):
        super().__init__()
        self.vocab_size, self.k = vocab_size, k
        self.clean_other_prob, self.embed_noise_std = clean_other_prob, embed_noise_std
        self.schedule, self.index_swap, self.shuffle_slots = schedule, index_swap, shuffle_slots
        self.use_k_curriculum = k_curriculum
        self.train_k = 1 if k_curriculum else k
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
        # The k candidates of a token share its position (for the rotary embedding).
        self.register_buffer("candidate_positions", torch.arange(backbone.max_positions).repeat_interleave(k),
                             persistent=False)

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
        positions = self.candidate_positions[: length * k] if k == self.k else (
            torch.arange(length, device=tokens.device).repeat_interleave(k))  # k curriculum: fewer candidates
        key_bias = (self.attn_bias_scale * log_p).view(batch, 1, 1, length * k)
        hidden = self.backbone(x.view(batch, length * k, -1), positions, key_bias=key_bias)
        hidden = hidden.view(batch, length, k, -1)
        scores = hidden @ self.readout_query.to(hidden.dtype) / math.sqrt(hidden.shape[-1])
        weights = torch.softmax(scores.float() + self.readout_bias_scale * log_p, dim=-1)
        return self.head((weights[..., None].to(hidden.dtype) * hidden).sum(dim=2))

    # --- the study interface ---------------------------------------------------------------
    def training_flops_per_row(self, seq_len: int) -> float:
        # The backbone attends over the k candidates of every token; the head runs once per token, after the readout.
        return transformer_training_flops(self.backbone, self.head.weight.numel(), seq_len * self.train_k, seq_len)

    def diagnostics(self, rows, generator, batch_size, sampling, length):
        return sdd_diagnostics(self, rows, generator, batch_size, sampling, length)

    def on_training_progress(self, progress: float):
        if self.use_k_curriculum:
            self.train_k = k_curriculum(self.k, progress)

    def training_loss(self, rows, generator):
        t = torch.rand((rows.shape[0],), generator=generator, device=rows.device)
        probs, tokens = self.noised_state(rows, t, self.train_k, generator)
        return F.cross_entropy(self(probs, tokens, t, generator).float().flatten(0, 1), rows.flatten())

    @torch.no_grad()
    def validation_sums(self, rows, generator):
        """Per row: the denoising cross-entropy and accuracy on a training-noised state at t ~ U(0, 1), and the
        accuracy on the same state with the true token removed from 15% of positions, scored there
        (context-only: does the network model language, or copy the candidate it was given?)."""
        t = torch.rand((rows.shape[0],), generator=generator, device=rows.device)
        probs, states = candidate_states(self, rows, t, generator)
        logits = self(probs, states["training"][0], t, generator).float()
        nll = F.cross_entropy(logits.flatten(0, 1), rows.flatten(), reduction="none").view(rows.shape)
        context_tokens, removed_at = states["context_only"]
        context_hits = (self(probs, context_tokens, t, generator).argmax(-1) == rows) & removed_at
        tokens = torch.full((len(rows),), rows.shape[1], device=rows.device)
        return {"nll": nll.sum(1), "tokens": tokens, "correct": (logits.argmax(-1) == rows).sum(1),
                "predicted": tokens, "context_only_correct": context_hits.sum(1),
                "context_only_predicted": removed_at.sum(1)}

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
                # (Top-k of the logits first, then normalising those k by a logsumexp, avoids writing the
                # softmax out, but at the CPU default logsumexp costs 4x the fused softmax: kept as it is.)
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


# --- diagnostics: why SDD repeats ---------------------------------------------------------------
# Why SDD repeats itself: does its accuracy measure language modelling, or copying?
#
# In the seed's training states the true token is always among the k candidates (slot 0,
# with the highest probability whenever t < 1), while the sampler starts from k random
# tokens. Per t bucket this measures:
#
# - the accuracy of a trivial predictor that outputs the highest-probability candidate of
#   a training state, with no network at all;
# - the model's accuracy and NLL on (a) its own training noise (with the variant's index
#   swapping and slot shuffling, if any), (b) context-only states: the same states with the
#   true token removed from 15% of positions, scored there, so that only the context tells
#   the token; (c) the true token removed at every position; (d) states whose k candidates
#   are all drawn as the prior draws them (uniformly). Every kind keeps the training
#   state's probabilities. In (c) and (d) no position carries a true token, so no model can
#   beat the most-frequent-token accuracy, which is reported beside them; a model that
#   copies candidates falls far below it.
#
# And the train/sample mismatch: at each sampler step t, the candidate weights the sampler
# feeds the network (sorted, descending) against those of a training state at the same t,
# as half the L1 distance between the two sorted k-vectors (0: identical weights; it is at
# most 1 only for vectors summing to 1, which coarse-grained states need not).

T_BUCKETS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
CONTEXT_ONLY_SHARE = 0.15  # positions whose true token is removed in context-only states (as BERT masks 15%)


def candidate_states(model, rows, t, generator) -> tuple[torch.Tensor, dict[str, tuple]]:
    """Training-noised probabilities and, for each state kind, (candidate tokens [B, L, k], the
    positions it is scored at [B, L])."""
    probs, tokens = model.noised_state(rows, t, model.k, generator)
    is_true = tokens == rows[..., None]
    # A uniform draw equals the true token with probability 1/V; that rare case is left in.
    random_tokens = torch.randint(model.vocab_size, tokens.shape, generator=generator, device=rows.device)
    removed_at = torch.rand(rows.shape, generator=generator, device=rows.device) < CONTEXT_ONLY_SHARE
    prior = torch.randint(model.vocab_size, tokens.shape, generator=generator, device=rows.device)
    everywhere = torch.ones_like(rows, dtype=torch.bool)
    return probs, {
        "training": (tokens, everywhere),
        # the rest of the sequence intact: the token must come from its context, as in MDLM
        "context_only": (torch.where(is_true & removed_at[..., None], random_tokens, tokens), removed_at),
        "true_token_replaced": (torch.where(is_true, random_tokens, tokens), everywhere),
        "prior_candidates": (prior, everywhere),
    }


@torch.no_grad()
def accuracy_by_state(model, rows: torch.Tensor, generator, batch_size: int) -> dict[str, dict]:
    results = {}
    for low, high in T_BUCKETS:
        sums = defaultdict(float)
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            t = low + (high - low) * torch.rand((len(batch),), generator=generator, device=batch.device)
            probs, states = candidate_states(model, batch, t, generator)
            top_candidate = states["training"][0].gather(-1, probs.argmax(-1, keepdim=True)).squeeze(-1)
            sums["trivial_correct"] += (top_candidate == batch).sum().item()
            sums["trivial_tokens"] += batch.numel()
            for kind, (tokens, scored) in states.items():
                logits = model(probs, tokens, t, generator).float()[scored]
                sums[f"{kind}_correct"] += (logits.argmax(-1) == batch[scored]).sum().item()
                sums[f"{kind}_nll"] += F.cross_entropy(logits, batch[scored], reduction="sum").item()
                sums[f"{kind}_tokens"] += scored.sum().item()
        def accuracy(kind):
            return round(sums[f"{kind}_correct"] / max(1, sums[f"{kind}_tokens"]), 4)

        def nll(kind):
            return round(sums[f"{kind}_nll"] / max(1, sums[f"{kind}_tokens"]), 4)
        results[f"t{low:.2f}-{high:.2f}"] = {
            "trivial_top_candidate_accuracy": round(sums["trivial_correct"] / sums["trivial_tokens"], 4),
            "training_accuracy": accuracy("training"), "training_nll": nll("training"),
            "context_only_accuracy": accuracy("context_only"), "context_only_nll": nll("context_only"),
            "true_token_replaced_accuracy": accuracy("true_token_replaced"),
            "true_token_replaced_nll": nll("true_token_replaced"),
            "prior_candidates_accuracy": accuracy("prior_candidates"), "prior_candidates_nll": nll("prior_candidates"),
        }
    return results


def most_frequent_token_accuracy(rows: torch.Tensor) -> float:
    """Accuracy of always predicting the most frequent token of rows: what no context buys."""
    return round(torch.bincount(rows.flatten()).max().item() / rows.numel(), 4)


def training_weights(model, t: torch.Tensor) -> torch.Tensor:
    """Sorted candidate probabilities [k] of a training state at time t (they do not depend on the tokens)."""
    clean = model.clean_weights(model.k, t.device)
    return model.flatten_probs(clean[None, None, :], t.reshape(1)).reshape(-1).sort(descending=True).values


@torch.no_grad()
def sampler_mismatch(model, num_samples: int, length: int, sampling: dict, generator) -> dict:
    """Mean half-L1 distance between the sampler's and training's sorted candidate weights, per step t."""
    distances = []

    def record(t, probs, tokens):
        sampler_weights = probs.sort(dim=-1, descending=True).values
        distances.append((t.item(), 0.5 * (sampler_weights - training_weights(model, t)).abs().sum(-1).mean().item()))

    model.generate(num_samples, length, generator, **sampling, on_step=record)
    by_bucket = {}
    for low, high in T_BUCKETS:
        inside = [d for t, d in distances if low <= t < high or (high == 1.0 and t == 1.0)]
        if inside:
            by_bucket[f"t{low:.2f}-{high:.2f}"] = round(sum(inside) / len(inside), 4)
    return {"mean": round(sum(d for _, d in distances) / len(distances), 4), **by_bucket}


def sdd_diagnostics(model, rows, generator, batch_size: int, sampling: dict, length: int,
                    num_samples: int = 8) -> dict:
    return {
        "most_frequent_token_accuracy": most_frequent_token_accuracy(rows),
        "context_only_share": CONTEXT_ONLY_SHARE,
        "by_t_bucket": accuracy_by_state(model, rows, generator, batch_size),
        "sampler_mismatch": sampler_mismatch(model, num_samples, length, sampling, generator),
    }
