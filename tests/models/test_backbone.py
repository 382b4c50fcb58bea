import torch

from textdiff.backbone import Backbone, BackboneConfig, init_weights

CONFIG = BackboneConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64, max_positions=16)


def test_causal_outputs_never_see_the_future():
    torch.manual_seed(0)
    backbone = Backbone(CONFIG).eval()
    x = torch.randn(2, 10, 32)
    changed = x.clone()
    changed[:, 6] += torch.randn(2, 32)  # not a constant: LayerNorm would remove that
    positions = torch.arange(10)
    a, b = backbone(x, positions, causal=True), backbone(changed, positions, causal=True)
    assert torch.allclose(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_kv_cache_matches_full_recompute():
    torch.manual_seed(0)
    backbone = Backbone(CONFIG).eval()
    x = torch.randn(1, 9, 32)
    full = backbone(x, torch.arange(9), causal=True)
    cache = backbone.new_cache()
    stepwise = [backbone(x[:, i:i + 1], torch.tensor([i]), causal=True, cache=cache) for i in range(9)]
    assert torch.allclose(torch.cat(stepwise, dim=1), full, atol=1e-5)


def test_rotary_positions_make_bidirectional_attention_order_aware():
    torch.manual_seed(0)
    backbone = Backbone(CONFIG).eval()
    x = torch.randn(1, 5, 32)
    out = backbone(x, torch.arange(5))
    swapped = backbone(x[:, [1, 0, 2, 3, 4]], torch.arange(5))
    # Without position information, swapping two inputs would only swap the two outputs.
    assert not torch.allclose(out[:, 2:], swapped[:, 2:], atol=1e-4)


def test_key_bias_of_minus_infinity_removes_a_key():
    torch.manual_seed(0)
    backbone = Backbone(CONFIG).eval()
    x = torch.randn(1, 6, 32)
    bias = torch.zeros(1, 1, 1, 6)
    bias[..., 5] = -1e9
    changed = x.clone()
    changed[:, 5] += 5 * torch.randn(32)
    a = backbone(x, torch.arange(6), key_bias=bias)
    b = backbone(changed, torch.arange(6), key_bias=bias)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-5)


def test_biased_attention_equals_sdpa_with_the_bias_as_mask():
    import torch.nn.functional as F

    from textdiff.backbone import biased_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 16, requires_grad=True) for _ in range(3))
    bias = torch.randn(2, 1, 1, 10, requires_grad=True)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    got = biased_attention(q, k, v, bias)
    assert torch.allclose(got, expected, atol=1e-5)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), bias)
    (got_grad,) = torch.autograd.grad(got.square().sum(), bias)
    assert torch.allclose(got_grad, expected_grad, atol=1e-4)


def test_rotary_rotates_each_pair_and_scores_depend_on_relative_position_only():
    from textdiff.backbone import apply_rotary, rotary_tables

    torch.manual_seed(0)
    q, k = torch.randn(2, 8), torch.randn(2, 8)
    positions = torch.tensor([3, 10])
    cos, sin = rotary_tables(positions, 8)
    angles = positions[:, None].float() * 10000.0 ** (-torch.arange(0, 8, 2).float() / 8)
    q1, q2 = q[:, :4], q[:, 4:]
    pairwise = torch.cat((q1 * angles.cos() - q2 * angles.sin(), q2 * angles.cos() + q1 * angles.sin()), dim=-1)
    assert torch.allclose(apply_rotary(q, cos, sin), pairwise, atol=1e-6)

    def score(m, n):  # query at position m against key at position n
        tables = rotary_tables(torch.tensor([m, n]), 8)
        rq, rk = apply_rotary(q[:1], *(t[:1] for t in tables)), apply_rotary(k[:1], *(t[1:] for t in tables))
        return (rq * rk).sum()

    assert torch.allclose(score(2, 7), score(12, 17), atol=1e-5)
    assert not torch.allclose(score(2, 7), score(2, 9), atol=1e-3)


def test_scaled_residual_init_divides_only_the_residual_projections_by_sqrt_of_twice_the_layers():
    torch.manual_seed(0)
    backbone = Backbone(BackboneConfig(d_model=64, n_layers=8, n_heads=2, d_ff=256, max_positions=8))
    init_weights(backbone)
    before = {name: w.clone() for name, w in backbone.state_dict().items()}
    backbone.scale_residual_init()
    after = backbone.state_dict()
    scaled = {name for name in after if name.endswith(("attn.out.weight", "mlp.2.weight"))}
    assert len(scaled) == 16
    for name, weight in after.items():
        factor = 4.0 ** -1 if name in scaled else 1.0  # 1 / sqrt(2 * 8)
        assert torch.allclose(weight, before[name] * factor)


def test_residual_dropout_acts_while_training_only_and_draws_nothing_at_zero():
    torch.manual_seed(0)
    backbone = Backbone(BackboneConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, max_positions=4))
    x, positions = torch.randn(2, 4, 16), torch.arange(4)
    plain = backbone(x, positions)
    state = torch.get_rng_state()
    assert torch.equal(backbone(x, positions), plain) and torch.equal(torch.get_rng_state(), state)
    backbone.set_residual_dropout(0.5)
    assert not torch.allclose(backbone(x, positions), plain)
    assert torch.equal(backbone.eval()(x, positions), plain)
