import math

import pytest
import torch

from textdiff.backbone import BackboneConfig
from textdiff.models.base import sample_categorical
from textdiff.models.base import low_discrepancy_times
from textdiff.models.mdlm import MaskedDiffusionLM

MASK = 3
VOCAB = 5


def make_mdlm(schedule="loglinear", seq_len=8):
    torch.manual_seed(0)
    backbone = BackboneConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=seq_len)
    return MaskedDiffusionLM(VOCAB, backbone, tie_embeddings=True, schedule=schedule, t_eps=1e-3,
                             mask_id=MASK).eval()


def at_positions(denoiser):
    """A full-grid denoiser [B, L, V] as the model's hook, which answers at the masked positions only."""
    return lambda noisy, at: denoiser(noisy)[at]


def posterior_denoiser(noisy):
    """The exact p(x_0 | x_t) for data (a, a), a uniform in {0, 1}: copy the visible twin, else 50/50."""
    log_probs = torch.full(noisy.shape + (VOCAB,), -math.inf)
    for i in range(2):
        visible = noisy[:, 1 - i]
        copied = torch.full((len(noisy), VOCAB), -math.inf).scatter_(1, visible[:, None].clamp(max=VOCAB - 1), 0.0)
        unsure = torch.full((len(noisy), VOCAB), -math.inf)
        unsure[:, :2] = math.log(0.5)
        log_probs[:, i] = torch.where((visible != MASK)[:, None], copied, unsure)
    return log_probs


def marginal_denoiser(noisy):
    """Ignores context: 50/50 over {0, 1} at every position."""
    log_probs = torch.full(noisy.shape + (VOCAB,), -math.inf)
    log_probs[..., :2] = math.log(0.5)
    return log_probs


@pytest.mark.parametrize("schedule", ["loglinear", "cosine"])
@pytest.mark.parametrize("denoiser, expected", [(posterior_denoiser, math.log(2)), (marginal_denoiser, 2 * math.log(2))])
def test_nelbo_bounds_the_true_nll_and_is_tight_for_the_exact_posterior(schedule, denoiser, expected):
    # Data: (a, a) with a uniform in {0, 1}, so the true NLL is log 2 per row. With the exact posterior
    # as denoiser the continuous-time NELBO equals it; a denoiser that ignores the twin pays 2 log 2.
    model = make_mdlm(schedule)
    model.denoiser_log_probs = at_positions(denoiser)
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(2, (40000, 1), generator=generator)
    rows = torch.cat((a, a), dim=1)
    t = low_discrepancy_times(len(rows), model.t_eps, generator, rows.device)
    nelbo, _, _ = model.nelbo_terms(rows, t, generator)
    assert nelbo.mean().item() >= math.log(2) - 0.03
    assert nelbo.mean().item() == pytest.approx(expected, abs=0.04)


def test_training_loss_is_the_nelbo_per_token():
    model = make_mdlm()
    model.denoiser_log_probs = at_positions(marginal_denoiser)
    a = torch.randint(2, (40000, 1), generator=torch.Generator().manual_seed(1))
    loss = model.training_loss(torch.cat((a, a), dim=1), torch.Generator().manual_seed(2))
    assert loss.item() == pytest.approx(math.log(2), abs=0.03)  # 2 log 2 per row of 2 tokens


def test_subs_never_predicts_mask():
    model = make_mdlm()
    noisy = torch.tensor([[0, MASK, 4, MASK, 1, 2, MASK, 0]])
    probs = model.denoiser_log_probs(noisy, noisy == MASK).exp()
    assert probs.shape == (3, VOCAB)
    assert torch.all(probs[:, MASK] == 0)
    assert torch.allclose(probs.sum(-1), torch.ones(3))


def full_vocabulary_nelbo(model, rows, t, generator):
    """The NELBO as the MDLM paper writes it (and as this project computed it before scoring masked positions
    only): log-probs at every position over the whole vocabulary, unmasked ones carried over explicitly."""
    noisy = model.add_noise(rows, t, generator)
    logits = model.logits(noisy).float()
    logits[..., MASK] = -math.inf
    log_probs = logits.log_softmax(dim=-1)
    carry_over = torch.full_like(log_probs, -math.inf).scatter_(-1, noisy[..., None], 0.0)
    log_probs = torch.where((noisy != MASK)[..., None], carry_over, log_probs)
    token_nll = -log_probs.gather(-1, rows[..., None]).squeeze(-1)
    token_nll = torch.where(noisy == MASK, token_nll, torch.zeros_like(token_nll))
    return model.schedule.weight(t) * token_nll.sum(dim=1)


@pytest.mark.parametrize("schedule", ["loglinear", "cosine"])
def test_masked_positions_only_nelbo_and_gradient_equal_the_full_vocabulary_formula(schedule):
    # Same noise draws (same generator seed), same weights: the loss and every gradient agree to float32
    # rounding, so scoring masked positions only changes the cost, not the training math.
    model = make_mdlm(schedule, seq_len=16).train()
    rows = torch.randint(VOCAB, (12, 16), generator=torch.Generator().manual_seed(0))
    rows[rows == MASK] = 0
    t = low_discrepancy_times(len(rows), model.t_eps, torch.Generator().manual_seed(1), rows.device)
    ours, _, masked = model.nelbo_terms(rows, t, torch.Generator().manual_seed(2))
    ours.sum().backward()
    our_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    reference = full_vocabulary_nelbo(model, rows, t, torch.Generator().manual_seed(2))
    reference.sum().backward()
    assert 0 < masked.sum() < masked.numel()
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-5)
    for ours_grad, parameter in zip(our_grads, model.parameters()):
        assert torch.allclose(ours_grad, parameter.grad, rtol=1e-4, atol=1e-6)


def test_low_discrepancy_times_cover_every_stratum():
    t = low_discrepancy_times(16, 1e-3, torch.Generator().manual_seed(0), "cpu")
    u = (t - 1e-3) / (1 - 1e-3)
    assert torch.all((t >= 1e-3) & (t <= 1))
    assert sorted((u * 16).floor().long().tolist()) == list(range(16))


def recording(model):
    inputs = []
    original = model.denoiser_log_probs

    def record(noisy, at):
        inputs.append(noisy.clone())
        return original(noisy, at)
    model.denoiser_log_probs = record
    return inputs


def test_sampler_never_changes_an_unmasked_token_and_ends_fully_unmasked():
    model = make_mdlm()
    inputs = recording(model)
    out = model.generate(3, 8, torch.Generator().manual_seed(0), steps=6, use_cache=False)
    states = inputs + [out]
    for before, after in zip(states, states[1:]):
        unmasked = before != MASK
        assert torch.equal(after[unmasked], before[unmasked])
    assert len(inputs) >= 2 and torch.all(out != MASK)


def test_cached_sampler_gives_the_same_samples_with_fewer_network_calls():
    model = make_mdlm()
    cached_calls, plain_calls = recording(model), None
    cached = model.generate(2, 8, torch.Generator().manual_seed(3), steps=64, use_cache=True)
    model = make_mdlm()
    plain_calls = recording(model)
    plain = model.generate(2, 8, torch.Generator().manual_seed(3), steps=64, use_cache=False)
    assert torch.equal(cached, plain)
    assert len(cached_calls) <= 16 < len(plain_calls)  # at most one call per newly unmasked token


def test_sample_categorical_matches_the_distribution():
    probs = torch.tensor([0.5, 0.25, 0.25 - 1e-9, 1e-9], dtype=torch.float64).expand(400000, 4)
    draws = sample_categorical(probs, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).double() / len(draws)
    assert torch.allclose(freq[:3], probs[0, :3], atol=0.005)
    assert draws.max() <= 3


def test_the_unweighted_loss_is_the_mean_cross_entropy_of_the_masked_tokens_and_validation_stays_the_nelbo():
    # With a denoiser that ignores context (50/50 over {0, 1}) every masked token costs exactly log 2, so their
    # mean is log 2 on any batch; the NELBO weighs each row's masks by 1/t, which on 8 rows is far from it.
    model = make_mdlm()
    model.denoiser_log_probs = at_positions(marginal_denoiser)
    rows = torch.randint(2, (8, 8), generator=torch.Generator().manual_seed(1))
    nelbo = model.training_loss(rows, torch.Generator().manual_seed(2)).item()
    model.loss = "unweighted"
    assert model.training_loss(rows, torch.Generator().manual_seed(2)).item() == pytest.approx(math.log(2), abs=1e-6)
    assert abs(nelbo - math.log(2)) > 0.05
    sums = model.validation_sums(rows, torch.Generator().manual_seed(3))
    model.loss = "nelbo"
    assert torch.equal(sums["nll"], model.validation_sums(rows, torch.Generator().manual_seed(3))["nll"])
