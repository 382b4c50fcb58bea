import torch
import torch.nn.functional as F

from textdiff.models import build_model, model_spec
from textdiff.study import parse_params
from tests.conftest import micro_params_dict


def make_ar():
    torch.manual_seed(0)
    return build_model(model_spec("ar", parse_params(micro_params_dict()))).eval()


def test_loss_is_next_token_cross_entropy_from_bos():
    model = make_ar()
    rows = torch.randint(4, 300, (3, 16))
    inputs = torch.cat((torch.full((3, 1), model.bos_id), rows[:, :-1]), dim=1)
    expected = F.cross_entropy(model.logits(inputs).flatten(0, 1), rows.flatten())
    assert torch.allclose(model.training_loss(rows, None), expected)
    sums = model.validation_sums(rows, None)
    assert abs(sums["nll"].sum() / sums["tokens"].sum() - expected.item()) < 1e-4


def test_cached_generation_equals_recomputing_the_prefix():
    model = make_ar()
    cached = model.generate(2, 12, torch.Generator().manual_seed(5), use_cache=True)
    recomputed = model.generate(2, 12, torch.Generator().manual_seed(5), use_cache=False)
    assert torch.equal(cached, recomputed) and cached.shape == (2, 12)


def test_low_temperature_generation_is_greedy():
    model = make_ar()
    sample = model.generate(1, 6, torch.Generator().manual_seed(1), temperature=1e-4)
    tokens = torch.tensor([[model.bos_id]])
    for _ in range(6):
        tokens = torch.cat((tokens, model.logits(tokens)[:, -1:].argmax(-1)), dim=1)
    assert torch.equal(sample, tokens[:, 1:])

