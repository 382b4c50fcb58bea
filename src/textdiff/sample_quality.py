"""Sample quality, measured the same way for every model and for real text.

All measures work on token ids of one shared tokenizer, so they compare across
models and against validation text cut into windows of the same length:

- judge perplexity: exp(mean NLL per token) that a fixed AR judge model assigns (with its standard
  error over samples, as for the entropy);
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

from .validation import ratio_and_standard_error


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
def judge_nll_per_sample(judge, samples: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(NLL in nats, tokens) per sample of samples [N, L] under the AR judge's own exact scoring (each from BOS)."""
    nll, tokens = [], []
    for start in range(0, len(samples), batch_size):
        sums = judge.validation_sums(samples[start:start + batch_size].to(judge.device))
        nll.append(sums["nll"].double().cpu())
        tokens.append(sums["tokens"].double().cpu())
    return torch.cat(nll), torch.cat(tokens)


def sample_quality(samples: torch.Tensor, judge) -> dict[str, float]:
    """Every measure above for token ids [N, L]."""
    as_lists = samples.cpu().tolist()
    nll, nll_se = ratio_and_standard_error(*judge_nll_per_sample(judge, samples))
    entropies = torch.tensor([unigram_entropy(s) for s in as_lists], dtype=torch.float64)
    entropy_se = entropies.std().item() / math.sqrt(len(entropies)) if len(entropies) > 1 else None
    return {
        "judge_perplexity": round(math.exp(nll), 3),
        "judge_perplexity_standard_error": None if nll_se is None else round(math.exp(nll) * nll_se, 3),
        "entropy": round(entropies.mean().item(), 4),
        "entropy_standard_error": None if entropy_se is None else round(entropy_se, 4),
        "distinct_1": round(distinct_n(as_lists, 1), 4),
        "distinct_2": round(distinct_n(as_lists, 2), 4),
        "distinct_3": round(distinct_n(as_lists, 3), 4),
        "repeat_4gram_rate": round(sum(repeated_ngram_rate(s, 4) for s in as_lists) / len(as_lists), 4),
    }
