import math

import pytest
import pandas as pd

from textdiff.analysis import (against_spread, at_least_as_good, best_at_equal_time, closest_to_real_text, context_use,
                               distance_to_real_text, few_step_comparison, noise_injection,
                               gap_narrows, interpolate_tokens, learning_rate_sensitivity, overfitting,
                               seed_conclusions, seed_spread, token_multiplier)
from textdiff.experiments import run_binding

REFERENCE = {"judge_perplexity": 14.0, "entropy": 3.6, "distinct_1": 0.15, "repeat_4gram_rate": 0.01}


def sdd_metrics(judge_ppl, entropy, train_acc, context_acc, trivial=1.0, k=8, nll=1.0):
    bucket = {"trivial_top_candidate_accuracy": trivial, "training_accuracy": train_acc,
              "context_only_accuracy": context_acc, "true_token_replaced_accuracy": 0.0,
              "prior_candidates_accuracy": 0.001}
    return {"sample_judge_perplexity": judge_ppl, "sample_entropy": entropy, "nll_per_token": nll,
            "sample_distinct_1": 0.1, "sample_repeat_4gram_rate": 0.0, "train_wall_s": 10.0,
            "model_spec": {"k": k}, "accuracy": train_acc,
            "diagnostics": {"by_t_bucket": {"t0.00-0.25": bucket, "t0.75-1.00": bucket},
                            "most_frequent_token_accuracy": 0.05}}


def variant(overrides, **kwargs):
    return {"overrides": overrides, "metrics": sdd_metrics(**kwargs), "samples": ["a story"]}


def test_distance_to_real_text_is_zero_for_real_text_and_grows_with_either_gap():
    real = {"sample_judge_perplexity": 14.0, "sample_entropy": 3.6}
    assert distance_to_real_text(real, REFERENCE) == 0
    noisy = {"sample_judge_perplexity": 14.0 * 2.718281828, "sample_entropy": 3.6}
    repetitive = {"sample_judge_perplexity": 14.0, "sample_entropy": 2.6}
    assert abs(distance_to_real_text(noisy, REFERENCE) - 1.0) < 1e-6
    assert abs(distance_to_real_text(repetitive, REFERENCE) - 1.0) < 1e-9


def test_closest_run_is_neither_repetitive_nor_noise():
    variants = {"repeats": variant({"k": 1}, judge_ppl=3.0, entropy=0.5, train_acc=0.9, context_acc=0.0),
                "noise": variant({"k": 2}, judge_ppl=40000.0, entropy=3.6, train_acc=0.9, context_acc=0.0),
                "writes": variant({"sdd.index_swap": "uniform"}, judge_ppl=80.0, entropy=3.4, train_acc=0.4,
                                  context_acc=0.3)}
    assert closest_to_real_text(variants, REFERENCE) == "writes"
    # One rule for repetitive text in every verdict (as at equal time): a repetitive set ranks last, even when its
    # distance to real text is smaller (repeats 2.5 + |log(3/14)| = 4.04 against noise's |log(40000/14)| = 7.96).
    assert closest_to_real_text({name: variants[name] for name in ("repeats", "noise")}, REFERENCE) == "noise"
    assert closest_to_real_text({}, REFERENCE) is None


def test_equal_time_winner_skips_repetitive_settings_and_slow_ones():
    sweeps = pd.DataFrame([
        # a: its fast setting repeats (entropy 1.0 < 0.9 * 3.6), so its fair best is the other one
        {"model": "a", "steps": 8, "temperature": 1.0, "ms_per_sample": 5.0, "judge_perplexity": 2.0, "entropy": 1.0},
        {"model": "a", "steps": 16, "temperature": 1.0, "ms_per_sample": 9.0, "judge_perplexity": 30.0, "entropy": 3.5},
        # b: only one setting within the budget (10 ms: b's fastest), and it is fair
        {"model": "b", "steps": 64, "temperature": 1.0, "ms_per_sample": 10.0, "judge_perplexity": 20.0, "entropy": 3.4},
        {"model": "b", "steps": 128, "temperature": 1.0, "ms_per_sample": 50.0, "judge_perplexity": 5.0, "entropy": 3.6},
    ])
    ranking = best_at_equal_time(sweeps, REFERENCE)
    assert ranking["budget_ms"] == 10.0
    assert [(p["model"], p["judge_perplexity"], p["repetitive"]) for p in ranking["picks"]] == [
        ("b", 20.0, False), ("a", 30.0, False)]


def test_equal_time_picks_the_setting_closest_to_real_text_not_the_lowest_judge_perplexity():
    """A judge perplexity far below real text's (14 here) is text too predictable to be real: the pick and the
    ranking follow the one rule (quality_rank), as every other verdict does."""
    sweeps = pd.DataFrame([
        {"model": "a", "steps": 64, "temperature": 0.7, "ms_per_sample": 5.0, "judge_perplexity": 3.0, "entropy": 3.3},
        {"model": "a", "steps": 64, "temperature": 1.0, "ms_per_sample": 5.0, "judge_perplexity": 15.0, "entropy": 3.6},
        {"model": "b", "steps": 8, "temperature": 1.0, "ms_per_sample": 5.0, "judge_perplexity": 18.0, "entropy": 3.5},
    ])
    picks = best_at_equal_time(sweeps, REFERENCE)["picks"]
    assert [(p["model"], p["temperature"]) for p in picks] == [("a", 1.0), ("b", 1.0)]
    assert picks[0]["distance"] == pytest.approx(abs(math.log(15 / 14)))
    # a's T=0.7 (judge perplexity 3) would rank behind b: |log(3/14)| + 0.3 = 1.84 > |log(18/14)| + 0.1 = 0.35
    only_cold = best_at_equal_time(sweeps.drop(index=1), REFERENCE)["picks"]
    assert [p["model"] for p in only_cold] == ["b", "a"]


def test_seed_conclusions_follow_the_figures():
    copier = sdd_metrics(judge_ppl=3000.0, entropy=1.0, train_acc=0.8, context_acc=0.001)
    variants = {"sampler": variant({"sample.sdd.candidates": "stochastic"}, judge_ppl=2500.0, entropy=1.5,
                                   train_acc=0.8, context_acc=0.001),
                "curriculum": variant({"sdd.k_curriculum": True}, judge_ppl=3100.0, entropy=1.0, train_acc=0.8,
                                      context_acc=0.001),
                "k4": variant({"k": 4}, judge_ppl=900.0, entropy=1.2, train_acc=0.8, context_acc=0.001, k=4)}
    verdicts = seed_conclusions(copier, variants, REFERENCE)
    assert not verdicts["representations"]["holds"]  # a network-free copier matches its accuracy
    assert verdicts["generation_problem"]["holds"]
    assert not verdicts["sampling_bottleneck"]["holds"] and verdicts["sampling_bottleneck"]["best_sampler"] == "sampler"
    assert verdicts["curriculum"]["holds"]  # 3100 vs 3000 is within 10%
    assert not verdicts["fixed_k"]["holds"]  # k=4 is much closer to real text
    learner = sdd_metrics(judge_ppl=20.0, entropy=3.5, train_acc=0.8, context_acc=0.4, trivial=0.5)
    fixed = {"sampler": variant({"sample.sdd.renoise": True}, judge_ppl=18.0, entropy=3.5, train_acc=0.8,
                                context_acc=0.4)}
    verdicts = seed_conclusions(learner, fixed, REFERENCE)
    assert verdicts["representations"]["holds"] and verdicts["sampling_bottleneck"]["holds"]
    assert not verdicts["generation_problem"]["holds"]
    assert "curriculum" not in verdicts and "fixed_k" not in verdicts  # not run: no verdict


def bound_run(**changes):
    """A collected run of `k=4` that matches STUDY, with some of its records changed."""
    run = {"overrides": {"k": 4}, "set": {"sample.sdd.sweep": False},
           "params": {"scales.cpu.d_model": 128, "k": 4, "sample.sdd.sweep": False},
           "code": {"src/textdiff/models/sdd.py": "c0de"}, "data": {"data/packed/train.npy": "da7a"},
           "judge": {"models/judge/model.safetensors": "ju06e"}}
    return {**run, **changes}


STUDY = {"params": {"scales.cpu.d_model": 128, "k": 8, "sample.sdd.sweep": True},
         "md5": {"src/textdiff/models/sdd.py": "c0de", "data/packed/train.npy": "da7a",
                 "models/judge/model.safetensors": "ju06e"}}
ENTRY = {"k": 4, "sample.sdd.sweep": False}


def test_a_run_of_the_current_study_is_bound_to_it():
    assert run_binding(bound_run(), ENTRY, STUDY) == []


def test_a_run_with_another_model_size_is_excluded():
    run = bound_run(params={"scales.cpu.d_model": 32, "k": 4, "sample.sdd.sweep": False})
    assert run_binding(run, ENTRY, STUDY) == ["it ran with other params: scales.cpu.d_model = 32 (now 128)"]


def test_a_run_scored_by_another_judge_is_excluded():
    assert run_binding(bound_run(judge={"models/judge/model.safetensors": "01d"}), ENTRY, STUDY) == [
        "its samples were scored by another judge"]


def test_a_run_whose_group_entry_was_edited_is_excluded_and_keeps_what_it_ran():
    reasons = run_binding(bound_run(), {"k": 2, "sample.sdd.sweep": False}, STUDY)
    assert reasons == ["params.yaml now sets k=2, sample.sdd.sweep=False for it, but it ran k=4, sample.sdd.sweep=False"]
    assert run_binding(bound_run(), None, STUDY) == ["params.yaml no longer lists it"]


def test_a_run_of_other_code_or_data_or_unrecorded_is_excluded():
    assert run_binding(bound_run(code={"src/textdiff/models/sdd.py": "01d"}), ENTRY, STUDY) == [
        "it ran other code (src/textdiff/models/sdd.py)"]
    assert run_binding(bound_run(data={"data/packed/train.npy": "01d"}), ENTRY, STUDY) == [
        "it trained on other packed data"]
    unrecorded = {key: value for key, value in bound_run().items() if key != "params"}
    assert run_binding(unrecorded, ENTRY, STUDY) == ["it was collected before runs recorded what they ran with"]


def test_seed_spread_gives_mean_and_range_per_model_and_figure():
    runs = {f"seed {i}": {"ar": {**sdd_metrics(judge_ppl=50.0 + 10 * i, entropy=3.0, train_acc=0.5, context_acc=0.1),
                                 "perplexity": 30.0 + i, "accuracy": 0.4}} for i in range(3)}
    spread = seed_spread(runs, REFERENCE)["ar"]
    assert spread["perplexity"] == {"mean": 31.0, "min": 30.0, "max": 32.0, "seeds": 3}
    assert spread["judge_perplexity"]["min"] == 50.0 and spread["judge_perplexity"]["max"] == 70.0


def test_a_difference_within_the_seed_spread_is_said_to_be_so():
    wide = {"min": 1.0, "max": 1.5, "seeds": 3}
    assert against_spread(0.3, [wide])["within"] is True
    assert against_spread(-0.6, [wide, {"min": 1.0, "max": 1.2, "seeds": 3}]) == {
        "difference": -0.6, "spread": 0.5, "within": False}
    assert against_spread(0.3, [None, {"min": 1.0, "max": 1.0, "seeds": 1}])["within"] is None  # one seed: no spread


def test_learning_rate_ranking_is_taken_at_each_models_best_rate():
    def m(nll, judge_ppl):
        return {"nll_per_token": nll, "sample_judge_perplexity": judge_ppl, "sample_entropy": REFERENCE["entropy"]}
    by_factor = {0.5: {"ar": m(3.5, 40.0), "mdlm": m(5.0, 90.0)},
                 1.0: {"ar": m(3.4, 45.0), "mdlm": m(5.5, 40.0)},
                 2.0: {"ar": m(3.6, 30.0), "mdlm": m(5.8, 35.0)}}
    result = learning_rate_sensitivity(by_factor, REFERENCE)
    assert result["best_factor"] == {"ar": 1.0, "mdlm": 0.5}  # by each model's own validation NLL
    assert result["default_ranking"] == ["mdlm", "ar"] and result["best_ranking"] == ["ar", "mdlm"]
    assert result["holds"] is False


def test_token_multiplier_interpolates_in_log_tokens_and_bounds_what_it_cannot_reach():
    ar = [(100.0, 4.0), (400.0, 3.5)]
    mdlm = [(100.0, 5.0), (400.0, 4.5), (1600.0, 4.0)]
    rows = token_multiplier(ar, mdlm)
    assert rows[0] == {"tokens": 100.0, "nll": 4.0, "multiplier": pytest.approx(16.0), "at_least": False}  # 1600/100
    assert rows[1] == {"tokens": 400.0, "nll": 3.5, "multiplier": 4.0, "at_least": True}  # never that low: > 1600/400
    assert interpolate_tokens(mdlm, 4.75) == pytest.approx(200.0)  # halfway in log tokens between 100 and 400
    assert token_multiplier([(6400.0, 3.0)], mdlm) == []  # MDLM never trained that long: nothing to say


def test_overfitting_needs_a_rising_validation_nll_and_a_falling_training_loss():
    def point(tokens, valid, train):
        return {"tokens": tokens, "valid_nll": valid, "valid_nll_standard_error": 0.01, "train_loss": train}
    rising = [point(1, 5.0, 5.0), point(2, 3.0, 3.0), point(3, 3.2, 2.0)]
    assert overfitting(rising)["rising"] is True and overfitting(rising)["lowest_tokens"] == 2
    assert overfitting([point(1, 5.0, 5.0), point(2, 3.0, 3.0), point(3, 3.01, 2.0)])["rising"] is False  # within 2 SE
    assert overfitting([point(1, 5.0, 5.0), point(2, 3.0, 3.0), point(3, 3.2, 3.5)])["rising"] is False  # both rise
    assert overfitting(rising[:2]) is None


def test_the_gap_verdict_counts_only_changes_beyond_the_seed_spread():
    assert gap_narrows({100: 1.0, 1600: 0.5}, 0.2)["verdict"] == "narrows"
    assert gap_narrows({100: 1.0, 1600: 0.9}, 0.2)["verdict"] == "cannot tell"
    assert gap_narrows({100: 1.0, 1600: 1.5}, 0.2)["verdict"] == "widens"
    assert gap_narrows({100: 1.0}, 0.2)["verdict"] is None


def test_context_use_needs_accuracy_beyond_the_most_frequent_token_and_a_trend_beyond_standard_errors():
    copier = context_use([(100, 0.060, 0.002), (400, 0.001, 0.0005)], floor=0.067)
    assert copier["uses_context"] is False and copier["trend"] == "falls" and copier["longest_tokens"] == 400
    learner = context_use([(100, 0.060, 0.002), (400, 0.120, 0.003)], floor=0.067)
    assert learner["uses_context"] is True and learner["trend"] == "rises"
    assert context_use([(100, 0.068, 0.002), (400, 0.069, 0.002)], floor=0.067)["trend"] == "cannot tell"
    assert context_use([(100, 0.068, 0.002), (400, 0.069, 0.002)], floor=0.067)["uses_context"] is False  # within 2 SE
    assert context_use([(100, 0.2, 0.01)], floor=0.067)["trend"] is None and context_use([], 0.067) is None


def test_a_repetitive_seed_design_never_ties_a_k_that_writes_by_the_one_ranking_rule():
    # Issue 23 row 9: the seed design, repetitive, at the same distance as a non-repetitive k=4, must rank after it.
    repetitive = sdd_metrics(judge_ppl=14.0 * math.exp(0.2), entropy=1.0, train_acc=0.8, context_acc=0.0)
    writes = variant({"k": 4}, judge_ppl=14.0 * math.exp(2.8), entropy=3.6, train_acc=0.8, context_acc=0.0, k=4)
    assert distance_to_real_text(repetitive, REFERENCE) == pytest.approx(distance_to_real_text(writes["metrics"],
                                                                                             REFERENCE))
    assert not seed_conclusions(repetitive, {"k4": writes}, REFERENCE)["fixed_k"]["holds"]
    assert at_least_as_good(writes["metrics"], repetitive, REFERENCE)
    assert not at_least_as_good(repetitive, writes["metrics"], REFERENCE)


def test_few_step_comparison_ranks_repetitive_last_and_needs_both_points():
    rows = [("mdlm", 8, 1.0, 50.0, 3.5, 10.0), ("udlm", 8, 1.0, 20.0, 2.0, 12.0),  # udlm repeats at 8 steps
            ("mdlm", 16, 1.0, 60.0, 3.5, 20.0), ("udlm", 16, 1.0, 30.0, 3.4, 24.0)]
    sweeps = pd.DataFrame([dict(zip(("model", "steps", "temperature", "judge_perplexity", "entropy",
                                     "ms_per_sample"), row)) for row in rows])
    result = few_step_comparison(sweeps, {"mdlm": 1.0, "udlm": 1.0}, REFERENCE, "udlm", "mdlm")
    assert result["by_steps"][8]["winner"] == "mdlm" and result["by_steps"][16]["winner"] == "udlm"
    assert result["equal_time_winner"] == "mdlm"  # budget 12 ms: udlm's only point within it repeats
    close = sweeps.assign(judge_perplexity=[50.0, 20.0, 60.0, 58.0])  # at 16 steps: within 10% of each other
    assert few_step_comparison(close, {"mdlm": 1.0, "udlm": 1.0}, REFERENCE, "udlm", "mdlm")["by_steps"][16][
        "winner"] == "neither"
    assert few_step_comparison(sweeps, {"mdlm": 1.0, "udlm": 0.7}, REFERENCE, "udlm", "mdlm")["by_steps"][8][
        "winner"] is None  # no udlm point at its default temperature


def test_noise_injection_helps_only_where_a_model_predicts_from_context_and_writes_better():
    seed = {**sdd_metrics(judge_ppl=3000.0, entropy=1.0, train_acc=0.8, context_acc=0.0),
            "context_only_accuracy": 0.01}
    predicts = {"sample_judge_perplexity": 3000.0, "sample_entropy": 1.0, "context_only_accuracy": 0.2}
    both = {"sample_judge_perplexity": 40.0, "sample_entropy": 3.5, "context_only_accuracy": 0.2}
    assert noise_injection(seed, {"x": predicts}, REFERENCE)["answer"] == "partly"
    assert noise_injection(seed, {"x": predicts, "y": both}, REFERENCE)["answer"] == "yes"
    worse = {"sample_judge_perplexity": 40.0, "sample_entropy": 3.5, "context_only_accuracy": 0.005}
    assert noise_injection(seed, {"z": worse}, REFERENCE)["answer"] == "no"


def test_a_model_that_guesses_the_most_frequent_token_does_not_predict_from_context():
    # UDLM on its unigram plateau is right at 6.8% of the positions the noise changed, far above SDD's 0.1%,
    # and exactly as often as always guessing the most frequent token: it reads no context.
    seed = {**sdd_metrics(judge_ppl=3000.0, entropy=1.0, train_acc=0.8, context_acc=0.0),
            "context_only_accuracy": 0.001}
    plateau = {"sample_judge_perplexity": 40.0, "sample_entropy": 3.5, "context_only_accuracy": 0.0676,
               "context_only_accuracy_standard_error": 0.0006}
    assert noise_injection(seed, {"udlm": plateau}, REFERENCE, floor=0.0677)["answer"] == "no"
    learned = {**plateau, "context_only_accuracy": 0.11}
    assert noise_injection(seed, {"udlm": learned}, REFERENCE, floor=0.0677)["answer"] == "yes"


def test_the_range_of_a_ratio_over_seeds_is_the_range_of_each_seeds_own_ratio():
    # Issue 37, item 4: the report divided one seed's MDLM by another seed's AR (min over max) and gave a range
    # wider than any seed's ratio: here 300/50 = 6.0 to 400/40 = 10.0, while the seeds' own ratios are 7.5 and 8.0.
    from textdiff.analysis import ratio_per_seed
    by_seed = {"seed 0": {"ar": {"perplexity": 40.0}, "mdlm": {"perplexity": 300.0}},
               "seed 1": {"ar": {"perplexity": 50.0}, "mdlm": {"perplexity": 400.0}},
               "seed 2": {"ar": {"perplexity": 45.0}}}  # a seed without MDLM gives no ratio
    assert ratio_per_seed(by_seed, "mdlm", "ar") == {"seed 0": 7.5, "seed 1": 8.0}


def curve(nlls, tokens_per_point=100):
    return [{"step": 50 * (i + 1), "tokens": tokens_per_point * (i + 1), "valid_nll": v} for i, v in enumerate(nlls)]


def test_a_learning_curve_leaves_the_unigram_plateau_where_it_falls_a_tenth_of_a_nat_below_it():
    from textdiff.analysis import plateau_exit
    assert plateau_exit(curve([6.2, 6.05, 5.95, 5.0]), 6.1) == {"step": 150, "tokens": 300, "last_step": 200}
    assert plateau_exit(curve([6.2, 6.05]), 6.1) == {"step": None, "tokens": None, "last_step": 100}


def test_an_ingredient_passes_only_where_every_seed_leaves_the_plateau_before_the_defaults_earliest():
    from textdiff.analysis import adopted, recipe_effect
    default = {"seed 0": curve([6.1, 6.1, 5.9]), "seed 1": curve([6.1, 5.9, 5.8]), "seed 2": curve([6.1, 6.1, 6.1])}
    earlier = {"seed 0": curve([5.9, 5.8, 5.7]), "seed 1": curve([5.95, 5.9, 5.8]), "seed 2": curve([5.9, 5.8, 5.9])}
    e = recipe_effect(default, earlier, 6.1)
    assert e["default_exits"] == [300, 200, None] and e["exits"] == [100, 100, 100] and e["leaves_earlier"]
    assert e["passes"] and not e["worse"]  # last figures 5.8 mean against 5.933, within the spread 0.3
    one_late = {**earlier, "seed 2": curve([6.1, 5.9, 5.9])}  # leaves at 200 tokens: not before the earliest (200)
    late = recipe_effect(default, one_late, 6.1)
    assert not late["leaves_earlier"] and not late["passes"]
    worse = recipe_effect(default, {"seed 0": curve([5.9, 6.9, 6.9]), "seed 1": curve([5.9, 6.9, 6.9]),
                                    "seed 2": curve([5.9, 6.9, 6.9])}, 6.1)
    assert worse["leaves_earlier"] and worse["worse"] and not worse["passes"]  # 6.9 against 5.93 + 0.3
    effects = {"ar": {**e, "passes": False, "worse": False}, "mdlm": e, "udlm": late}
    assert adopted(effects, shared=True, diffusion=["mdlm", "udlm"]) == []  # not for UDLM, so for no model
    assert adopted({"ar": effects["ar"], "mdlm": e}, shared=True, diffusion=["mdlm", "udlm"]) == ["ar", "mdlm"]
    assert adopted({"mdlm": e, "udlm": late}, shared=False, diffusion=["mdlm", "udlm"]) == ["mdlm"]
    assert adopted({"ar": {**e, "worse": True}, "mdlm": e}, shared=True, diffusion=["mdlm"]) == []  # AR worse


def test_a_confirmation_can_take_back_what_the_screen_adopted_or_adopt_what_the_screen_could_not_show():
    from textdiff.analysis import adopted_across
    passes = {"passes": True, "worse": False}
    neutral = {"passes": False, "worse": False}
    worse = {"passes": False, "worse": True}
    screen = {"ar": neutral, "mdlm": passes, "udlm": passes}
    # Adopted at the default budget and not worse at 4x the steps: adopted for every model (a shared setting).
    assert adopted_across([screen, {"ar": neutral, "mdlm": neutral, "udlm": neutral}], True, ["mdlm", "udlm"]) == \
        ["ar", "mdlm", "udlm"]
    # Worse for AR where the data repeats: a shared setting is taken back for every model.
    assert adopted_across([screen, {"ar": worse, "mdlm": passes, "udlm": passes}], True, ["mdlm", "udlm"]) == []
    # A regulariser neutral at the default budget that passes where the data repeats.
    assert adopted_across([{"ar": neutral, "mdlm": neutral, "udlm": neutral},
                           {"ar": neutral, "mdlm": passes, "udlm": passes}], True, ["mdlm", "udlm"]) == \
        ["ar", "mdlm", "udlm"]
    # A model's own setting is taken back only for the model it makes worse.
    assert adopted_across([screen, {"mdlm": worse, "udlm": neutral}], False, ["mdlm", "udlm"]) == ["udlm"]


def test_a_training_only_run_is_bound_without_a_judge_but_not_on_other_data():
    trained = {"mdlm": {"learning_curve": [], "train_summary": {}}}
    assert run_binding(bound_run(judge={}, models=trained), ENTRY, STUDY) == []
    assert run_binding(bound_run(judge={}, models=trained, data={"data/packed/train.npy": "01d"}), ENTRY, STUDY) == [
        "it trained on other packed data"]
    evaluated = {"mdlm": {"metrics": {}, "learning_curve": []}}
    assert run_binding(bound_run(judge={}, models=evaluated), ENTRY, STUDY) == ["its samples were scored by another judge"]
