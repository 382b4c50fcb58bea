"""The report's "Does diffusion get a fair start?": when each likelihood model's learning curve leaves the unigram
plateau (analysis.plateau_exit), per training seed at the default budget and at U/16 for 64 epochs, where the
seed runs of the data-reuse groups are."""
from __future__ import annotations

import math

from ..analysis import PLATEAU_MARGIN, plateau_exit
from .format import display_name
from .groups import is_reuse_group
from .verdicts import add

HEADING = "Does diffusion get a fair start?"


def curves_by_seed(curves: dict[str, list[dict]], metrics: dict[str, dict], seeds: dict | None,
                   seed: int) -> dict[str, dict[str, list[dict]]]:
    """Likelihood model -> seed label -> its learning curve at the default budget: this pipeline's run and the
    seeds group's bound runs. (SDD's curve is a denoising cross-entropy, not comparable with an NLL.)"""
    likelihood = [name for name, m in metrics.items() if m["perplexity_kind"] in ("exact", "bound")]
    found = {name: {f"seed {seed}": curves[name]} for name in likelihood}
    for run in (seeds or {"runs": {}})["runs"].values():
        label = "seed " + ", ".join(str(v) for v in run["overrides"].values())
        for name in likelihood:
            curve = run["models"].get(name, {}).get("learning_curve")
            if curve:
                found[name][label] = curve
    return found


def reuse_seed_curves(groups: dict) -> tuple[tuple[int, float] | None, dict[str, dict[str, list[dict]]]]:
    """The (U rows, epochs) at which the data-reuse groups have runs with other seeds, and there model -> seed label
    -> learning curve of every bound run at the default width (the default seed as 0)."""
    runs = [run for name, group in groups.items() if is_reuse_group(name) for run in group["runs"].values()
            if "train.d_model" not in run["overrides"]]
    seeded = {(run["overrides"].get("train.unique_rows"), run["overrides"].get("train.epochs"))
              for run in runs if "seed" in run["overrides"]}
    if len(seeded) != 1:
        return None, {}
    (at,) = seeded
    found: dict[str, dict[str, list[dict]]] = {}
    for run in runs:
        o = run["overrides"]
        if (o.get("train.unique_rows"), o.get("train.epochs")) == at:
            for model, data in run["models"].items():
                if data.get("learning_curve") and data["metrics"]["perplexity_kind"] in ("exact", "bound"):
                    found.setdefault(model, {})[f"seed {o.get('seed', 0)}"] = data["learning_curve"]
    return at, found


def _cell(exit_: dict) -> str:
    return f"{exit_['step']:,}" if exit_["step"] is not None else f"not by {exit_['last_step']:,}"


def _table(curves: dict[str, dict[str, list[dict]]], unigram_nll: float) -> tuple[list[str], dict]:
    labels = sorted({label for by_seed in curves.values() for label in by_seed})
    exits = {name: {label: plateau_exit(curve, unigram_nll) for label, curve in by_seed.items()}
             for name, by_seed in curves.items()}
    lines = ["| model | " + " | ".join(labels) + " | range over seeds |", "|---|" + "---|" * (len(labels) + 1)]
    for name, by_seed in exits.items():
        steps = [e["step"] for e in by_seed.values()]
        left = [s for s in steps if s is not None]
        spread = (f"{min(left):,}–{max(left):,}" if len(left) == len(steps) else
                  f"{len(steps) - len(left)} of {len(steps)} seeds never left it")
        lines.append(f"| {display_name(name)} | " + " | ".join(_cell(by_seed[label]) if label in by_seed else "–"
                                                              for label in labels) + f" | {spread} |")
    return lines, exits


def fair_start_section(curves: dict[str, dict[str, list[dict]]], reuse_curves: dict[str, dict[str, list[dict]]],
                       unigram_perplexity: float, reuse_label: str, kinds: dict[str, str],
                       verdicts: list | None = None) -> list[str]:
    """The section; kinds: model -> its perplexity kind (the plateau is a question for the bound models)."""
    unigram_nll = math.log(unigram_perplexity)
    lines = [f"## {HEADING}", "",
             f"A model that uses no context scores the unigram model's NLL ({unigram_nll:.3f} nats per token, "
             f"perplexity {unigram_perplexity:.1f}). Each cell is the first training step at which the model's "
             f"learning curve (its validation figure on the fixed curve rows, every few steps) falls more than "
             f"{PLATEAU_MARGIN} nats below that: where it leaves the unigram plateau and starts to use context. AR "
             "sees its own previous token in its input; a masked or corrupted position has only attention, so the "
             "diffusion models can sit on the plateau for a number of steps that differs from seed to seed, and that "
             "chance is part of every seed spread below. SDD is left out: its curve is a denoising cross-entropy, "
             "not an NLL.", "", "At the default budget:", ""]
    table, exits = _table(curves, unigram_nll)
    lines += table
    diffusion = {name: e for name, e in exits.items() if kinds[name] == "bound"}
    exact = [e for name, e in exits.items() if kinds[name] == "exact"]
    stuck = {name: sum(x["step"] is None for x in e.values()) for name, e in diffusion.items()}
    answer = ("no" if any(stuck.values()) else "yes")
    add(verdicts, "fair_start", answer,
        "; ".join(f"{display_name(name)} left it in {len(e) - stuck[name]} of {len(e)} seeds ("
                  + ", ".join(f"{label}: {_cell(x)}" for label, x in sorted(e.items())) + ")"
                  for name, e in diffusion.items())
        + "".join(f" (AR: step {', '.join(_cell(x) for x in e.values())})" for e in exact))
    if reuse_curves:
        more, _ = _table(reuse_curves, unigram_nll)
        lines += ["", f"At {reuse_label} (the data-reuse groups' seed runs; one epoch is a few dozen steps):", ""] + more
    lines += ["", "The training recipe is the same for every model (peak learning rate, warmup, no dropout, no EMA, "
              "weight decay 0) and is AR's, not the diffusion literature's (MDLM: lr 3e-4, 2,500 warmup steps, "
              "dropout 0.1, EMA 0.9999). Which ingredients shorten the plateau is the next question; none is adopted "
              "yet, so every verdict's seed spread still includes the plateau's chance.", ""]
    return lines
