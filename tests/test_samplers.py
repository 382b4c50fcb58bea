"""The sampler-study rules (textdiff.samplers) on constructed sweeps, and the report section they feed."""
import pandas as pd
import pytest

from textdiff.samplers import PLAIN, best_samplers, changed_model, gap_with_samplers, sampler_label, sampler_sweeps
from tests.test_analysis import REFERENCE

MODELS = ["ar", "mdlm", "udlm"]


def row(model, steps, ms, judge, entropy, temperature=1.0):
    return {"model": model, "steps": steps, "temperature": temperature, "ms_per_sample": ms,
            "judge_perplexity": judge, "entropy": entropy}


DEFAULT = pd.DataFrame([row("ar", 64, 5.0, 20.0, 3.5), row("mdlm", 64, 8.0, 400.0, 3.5), row("mdlm", 8, 2.0, 900.0, 3.6)])


def sampler_run(overrides, model, sweep):
    return {"overrides": overrides, "models": {model: {"sweep": sweep, "metrics": {}}}}


def test_a_run_is_labelled_by_the_model_and_the_options_it_changes():
    assert changed_model({"sample.mdlm.order": "confidence"}, MODELS) == "mdlm"
    assert changed_model({"train.steps_factor.mdlm": 16, "sample.mdlm.top_p": 0.9}, MODELS) == "mdlm"
    assert changed_model({"seed": 1}, MODELS) is None
    assert sampler_label({"train.steps_factor.mdlm": 16, "sample.mdlm.remask": "cap", "sample.mdlm.remask_eta": 0.02}
                         ) == "remask=cap, remask_eta=0.02"
    assert sampler_label({"train.steps_factor.mdlm": 16}) == PLAIN


def test_each_models_best_sampler_and_the_gap_follow_the_equal_time_rule():
    runs = {"mdlm-confidence": sampler_run({"sample.mdlm.order": "confidence"}, "mdlm",
                                           [row("mdlm", 16, 4.0, 60.0, 3.4), row("mdlm", 8, 2.0, 30.0, 1.0)])}
    table = sampler_sweeps(DEFAULT, [runs], MODELS)
    ranking = best_samplers(table, REFERENCE, 1.0)
    picks = {p["model"]: p for p in ranking["picks"]}
    assert picks["mdlm"]["sampler"] == "order=confidence" and picks["mdlm"]["judge_perplexity"] == 60.0  # not the repetitive 30
    assert picks["ar"]["sampler"] == PLAIN
    plain = {"ar": {"sample_judge_perplexity": 20.0, "sample_entropy": 3.5},
             "mdlm": {"sample_judge_perplexity": 400.0, "sample_entropy": 3.5}}
    spread = {"ar": {"distance": {"min": 0.1, "max": 0.2, "seeds": 3}},
              "mdlm": {"distance": {"min": 1.0, "max": 1.5, "seeds": 3}}}
    gap = gap_with_samplers(plain, ranking, REFERENCE, "ar", "mdlm", spread)
    # plain: MDLM |log(400/14)| + 0.1 - AR (|log(20/14)| + 0.1); best: MDLM |log(60/14)| + 0.2 - the same AR
    assert gap["plain"] == pytest.approx(2.9957, abs=1e-3) and gap["best"] == pytest.approx(1.1986, abs=1e-3)
    assert gap["narrows"] and not gap["closed"]  # 1.8 nats narrower, beyond the widest spread (0.5)
    wide = {**spread, "mdlm": {"distance": {"min": 0.0, "max": 2.5, "seeds": 3}}}
    assert not gap_with_samplers(plain, ranking, REFERENCE, "ar", "mdlm", wide)["narrows"]


def test_the_section_renders_with_its_plot_and_waits_for_its_group(tmp_path):
    from textdiff.report.samplers import samplers_section
    metrics = {"ar": {"perplexity_kind": "exact", "sample_judge_perplexity": 20.0, "sample_entropy": 3.5},
               "mdlm": {"perplexity_kind": "bound", "sample_judge_perplexity": 400.0, "sample_entropy": 3.5}}
    assert samplers_section({}, metrics, DEFAULT, REFERENCE, {}, {}, "samplers.png", tmp_path) == []
    assert (tmp_path / "samplers.png").read_bytes()[:4] == b"\x89PNG"  # a DVC output: written in every case
    group = {"runs": {"mdlm-confidence": sampler_run({"sample.mdlm.order": "confidence"}, "mdlm",
                                                     [row("mdlm", 16, 4.0, 60.0, 3.4)])},
             "not_run": ["mdlm-x16-confidence"], "excluded": {}, "command": "python stages/experiments.py samplers"}
    text = "\n".join(samplers_section({"samplers": group}, metrics, DEFAULT, REFERENCE, {}, {}, "samplers.png", tmp_path))
    assert "## Does better sampling close the gap?" in text and "MDLM order=confidence" in text
    assert "at 16x the steps: no bound run yet" in text and "Not run yet: mdlm-x16-confidence" in text
    assert "not narrowed (no seed spread known)" in text
