import pytest

from textdiff.report import (README_BLOCKS, best_sdd_variant, labelled_rows, readme_block, replace_block,
                             results_table, seed_conclusions)
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
    table = results_table(labelled_rows({"ar": metrics("exact", 30.0), "mdlm": metrics("bound", 120.0),
                                         "sdd": metrics("denoising cross-entropy", 40.0)}, {}, None))
    rows = table.splitlines()
    assert rows[2].startswith("| AR | 30.00 | exact |")
    assert rows[3].startswith("| MDLM | ≤ 120.00 | bound |")
    assert rows[4].startswith("| SDD | 40.00 | denoising cross-entropy |")


REFERENCE = {"judge_perplexity": 14.0, "entropy": 3.6, "distinct_1": 0.15, "repeat_4gram_rate": 0.01}


def sdd_metrics(judge_ppl, entropy, train_acc, context_acc, trivial=1.0, k=8, nll=1.0):
    bucket = {"trivial_top_candidate_accuracy": trivial, "training_accuracy": train_acc,
              "context_only_accuracy": context_acc, "prior_candidates_accuracy": 0.001}
    return {"sample_judge_perplexity": judge_ppl, "sample_entropy": entropy, "nll_per_token": nll, "sample_distinct_1": 0.1,
            "model_spec": {"k": k}, "accuracy": train_acc,
            "diagnostics": {"by_t_bucket": {"t0.00-0.25": bucket, "t0.75-1.00": bucket},
                            "most_frequent_token_accuracy": 0.05}}


def variant(overrides, **kwargs):
    return {"overrides": overrides, "metrics": sdd_metrics(**kwargs)}


def test_best_variant_is_neither_repetitive_nor_noise():
    variants = {"repeats": variant({"k": 1}, judge_ppl=3.0, entropy=0.5, train_acc=0.9, context_acc=0.0),
                "noise": variant({"k": 2}, judge_ppl=40000.0, entropy=3.6, train_acc=0.9, context_acc=0.0),
                "writes": variant({"sdd.index_swap": "uniform"}, judge_ppl=80.0, entropy=3.4, train_acc=0.4,
                                  context_acc=0.3)}
    assert best_sdd_variant(variants, REFERENCE) == "writes"
    assert best_sdd_variant({name: variants[name] for name in ("repeats", "noise")}, REFERENCE) == "repeats"
    assert best_sdd_variant({}, REFERENCE) is None
    rows = labelled_rows({"ar": {}, "sdd": {}}, variants, "writes")
    assert list(rows) == ["AR", "SDD (seed design)", "SDD best variant: writes"]


def test_seed_conclusions_follow_the_figures():
    copier = sdd_metrics(judge_ppl=3000.0, entropy=1.0, train_acc=0.8, context_acc=0.001)
    variants = {"sampler": variant({"sample.sdd.candidates": "stochastic"}, judge_ppl=2500.0, entropy=1.5,
                                   train_acc=0.8, context_acc=0.001),
                "curriculum": variant({"sdd.k_curriculum": True}, judge_ppl=3100.0, entropy=1.0, train_acc=0.8,
                                      context_acc=0.001),
                "k4": variant({"k": 4}, judge_ppl=900.0, entropy=1.2, train_acc=0.8, context_acc=0.001, k=4)}
    text = "\n".join(seed_conclusions(copier, variants, REFERENCE, {"accuracy": 0.35}))
    assert "learns useful representations" in text and text.count("**refuted**") == 3
    assert "generation problem\"*: **confirmed**" in text
    assert "curriculum\"*: **confirmed**" in text  # 3100 vs 3000 is within 10%
    learner = sdd_metrics(judge_ppl=20.0, entropy=3.5, train_acc=0.8, context_acc=0.4, trivial=0.5)
    fixed = {"sampler": variant({"sample.sdd.renoise": True}, judge_ppl=18.0, entropy=3.5, train_acc=0.8,
                                context_acc=0.4)}
    text = "\n".join(seed_conclusions(learner, fixed, REFERENCE, None))
    assert "representations\" (the seed's evidence: 54% accuracy)*: **confirmed**" in text
    assert "not learning\"*: **confirmed**" in text


def test_cost_section_totals_the_stage_times():
    from textdiff.report import cost_section

    text = "\n".join(cost_section({"prepare": 30.0, "train@ar": 1770.4}))
    assert "| train@ar | 1770 s |" in text and "**1800 s (30.0 min)**" in text
