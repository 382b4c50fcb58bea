import pytest
import yaml

from textdiff.errors import ParamError
from textdiff.experiments import exp_run_command, read_groups
from tests.conftest import REPO


def test_committed_groups_are_valid_params_overrides():
    groups = read_groups(REPO / "params.yaml")
    assert {"k1", "k2", "k4", "curriculum"} <= set(groups["sdd_variants"].runs)  # the seed's k claims are re-tested
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for group in groups.values():
        for overrides in [group.common, *group.runs.values()]:
            for key in overrides:
                node = raw
                for part in key.split("."):
                    assert part in node, f"{group.name}: {key} is not a key of params.yaml"
                    node = node[part]


def test_a_run_is_a_dvc_experiment_of_its_groups_stages_with_the_group_settings():
    group = read_groups(REPO / "params.yaml")["sdd_variants"]
    assert group.models == ("sdd",)
    command = exp_run_command(group, "swap-uniform")
    assert command[:6] == ["dvc", "exp", "run", "--temp", "--name", "sdd_variants-swap-uniform"]
    assert command[-1] == "evaluate@sdd"  # train@sdd and evaluate@sdd, nothing of AR or MDLM
    sets = [command[i + 1] for i, word in enumerate(command) if word == "--set-param"]
    assert sets == ['sdd.index_swap="uniform"', "sdd.shuffle_slots=true", "sample.sdd.sweep=false"]


def test_a_group_that_reproduces_the_report_collects_every_model(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"experiments": {"seeds": {"stages": ["report"], "runs": {"s1": {"seed": 1}}}}}))
    assert read_groups(path)["seeds"].models == ("ar", "mdlm", "sdd")


@pytest.mark.parametrize("groups", [None, {}, {"bad name!": {"stages": ["report"], "runs": {"a": {"k": 2}}}},
                                    {"g": {"stages": [], "runs": {"a": {"k": 2}}}},
                                    {"g": {"stages": ["report"], "runs": {"a": {}}}},
                                    {"g": {"stages": ["report"], "set": [1], "runs": {"a": {"k": 2}}}},
                                    {"g": {"stages": ["report"], "runs": {"bad name!": {"k": 2}}}}])
def test_bad_groups_are_one_line_errors(tmp_path, groups):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"k": 8, "experiments": groups}))
    with pytest.raises(ParamError, match="experiments") as error:
        read_groups(path)
    assert "\n" not in str(error.value)
