"""The report's "Does diffusion get a fair start?": when each likelihood model's learning curve leaves the unigram
plateau (analysis.plateau_exit), per training seed at the default budget and where the data-reuse groups have their
seed runs; then the recipe screen (the recipe groups' ingredients, judged by analysis.recipe_effect and adopted)
and its confirmations (recipe groups with a `set` of their own: a regime, judged against the group's default runs)."""
from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib.pyplot as plt

from ..analysis import PLATEAU_MARGIN, adopted, adopted_across, plateau_exit, recipe_effect
from ..experiments import COMMAND
from .format import counted, display_name, excluded_lines, overrides_text, save_png
from .groups import is_recipe_group, is_reuse_group, seed_label
from .verdicts import add

HEADING = "Does diffusion get a fair start?"


def curves_by_seed(curves: dict[str, list[dict]], metrics: dict[str, dict], seeds: dict | None,
                   seed: int) -> dict[str, dict[str, list[dict]]]:
    """Likelihood model -> seed label -> its learning curve at the default budget: this pipeline's run and the
    seeds group's bound runs. (SDD's curve is a denoising cross-entropy, not comparable with an NLL.)"""
    likelihood = [name for name, m in metrics.items() if m["perplexity_kind"] in ("exact", "bound")]
    found = {name: {seed_label({}, seed): curves[name]} for name in likelihood}
    for run in (seeds or {"runs": {}})["runs"].values():
        label = seed_label(run["overrides"], seed)
        for name in likelihood:
            curve = run["models"].get(name, {}).get("learning_curve")
            if curve:
                found[name][label] = curve
    return found


def reuse_seed_curves(groups: dict, seed: int) -> tuple[tuple[int, float] | None, dict[str, dict[str, list[dict]]]]:
    """The (U rows, epochs) at which the data-reuse groups have runs with other seeds, and there model -> seed label
    -> learning curve of every bound run at the default width (seed: the study's, for runs that set none)."""
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
                    found.setdefault(model, {})[seed_label(o, seed)] = data["learning_curve"]
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
    exact = {name: e for name, e in exits.items() if kinds[name] == "exact"}
    stuck = {name: sum(x["step"] is None for x in e.values()) for name, e in diffusion.items()}
    answer = ("no" if any(stuck.values()) else "yes")
    add(verdicts, "fair_start", answer,
        "; ".join(f"{display_name(name)} left it in {len(e) - stuck[name]} of {len(e)} seeds ("
                  + ", ".join(f"{label}: {_cell(x)}" for label, x in sorted(e.items())) + ")"
                  for name, e in diffusion.items())
        + "".join(f" ({display_name(name)}: step {', '.join(_cell(x) for x in e.values())})"
                  for name, e in exact.items()))
    if reuse_curves:
        more, _ = _table(reuse_curves, unigram_nll)
        lines += ["", f"At {reuse_label} (the data-reuse groups' seed runs; one epoch is a few dozen steps):", "",
                  *more]
    return lines + [""]


def ingredient_of(run_name: str) -> str:
    """A recipe run's ingredient: its name without the -seed<N> suffix."""
    return re.sub(r"-seed\d+$", "", run_name)


# A confirmation group (a recipe group whose `set` puts every run in another regime: longer training, repeated data)
# names its runs without an ingredient `default`, `default-seed1`, ...: the reference its ingredients are judged by.
REFERENCE = "default"


def regimes(groups: dict, seed: int) -> dict[tuple, dict]:
    """Regime (a recipe group's `set` as sorted items; () for the default budget) -> {"set", "ingredients": label ->
    {"overrides", "curves": model -> seed label -> learning curve}} from the recipe groups' bound runs (seed: the
    study's, for runs that set none)."""
    found: dict[tuple, dict] = {}
    for name, group in groups.items():
        if not is_recipe_group(name):
            continue
        for run_name, run in group["runs"].items():
            common = run.get("set") or {}
            regime = found.setdefault(tuple(sorted(common.items())), {"set": common, "ingredients": {}})
            overrides = {k: v for k, v in run["overrides"].items() if k != "seed" and k not in common}
            entry = regime["ingredients"].setdefault(ingredient_of(run_name), {"overrides": overrides, "curves": {}})
            for model, data in run["models"].items():
                if data.get("learning_curve"):
                    entry["curves"].setdefault(model, {})[seed_label(run["overrides"], seed)] = data["learning_curve"]
    return dict(sorted(found.items(), key=lambda item: len(item[0])))  # the default budget (the screen) first


def regime_title(common: dict) -> str:
    return (f"at {overrides_text(common)}, against the group's own `{REFERENCE}` runs" if common
            else "at the default budget, against the study's seeds")


def plot_title(common: dict) -> str:
    """A plot row's regime in plain text (a figure title renders no markdown)."""
    return ", ".join(f"{key}={value}" for key, value in common.items()) if common else "at the default budget"


# matplotlib's tab10 without its grey (C7), which is the default recipe's; then tab20's lighter shades (odd
# indices) without its grey (15), so that more than nine ingredients still get colours of their own.
INGREDIENT_COLORS = [*(f"C{i}" for i in range(10) if i != 7),
                     *(plt.get_cmap("tab20")(i) for i in range(1, 20, 2) if i != 15)]


def plot_recipe(panels: list[tuple[str, dict, dict]], models: list[str], unigram_nll: float, path: Path) -> None:
    """A row per regime (title, the reference's model -> seed label -> curve, its ingredients), a panel per diffusion
    model: the reference's seeds (grey) and each ingredient's (a colour each) against training tokens, with the
    unigram level the plateau sits on."""
    rows, cols = max(1, len(panels)), max(1, len(models))
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.2 * rows), dpi=110, squeeze=False)
    for row, (title, reference, found) in zip(axes, panels or [("", {}, {})]):
        for ax, model in zip(row, models):
            for i, curve in enumerate(reference.get(model, {}).values()):
                ax.plot([p["tokens"] for p in curve], [p["valid_nll"] for p in curve], color="0.5", linewidth=1,
                        label="default recipe (each seed)" if i == 0 else None)
            for color, (label, entry) in zip(INGREDIENT_COLORS, found.items()):
                for i, curve in enumerate(entry["curves"].get(model, {}).values()):
                    ax.plot([p["tokens"] for p in curve], [p["valid_nll"] for p in curve], color=color,
                            linewidth=1, alpha=0.8, label=label if i == 0 else None)
            ax.axhline(unigram_nll, color="k", linestyle=":", linewidth=1, label="unigram model")
            ax.axhline(unigram_nll - PLATEAU_MARGIN, color="k", linestyle="--", linewidth=0.8,
                       label=f"{PLATEAU_MARGIN} nats below: off the plateau")
            ax.set_title(f"{display_name(model)} {title}".strip(), fontsize=9)
            ax.set_xlabel("training tokens")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        row[0].set_ylabel("validation NELBO bound per token (curve rows)")
    fig.suptitle("The recipe screen: learning curves of each ingredient's seeds against the default's", fontsize=10)
    save_png(fig, path)


def _effect_row(label: str, overrides: dict, model: str, e: dict) -> str:
    cells = ", ".join(f"{t:,}" if t is not None else "never" for t in e["exits"])
    base = ", ".join(f"{t:,}" if t is not None else "never" for t in e["default_exits"])
    mean, default_mean = sum(e["end"]) / len(e["end"]), sum(e["default_end"]) / len(e["default_end"])
    return (f"| {label} ({overrides_text(overrides)}) | {display_name(model)} | {cells} | {base} | {mean:.3f} "
            f"({default_mean:.3f}) | {e['change']:+.3f} ({e['spread']:.3f}) | {'yes' if e['passes'] else 'no'}"
            f"{' (worse)' if e['worse'] else ''} |")


def recipe_lines(groups: dict, default: dict[str, dict[str, list[dict]]], unigram_perplexity: float,
                 kinds: dict[str, str], plot_name: str, out_dir: Path, listed: dict[str, list[str]] | None = None,
                 verdicts: list | None = None, seed: int = 0, sets: dict[str, dict] | None = None) -> list[str]:
    """The recipe screen's part of the section (its plot is written in every case, a DVC output). listed: the runs
    of each group params.yaml defines, so that a recipe group nobody has collected yet counts as runs to come;
    sets: each such group's `set`, which makes it a confirmation group whether or not any run of it is collected."""
    groups = {**{name: {"runs": {}, "excluded": {}, "not_run": list(runs), "command": f"{COMMAND} {name}"}
                 for name, runs in (listed or {}).items() if is_recipe_group(name)}, **groups}
    found = regimes(groups, seed)
    diffusion = [name for name, kind in kinds.items() if kind == "bound"]
    unigram_nll = math.log(unigram_perplexity)
    recipe_groups = {name: g for name, g in groups.items() if is_recipe_group(name)}
    present = list(recipe_groups.values())
    # Each regime's reference: the study's seeds at the default budget, a confirmation group's own default runs.
    panels = []  # (the regime's set, its title, its reference's curves, its ingredients)
    for regime in found.values():
        common, ingredients = regime["set"], regime["ingredients"]
        reference = (ingredients.pop(REFERENCE)["curves"] if REFERENCE in ingredients else {}) if common else default
        panels.append((common, regime_title(common) if len(found) > 1 else "", reference, ingredients))
    plot_recipe([(plot_title(common) if len(found) > 1 else "", reference, ingredients)
                 for common, _, reference, ingredients in panels], diffusion, unigram_nll, out_dir / plot_name)
    lines = ["### The recipe screen", ""]
    if not any(ingredients for *_, ingredients in panels):
        add(verdicts, "recipe", "not run yet", "; ".join(f"`{g['command']}`" for g in present) or "no recipe group")
        return lines + ["No run of the recipe groups is bound to this study yet: "
                        + ("; ".join(f"`{g['command']}`" for g in present) or "params.yaml defines none") + "."] + \
            [line for g in present for line in excluded_lines(g["excluded"], g["command"])] + [""]
    lines += ["Each ingredient of the diffusion literature's recipe that might shorten the plateau, trained at the "
              "default budget with the default's seeds (training and learning curves only). The rule, for each "
              "model: an ingredient **passes** where every seed of it leaves the plateau (in training tokens) before "
              "the default's earliest seed, or its last learning-curve figure (mean over seeds) is below the "
              "default's by more than the default's spread over seeds; and it is not above by more than that. A "
              "setting every model shares (its runs train AR too) is adopted for every model or for none: where it "
              "passes for every diffusion model and makes no model worse, AR included; a model's own setting for "
              "each model it passes for. A confirmation group trains ingredients in another regime (longer "
              "training; repeated data, where a regulariser can show what it is for) against default runs of its "
              "own, by the same rule: an ingredient is adopted where it is in one regime, unless it is worse in "
              "another.", "", f"![the recipe screen]({plot_name})", ""]
    header = ["| ingredient | model | leaves the plateau at (tokens, each seed) | default's seeds | last figure, mean "
              "(default's) | change (default's spread) | passes |", "|---|---|---|---|---|---|---|"]
    judged_in: dict[str, list[dict]] = {}  # ingredient -> its effects (model -> recipe_effect) in each regime
    judged, spreads, shared_labels = [], {}, set()  # spreads: the default budget's seed spread per model screened
    for common, title, reference, ingredients in panels:
        if title:
            lines += [f"{title[0].upper()}{title[1:]}:", ""]
        if not reference:
            lines += [f"No `{REFERENCE}` run of this regime is bound yet, so its ingredients "
                      f"({', '.join(ingredients)}) are not judged.", ""]
            continue
        if not ingredients:
            continue
        lines += header
        for label, entry in ingredients.items():
            effects = {model: recipe_effect(reference[model], curves, unigram_nll)
                       for model, curves in entry["curves"].items() if model in reference}
            judged_in.setdefault(label, []).append(effects)
            judged += effects.values()
            if any(kinds.get(model) == "exact" for model in effects):
                shared_labels.add(label)
            for model, e in effects.items():
                if not common:
                    spreads[model] = e["spread"]
                lines.append(_effect_row(label, entry["overrides"], model, e))
        lines.append("")
    taken = {label: models for label, effects in judged_in.items()
             if (models := adopted_across(effects, label in shared_labels, diffusion))}
    answer = ("adopt " + "; ".join(f"{label} ({', '.join(map(display_name, models))})"
                                   for label, models in taken.items())
              if taken else "none adopted")
    # An ingredient can pass for some models and still not be adopted (a shared setting needs every diffusion
    # model; a confirmation can take an adoption back): the verdict names these, so "none adopted" does not read
    # as "no effect".
    passed = {label: list(dict.fromkeys(m for effects in regimes for m, e in effects.items() if e["passes"]))
              for label, regimes in judged_in.items() if label not in taken}
    passed = {label: models for label, models in passed.items() if models}
    not_taken = "; ".join(f"{label} ({', '.join(map(display_name, models))})" for label, models in passed.items())
    lines += [f"**By the rule: {answer}.**" + (
        f" Not adopted though it passes for some models (a shared setting needs every diffusion model; a "
        f"confirmation can take an adoption back): {not_taken}." if passed else "") + (
        " Adopting changes every model's training, so it belongs to the one batched rerun of the study and its "
        "groups; until then the default recipe stands and every seed spread keeps the plateau's chance."
        if taken else " The default recipe stands, and every seed spread keeps the plateau's chance."), ""]
    def is_confirmation(name: str, group: dict) -> bool:
        """The one test, as regimes() applies it to each run: the group puts its runs in a regime by a `set`
        (params.yaml's now, else the one its collected runs ran with)."""
        return bool((sets or {}).get(name) or any(run.get("set") for run in group["runs"].values()))
    pending = sorted({ingredient_of(run) for name, g in recipe_groups.items() if not is_confirmation(name, g)
                      for run in g["not_run"]})
    unconfirmed = {name: sorted({ingredient_of(run) for run in g["not_run"]} - {REFERENCE})
                   for name, g in recipe_groups.items() if is_confirmation(name, g) and g["not_run"]}
    seeds = max(len(c) for *_, ingredients in panels for e in ingredients.values() for c in e["curves"].values())
    outcome = ", ".join(f"{counted(sum(e[key] for e in judged), 'screen')} {words}" for key, words in
                        (("leaves_earlier", "left the plateau earlier in every seed"),
                         ("better", "ended lower beyond the default's seed spread"),
                         ("worse", "ended higher beyond it")))
    confirmed = [overrides_text(common) for common, _, reference, ingredients in panels
                 if common and reference and ingredients]
    add(verdicts, "recipe", answer,
        f"screened at {seeds} seeds: {', '.join(judged_in)} ({counted(len(judged), 'model screen')}: {outcome}; "
        "the default's seed spread of the last figure: "
        + ", ".join(f"{display_name(model)} {spread:.3f}" for model, spread in spreads.items()) + ")"
        + (f"; not adopted though it passes for: {not_taken}" if passed else "")
        + (f"; confirmed at {'; at '.join(confirmed)}" if confirmed else "")
        + (f"; not run yet: {', '.join(pending)}" if pending else "")
        + "".join(f"; confirmation not run yet ({name}): {', '.join(names) or REFERENCE}"
                  for name, names in unconfirmed.items()))
    for group in present:
        if group["not_run"]:
            lines += [f"Not run yet ({group['command']} <name>): {', '.join(group['not_run'])}.", ""]
        lines += excluded_lines(group["excluded"], group["command"])
    return lines + [""]
