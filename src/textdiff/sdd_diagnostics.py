"""Why SDD repeats itself: does its accuracy measure language modelling, or copying?

In the seed's training states the true token is always among the k candidates (slot 0,
with the highest probability whenever t < 1), while the sampler starts from k random
tokens. Per t bucket this measures:

- the accuracy of a trivial predictor that outputs the highest-probability candidate of
  a training state, with no network at all;
- the model's accuracy and NLL on (a) its own training noise (with the variant's index
  swapping and slot shuffling, if any), (b) context-only states: the same states with the
  true token removed from 15% of positions, scored there, so that only the context tells
  the token; (c) the true token removed at every position; (d) states whose k candidates
  are all drawn as the prior draws them (uniformly). Every kind keeps the training
  state's probabilities. In (c) and (d) no position carries a true token, so no model can
  beat the most-frequent-token accuracy, which is reported beside them; a model that
  copies candidates falls far below it.

And the train/sample mismatch: at each sampler step t, the candidate weights the sampler
feeds the network (sorted, descending) against those of a training state at the same t,
as half the L1 distance between the two sorted k-vectors (0: identical weights; it is at
most 1 only for vectors summing to 1, which coarse-grained states need not).
"""
from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F

T_BUCKETS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
STATE_KINDS = ("training", "context_only", "true_token_replaced", "prior_candidates")
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
        bucket = {"trivial_top_candidate_accuracy": round(sums["trivial_correct"] / sums["trivial_tokens"], 4)}
        for kind in STATE_KINDS:
            bucket[f"{kind}_accuracy"] = round(sums[f"{kind}_correct"] / max(1, sums[f"{kind}_tokens"]), 4)
            bucket[f"{kind}_nll"] = round(sums[f"{kind}_nll"] / max(1, sums[f"{kind}_tokens"]), 4)
        results[f"t{low:.2f}-{high:.2f}"] = bucket
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
