import torch

from textdiff.backbone import BackboneConfig
from textdiff.models.sdd import SparseDistributionLM
from textdiff.sdd_diagnostics import accuracy_by_state, candidate_states, sampler_mismatch, training_weights

VOCAB, K = 50, 4


def make_sdd():
    torch.manual_seed(0)
    backbone = BackboneConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=8)
    return SparseDistributionLM(VOCAB, backbone, k=K, embed_dim=16, clean_other_prob=0.01, embed_noise_std=0.1,
                                use_k_curriculum=False).eval()


def test_state_kinds_keep_or_remove_the_true_token():
    model = make_sdd()
    rows = torch.randint(4, VOCAB, (64, 8))
    probs, states = candidate_states(model, rows, torch.full((64,), 0.3), torch.Generator().manual_seed(0))
    contains = {kind: (tokens == rows[..., None]).any(-1).float().mean().item() for kind, tokens in states.items()}
    assert contains["training"] == 1.0
    assert contains["true_token_replaced"] < 0.15 and contains["prior_candidates"] < 0.15  # only by chance
    others = states["training"] != rows[..., None]
    assert torch.equal(states["true_token_replaced"][others], states["training"][others])


def test_trivial_predictor_is_perfect_below_full_noise():
    # The highest-probability candidate of a training state is the true token whenever t < 1: copying it
    # needs no network, which is why training accuracy alone cannot show language modelling.
    model = make_sdd()
    rows = torch.randint(4, VOCAB, (16, 8))
    results = accuracy_by_state(model, rows, torch.Generator().manual_seed(0), batch_size=8)
    assert results["t0.00-0.25"]["trivial_top_candidate_accuracy"] == 1.0
    assert results["t0.50-0.75"]["trivial_top_candidate_accuracy"] == 1.0
    assert set(results) == {"t0.00-0.25", "t0.25-0.50", "t0.50-0.75", "t0.75-1.00"}


def test_mismatch_is_zero_for_training_weights_and_positive_for_the_prior():
    model = make_sdd()
    t = torch.tensor(0.4)
    assert torch.allclose(training_weights(model, torch.tensor(1.0)), torch.full((K,), 1 / VOCAB))
    assert training_weights(model, t)[0] > training_weights(model, t)[1]
    mismatch = sampler_mismatch(model, 2, 8, {"steps": 4, "temperature": 1.0}, torch.Generator().manual_seed(0))
    assert mismatch["mean"] > 0 and set(mismatch) >= {"mean", "t0.75-1.00"}
