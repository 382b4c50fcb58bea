"""The data-reuse rules (textdiff.reuse) on constructed runs, and the report section they feed."""
import numpy as np
import pytest

from textdiff.reuse import (HALF_LIFE_GRID, best_epochs, crossover, diffusion_wins, effective_data, half_life, repetition_cost,
                            reuse_points, seed_nll_spread, series)
from tests.test_analysis import REFERENCE

TOTAL = 22916


def model_metrics(kind, nll, tokens, epochs, se=0.005, judge=40.0, entropy=3.5):
    return {"perplexity_kind": kind, "nll_per_token": nll, "nll_standard_error": se, "train_tokens": tokens,
            "train_epochs": epochs, "sample_judge_perplexity": judge, "sample_entropy": entropy}


def run(unique, epochs, nll_by_model, **extra):
    overrides = {"train.epochs": epochs, **({"train.unique_rows": unique} if unique else {}), **extra}
    tokens = round(epochs * (unique or TOTAL) * 64)
    kinds = {"ar": "exact", "mdlm": "bound", "udlm": "bound", "sdd": "denoising cross-entropy"}
    return {"overrides": overrides,
            "models": {m: {"metrics": model_metrics(kinds[m], nll, tokens, epochs), "learning_curve": None}
                       for m, nll in nll_by_model.items()}}


def constructed_runs():
    # AR overfits at U/16 after 16 epochs; MDLM keeps improving and ends below AR's best at 256 epochs.
    return {"u16-e4": run(1432, 4, {"ar": 4.0, "mdlm": 5.5}), "u16-e16": run(1432, 16, {"ar": 3.8, "mdlm": 4.6}),
            "u16-e64": run(1432, 64, {"ar": 4.2, "mdlm": 4.0}), "u16-e256": run(1432, 256, {"ar": 5.0, "mdlm": 3.6}),
            "fresh-e1": run(None, 1, {"ar": 3.7, "mdlm": 5.2}),
            "u16-e64-seed1": run(1432, 64, {"ar": 4.25, "mdlm": 4.02}, seed=1),
            "u16-e64-seed2": run(1432, 64, {"ar": 4.15, "mdlm": 3.98}, seed=2)}


def test_best_epochs_and_the_rise_come_from_the_end_points():
    lines = series(reuse_points(constructed_runs()))
    ar = best_epochs(lines[("ar", 1432, None)])
    assert ar["best"].epochs == 16 and ar["rises_from"] == 64
    mdlm = best_epochs(lines[("mdlm", 1432, None)])
    assert mdlm["best"].epochs == 256 and mdlm["rises_from"] is None


def test_repetition_cost_compares_runs_of_as_many_tokens_as_the_fresh_one():
    cost = repetition_cost(reuse_points(constructed_runs()))
    assert cost["ar"] == {16: pytest.approx(0.1)} and cost["mdlm"] == {16: pytest.approx(-0.6)}


def test_the_crossover_is_the_fewest_tokens_at_which_a_bound_falls_below_ars_best():
    c = crossover(reuse_points(constructed_runs()), 1432)
    assert c["exact_best"].nll == 3.8 and c["models"]["mdlm"]["reached"].epochs == 256
    never = {name: r for name, r in constructed_runs().items() if name != "u16-e256"}
    assert crossover(reuse_points(never), 1432)["models"]["mdlm"]["reached"] is None


def test_diffusion_wins_only_beyond_the_seed_spread():
    points = reuse_points(constructed_runs())
    spread = seed_nll_spread(points)
    assert spread["ar"] == {"min": 4.15, "max": 4.25, "seeds": 3}
    verdict = diffusion_wins({1432: crossover(points, 1432)}, spread)
    assert verdict["answer"] == "yes"  # 3.8 - 3.6 = 0.2, beyond the widest seed spread (AR's 0.1)
    close = constructed_runs()
    close["u16-e256"] = run(1432, 256, {"ar": 5.0, "mdlm": 3.75})  # 0.05 below: within the spread
    points = reuse_points(close)
    assert diffusion_wins({1432: crossover(points, 1432)}, seed_nll_spread(points))["answer"] == \
        "below AR, within the seed spread"
    # Only SDD (no exact figure, no bound) at a U: the rule has nothing to decide, so it says so, not "no".
    sdd_only = reuse_points({"u16-e4": run(1432, 4, {"sdd": 5.3})})
    assert diffusion_wins({1432: crossover(sdd_only, 1432)}, {})["answer"] == "not decided yet"


def synthetic(r_star, uniques=(1432, 5729), epochs=(2, 4, 8, 16, 64, 256), c=3.0, b=40.0, beta=0.4):
    runs, wobble = {}, iter([0.004, -0.003, 0.002, -0.004, 0.003, -0.002] * 4)  # measurement noise of a few SE
    for u in uniques:
        for e in epochs:
            nll = c + b * effective_data(np.array([float(u)]), np.array([float(e)]), r_star)[0] ** -beta + next(wobble)
            runs[f"u{u}-e{e}"] = run(u, e, {"mdlm": float(nll)})
    return reuse_points(runs)


def test_the_half_life_fit_recovers_a_known_r_star_and_says_when_it_cannot():
    fit = half_life(synthetic(20.0), TOTAL)
    step = HALF_LIFE_GRID[1] / HALF_LIFE_GRID[0]  # the grid's resolution
    assert fit["identifiable"] and fit["low"] / step <= 20.0 <= fit["high"] * step
    assert fit["r_star"] == pytest.approx(20, rel=0.1)
    assert not half_life(synthetic(20.0, uniques=(1432,), epochs=(4, 16)), TOTAL)["identifiable"]  # 2 points
    flat = half_life(synthetic(1e6), TOTAL)  # no diminishing return within 256 epochs: only a lower bound
    assert not flat["identifiable"] and flat["high_open"]


def test_the_section_renders_and_writes_its_plot(tmp_path):
    from textdiff.report.reuse import reuse_section
    group = {"runs": constructed_runs(), "excluded": {}, "not_run": ["u4-e4"], "command": "python stages/experiments.py data_reuse"}
    lines = reuse_section({"data_reuse": group}, REFERENCE, TOTAL, "data_reuse.png", tmp_path)
    text = "\n".join(lines)
    assert "## Does diffusion win when data repeats?" in text and ("**Does diffusion win when data repeats? yes so far (1 run of these groups not run yet).**"
                                                                    in text)
    assert "MDLM at 256 epochs" in text and (tmp_path / "data_reuse.png").read_bytes()[:4] == b"\x89PNG"
    assert ("Spread of validation NLL over training seeds (U = 1,432 rows (1/16) at 64 epochs; the same rows, other "
            "initial weights and draws): AR 4.150 to 4.250 (0.100 nats over 3 seeds); MDLM 3.980 to 4.020 (0.040 nats "
            "over 3 seeds).") in text
    assert reuse_section({}, REFERENCE, TOTAL, "data_reuse.png", tmp_path) == []
    complete = reuse_section({"data_reuse": {**group, "not_run": []}}, REFERENCE, TOTAL, "data_reuse.png", tmp_path)
    assert "**Does diffusion win when data repeats? yes.**" in "\n".join(complete)
    # A data-reuse group that params.yaml lists but nobody has run: its runs are still to come.
    listed = {"data_reuse": ["u16-e4"], "data_reuse_ar": ["u16-e256", "u4-e64"], "seeds": ["seed1"]}
    waiting = "\n".join(reuse_section({"data_reuse": {**group, "not_run": []}}, REFERENCE, TOTAL, "data_reuse.png",
                                      tmp_path, listed))
    assert "yes so far (2 runs of these groups not run yet)" in waiting
    assert "Not run yet (python stages/experiments.py data_reuse_ar <name>): u16-e256, u4-e64." in waiting


def test_the_section_joins_the_runs_of_every_data_reuse_group(tmp_path):
    """The longest runs are one model per group (data_reuse_<model>): their points join the same series."""
    from textdiff.report.reuse import reuse_section
    runs = constructed_runs()
    longest = runs.pop("u16-e256")
    command = "python stages/experiments.py {}"
    groups = {"data_reuse": {"runs": runs, "excluded": {}, "not_run": [], "command": command.format("data_reuse")},
              "data_reuse_mdlm": {"runs": {"u16-e256": {**longest, "models": {"mdlm": longest["models"]["mdlm"]}}},
                                  "excluded": {}, "not_run": [], "command": command.format("data_reuse_mdlm")},
              "data_reuse_ar": {"runs": {"u16-e256": {**longest, "models": {"ar": longest["models"]["ar"]}}},
                                "excluded": {}, "not_run": [], "command": command.format("data_reuse_ar")},
              "samplers": {"runs": {"u16-e256": longest}, "excluded": {}, "not_run": [], "command": "elsewhere"}}
    joined = "\n".join(reuse_section(groups, REFERENCE, TOTAL, "data_reuse.png", tmp_path))
    alone = "\n".join(reuse_section({"data_reuse": groups["data_reuse"]}, REFERENCE, TOTAL, "data_reuse.png", tmp_path))
    assert "MDLM at 256 epochs" in joined and "MDLM at 256 epochs" not in alone
    whole = "\n".join(reuse_section({"data_reuse": {**groups["data_reuse"], "runs": constructed_runs()}}, REFERENCE,
                                    TOTAL, "data_reuse.png", tmp_path))
    assert joined == whole  # the same runs, however they are grouped (a group of another name adds nothing)
