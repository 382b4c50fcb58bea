import torch

from textdiff.backbone import BackboneConfig
from textdiff.models.sdd import (SparseDistributionLM, accuracy_by_state, candidate_states, sampler_mismatch,
                                 training_weights)

VOCAB, K = 50, 4


def make_sdd():
    torch.manual_seed(0)
    backbone = BackboneConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=8)
    return SparseDistributionLM(VOCAB, backbone, k=K, embed_dim=16, clean_other_prob=0.01, embed_noise_std=0.1,
                                k_curriculum=False).eval()


def test_state_kinds_keep_or_remove_the_true_token():
    model = make_sdd()
    rows = torch.randint(4, VOCAB, (64, 8))
    probs, states = candidate_states(model, rows, torch.full((64,), 0.3), torch.Generator().manual_seed(0))
    contains = {kind: (tokens == rows[..., None]).any(-1) for kind, (tokens, _) in states.items()}
    assert contains["training"].all()
    for kind in ("true_token_replaced", "prior_candidates"):
        assert contains[kind].float().mean() < 0.15  # only by chance
    others = states["training"][0] != rows[..., None]
    assert torch.equal(states["true_token_replaced"][0][others], states["training"][0][others])
    context_tokens, scored = states["context_only"]
    assert 0.05 < scored.float().mean() < 0.3
    assert contains["context_only"][~scored].all()  # the context keeps its true tokens
    assert contains["context_only"][scored].float().mean() < 0.15  # the scored positions lose theirs


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


class TopCandidateCopier(torch.nn.Module):
    """A 'model' that only copies its most probable candidate: the behaviour the diagnostics must expose."""

    def __init__(self, sdd):
        super().__init__()
        self.sdd, self.k, self.vocab_size = sdd, sdd.k, sdd.vocab_size

    def noised_state(self, *args):
        return self.sdd.noised_state(*args)

    def forward(self, probs, tokens, t, generator=None):
        top = tokens.gather(-1, probs.argmax(-1, keepdim=True)).squeeze(-1)
        return torch.nn.functional.one_hot(top, self.vocab_size).float() * 20


def test_a_copier_is_perfect_on_training_states_and_helpless_without_the_true_token():
    copier = TopCandidateCopier(make_sdd())
    rows = torch.randint(4, VOCAB, (32, 8))
    low = accuracy_by_state(copier, rows, torch.Generator().manual_seed(0), batch_size=16)["t0.00-0.25"]
    assert low["training_accuracy"] == 1.0
    assert low["context_only_accuracy"] < 0.1 and low["true_token_replaced_accuracy"] < 0.1
    assert low["context_only_nll"] > low["training_nll"] + 10
