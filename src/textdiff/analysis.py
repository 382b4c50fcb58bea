"""The rules behind the report's verdicts, as functions that return data; report.py renders them.

Each rule is stated where it is defined and decided from the numbers the pipeline wrote:
which model writes best at equal sampling time, how far a sample set is from real text,
which experiment run comes closest to it, and whether each of the seed project's
conclusions about SDD holds.
"""
from __future__ import annotations

import math

import pandas as pd

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


def run_binding(run: dict, entry: dict | None, study: dict) -> list[str]:
    """Why a collected experiment run (experiments.collect) is not evidence for the current study; [] if it is.

    entry: the run's overrides as its group in params.yaml now states them (with the group's `set`), None if
    the group no longer has it. study: the current study's "params" (experiments.study_params) and the md5 of
    every file a run may rest on ("md5": path -> md5 or None). A run matches when it ran exactly the current
    params with its entry applied, and its code, packed data and judge are the current ones, byte for byte.
    """
    if "params" not in run:
        return ["it was collected before runs recorded what they ran with"]
    reasons = []
    ran = {**run["overrides"], **run["set"]}
    if entry is None:
        reasons.append("params.yaml no longer lists it")
    elif entry != ran:
        reasons.append(f"params.yaml now sets {_settings(entry)} for it, but it ran {_settings(ran)}")
    expected = {**study["params"], **ran}
    differing = sorted(key for key in expected.keys() | run["params"].keys()
                       if expected.get(key) != run["params"].get(key))
    if differing:
        reasons.append("it ran with other params: " + ", ".join(
            f"{key} = {run['params'].get(key)!r} (now {study['params'].get(key)!r})" for key in differing[:4])
            + (f" and {len(differing) - 4} more" if len(differing) > 4 else ""))
    code = sorted(path for path, md5 in run["code"].items() if study["md5"].get(path) != md5)
    if code:
        reasons.append(f"it ran other code ({', '.join(code[:3])}{' …' if len(code) > 3 else ''})")
    for kind, what in (("data", "it trained on other packed data"), ("judge", "its samples were scored by another judge")):
        if not run[kind] or any(study["md5"].get(path) != md5 for path, md5 in run[kind].items()):
            reasons.append(what)
    return reasons


def _settings(overrides: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in overrides.items()) or "nothing"


def degenerate(m: dict, reference: dict) -> bool:
    """Whether a sample set is repetitive: its unigram entropy below ENTROPY_FLOOR of real text's."""
    return m["sample_entropy"] < ENTROPY_FLOOR * reference["entropy"]


def distance_to_real_text(m: dict, reference: dict) -> float:
    """How far a sample set is from real text, in nats per token: the gap in judge cross-entropy (log judge
    perplexity) plus the gap in unigram entropy. Repetitive samples lose on entropy, noise on the judge."""
    return (abs(math.log(m["sample_judge_perplexity"] / reference["judge_perplexity"]))
            + abs(m["sample_entropy"] - reference["entropy"]))


def closest_to_real_text(runs: dict, reference: dict) -> str | None:
    """The run (name -> {"metrics": ...}) whose samples are closest to real text; None if there is none."""
    if not runs:
        return None
    return min(runs, key=lambda name: distance_to_real_text(runs[name]["metrics"], reference))


def best_at_equal_time(sweeps: pd.DataFrame, reference: dict) -> dict:
    """Which model writes best when every model gets the same sampling time.

    The budget is the slowest model's fastest setting; within it, each model's best setting is the
    one with the lowest judge perplexity among those not repetitive (all of them if every one is),
    and repetitive bests rank last. Returns the budget, the entropy floor and each model's best
    setting, best first.
    """
    budget = sweeps.groupby("model")["ms_per_sample"].min().max()
    floor = ENTROPY_FLOOR * reference["entropy"]
    picks = []
    for name, group in sweeps[sweeps["ms_per_sample"] <= budget].groupby("model", sort=False):
        fair = group[group["entropy"] >= floor]
        pool = fair if len(fair) else group
        best = pool.loc[pool["judge_perplexity"].idxmin()]
        picks.append({"model": name, "steps": int(best["steps"]), "temperature": best["temperature"],
                      "judge_perplexity": best["judge_perplexity"], "entropy": best["entropy"],
                      "repetitive": len(fair) == 0})
    picks.sort(key=lambda pick: (pick["repetitive"], pick["judge_perplexity"]))
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
    if curriculum:
        verdicts["curriculum"] = {"holds": close(distance_to_real_text(curriculum, reference),
                                                 distance_to_real_text(seed, reference)),
                                  "k": k, "curriculum": curriculum}
    others = [m for kk, m in by_k.items() if kk != k]
    if others:
        closest_other = min(distance_to_real_text(m, reference) for m in others)
        verdicts["fixed_k"] = {"holds": distance_to_real_text(seed, reference) <= (1 + SAME_WITHIN) * closest_other,
                               "k": k, "by_k": dict(sorted(by_k.items()))}
    return verdicts
