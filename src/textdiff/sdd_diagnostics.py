"""Why SDD repeats itself: does its accuracy measure language modelling, or copying?

In the seed's training states the true token is always among the k candidates (slot 0,
with the highest probability whenever t < 1), while the sampler starts from k random
tokens. Per t bucket this measures:

- the accuracy of a trivial predictor that outputs the highest-probability candidate of
  a training state, with no network at all;
- the model's accuracy and NLL on (a) its own training noise (with the variant's index
  swapping and slot shuffling, if any), (b) the same states with the true token replaced
  by a random token wherever it sits, and (c) states whose k candidates are all drawn as
  the prior draws them (uniformly), with the training state's probabilities.

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
STATE_KINDS = ("training", "true_token_replaced", "prior_candidates")


def candidate_states(model, rows, t, generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Training-noised probabilities and, for each state kind, its candidate tokens [B, L, k]."""
    probs, tokens = model.noised_state(rows, t, model.k, generator)
    # A uniform draw equals the true token with probability 1/V; that rare case is left in.
    random_tokens = torch.randint(model.vocab_size, tokens.shape, generator=generator, device=rows.device)
    replaced = torch.where(tokens == rows[..., None], random_tokens, tokens)
    prior = torch.randint(model.vocab_size, tokens.shape, generator=generator, device=rows.device)
    return probs, {"training": tokens, "true_token_replaced": replaced, "prior_candidates": prior}


@torch.no_grad()
def accuracy_by_state(model, rows: torch.Tensor, generator, batch_size: int) -> dict[str, dict]:
    results = {}
    for low, high in T_BUCKETS:
        sums = defaultdict(float)
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            t = low + (high - low) * torch.rand((len(batch),), generator=generator, device=batch.device)
            probs, states = candidate_states(model, batch, t, generator)
            top_candidate = states["training"].gather(-1, probs.argmax(-1, keepdim=True)).squeeze(-1)
            sums["trivial_correct"] += (top_candidate == batch).sum().item()
            for kind, tokens in states.items():
                logits = model(probs, tokens, t, generator).float()
                sums[f"{kind}_correct"] += (logits.argmax(-1) == batch).sum().item()
                sums[f"{kind}_nll"] += F.cross_entropy(logits.flatten(0, 1), batch.flatten(), reduction="sum").item()
            sums["tokens"] += batch.numel()
        bucket = {"trivial_top_candidate_accuracy": round(sums["trivial_correct"] / sums["tokens"], 4)}
        for kind in STATE_KINDS:
            bucket[f"{kind}_accuracy"] = round(sums[f"{kind}_correct"] / sums["tokens"], 4)
            bucket[f"{kind}_nll"] = round(sums[f"{kind}_nll"] / sums["tokens"], 4)
        results[f"t{low:.2f}-{high:.2f}"] = bucket
    return results


def training_weights(model, t: torch.Tensor) -> torch.Tensor:
    """Sorted candidate probabilities [k] of a training state at time t (they do not depend on the tokens)."""
    clean = torch.full((model.k,), model.clean_other_prob, device=t.device)
    clean[0] = 1 - model.clean_other_prob * (model.k - 1)
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
        "by_t_bucket": accuracy_by_state(model, rows, generator, batch_size),
        "sampler_mismatch": sampler_mismatch(model, num_samples, length, sampling, generator),
    }
