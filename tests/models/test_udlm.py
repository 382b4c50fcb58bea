import numpy as np
import pytest
import torch

from textdiff.backbone import BackboneConfig
from textdiff.models.base import SCHEDULES
from textdiff.models.udlm import (NEVER_IN_DATA, UniformDiffusionLM, data_tokens, forward_marginal, nelbo_bracket,
                                  nelbo_per_token, posterior)

VOCAB = 7  # ids 0..3 are pad, bos, eos, mask: the data tokens are eos (2) and 4, 5, 6, so K = 4
ALLOWED = data_tokens(VOCAB)
DATA_IDS = ALLOWED.nonzero().squeeze(-1)
K = len(DATA_IDS)
P = torch.tensor([0.5, 0.25, 0.15, 0.1], dtype=torch.float64)  # the data distribution over DATA_IDS
ENTROPY = -(P * P.log()).sum().item()


def make_udlm(schedule="loglinear", seq_len=8):
    torch.manual_seed(0)
    backbone = BackboneConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=seq_len)
    return UniformDiffusionLM(VOCAB, backbone, tie_embeddings=True, schedule=schedule, t_eps=1e-3).eval()


def on_vocab(probs_over_data: torch.Tensor) -> torch.Tensor:
    """A distribution over DATA_IDS [..., K] as log-probabilities over the whole vocabulary [..., V]."""
    full = torch.zeros(probs_over_data.shape[:-1] + (VOCAB,), dtype=torch.float64)
    full[..., DATA_IDS] = probs_over_data
    return full.log()


def integrated_nelbo(schedule_name: str, denoiser, nodes: int = 600) -> float:
    """E over x ~ P of the continuous-time NELBO of one position, the t integral over [1e-6, 1] by Gauss-Legendre
    after t = u^2 (which smooths the integrand's log singularity at t = 0; below 1e-6, where 1 - alpha_t
    underflows for the cosine schedule, it holds about 1e-5 nats), the z_t expectation enumerated.
    denoiser(t, z) -> x_theta [K(z), K] over DATA_IDS for each noisy token z."""
    schedule = SCHEDULES[schedule_name]()
    u, weights = np.polynomial.legendre.leggauss(nodes)
    low = 1e-3  # u = 1e-3: t = 1e-6
    u, weights = low + (1 - low) * (u + 1) / 2, (1 - low) * weights / 2
    x = DATA_IDS[:, None].expand(K, K)  # [x, z]
    z = DATA_IDS[None, :].expand(K, K)
    total = 0.0
    for ui, wi in zip(u, weights):
        t = torch.tensor(ui * ui, dtype=torch.float64)
        q_z = forward_marginal(DATA_IDS, schedule.alpha(t), ALLOWED)[:, DATA_IDS]  # [x, z]
        log_x_theta = on_vocab(denoiser(t, q_z))[None].expand(K, K, VOCAB)  # x_theta depends on z only
        per_token = nelbo_per_token(schedule, log_x_theta, x, z, t.expand(K, K), ALLOWED)
        total += wi * 2 * ui * (P[:, None] * q_z * per_token).sum().item()  # dt = 2u du
    return total


def data_distribution(t, q_z):
    return P.expand(K, K)


def true_posterior(t, q_z):
    """E[e_x | z_t]: p(x) q(z | x), normalised over x, for each z."""
    joint = P[:, None] * q_z  # [x, z]
    return (joint / joint.sum(0, keepdim=True)).T


def uniform(t, q_z):
    return torch.full((K, K), 1 / K, dtype=torch.float64)


@pytest.mark.parametrize("schedule", ["loglinear", "cosine"])
def test_integrated_nelbo_equals_the_entropy_for_the_optimal_denoiser_and_exceeds_it_for_any_other(schedule):
    # One position over K = 4 tokens: with x_theta = P whatever z_t is (the ratios of the marginal, which is
    # the bound's optimum at one position) the bound is tight: E_x NELBO = H(P) = 1.208 nats. Tolerance 1e-3
    # (the quadrature's error is below 1e-5). Halving the weight -alpha'/(K alpha) gives H/2 and fails.
    assert integrated_nelbo(schedule, data_distribution) == pytest.approx(ENTROPY, abs=1e-3)
    for other in (true_posterior, uniform):  # the posterior E[e_x | z_t] is not the optimum
        assert integrated_nelbo(schedule, other) > ENTROPY + 0.01


def test_the_bracket_is_zero_for_the_clean_token_and_positive_otherwise():
    generator = torch.Generator().manual_seed(0)
    x = DATA_IDS[torch.randint(K, (50,), generator=generator)]
    z = DATA_IDS[torch.randint(K, (50,), generator=generator)]
    alpha = torch.rand(50, generator=generator, dtype=torch.float64)
    exact = on_vocab(torch.nn.functional.one_hot(torch.searchsorted(DATA_IDS, x), K).double())
    assert nelbo_bracket(exact, x, z, alpha, ALLOWED).abs().max() < 1e-9
    other = on_vocab(torch.softmax(torch.randn(50, K, generator=generator, dtype=torch.float64), -1))
    assert (nelbo_bracket(other, x, z, alpha, ALLOWED) > 0).all()


def test_at_t_1_the_forward_marginal_is_uniform_over_the_data_tokens():
    x = DATA_IDS
    marginal = forward_marginal(x, 0.0, ALLOWED)
    assert torch.allclose(marginal[:, DATA_IDS], torch.full((K, K), 1 / K, dtype=torch.float64))
    assert (marginal[:, list(NEVER_IN_DATA)] == 0).all()
    model = make_udlm()
    rows = torch.full((2000, 8), 5)
    noisy = model.add_noise(rows, torch.ones(2000), torch.Generator().manual_seed(0))
    counts = torch.bincount(noisy.flatten(), minlength=VOCAB)
    assert counts[list(NEVER_IN_DATA)].sum() == 0
    assert (counts[DATA_IDS].double() / noisy.numel() - 1 / K).abs().max() < 0.01  # 16,000 draws: SE 0.0034


def test_the_posterior_normalises_never_proposes_special_tokens_and_is_bayes_for_a_known_token():
    generator = torch.Generator().manual_seed(0)
    z = DATA_IDS[torch.randint(K, (20,), generator=generator)]
    x_theta = on_vocab(torch.softmax(torch.randn(20, K, generator=generator, dtype=torch.float64), -1)).exp()
    probs = posterior(z, x_theta, torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.6, dtype=torch.float64),
                      ALLOWED)
    assert torch.allclose(probs.sum(-1), torch.ones(20, dtype=torch.float64))
    assert (probs[:, list(NEVER_IN_DATA)] == 0).all()
    # For x_theta = e_x it is Bayes' rule on the forward process: q(z_t | z_s) q(z_s | x) / q(z_t | x).
    alpha_t, alpha_s, x = 0.3, 0.6, DATA_IDS[1]
    step = forward_marginal(DATA_IDS, alpha_t / alpha_s, ALLOWED)  # row z_s: q(z_t | z_s)
    prior = forward_marginal(x, alpha_s, ALLOWED)  # q(z_s | x) [V]
    for i, z_t in enumerate(DATA_IDS):
        bayes = torch.zeros(VOCAB, dtype=torch.float64)
        bayes[DATA_IDS] = step[:, z_t] * prior[DATA_IDS]
        known = torch.nn.functional.one_hot(x, VOCAB).double()
        got = posterior(z_t, known, torch.tensor(alpha_t, dtype=torch.float64),
                        torch.tensor(alpha_s, dtype=torch.float64), ALLOWED)
        assert torch.allclose(got, bayes / bayes.sum()), i


@pytest.mark.parametrize("greedy_final", [False, True])
def test_a_denoiser_that_knows_the_one_sequence_makes_the_sampler_return_it(greedy_final):
    model = make_udlm()
    sequence = torch.tensor([4, 5, 6, 2, 6, 5, 4, 4])
    model.denoiser_log_probs = lambda noisy: on_vocab(torch.nn.functional.one_hot(
        torch.searchsorted(DATA_IDS, sequence), K).double())[None].expand(len(noisy), -1, -1).float()
    tokens = model.generate(16, 8, torch.Generator().manual_seed(0), steps=4, greedy_final=greedy_final)
    assert (tokens == sequence).all()


def test_the_sampler_returns_only_data_tokens_and_can_revise_a_position():
    model = make_udlm()
    seen = []
    original = model.denoiser_log_probs
    model.denoiser_log_probs = lambda noisy: (seen.append(noisy.clone()), original(noisy))[1]
    tokens = model.generate(8, 8, torch.Generator().manual_seed(0), steps=6)
    assert ALLOWED[tokens].all()
    assert any((a != b).any() for a, b in zip(seen, seen[1:]))  # inputs change between steps


def test_validation_scores_context_only_accuracy_at_corrupted_positions():
    model = make_udlm()
    rows = DATA_IDS[torch.randint(K, (6, 8), generator=torch.Generator().manual_seed(0))]
    sums = model.validation_sums(rows, torch.Generator().manual_seed(1), t_draws=3)
    assert (sums["predicted"] == 3 * 8).all() and (sums["context_only_predicted"] <= 3 * 8).all()
    assert (sums["context_only_correct"] <= sums["context_only_predicted"]).all() and (sums["nll"] > 0).all()


def test_the_two_stage_draw_is_the_posterior_and_the_greedy_step_its_most_likely_token():
    from textdiff.models.udlm import greedy_posterior, posterior_split
    generator = torch.Generator().manual_seed(3)
    z = DATA_IDS[torch.randint(K, (200,), generator=generator)]
    x_theta = on_vocab(torch.softmax(3 * torch.randn(200, K, generator=generator, dtype=torch.float64), -1)).exp()
    for alpha_t, alpha_s in ((0.0, 0.2), (0.3, 0.6), (0.9, 1.0)):
        at, as_ = torch.tensor(alpha_t, dtype=torch.float64), torch.tensor(alpha_s, dtype=torch.float64)
        keep = posterior_split(z, x_theta, at, as_, K)
        onehot = torch.nn.functional.one_hot(z, VOCAB).double()
        redraw = (as_ * x_theta + (1 - as_) / K) * ALLOWED.double()
        two_stage = keep[:, None] * onehot + (1 - keep[:, None]) * redraw
        exact = posterior(z, x_theta, at, as_, ALLOWED)
        assert torch.allclose(two_stage, exact, atol=1e-12), (alpha_t, alpha_s)
        assert torch.equal(greedy_posterior(z, x_theta, at, as_, K), exact.argmax(-1))
