import math

import pytest
import torch

from textdiff.backbone import BackboneConfig
from textdiff.models.sdd import SparseDistributionLM, draw_without_replacement, k_curriculum, noise_level

VOCAB, K = 50, 8


def make_sdd(k=K, curriculum=False, embed_noise_std=0.1, **variant):
    torch.manual_seed(0)
    backbone = BackboneConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=8)
    return SparseDistributionLM(VOCAB, backbone, k=k, embed_dim=16, clean_other_prob=0.01,
                                embed_noise_std=embed_noise_std, k_curriculum=curriculum, **variant).eval()


def test_noise_level_runs_from_zero_to_one():
    assert noise_level(torch.tensor(0.0)) == 0 and noise_level(torch.tensor(1.0)) == pytest.approx(1.0)
    assert noise_level(torch.tensor(0.5)) == pytest.approx(1 - math.cos(math.pi / 4))
    assert noise_level(torch.tensor(0.3), "linear") == pytest.approx(0.3)


def test_clean_state_holds_the_true_token_in_slot_zero():
    model = make_sdd()
    rows = torch.randint(VOCAB, (2, 8))
    probs, tokens = model.clean_state(rows, K, torch.Generator().manual_seed(0))
    assert torch.equal(tokens[..., 0], rows)
    assert torch.allclose(probs[..., 0], torch.tensor(1 - 0.01 * (K - 1)))
    assert torch.allclose(probs[..., 1:], torch.tensor(0.01))


def test_noise_reaches_one_over_vocab_at_full_noise_and_keeps_the_clean_state_at_zero():
    model = make_sdd()
    probs, _ = model.clean_state(torch.randint(VOCAB, (3, 8)), K, torch.Generator().manual_seed(0))
    full = model.flatten_probs(probs, torch.ones(3))
    assert torch.allclose(full, torch.full_like(full, 1 / VOCAB))
    assert full.sum(-1).max() < 1  # coarse-grained: k/V, not renormalised to 1
    assert torch.allclose(model.flatten_probs(probs, torch.zeros(3)), probs)
    half = model.flatten_probs(probs, torch.full((3,), 0.5))
    assert torch.all(half[..., 0] > half[..., 1])  # the true token still leads whenever t < 1


def test_training_never_swaps_candidate_indices():
    model = make_sdd()
    seen = []
    original = model.forward

    def spy(probs, tokens, t, generator=None):
        seen.append(tokens.clone())
        return original(probs, tokens, t, generator)
    model.forward = spy
    rows = torch.randint(VOCAB, (4, 8))
    model.training_loss(rows, torch.Generator().manual_seed(0))
    assert torch.equal(seen[0][..., 0], rows)  # slot 0 is the true token at every t


def test_embedding_noise_only_in_training_and_grows_with_t():
    model = make_sdd()
    probs, tokens = model.prior(1, 8, torch.Generator().manual_seed(0))
    clean = model(probs, tokens, torch.zeros(1))
    assert torch.allclose(model(probs, tokens, torch.zeros(1), torch.Generator().manual_seed(1)), clean)
    noisy = model(probs, tokens, torch.ones(1), torch.Generator().manual_seed(1))
    assert not torch.allclose(noisy, model(probs, tokens, torch.ones(1)))


def test_sampler_is_deterministic_top_k_without_renormalisation():
    model = make_sdd()
    states = []
    original = model.forward

    def spy(probs, tokens, t, generator=None):
        states.append((probs.clone(), tokens.clone(), t.clone()))
        return original(probs, tokens, t, generator)
    model.forward = spy
    out = model.generate(2, 8, torch.Generator().manual_seed(0), steps=3, temperature=0.7)
    assert len(states) == 3 and states[0][2][0] == 1.0  # from t=1 down, one call per step
    assert torch.allclose(states[0][0], torch.full((2, 8, K), 1 / VOCAB))  # the prior
    for (probs, tokens, t), (next_probs, next_tokens, _) in zip(states, states[1:]):
        expected_probs, expected_tokens = torch.softmax(original(probs, tokens, t) / 0.7, -1).topk(K, -1)
        assert torch.equal(next_tokens, expected_tokens)
        assert torch.allclose(next_probs, expected_probs)  # no renormalisation over the k, no re-noising
    last = states[-1]
    assert torch.equal(out, original(*last).argmax(-1))
    model.forward = original
    again = model.generate(2, 8, torch.Generator().manual_seed(0), steps=3, temperature=0.7)
    assert torch.equal(out, again)


def test_attention_bias_makes_likely_candidates_matter_more():
    model = make_sdd()
    probs, tokens = model.prior(1, 4, torch.Generator().manual_seed(0))
    probs = probs.clone()
    probs[0, :, 0] = 0.9  # slot 0 is the likely candidate
    base = model(probs, tokens, torch.zeros(1))
    changed_unlikely, changed_likely = tokens.clone(), tokens.clone()
    changed_unlikely[0, 2, 5] = (tokens[0, 2, 5] + 1) % VOCAB
    changed_likely[0, 2, 0] = (tokens[0, 2, 0] + 1) % VOCAB
    effect_unlikely = (model(probs, changed_unlikely, torch.zeros(1)) - base).abs().sum()
    effect_likely = (model(probs, changed_likely, torch.zeros(1)) - base).abs().sum()
    assert effect_likely > 5 * effect_unlikely


def test_k_curriculum_doubles_k_over_training():
    assert [k_curriculum(8, p) for p in (0.0, 0.3, 0.5, 0.8, 0.999)] == [1, 2, 4, 8, 8]
    model = make_sdd(curriculum=True)
    model.on_training_progress(0.0)
    assert model.train_k == 1
    model.on_training_progress(0.9)
    assert model.train_k == K
    loss = model.training_loss(torch.randint(VOCAB, (2, 8)), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)


def true_token_kept(model, t: float, generator, rows=torch.randint(VOCAB, (256, 8))):
    probs, tokens = model.noised_state(rows, torch.full((len(rows),), t), K, generator)
    return (tokens == rows[..., None]).any(-1).float().mean().item(), probs, tokens, rows


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0])
def test_uniform_index_swap_keeps_the_true_token_with_probability_one_minus_sigma(t):
    model = make_sdd(index_swap="uniform")
    kept, *_ = true_token_kept(model, t, torch.Generator().manual_seed(0))
    expected = 1 - noise_level(torch.tensor(t)).item()
    chance = K / VOCAB  # a random candidate can be the true token
    assert expected - 0.05 <= kept <= expected + chance + 0.05


def test_probability_index_swap_keeps_the_true_token_as_often_as_its_weight_says():
    model = make_sdd(index_swap="probability")
    for t in (0.0, 0.6):
        kept, probs, tokens, rows = true_token_kept(model, t, torch.Generator().manual_seed(1))
        weight = probs[0, 0, 0].item()  # slot 0's noised probability (no shuffling here)
        assert weight - 0.05 <= kept <= weight + K / VOCAB + 0.05


def test_shuffled_slots_move_the_true_token_with_its_probability():
    model = make_sdd(shuffle_slots=True)
    _, probs, tokens, rows = true_token_kept(model, 0.3, torch.Generator().manual_seed(0))
    top_slot = probs.argmax(-1)
    assert torch.equal(tokens.gather(-1, top_slot[..., None]).squeeze(-1), rows)  # it keeps its (highest) weight
    shares = torch.bincount(top_slot.flatten(), minlength=K).float() / top_slot.numel()
    assert shares.min() > 0.5 / K  # and every slot holds it sometimes


def spy_states(model):
    states, original = [], model.forward

    def spy(probs, tokens, t, generator=None):
        states.append((probs.clone(), tokens.clone(), t.clone()))
        return original(probs, tokens, t, generator)
    model.forward = spy
    return states, original


def test_renormalised_and_renoised_sampler_states():
    model = make_sdd()
    states, original = spy_states(model)
    model.generate(2, 8, torch.Generator().manual_seed(0), steps=4, renormalise=True)
    assert all(torch.allclose(p.sum(-1), torch.ones(())) for p, _, _ in states[1:])
    states.clear()
    model.generate(2, 8, torch.Generator().manual_seed(0), steps=4, renoise=True)
    for (probs, tokens, t), (next_probs, _, next_t) in zip(states, states[1:]):
        top = torch.softmax(original(probs, tokens, t), -1).topk(K, -1).values
        assert torch.allclose(next_probs, model.flatten_probs(top, next_t))  # flattened as training flattens


def test_stochastic_candidates_are_distinct_draws_and_constant_final_temperature_changes_nothing():
    model = make_sdd()
    states, _ = spy_states(model)
    first = model.generate(2, 8, torch.Generator().manual_seed(0), steps=3, candidates="stochastic")
    assert all((tokens.sort(-1).values.diff(dim=-1) != 0).all() for _, tokens, _ in states[1:])  # [0]: the prior
    second = model.generate(2, 8, torch.Generator().manual_seed(1), steps=3, candidates="stochastic")
    assert not torch.equal(first, second)
    plain = model.generate(2, 8, torch.Generator().manual_seed(0), steps=3, temperature=0.8)
    assert torch.equal(plain, model.generate(2, 8, torch.Generator().manual_seed(0), steps=3, temperature=0.8,
                                             final_temperature=0.8))


def test_draw_without_replacement_takes_the_first_draw_in_proportion_to_probability():
    probs = torch.tensor([0.6, 0.3, 0.1, 0.0])
    draws = draw_without_replacement(probs.expand(20000, 4), 2, torch.Generator().manual_seed(0))
    first = torch.bincount(draws[:, 0], minlength=4).float() / 20000
    assert torch.allclose(first, probs, atol=0.02)
    assert (draws[:, 0] != draws[:, 1]).all() and not (draws == 3).any()  # distinct; never a zero-probability token
