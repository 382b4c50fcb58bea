"""Does diffusion win when data repeats? The rules behind the report's data-reuse section, each returning data.

The data_reuse groups train each model on a seeded subset of U of the packed training rows for E epochs (a
full schedule each), at the study's width and a wider one, with two more seeds at one point, and a fresh-data
reference (every row once). Published (Prabhudesai et al. 2025, 25M-100M unique tokens): repeated data is
worth about as much as fresh for about 4 epochs for AR and about 100 for masked diffusion; the fitted
data-reuse half-life R* is about 32 epochs for AR and about 513 for diffusion. Effective data after E epochs
of U unique tokens (Muennighoff et al. 2023): D' = U + U R* (1 - exp(-(E - 1) / R*)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .analysis import RISE_IN_STANDARD_ERRORS, against_spread, overfitting

PUBLISHED_HALF_LIFE = {"exact": 32, "bound": 513}  # epochs: AR, masked diffusion (Prabhudesai et al. 2025)
EQUAL_TOKENS_WITHIN = 0.01  # a repeated run and the fresh-data run "see as many tokens" within this share
HALF_LIFE_GRID = np.logspace(0, 4, 161)  # R* from 1 to 10,000 epochs
EXPONENT_GRID = np.linspace(0.05, 1.5, 59)
F_THRESHOLD = 4.0  # profile-likelihood bound on R*: SSE within (1 + F / (n - 4)) of the best (about 95% for one parameter)


@dataclass(frozen=True)
class Point:
    """One trained model of a data-reuse run."""
    run: str
    model: str
    unique_rows: int | None  # None: every row (the fresh-data reference)
    epochs: float
    width: int | None  # train.d_model where the run widened the models
    seed: int | None  # the run's seed where it set one
    kind: str  # exact | bound | denoising cross-entropy
    nll: float
    nll_se: float
    tokens: int
    metrics: dict
    curve: list | None


def reuse_points(runs: dict[str, dict]) -> list[Point]:
    """Every model of every bound run (group_runs' "runs": name -> {"overrides", "models"})."""
    points = []
    for name, run in runs.items():
        o = run["overrides"]
        for model, data in run["models"].items():
            m = data["metrics"]
            points.append(Point(name, model, o.get("train.unique_rows"), float(o.get("train.epochs", m["train_epochs"])),
                                o.get("train.d_model"), o.get("seed"), m["perplexity_kind"], m["nll_per_token"],
                                m.get("nll_standard_error") or 0.0, m["train_tokens"], m, data.get("learning_curve")))
    return points


def series(points: list[Point]) -> dict[tuple, list[Point]]:
    """The seed-default points by (model, unique rows, width), each sorted by epochs."""
    by = {}
    for p in points:
        if p.seed is None:
            by.setdefault((p.model, p.unique_rows, p.width), []).append(p)
    return {key: sorted(ps, key=lambda p: p.epochs) for key, ps in by.items()}


def best_epochs(line: list[Point]) -> dict:
    """A series' best epoch count (lowest validation NLL), the first larger count whose NLL is above that by
    more than RISE_IN_STANDARD_ERRORS of its standard error (None: no rise), and where the longest run's
    learning curve has its lowest point (analysis.overfitting), in epochs."""
    best = min(line, key=lambda p: p.nll)
    rises = next((p.epochs for p in line if p.epochs > best.epochs
                  and p.nll - best.nll > RISE_IN_STANDARD_ERRORS * max(p.nll_se, 1e-12)), None)
    longest = line[-1]
    curve = overfitting(longest.curve) if longest.curve else None
    curve_lowest = (curve["lowest_tokens"] / longest.tokens * longest.epochs) if curve else None
    return {"best": best, "rises_from": rises, "curve": curve, "curve_lowest_epochs": curve_lowest}


def repetition_cost(points: list[Point]) -> dict[str, dict[float, float]]:
    """Per model, at each epoch count whose run saw as many tokens as the fresh-data run (every row once): its
    validation NLL on repeated data minus that on fresh data (above 0: repetition cost it)."""
    fresh = {p.model: p for p in points if p.unique_rows is None and p.width is None and p.seed is None}
    cost = {}
    for p in points:
        f = fresh.get(p.model)
        if f and p is not f and p.unique_rows is not None and p.width is None and p.seed is None and \
                abs(p.tokens - f.tokens) <= EQUAL_TOKENS_WITHIN * f.tokens:
            cost.setdefault(p.model, {})[p.epochs] = p.nll - f.nll
    return cost


def crossover(points: list[Point], unique_rows: int, width: int | None = None) -> dict:
    """At one U (and width): AR's best exact NLL over its epochs, and for each bound model the fewest training
    tokens at which its bound falls below it (a bound below an exact figure decides it); None where it never
    does within the epochs run."""
    at = [p for p in points if p.unique_rows == unique_rows and p.width == width and p.seed is None]
    exact = [p for p in at if p.kind == "exact"]
    if not exact:
        return {"exact_best": None, "models": {}}
    target = min(exact, key=lambda p: p.nll)
    models = {}
    for model in sorted({p.model for p in at if p.kind == "bound"}):
        line = sorted((p for p in at if p.model == model), key=lambda p: p.tokens)
        below = next((p for p in line if p.nll < target.nll), None)
        models[model] = {"reached": below, "max_epochs": line[-1].epochs, "best": min(line, key=lambda p: p.nll)}
    return {"exact_best": target, "models": models}


def effective_data(unique: np.ndarray, epochs: np.ndarray, r_star: float) -> np.ndarray:
    """Muennighoff et al.'s D' = U + U R* (1 - exp(-(E - 1) / R*))."""
    return unique + unique * r_star * (1 - np.exp(-(epochs - 1) / r_star))


def _fit_sse(unique, epochs, nll, r_star: float) -> float:
    """The least squared error of L = c + B D'^-beta over the exponent grid (B >= 0), at this R*."""
    best = math.inf
    for beta in EXPONENT_GRID:
        x = effective_data(unique, epochs, r_star) ** -beta
        design = np.stack([np.ones_like(x), x], axis=1)
        (c, b), *_ = np.linalg.lstsq(design, nll, rcond=None)
        if b >= 0:
            best = min(best, float(((design @ np.array([c, b]) - nll) ** 2).sum()))
    return best


def half_life(line_points: list[Point], total_rows: int) -> dict:
    """A model's data-reuse half-life R* (epochs), fitted to its validation NLL over every U and epoch count up to
    where its NLL starts to rise (the form models diminishing returns, not overfitting): L = c + B D'^-beta with
    D' in rows, R* on a grid of 1 to 10,000 epochs, the other three fitted at each. Its interval holds every R*
    whose best error is within the profile bound (F_THRESHOLD); "identifiable" only where that interval ends
    inside the grid on both sides, and with at least 6 points."""
    used = []
    for key_points in _by_unique(line_points).values():
        b = best_epochs(key_points)
        used += [p for p in key_points if b["rises_from"] is None or p.epochs < b["rises_from"]]
    n = len(used)
    if n < 6:
        return {"points": n, "identifiable": False, "r_star": None, "low": None, "high": None}
    unique = np.array([p.unique_rows or total_rows for p in used], dtype=float)
    epochs = np.array([p.epochs for p in used], dtype=float)
    nll = np.array([p.nll for p in used], dtype=float)
    sse = np.array([_fit_sse(unique, epochs, nll, r) for r in HALF_LIFE_GRID])
    best = int(np.argmin(sse))
    inside = np.nonzero(sse <= sse[best] * (1 + F_THRESHOLD / (n - 4)))[0]
    low, high = HALF_LIFE_GRID[inside.min()], HALF_LIFE_GRID[inside.max()]
    bounded = inside.min() > 0 and inside.max() < len(HALF_LIFE_GRID) - 1
    return {"points": n, "identifiable": bool(bounded), "r_star": float(HALF_LIFE_GRID[best]),
            "low": float(low), "high": float(high), "low_open": bool(inside.min() == 0),
            "high_open": bool(inside.max() == len(HALF_LIFE_GRID) - 1)}


def _by_unique(points: list[Point]) -> dict:
    by = {}
    for p in points:
        by.setdefault(p.unique_rows, []).append(p)
    return {key: sorted(ps, key=lambda p: p.epochs) for key, ps in by.items()}


def seed_nll_spread(points: list[Point]) -> dict[str, dict]:
    """Per model, the spread of its validation NLL over the seed runs and the default-seed run at the same point
    (analysis.against_spread's form: min, max, seeds)."""
    seeded = [p for p in points if p.seed is not None]
    spread = {}
    for model in {p.model for p in seeded}:
        at = {(p.unique_rows, p.epochs, p.width) for p in seeded if p.model == model}
        values = [p.nll for p in points if p.model == model and (p.unique_rows, p.epochs, p.width) in at]
        spread[model] = {"min": min(values), "max": max(values), "seeds": len(values)}
    return spread


def diffusion_wins(crossings: dict[int, dict], spread: dict[str, dict]) -> dict:
    """The verdict, by a stated rule: at a U, diffusion wins where a bound model's best bound is below AR's best
    exact NLL by more than the seed spread of the two figures (analysis.against_spread). Overall: "yes" if it
    wins at some U; "below AR, within the seed spread" or "below AR, no seed spread known" if a bound is below
    AR's figure only so; "no" where some U has both and none of these holds; "not decided yet" where no U has
    AR's exact figure and a bound model's beside it (a group still running says nothing either way)."""
    per_u = {}
    for unique_rows, c in crossings.items():
        if c["exact_best"] is None or not c["models"]:
            continue
        exact = c["exact_best"]
        name, best = min(((m, v["best"]) for m, v in c["models"].items()), key=lambda item: item[1].nll)
        margin = against_spread(exact.nll - best.nll, [spread.get(exact.model), spread.get(name)])
        below = best.nll < exact.nll
        per_u[unique_rows] = {"model": name, "bound": best.nll, "exact": exact.nll, "below": below,
                              "margin": margin, "wins": below and margin["within"] is not None and not margin["within"]}
    below = [v for v in per_u.values() if v["below"]]
    answer = ("not decided yet" if not per_u else "yes" if any(v["wins"] for v in per_u.values()) else
              "below AR, within the seed spread" if any(v["margin"]["within"] for v in below) else
              "below AR, no seed spread known" if below else "no")
    return {"answer": answer, "per_unique_rows": per_u}
