"""Every sampler that draws categoricals draws them in float64 (Zheng et al. 2024: float32
sampling lowers diversity). SDD's sampler is deterministic top-k and draws none."""
import pytest
import torch

from textdiff.models import ar, mdlm
from textdiff.models.base import sample_categorical
from tests.models.test_ar import make_ar
from tests.models.test_mdlm import make_mdlm


@pytest.mark.parametrize("module, make, sampling", [(ar, make_ar, {}), (mdlm, make_mdlm, {"steps": 4})])
def test_sampler_draws_categoricals_in_float64(monkeypatch, module, make, sampling):
    dtypes = []

    def checked(probs, generator):
        dtypes.append(probs.dtype)
        return sample_categorical(probs, generator)
    monkeypatch.setattr(module, "sample_categorical", checked)
    make().generate(1, 8, torch.Generator().manual_seed(0), **sampling)
    assert dtypes and set(dtypes) == {torch.float64}
