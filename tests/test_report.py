import pytest

from textdiff.report import README_BLOCKS, readme_block, replace_block, results_table
from tests.conftest import REPO


@pytest.mark.parametrize("name", README_BLOCKS)
def test_readme_tables_are_the_committed_reports(name):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = (REPO / README_BLOCKS[name]).read_text(encoding="utf-8")
    assert readme_block(readme, name).strip() == table.strip() and table.count("\n") >= 4


def test_readme_sync_replaces_only_the_named_block():
    readme = "intro\n<!-- results:start -->\nold table\n<!-- results:end -->\noutro\n"
    assert replace_block(readme, "results", "| new |\n") == (
        "intro\n<!-- results:start -->\n| new |\n<!-- results:end -->\noutro\n")


def metrics(kind, perplexity):
    return {"perplexity_kind": kind, "perplexity": perplexity, "nll_per_token": 1.0, "accuracy": 0.5,
            "gen_ms_per_sample": 12.0, "gen_steps": 64, "gen_tokens": 64, "parameters": 1_300_000,
            "train_wall_s": 100.0, "train_tokens_per_s": 5000.0}


def test_table_marks_the_bound_and_names_each_kind():
    table = results_table({"ar": metrics("exact", 30.0), "mdlm": metrics("bound", 120.0),
                           "sdd": metrics("denoising cross-entropy", 40.0)})
    rows = table.splitlines()
    assert rows[2].startswith("| AR | 30.00 | exact |")
    assert rows[3].startswith("| MDLM | ≤ 120.00 | bound |")
    assert rows[4].startswith("| SDD | 40.00 | denoising cross-entropy |")
