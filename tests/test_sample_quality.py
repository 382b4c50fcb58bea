import math

import pytest
import torch

from textdiff.backbone import BackboneConfig
from textdiff.models.ar import AutoregressiveLM
from textdiff.sample_quality import (distinct_n, judge_nll_per_sample, repeated_ngram_rate, sample_quality,
                                     unigram_entropy)

SENTENCE = [10, 11, 12, 13, 14, 15, 16, 17]


def test_unigram_entropy_of_known_distributions():
    assert unigram_entropy([7] * 64) == 0
    assert unigram_entropy(list(range(64))) == pytest.approx(math.log(64))
    assert unigram_entropy([1, 1, 2, 2]) == pytest.approx(math.log(2))


def test_repeated_sentence_has_high_repeat_rate_and_low_entropy():
    repeated = SENTENCE * 8  # 64 tokens, the same sentence 8 times
    varied = list(range(100, 164))
    assert repeated_ngram_rate(repeated) == pytest.approx((61 - 8) / 61)  # only the 8 cyclic four-grams are new
    assert repeated_ngram_rate(varied) == 0
    assert unigram_entropy(repeated) == pytest.approx(math.log(8))
    assert unigram_entropy(repeated) < unigram_entropy(varied) == pytest.approx(math.log(64))


def test_distinct_n_counts_across_samples():
    assert distinct_n([[1, 2, 3], [1, 2, 3]], 1) == pytest.approx(3 / 6)
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert distinct_n([list(range(10))], 3) == 1


def test_judge_perplexity_is_the_judges_exact_nll():
    torch.manual_seed(0)
    judge = AutoregressiveLM(50, BackboneConfig(32, 1, 2, 64, 16), bos_id=1).eval()
    samples = torch.randint(4, 50, (5, 12))
    inputs = torch.cat((torch.full((5, 1), 1), samples[:, :-1]), dim=1)
    log_probs = judge.logits(inputs).log_softmax(-1)
    expected = -log_probs.gather(-1, samples[..., None]).mean().item()
    nll, tokens = judge_nll_per_sample(judge, samples, batch_size=2)
    assert (nll.sum() / tokens.sum()).item() == pytest.approx(expected, rel=1e-5)
    quality = sample_quality(samples, judge)
    assert quality["judge_perplexity"] == pytest.approx(math.exp(expected), rel=1e-3)
    assert set(quality) == {"judge_perplexity", "judge_perplexity_standard_error", "entropy",
                            "entropy_standard_error", "distinct_1", "distinct_2", "distinct_3", "repeat_4gram_rate"}
