"""The CUDA paths, checked on a GPU (each test skips cleanly without one; benchmarks/gpu_check.py runs them on
the device). Tolerances are stated where bf16 or a different kernel may change the floats.

What is bitwise reproducible on CUDA and what is not is stated in README ("GPU").
"""
import math

import pytest
import torch
import torch.nn.functional as F

from textdiff.backbone import biased_attention
from textdiff.models import MODELS, build_model, model_names, model_spec
from textdiff.study import parse_params
from tests.conftest import micro_params_dict

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICE = "cuda"
# bf16 keeps 8 bits of mantissa: a loss of a few nats moves by up to about 1% under autocast.
BF16_LOSS_RTOL = 0.02


def small_params():
    raw = micro_params_dict()
    raw["scales"]["cpu"].update(vocab_size=512, seq_len=32, d_model=64, n_layers=2, n_heads=4, d_ff=128, batch_size=8)
    return parse_params(raw)


def model_and_rows(name, params, seed=0):
    torch.manual_seed(seed)
    model = build_model(model_spec(name, params)).to(DEVICE)
    rows = torch.randint(4, params.scale.vocab_size, (params.scale.batch_size, params.scale.seq_len), device=DEVICE,
                         generator=torch.Generator(device=DEVICE).manual_seed(seed))
    return model, rows


@cuda
@pytest.mark.parametrize("name", model_names())
def test_bf16_autocast_loss_matches_fp32(name):
    params = small_params()
    model, rows = model_and_rows(name, params)
    losses = []
    for autocast in (False, True):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            losses.append(model.training_loss(rows, torch.Generator(device=DEVICE).manual_seed(1)).item())
    assert math.isclose(losses[0], losses[1], rel_tol=BF16_LOSS_RTOL), losses


@cuda
def test_fused_adamw_step_matches_the_unfused_one():
    params = small_params()
    updated = []
    for fused in (False, True):
        model, rows = model_and_rows("ar", params)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), fused=fused)
        model.training_loss(rows, None).backward()
        optimizer.step()
        updated.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(updated[0], updated[1], rtol=1e-5, atol=1e-6)


@cuda
def test_sdd_biased_attention_through_fused_sdpa_matches_the_explicit_softmax():
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    q, k, v = (torch.randn(2, 4, 64, 16, device=DEVICE, generator=generator) for _ in range(3))
    bias = torch.randn(2, 1, 1, 64, device=DEVICE, generator=generator).clamp(max=0)  # lambda * log p <= 0
    explicit = torch.softmax(q @ k.transpose(-1, -2) / 4 + bias, dim=-1) @ v
    torch.testing.assert_close(biased_attention(q, k, v, bias), explicit, rtol=1e-4, atol=1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fused = biased_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), bias)
    torch.testing.assert_close(fused.float(), explicit, rtol=0.05, atol=0.02)


@cuda
@pytest.mark.parametrize("name", model_names())
def test_a_compiled_training_step_matches_eager(name):
    params = small_params()
    model, rows = model_and_rows(name, params)
    eager = model.training_loss(rows, torch.Generator(device=DEVICE).manual_seed(1))
    compiled = torch.compile(model.training_loss)(rows, torch.Generator(device=DEVICE).manual_seed(1))
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


CACHED = [name for name, model in MODELS.items() if any("use_cache" in case for case in model.benchmark_cases.values())]


@cuda
@pytest.mark.parametrize("name", CACHED)
def test_cached_samplers_match_recomputation(name):
    params = small_params()
    model, _ = model_and_rows(name, params)
    model.eval()
    sampling = {key: value for key, value in params.sample[name].items() if key == "steps"}
    draws = [model.generate(2, 16, torch.Generator(device=DEVICE).manual_seed(3), use_cache=use_cache, **sampling)
             for use_cache in (True, False)]
    assert torch.equal(draws[0], draws[1])


def test_the_explicit_attention_reference_is_what_sdpa_computes_on_cpu():
    """The reference of the GPU check above, checked where it always runs."""
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 8, 8, generator=generator) for _ in range(3))
    bias = -torch.rand(1, 1, 1, 8, generator=generator)
    explicit = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8) + bias, dim=-1) @ v
    torch.testing.assert_close(biased_attention(q, k, v, bias), explicit, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=bias), explicit, rtol=1e-5, atol=1e-6)


@cuda
def test_a_nan_is_caught_within_the_loss_read_interval_and_named_by_its_step(tmp_path, monkeypatch):
    # On CUDA the loss is read every train.SYNC_EVERY steps: a NaN at step 4 is found at the next read,
    # named by its own step, and no checkpoint is written after it.
    import dataclasses

    import numpy as np

    from textdiff.data import save_rows
    from textdiff.errors import NonFiniteLoss
    from textdiff.train import SYNC_EVERY, train
    from tests.conftest import poison_ar_loss

    params = small_params()
    params = dataclasses.replace(params, scale=dataclasses.replace(params.scale, steps=3 * SYNC_EVERY),
                                 train=dataclasses.replace(params.train, device="cuda", checkpoint_every=100))
    save_rows(tmp_path / "train.npy", np.random.default_rng(0).integers(4, 500, size=(64, 32)).astype(np.uint16))
    calls = poison_ar_loss(monkeypatch, at_call=4)
    with pytest.raises(NonFiniteLoss, match="at step 4"):
        train("ar", params, tmp_path / "train.npy", tmp_path / "out", tmp_path / "ckpt", progress=False)
    assert len(calls) == SYNC_EVERY and not list((tmp_path / "ckpt").glob("*"))
