"""Sample quality, measured the same way for every model and for real text.

All measures work on token ids of one shared tokenizer, so they compare across
models and against validation text cut into windows of the same length:

- judge perplexity: exp(mean NLL per token) that a fixed AR judge model assigns;
- unigram entropy: entropy (nats) of the token frequencies within one sample,
  averaged over samples (low for repetitive text; compare with real text:
  it depends on sample length and tokenizer);
- distinct-n: distinct n-grams / all n-grams, over all samples together;
- repeated-4-gram rate: share of a sample's 4-grams that already occurred
  earlier in the same sample, averaged over samples.
"""
from __future__ import annotations

import math
from collections import Counter

import torch


def unigram_entropy(sample: list[int]) -> float:
    counts = Counter(sample)
    total = len(sample)
    return -sum(c / total * math.log(c / total) for c in counts.values())


def ngrams(sample: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(sample[i:i + n]) for i in range(len(sample) - n + 1)]


def distinct_n(samples: list[list[int]], n: int) -> float:
    grams = [gram for sample in samples for gram in ngrams(sample, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_rate(sample: list[int], n: int = 4) -> float:
    grams = ngrams(sample, n)
    seen, repeats = set(), 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams) if grams else 0.0


@torch.no_grad()
def judge_nll_per_token(judge, samples: torch.Tensor, batch_size: int = 64) -> float:
    """Mean NLL per token (nats) of samples [N, L] under the AR judge's own exact scoring (each from BOS)."""
    total, count = 0.0, 0
    for start in range(0, len(samples), batch_size):
        sums = judge.validation_sums(samples[start:start + batch_size].to(judge.device))
        total += sums["nll"]
        count += sums["tokens"]
    return total / count


def sample_quality(samples: torch.Tensor, judge) -> dict[str, float]:
    """Every measure above for token ids [N, L]."""
    as_lists = samples.cpu().tolist()
    return {
        "judge_perplexity": round(math.exp(judge_nll_per_token(judge, samples)), 3),
        "entropy": round(sum(map(unigram_entropy, as_lists)) / len(as_lists), 4),
        "distinct_1": round(distinct_n(as_lists, 1), 4),
        "distinct_2": round(distinct_n(as_lists, 2), 4),
        "distinct_3": round(distinct_n(as_lists, 3), 4),
        "repeat_4gram_rate": round(sum(repeated_ngram_rate(s, 4) for s in as_lists) / len(as_lists), 4),
    }
