"""The rules behind the report's verdicts, as functions that return data; the report package renders them.

Each rule is stated where it is defined and decided from the numbers the pipeline wrote:
which model writes best at equal sampling time, how far a sample set is from real text,
which experiment run comes closest to it, and whether each of the seed project's
conclusions about SDD holds.
"""
from __future__ import annotations

import math

import pandas as pd

from .plateau import PLATEAU_MARGIN, plateau_exit  # noqa: F401  (the report's names)

# A sample set whose unigram entropy is below this share of real text's counts as degenerate
# (repetitive) when picking which model writes best: low judge perplexity alone can come from repetition.
ENTROPY_FLOOR = 0.9
# A seed conclusion about SDD's k is confirmed when the compared runs' distances to real text
# are within this relative distance of each other.
SAME_WITHIN = 0.10
# SDD's samples have a generation problem when they are repetitive or their judge perplexity is
# more than this many times real text's; a sampler fixes it when neither holds within this factor.
FAR_FROM_REAL_TEXT = 2.0


#: The headline perplexity's name in reports/metrics.json, by the kind of NLL behind it, so that no column
#: calls a bound or a denoising cross-entropy (dce) a perplexity without saying so.
PERPLEXITY_KEY = {"exact": "ppl_exact", "bound": "ppl_bound", "denoising cross-entropy": "ppl_dce"}


def headline_metrics(metrics: dict[str, dict], reference: dict) -> dict[str, dict]:
    """The few figures per model that people compare, the DVC metrics that `dvc exp show` lists, named short
    enough that one model's fit a 100-column terminal: its perplexity named by kind, its accuracy, its samples'
    judge perplexity and their distance to real text (which adds the entropy gap, so repetition cannot hide).
    Everything else stays in eval/ and timings/."""
    return {name: {PERPLEXITY_KEY[m["perplexity_kind"]]: m["perplexity"],
                   "acc": m["accuracy"],
                   "judge_ppl": m["sample_judge_perplexity"],
                   "dist_real": round(distance_to_real_text(m, reference), 3)}
            for name, m in metrics.items()}


def degenerate(m: dict, reference: dict) -> bool:
    """Whether a sample set is repetitive: its unigram entropy below ENTROPY_FLOOR of real text's."""
    return m["sample_entropy"] < ENTROPY_FLOOR * reference["entropy"]


def distance_to_real_text(m: dict, reference: dict) -> float:
    """How far a sample set is from real text, in nats per token: the gap in judge cross-entropy (log judge
    perplexity) plus the gap in unigram entropy. Repetitive samples lose on entropy, noise on the judge."""
    return (abs(math.log(m["sample_judge_perplexity"] / reference["judge_perplexity"]))
            + abs(m["sample_entropy"] - reference["entropy"]))


def quality_rank(m: dict, reference: dict) -> tuple[bool, float]:
    """The one rule every verdict on sample quality ranks by: repetitive sample sets last, then the distance to
    real text (smaller is better)."""
    return degenerate(m, reference), distance_to_real_text(m, reference)


def at_least_as_good(m: dict, other: dict, reference: dict) -> bool:
    """m's samples rank with or ahead of other's: not repetitive where other is, or equally repetitive (or not)
    and within SAME_WITHIN of its distance to real text, or closer."""
    (m_bad, m_distance), (other_bad, other_distance) = quality_rank(m, reference), quality_rank(other, reference)
    if m_bad != other_bad:
        return not m_bad
    return m_distance <= (1 + SAME_WITHIN) * other_distance


def sweep_point_metrics(point) -> dict:
    """A sweep row or pick (judge_perplexity, entropy) in the metrics' names, for the rules above."""
    return {"sample_judge_perplexity": point["judge_perplexity"], "sample_entropy": point["entropy"]}


def closest_to_real_text(runs: dict, reference: dict) -> str | None:
    """The run (name -> {"metrics": ...}) whose samples rank best by quality_rank; None if there is none."""
    if not runs:
        return None
    return min(runs, key=lambda name: quality_rank(runs[name]["metrics"], reference))


def equal_time_budget(sweeps: pd.DataFrame) -> float:
    """The sampling time every model can meet: the slowest model's fastest setting (ms a sample)."""
    return float(sweeps.groupby("model")["ms_per_sample"].min().max())


def best_at_equal_time(sweeps: pd.DataFrame, reference: dict, budget_ms: float | None = None) -> dict:
    """Which model writes best when every model gets the same sampling time.

    The budget is the slowest model's fastest setting (equal_time_budget; or budget_ms, so that two sets of
    settings are ranked on one basis); within it, each model's best setting is the one that
    ranks first by quality_rank (not repetitive, then the smallest distance to real text), and the models rank
    the same way by their best settings. Returns the budget, the entropy floor and each model's best setting
    (with its distance to real text), best first.
    """
    budget = equal_time_budget(sweeps) if budget_ms is None else budget_ms
    picks = []
    for name, group in sweeps[sweeps["ms_per_sample"] <= budget].groupby("model", sort=False):
        ranks = [quality_rank(sweep_point_metrics(row), reference) for _, row in group.iterrows()]
        best = group.iloc[min(range(len(ranks)), key=ranks.__getitem__)]
        repetitive, distance = min(ranks)
        picks.append({"model": name, "steps": int(best["steps"]), "temperature": best["temperature"],
                      "judge_perplexity": best["judge_perplexity"], "entropy": best["entropy"],
                      "distance": distance, "repetitive": repetitive})
    picks.sort(key=lambda pick: (pick["repetitive"], pick["distance"]))
    return {"budget_ms": budget, "entropy_floor": ENTROPY_FLOOR, "reference_entropy": reference["entropy"],
            "picks": picks}


def state_accuracy(metrics: dict, kind: str) -> float:
    """SDD's accuracy on one kind of diagnostic state, averaged over the t buckets (equal weight per bucket)."""
    buckets = metrics["diagnostics"]["by_t_bucket"].values()
    return sum(b[f"{kind}_accuracy"] for b in buckets) / len(buckets)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= SAME_WITHIN * max(abs(a), abs(b))


def sampler_only(overrides: dict) -> bool:
    """Whether a run changes only the sampler (keys under `sample.`), so it reuses the trained model."""
    return all(key.startswith("sample.") for key in overrides)


def seed_conclusions(seed: dict, variants: dict, reference: dict) -> dict[str, dict]:
    """Each of the seed project's conclusions about SDD, by a short id: whether it holds
    ("holds": True means confirmed) and the figures that decide it.

    seed: the main pipeline's SDD metrics; variants: run name -> {"overrides", "metrics"}.
    """
    diag = seed["diagnostics"]
    buckets = diag["by_t_bucket"].values()
    trivial = sum(b["trivial_top_candidate_accuracy"] for b in buckets) / len(buckets)
    train_acc, context_acc = state_accuracy(seed, "training"), state_accuracy(seed, "context_only")
    copying = trivial >= train_acc
    far = seed["sample_judge_perplexity"] / reference["judge_perplexity"]
    verdicts = {
        # "SDD learns useful representations": refuted as evidence when a network-free copier matches its accuracy.
        "representations": {"holds": not copying, "training_accuracy": train_acc, "trivial_accuracy": trivial,
                            "context_only_accuracy": context_acc,
                            "most_frequent_token_accuracy": diag["most_frequent_token_accuracy"]},
        "generation_problem": {"holds": degenerate(seed, reference) or far > FAR_FROM_REAL_TEXT,
                               "times_real_text": far},
    }
    by_sampler = {n: v for n, v in variants.items() if sampler_only(v["overrides"])}
    trained = {n: v for n, v in variants.items() if n not in by_sampler}
    if by_sampler:
        # "The bottleneck is sampling, not learning": confirmed only if a sampler alone brings the seed's model
        # near real text (not repetitive, judge perplexity within FAR_FROM_REAL_TEXT) and the model is not copying.
        name = closest_to_real_text(by_sampler, reference)
        m = by_sampler[name]["metrics"]
        fixed = not degenerate(m, reference) and (
            m["sample_judge_perplexity"] <= FAR_FROM_REAL_TEXT * reference["judge_perplexity"])
        verdicts["sampling_bottleneck"] = {"holds": fixed and not copying, "best_sampler": name,
                                           "context_only_accuracy": context_acc}
        if trained:
            verdicts["sampling_bottleneck"]["best_learner"] = max(
                trained, key=lambda n: state_accuracy(trained[n]["metrics"], "context_only"))
    k = seed["model_spec"]["k"]
    by_k = {v["metrics"]["model_spec"]["k"]: v["metrics"] for v in variants.values() if set(v["overrides"]) == {"k"}}
    by_k[k] = seed
    curriculum = next((v["metrics"] for v in variants.values() if v["overrides"] == {"sdd.k_curriculum": True}), None)
    if curriculum:  # "fixed k works as well as the curriculum": at least as good, by the one ranking rule
        verdicts["curriculum"] = {"holds": at_least_as_good(seed, curriculum, reference), "k": k,
                                  "curriculum": curriculum}
    others = [m for kk, m in by_k.items() if kk != k]
    if others:
        best_other = min(others, key=lambda m: quality_rank(m, reference))
        verdicts["fixed_k"] = {"holds": at_least_as_good(seed, best_other, reference), "k": k,
                               "by_k": dict(sorted(by_k.items()))}
    return verdicts


# --- spread over seeds, learning rates ------------------------------------------------------------------
def seed_figures(m: dict, reference: dict) -> dict[str, float]:
    """The figures of one model's metrics whose spread over seeds the report shows."""
    figures = {"perplexity": m["perplexity"], "nll_per_token": m["nll_per_token"], "accuracy": m["accuracy"],
               "judge_perplexity": m["sample_judge_perplexity"], "entropy": m["sample_entropy"],
               "distance": distance_to_real_text(m, reference)}
    for figure, key in (("context_only_accuracy", "context_only_accuracy"), ("distinct_1", "sample_distinct_1"),
                        ("distinct_2", "sample_distinct_2"), ("distinct_3", "sample_distinct_3"),
                        ("repeat_4gram_rate", "sample_repeat_4gram_rate")):
        if key in m:
            figures[figure] = m[key]
    return figures


def seed_spread(by_seed: dict[str, dict[str, dict]], reference: dict) -> dict[str, dict[str, dict]]:
    """Per model and figure: the mean, min and max over the seeds' runs (seed label -> model -> metrics), and
    how many seeds. A model missing from a seed's run is left out of that seed."""
    spread: dict[str, dict[str, dict]] = {}
    models = dict.fromkeys(name for run in by_seed.values() for name in run)  # in the order the runs list them
    for name in models:
        values: dict[str, list[float]] = {}
        for run in by_seed.values():
            if name in run:
                for figure, value in seed_figures(run[name], reference).items():
                    values.setdefault(figure, []).append(value)
        spread[name] = {figure: {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "seeds": len(v)}
                        for figure, v in values.items()}
    return spread


def ratio_per_seed(by_seed: dict[str, dict[str, dict]], numerator: str, denominator: str) -> dict[str, float]:
    """Each seed's own ratio of two models' perplexities (seed label -> ratio), never one seed's model over
    another seed's: the range of a ratio over seeds is the range of these."""
    return {label: run[numerator]["perplexity"] / run[denominator]["perplexity"]
            for label, run in by_seed.items() if numerator in run and denominator in run}


def against_spread(difference: float, spreads: list[dict]) -> dict:
    """A difference between two results set against the seed spread (max - min over seeds) of the figures
    behind it: `within` when it is no larger than the widest of those spreads, so that another seed could
    reverse it. None spreads (no seed runs) give within=None."""
    widths = [s["max"] - s["min"] for s in spreads if s and s.get("seeds", 0) > 1]
    if not widths:
        return {"difference": difference, "spread": None, "within": None}
    return {"difference": difference, "spread": max(widths), "within": abs(difference) <= max(widths)}


def learning_rate_sensitivity(by_factor: dict[float, dict[str, dict]], reference: dict) -> dict:
    """Each model's validation NLL per token and distance to real text at each learning-rate factor
    (factor -> model -> metrics; 1.0 is the default), its best factor by its own validation NLL (each model's
    own kind: comparable across its runs, not across models), and the ranking of the models by distance to
    real text (the one figure that compares every model) at the default and at each model's best factor:
    `holds` when the two rankings are the same."""
    models = [name for name in by_factor[1.0]]
    table = {name: {factor: {"nll": run[name]["nll_per_token"], "distance": distance_to_real_text(run[name], reference)}
                    for factor, run in sorted(by_factor.items()) if name in run} for name in models}
    best = {name: min(rows, key=lambda f: rows[f]["nll"]) for name, rows in table.items()}
    default_rank = sorted(models, key=lambda n: table[n][1.0]["distance"])
    best_rank = sorted(models, key=lambda n: table[n][best[n]]["distance"])
    return {"table": table, "best_factor": best, "default_ranking": default_rank, "best_ranking": best_rank,
            "holds": default_rank == best_rank}


# --- the unigram plateau (plateau.py: where a curve leaves it) ---------------------------------------------


def recipe_effect(default: dict[str, list[dict]], ingredient: dict[str, list[dict]], unigram_nll: float) -> dict:
    """One training ingredient on one model against the default recipe, over training seeds (label -> learning
    curve), by a stated rule. Where the plateau ends is compared in training tokens (so a smaller batch at equal
    tokens is judged fairly): the ingredient `leaves_earlier` where every seed of it leaves the plateau before the
    default's earliest seed does. Its validation figure is the curve's last point: it is `better` (`worse`) where
    its mean over seeds is below (above) the default's mean by more than the default's spread over seeds (max -
    min). It `passes` where it leaves earlier or is better, and is not worse."""
    def exits(curves):
        return [plateau_exit(curve, unigram_nll)["tokens"] for curve in curves.values()]
    default_exits, exits_with = exits(default), exits(ingredient)
    earliest = min((t for t in default_exits if t is not None), default=math.inf)
    leaves_earlier = bool(exits_with) and all(t is not None and t < earliest for t in exits_with)
    default_end = [curve[-1]["valid_nll"] for curve in default.values()]
    ends = [curve[-1]["valid_nll"] for curve in ingredient.values()]
    change = sum(ends) / len(ends) - sum(default_end) / len(default_end)
    spread = max(default_end) - min(default_end) if len(default_end) > 1 else 0.0
    better, worse = change < -spread, change > spread
    return {"default_exits": default_exits, "exits": exits_with, "leaves_earlier": leaves_earlier,
            "default_end": default_end, "end": ends, "change": change, "spread": spread, "better": better,
            "worse": worse, "passes": (leaves_earlier or better) and not worse}


def adopted(effects: dict[str, dict], shared: bool, diffusion: list[str]) -> list[str]:
    """The models an ingredient is adopted for (effects: model -> recipe_effect). A setting every model shares is
    adopted for every model or for none: where it passes for every diffusion model and makes no model worse (AR
    included), so the comparison stays fair. A model's own setting is adopted for each diffusion model it passes for."""
    if shared:
        ok = all(effects[m]["passes"] for m in diffusion if m in effects) and not any(e["worse"] for e in effects.values())
        return sorted(effects) if ok and any(m in effects for m in diffusion) else []
    return [m for m in diffusion if m in effects and effects[m]["passes"]]


def adopted_across(regimes: list[dict[str, dict]], shared: bool, diffusion: list[str]) -> list[str]:
    """The models an ingredient judged in several regimes (the screen at the default budget and its confirmations:
    longer training, repeated data; each a model -> recipe_effect) is adopted for: those it is adopted for in one
    regime, unless it is worse in another (a shared setting: for any model; a model's own: for that model). A
    confirmation can thus take back what the screen adopted, or adopt what helps only where the screen cannot show
    it (a regulariser where the data repeats)."""
    chosen = {m for effects in regimes for m in adopted(effects, shared, diffusion)}
    if shared:
        return sorted(chosen) if not any(e["worse"] for effects in regimes for e in effects.values()) else []
    return [m for m in diffusion if m in chosen and not any(effects.get(m, {}).get("worse") for effects in regimes)]


# --- training length ------------------------------------------------------------------------------------
# A figure counts as having moved when it moves by more than this many standard errors: a validation NLL rising
# while the training loss falls (overfitting), a context-only accuracy above the most-frequent-token guess or
# rising or falling with training.
RISE_IN_STANDARD_ERRORS = 2.0


def interpolate_tokens(points: list[tuple[float, float]], nll: float) -> float | None:
    """The training tokens at which a model's end points (tokens, validation NLL), NLL falling with tokens,
    reach `nll`, interpolated linearly in log tokens; None outside their range."""
    points = sorted(points)
    for (t0, n0), (t1, n1) in zip(points, points[1:]):
        if min(n0, n1) <= nll <= max(n0, n1) and n0 != n1:
            share = (n0 - nll) / (n0 - n1)
            return math.exp(math.log(t0) + share * (math.log(t1) - math.log(t0)))
    if points and any(abs(n - nll) < 1e-12 for _, n in points):
        return next(t for t, n in points if abs(n - nll) < 1e-12)
    return None


def token_multiplier(exact: list[tuple[float, float]], bound: list[tuple[float, float]]) -> list[dict]:
    """For each end point of the exact-likelihood model (AR): how many times its training tokens the bound model
    (MDLM) needs to reach the same validation NLL, interpolated on the bound model's end points. Where the bound
    model never gets that low, a lower bound: its most tokens over the exact model's (`at_least`), given only
    where it says something (above 1: the bound model trained longer and still did not get there)."""
    rows = []
    for tokens, nll in sorted(exact):
        needed = interpolate_tokens(bound, nll)
        if needed is not None:
            rows.append({"tokens": tokens, "nll": nll, "multiplier": needed / tokens, "at_least": False})
        elif bound and min(n for _, n in bound) > nll and max(t for t, _ in bound) > tokens:
            rows.append({"tokens": tokens, "nll": nll, "multiplier": max(t for t, _ in bound) / tokens,
                         "at_least": True})
    return rows


def overfitting(curve: list[dict]) -> dict | None:
    """Whether a learning curve's validation NLL rises at its end while its training loss falls: the last point
    is over its lowest by more than RISE_IN_STANDARD_ERRORS standard errors, with a lower training loss than at
    that lowest point. None for a curve of fewer than three points."""
    if len(curve) < 3:
        return None
    lowest = min(curve, key=lambda point: point["valid_nll"])
    last = curve[-1]
    error = last.get("valid_nll_standard_error") or 0.0
    rising = last["valid_nll"] - lowest["valid_nll"] > RISE_IN_STANDARD_ERRORS * error and \
        last["train_loss"] < lowest["train_loss"]
    return {"rising": rising, "lowest_tokens": lowest["tokens"], "lowest_nll": lowest["valid_nll"],
            "last_nll": last["valid_nll"], "last_tokens": last["tokens"]}


def gap_narrows(gaps: dict[float, float], spread: float | None) -> dict:
    """The seed's open question, by a stated rule: the gap (bound model's NLL minus the exact model's, nats per
    token, at equal training tokens) narrows with longer training when it is smaller at the longest common length
    than at the shortest by more than the seed spread of the gap (or by anything, without seeds); it widens when it
    is larger by more than that; otherwise the runs cannot tell."""
    if len(gaps) < 2:
        return {"verdict": None}
    shortest, longest = min(gaps), max(gaps)
    change = gaps[longest] - gaps[shortest]
    margin = spread or 0.0
    verdict = "narrows" if change < -margin else "widens" if change > margin else "cannot tell"
    return {"verdict": verdict, "shortest": shortest, "longest": longest, "change": change, "margin": margin,
            "gaps": dict(sorted(gaps.items()))}


def context_use(ends: list[tuple[float, float, float]], floor: float) -> dict | None:
    """Does a model start modelling language from context with longer training? ends: (training tokens,
    context-only accuracy, its standard error) of each run's end. Rule: it does at its longest run when that
    accuracy is over the floor (always guessing the most frequent token) by more than RISE_IN_STANDARD_ERRORS
    standard errors; the accuracy rises (falls) with training when the longest run's is above (below) the
    shortest run's by more than that many of their combined standard errors. None with no run."""
    if not ends:
        return None
    shortest, longest = min(ends), max(ends)
    combined = (shortest[2] ** 2 + longest[2] ** 2) ** 0.5
    change = longest[1] - shortest[1]
    trend = None if shortest is longest else (
        "rises" if change > RISE_IN_STANDARD_ERRORS * combined else
        "falls" if change < -RISE_IN_STANDARD_ERRORS * combined else "cannot tell")
    return {"uses_context": longest[1] - floor > RISE_IN_STANDARD_ERRORS * longest[2], "trend": trend,
            "longest_tokens": longest[0], "longest_accuracy": longest[1], "shortest_accuracy": shortest[1],
            "floor": floor}


# --- the uniform-state model against MDLM and SDD ---------------------------------------------------------
FEW_STEPS = (8, 16)
TIE = "neither"  # two sample sets within SAME_WITHIN of each other's distance to real text, equally repetitive


def few_step_comparison(sweeps: pd.DataFrame, temperatures: dict[str, float], reference: dict, challenger: str,
                        baseline: str, steps=FEW_STEPS) -> dict:
    """Whether `challenger` writes better than `baseline` at few sampling steps and at equal sampling time, by the
    one ranking rule (quality_rank: repetitive last, then distance to real text; TIE where neither is ahead by
    more than SAME_WITHIN, as at_least_as_good says). At each step count, each model's sweep point at that count
    and its default temperature; at equal time, best_at_equal_time over the two. Returns per step both points and
    the winner (None where a point is missing), and the equal-time winner."""
    def point(name, n):
        rows = sweeps[(sweeps["model"] == name) & (sweeps["steps"] == n)
                      & (sweeps["temperature"] == temperatures[name])]
        if rows.empty:
            return None
        row = rows.iloc[0]
        return {"judge_perplexity": float(row["judge_perplexity"]), "entropy": float(row["entropy"]),
                "ms_per_sample": float(row["ms_per_sample"])}
    by_steps = {}
    for n in steps:
        points = {name: point(name, n) for name in (challenger, baseline)}
        if None in points.values():
            by_steps[n] = {"points": points, "winner": None}
            continue
        as_metrics = {name: sweep_point_metrics(p) for name, p in points.items()}
        ranks = {name: quality_rank(m, reference) for name, m in as_metrics.items()}
        a, b = as_metrics[challenger], as_metrics[baseline]
        tie = at_least_as_good(a, b, reference) and at_least_as_good(b, a, reference)  # within SAME_WITHIN
        by_steps[n] = {"points": points, "ranks": ranks, "winner": TIE if tie else min(ranks, key=ranks.get)}
    pair = sweeps[sweeps["model"].isin([challenger, baseline])]
    timed = best_at_equal_time(pair, reference) if pair["model"].nunique() == 2 else None
    winner = None
    if timed:
        first, second = (sweep_point_metrics(p) for p in timed["picks"][:2])
        winner = TIE if at_least_as_good(second, first, reference) else timed["picks"][0]["model"]
    return {"challenger": challenger, "baseline": baseline, "by_steps": by_steps,
            "equal_time": timed, "equal_time_winner": winner}


def noise_injection(sdd: dict, noisier: dict[str, dict], reference: dict, floor: float | None = None) -> dict:
    """The seed's open question "would different noise injection approaches help?", by a stated rule: noise that
    can remove the true token (uniform-state diffusion; SDD's index-swapping variants) helps where a model
    trained with it predicts better from context alone (a context-only accuracy above SDD's seed design's and
    above `floor`, always guessing the most frequent token, by more than RISE_IN_STANDARD_ERRORS of its standard
    errors: a model that guesses that token everywhere reads no context, however far above the seed design it is)
    and writes better (ahead of the seed design by quality_rank, beyond SAME_WITHIN). "yes" if one does both,
    "partly" if one only predicts better, "no" otherwise. noisier: label -> metrics."""
    base = sdd["context_only_accuracy"]
    bar = max(base, floor or 0.0)
    rows = {}
    for label, m in noisier.items():
        margin = RISE_IN_STANDARD_ERRORS * m.get("context_only_accuracy_standard_error", 0.0)
        predicts = m["context_only_accuracy"] - bar > margin
        writes = not at_least_as_good(sdd, m, reference)
        rows[label] = {"context_only_accuracy": m["context_only_accuracy"], "predicts_better": predicts,
                       "writes_better": writes, "distance": distance_to_real_text(m, reference),
                       "repetitive": degenerate(m, reference)}
    answer = ("yes" if any(r["predicts_better"] and r["writes_better"] for r in rows.values()) else
              "partly" if any(r["predicts_better"] for r in rows.values()) else "no")
    return {"answer": answer, "seed_context_only_accuracy": base, "seed_distance": distance_to_real_text(sdd, reference),
            "seed_repetitive": degenerate(sdd, reference), "models": rows}
