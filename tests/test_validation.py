import math

import numpy as np
import pytest
import torch

from textdiff.data import uniform_rows
from textdiff.validation import ratio_and_standard_error


def test_standard_error_of_equal_length_rows_is_that_of_the_mean_of_row_means():
    # With every row the same length, NLL per token is the mean of per-row means, whose standard error
    # is their sample standard deviation over sqrt(n).
    row_means = torch.tensor([2.0, 3.0, 2.5, 4.0, 3.5], dtype=torch.float64)
    ratio, error = ratio_and_standard_error(row_means * 64, torch.full((5,), 64.0))
    assert ratio == pytest.approx(row_means.mean().item())
    assert error == pytest.approx(row_means.std().item() / math.sqrt(5))


def test_standard_error_covers_the_truth_as_often_as_it_says():
    # Rows of varying length and difficulty: the ratio's 95% interval (1.96 standard errors) holds the
    # population figure in about 95% of samples.
    generator = np.random.default_rng(0)
    population_tokens = generator.integers(10, 60, 100_000).astype(float)
    population_nll = population_tokens * generator.gamma(2.0, 1.5, 100_000)
    truth = population_nll.sum() / population_tokens.sum()
    covered = 0
    for _ in range(400):
        pick = generator.integers(0, 100_000, 200)
        ratio, error = ratio_and_standard_error(torch.tensor(population_nll[pick]), torch.tensor(population_tokens[pick]))
        covered += abs(ratio - truth) <= 1.96 * error
    assert 0.91 <= covered / 400 <= 0.98


def test_one_row_has_no_standard_error():
    assert ratio_and_standard_error(torch.tensor([3.0]), torch.tensor([2.0])) == (1.5, None)


def test_uniform_rows_are_a_fixed_sample_of_the_whole_file_in_file_order():
    rows = np.arange(1000)[:, None]
    sample = uniform_rows(rows, 100)
    again = uniform_rows(rows, 100)
    assert np.array_equal(sample, again) and len(sample) == 100
    assert np.all(np.diff(sample[:, 0]) > 0)  # distinct, in file order
    assert sample[:, 0].max() > 900 and sample[:, 0].min() < 100  # not the head of the file
    assert uniform_rows(rows, None) is rows and uniform_rows(rows, 5000) is rows
    assert torch.equal(uniform_rows(torch.arange(1000)[:, None], 100), torch.from_numpy(sample))
