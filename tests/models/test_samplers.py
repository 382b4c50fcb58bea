"""The sampler options of issue "can better sampling fix diffusion's text?": nucleus and top-k (AR, MDLM, UDLM),
confidence- and margin-ordered unmasking and ReMDM remasking (MDLM). Each test fails when its sampler is broken."""
import math

import pytest
import torch

from textdiff.backbone import BackboneConfig
from textdiff.models.ar import AutoregressiveLM
from textdiff.models.base import nucleus, sample_categorical, top_k_only
from textdiff.models.mdlm import MaskedDiffusionLM, remasking_probability

MASK, VOCAB, LENGTH = 3, 12, 8
BACKBONE = BackboneConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=LENGTH)


def test_nucleus_keeps_the_fewest_most_probable_tokens_that_reach_top_p_and_draws_nothing_else():
    probs = torch.tensor([[0.06, 0.5, 0.1, 0.3, 0.04]], dtype=torch.float64)
    assert nucleus(probs, 0.8).nonzero()[:, 1].tolist() == [1, 3]  # 0.5 + 0.3 reach 0.8
    assert nucleus(probs, 0.81).nonzero()[:, 1].tolist() == [1, 2, 3]
    assert nucleus(probs, 0.1).nonzero()[:, 1].tolist() == [1]  # the most probable always stays
    assert torch.equal(nucleus(probs, None), probs) and torch.equal(nucleus(probs, 1.0), probs)
    draws = sample_categorical(nucleus(probs.expand(20000, -1), 0.8), torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == {1, 3}
    assert set(top_k_only(probs, 2).nonzero()[:, 1].tolist()) == {1, 3}


@pytest.mark.parametrize("option, allowed", [({"top_p": 0.75}, {5, 7}), ({"top_k": 3}, {5, 6, 7})])
def test_ar_draws_only_inside_its_nucleus_or_top_k(option, allowed):
    torch.manual_seed(0)
    model = AutoregressiveLM(VOCAB, BACKBONE).eval()
    logits = torch.full((VOCAB,), -5.0)
    logits[[5, 6, 7]] = torch.tensor([2.0, 0.5, 1.5])  # 5: 0.50, 7: 0.30, 6: 0.11 of the mass
    model.logits = lambda tokens, cache=None: logits.expand(tokens.shape[0], tokens.shape[1], VOCAB)
    tokens = model.generate(500, LENGTH, torch.Generator().manual_seed(0), **option)
    assert set(tokens.unique().tolist()) == allowed


def make_mdlm():
    torch.manual_seed(0)
    return MaskedDiffusionLM(VOCAB, BACKBONE, tie_embeddings=True, schedule="loglinear", t_eps=1e-3,
                             mask_id=MASK).eval()


def fake_denoiser(model, grid_log_probs, seen):
    """The model's denoiser answering from a fixed grid [L, V] (at the masked positions), recording its inputs."""
    def denoiser(noisy, at):
        seen.append(noisy.clone())
        return grid_log_probs.expand(len(noisy), -1, -1)[at].float()
    model.denoiser_log_probs = denoiser


def peaked_grid():
    """Position i puts 1 - 1e-4 (8 - i) on token 4 + i and the rest evenly on the other tokens 4..11: every
    draw is (all but surely) the peaked token, and position 7 is surest, then 6, ..."""
    grid = torch.zeros(LENGTH, VOCAB, dtype=torch.float64)
    for i in range(LENGTH):
        grid[i, 4:] = 1e-4 * (LENGTH - i) / 7
        grid[i, 4 + i] = 1 - 1e-4 * (LENGTH - i)
    return grid.log()


@pytest.mark.parametrize("order", ["confidence", "margin"])
def test_ordered_unmasking_places_the_surest_positions_first_one_a_step_on_schedule(order):
    model, seen = make_mdlm(), []
    fake_denoiser(model, peaked_grid(), seen)
    tokens = model.generate(1, LENGTH, torch.Generator().manual_seed(0), steps=LENGTH, order=order)
    assert (tokens != MASK).all() and len(seen) == LENGTH
    placed = [int(((seen[j + 1] != MASK) & (seen[j] == MASK)).nonzero()[0, 1]) for j in range(LENGTH - 1)]
    assert placed == list(range(LENGTH - 1, 0, -1))  # the surest first
    assert tokens[0].tolist() == list(range(4, 4 + LENGTH))


@pytest.mark.parametrize("option", [{}, {"order": "confidence"}, {"order": "margin"}, {"top_p": 0.5}])
def test_without_remasking_a_placed_token_never_changes(option):
    model, seen = make_mdlm(), []
    fake_denoiser(model, torch.full((LENGTH, VOCAB), -math.log(8)).index_fill(1, torch.arange(4), -math.inf), seen)
    final = model.generate(64, LENGTH, torch.Generator().manual_seed(0), steps=16, use_cache=False, **option)
    states = seen + [final]
    for before, after in zip(states, states[1:]):
        placed = before != MASK
        assert torch.equal(after[placed], before[placed])
    assert (final != MASK).all() and ((final >= 4) & (final < VOCAB)).all()


@pytest.mark.parametrize("strategy", ["cap", "rescale"])
def test_remasking_revises_placed_tokens_keeps_the_masks_on_schedule_and_ends_with_none(strategy):
    model, seen = make_mdlm(), []
    fake_denoiser(model, torch.full((LENGTH, VOCAB), -math.log(8)).index_fill(1, torch.arange(4), -math.inf), seen)
    steps, eta = 8, 0.5
    final = model.generate(4000, LENGTH, torch.Generator().manual_seed(0), steps=steps, use_cache=False,
                           remask=strategy, remask_eta=eta)
    assert (final != MASK).all() and ((final >= 4) & (final < VOCAB)).all()
    times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    revised = False
    for j, state in enumerate(seen):  # the network's input at step j: the state at t after remasking
        alpha_t, alpha_s = 1 - times[j], 1 - times[j + 1]
        sigma = remasking_probability(strategy, eta, alpha_t, alpha_s)
        expected = LENGTH * ((1 - alpha_t) + alpha_t * sigma)
        assert (state == MASK).sum(1).double().mean().item() == pytest.approx(expected.item(), abs=0.15), j
        if j:
            revised |= bool(((seen[j - 1] != MASK) & (state == MASK)).any())
    assert revised


def test_remasking_probability_follows_remdm():
    assert remasking_probability(None, 0.5, 0.5, 0.6) == 0.0
    assert remasking_probability("cap", 0.5, 0.5, 0.9) == pytest.approx(0.2)  # sigma_max = 0.1 / 0.5
    assert remasking_probability("cap", 0.1, 0.5, 0.6) == pytest.approx(0.1)
    assert remasking_probability("rescale", 0.5, 0.5, 0.6) == pytest.approx(0.4)
    assert remasking_probability("rescale", 0.5, 0.5, 1.0) == 0.0  # at t = 0 nothing is masked again
