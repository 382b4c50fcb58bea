import pytest
import yaml

from textdiff.params import ParamError
from textdiff.variants import exp_run_command, read_variants
from tests.conftest import REPO


def test_committed_variants_are_valid_params_overrides():
    variants = read_variants(REPO / "params.yaml")
    assert {"k1", "k2", "k4", "curriculum"} <= set(variants)  # the seed's k claims are re-tested
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for overrides in variants.values():
        for key in overrides:
            node = raw
            for part in key.split("."):
                assert part in node, f"{key} is not a key of params.yaml"
                node = node[part]


def test_a_variant_is_a_cheap_dvc_experiment_of_sdd_only():
    command = exp_run_command("swap", {"sdd.index_swap": "uniform", "k": 4})
    assert command[:6] == ["dvc", "exp", "run", "--temp", "--name", "sdd-swap"]
    assert command[-1] == "evaluate@sdd"  # train@sdd and evaluate@sdd, nothing of AR or MDLM
    sets = [command[i + 1] for i, word in enumerate(command) if word == "--set-param"]
    assert sets == ['sdd.index_swap="uniform"', "k=4", "sample.sdd.sweep=false"]


@pytest.mark.parametrize("variants", [None, {}, {"bad name!": {"k": 2}}, {"empty": {}}])
def test_bad_variants_are_one_line_errors(tmp_path, variants):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"k": 8, "sdd_variants": variants}))
    with pytest.raises(ParamError, match="sdd_variants"):
        read_variants(path)
