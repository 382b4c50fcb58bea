"""Can better sampling fix diffusion's text? The rules behind the report's sampler section, each returning data.

Every sampler option (the `samplers` group) is judged like the main sweep; each model's best sampler is its best
setting at equal sampling time under the report's one rule (analysis.best_at_equal_time: repetitive settings
last), and the AR-MDLM gap in distance to real text is compared with the plain samplers and with each model's
best, at the default training length and at 16x (the training-length group's longest runs).
"""
from __future__ import annotations

import pandas as pd

from .analysis import against_spread, best_at_equal_time, distance_to_real_text, equal_time_budget, sweep_point_metrics

PLAIN = "plain"  # the model's default sampler (ancestral for the diffusion models, plain temperature for AR)


def changed_model(overrides: dict, models) -> str | None:
    """The model a run's overrides are about (sample.<m>.* or train.*.<m>); None if none or several."""
    named = {m for m in models for key in overrides if key.startswith(f"sample.{m}.") or key.endswith(f".{m}")}
    return named.pop() if len(named) == 1 else None


def sampler_label(overrides: dict) -> str:
    """A run's sampler options, as `key=value` without the model prefix (PLAIN where it changes none)."""
    options = [f"{key.split('.', 2)[2]}={value}" for key, value in overrides.items() if key.startswith("sample.")]
    return ", ".join(options) or PLAIN


def steps_factor(overrides: dict, model: str) -> float:
    return float(overrides.get(f"train.steps_factor.{model}", 1))


def sampler_sweeps(default_sweeps: pd.DataFrame, groups_runs: list[dict], models) -> pd.DataFrame:
    """Every judged sampling setting: the pipeline's sweeps (PLAIN, factor 1) and each bound run's sweep of the model
    it changes (its sampler, its training-length factor), as rows of model, sampler, factor, steps, temperature,
    ms_per_sample, judge_perplexity, entropy."""
    frames = [default_sweeps.assign(sampler=PLAIN, factor=1.0)]
    for runs in groups_runs:
        for run in runs.values():
            model = changed_model(run["overrides"], models)
            sweep = run["models"].get(model, {}).get("sweep") if model else None
            if sweep:
                frames.append(pd.DataFrame(sweep).assign(model=model, sampler=sampler_label(run["overrides"]),
                                                         factor=steps_factor(run["overrides"], model)))
    columns = ["model", "sampler", "factor", "steps", "temperature", "ms_per_sample", "judge_perplexity", "entropy"]
    return pd.concat([f[columns] for f in frames], ignore_index=True)


def best_samplers(sweeps: pd.DataFrame, reference: dict, factor: float, budget_ms: float | None = None) -> dict:
    """At one training-length factor: each model's best setting at equal sampling time over all its samplers
    (analysis.best_at_equal_time), with the sampler it used."""
    at = sweeps[sweeps["factor"] == factor]
    if at.empty:
        return {"picks": []}
    ranking = best_at_equal_time(at, reference, budget_ms)
    for pick in ranking["picks"]:
        rows = at[(at["model"] == pick["model"]) & (at["steps"] == pick["steps"])
                  & (at["temperature"] == pick["temperature"]) & (at["judge_perplexity"] == pick["judge_perplexity"])]
        pick["sampler"] = rows.iloc[0]["sampler"]
    return ranking


def gap_with_samplers(sweeps: pd.DataFrame, reference: dict, factor: float, exact: str, bound: str,
                      spread: dict | None) -> dict | None:
    """The bound model's distance to real text minus the exact model's at one training-length factor, both gaps
    at one equal sampling time (the budget that both the plain samplers and all samplers can meet): with each
    model's best plain setting, and with its best setting over every sampler. So where each model's best sampler
    is its plain one, the change is 0. The verdict, by the stated rule (analysis.against_spread on the change):
    `closed` where the gap with the best samplers is no longer positive; `narrowed` or `widened` where it moved
    beyond the seed spread of the distances; `within the seed spread` where it moved no more than that (another
    seed could reverse it); `no seed spread` where there are no seed runs. None where a model lacks a point."""
    at = sweeps[sweeps["factor"] == factor]
    plain_rows = at[at["sampler"] == PLAIN]
    if not all(name in set(plain_rows["model"]) for name in (exact, bound)):
        return None
    budget = max(equal_time_budget(at), equal_time_budget(plain_rows))
    plain, best = best_samplers(plain_rows, reference, factor, budget), best_samplers(at, reference, factor, budget)
    picks = {"plain": {p["model"]: p for p in plain["picks"]}, "best": {p["model"]: p for p in best["picks"]}}
    gaps = {kind: float(distance_to_real_text(sweep_point_metrics(by[bound]), reference)
                        - distance_to_real_text(sweep_point_metrics(by[exact]), reference))
            for kind, by in picks.items()}
    spreads = [(spread or {}).get(name, {}).get("distance") for name in (exact, bound)]
    margin = against_spread(gaps["best"] - gaps["plain"], spreads)
    if gaps["best"] <= 0:
        verdict = "closed"
    elif margin["within"] is None:
        verdict = "no seed spread"
    elif margin["within"]:
        verdict = "within the seed spread"
    else:
        verdict = "narrowed" if gaps["best"] < gaps["plain"] else "widened"
    return {"plain": gaps["plain"], "best": gaps["best"], "margin": margin, "verdict": verdict, "ranking": best,
            "samplers": {name: picks["best"][name]["sampler"] for name in (exact, bound)}}
