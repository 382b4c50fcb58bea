"""The experiment groups' part of the report: which collected runs are bound to this study (group_runs),
the seed runs behind every spread, the learning-rate and training-length sections, and README's table of
groups."""
from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import matplotlib.pyplot as plt

from ..analysis import (RISE_IN_STANDARD_ERRORS, against_spread, context_use, gap_narrows,
                        learning_rate_sensitivity, overfitting, token_multiplier)
from ..experiments import collected_sessions, entry, run_binding, study_params
from ..io import atomic_path
from .format import KIND_SHORT, counted, display_name, excluded_lines, margin_words, with_error
from .verdicts import add


#: The experiment groups the report reads (eval/experiments/<group>.json): SDD's variants ("Why SDD repeats"),
#: the training seeds (the spread of every figure), the learning rates, and the training lengths.
VARIANTS_GROUP = "sdd_variants"
SEEDS_GROUP = "seeds"
LR_GROUP = "learning_rates"
LENGTH_GROUP = "training_length"
#: Groups with a section of their own; any other collected group gets generic_group_section.
DEDICATED = (VARIANTS_GROUP, SEEDS_GROUP, LR_GROUP, LENGTH_GROUP, "samplers")
REUSE_PREFIX = "data_reuse"  # data_reuse and every data_reuse_<name> group feed the data-reuse section
RECIPE_PREFIX = "recipe"


def is_reuse_group(name: str) -> bool:
    return name == REUSE_PREFIX or name.startswith(REUSE_PREFIX + "_")


def is_recipe_group(name: str) -> bool:
    """recipe and every recipe_<name> group feed the recipe screen ("Does diffusion get a fair start?")."""
    return name == RECIPE_PREFIX or name.startswith(RECIPE_PREFIX + "_")


def has_own_section(name: str) -> bool:
    """Whether the report has a section of its own for a group (the others get the generic one)."""
    return name in DEDICATED or is_reuse_group(name) or is_recipe_group(name)


def file_md5(path: Path) -> str | None:
    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else None  # as dvc.lock records it


def group_runs(collected: dict, raw_params: dict, defined: dict, root: Path = Path(".")) -> dict:
    """A collected experiment group (experiments.collect) as the report uses it: per run that matches the current
    study (experiments.run_binding) its overrides and every model's metrics, samples and learning curve ("models"),
    and for an evaluated group of one model that model's metrics and samples; the other runs under "excluded", each with its
    reasons. raw_params: params.yaml as read; defined: its experiment groups (experiments.read_groups)."""
    model = collected["models"][0] if len(collected["models"]) == 1 else None
    group = defined.get(collected["group"])
    paths = {path for run in collected["runs"].values() for kind in ("code", "data", "judge")
             for path in run.get(kind, {})}
    study = {"params": study_params(raw_params), "md5": {path: file_md5(root / path) for path in paths}}
    runs, excluded = {}, {}
    for name, run in collected["runs"].items():
        reasons = run_binding(run, group and entry(group, name), study)
        if reasons:
            excluded[name] = reasons
        else:
            runs[name] = {"overrides": run["overrides"], "models": run["models"]}
            if model and "metrics" in run["models"][model]:  # a training-only group (the recipe's) has none
                runs[name].update(metrics=run["models"][model]["metrics"], samples=run["models"][model]["samples"])
    return {"model": model, "runs": runs, "excluded": excluded, "command": collected["command"],
            "not_run": collected["not_run"], "sessions": collected_sessions(collected)}


def seed_label(overrides: dict, seed: int) -> str:
    """How tables name a run's training seed: the seed it set, else the study's (seed)."""
    return f"seed {overrides.get('seed', seed)}"


def seed_runs(metrics: dict[str, dict], seeds: dict | None, seed: int) -> dict[str, dict[str, dict]]:
    """Seed label -> model -> metrics: this pipeline's run (its seed) and each seed run bound to this study."""
    by_seed = {seed_label({}, seed): metrics}
    for run in (seeds or {"runs": {}})["runs"].values():
        by_seed[seed_label(run["overrides"], seed)] = {name: model["metrics"] for name, model in run["models"].items()
                                                      if name in metrics}
    return by_seed


def spreads_by_label(rows: dict[str, dict], metrics: dict[str, dict], spread: dict) -> dict[str, dict]:
    """The seed spread of each table row that is a model of this pipeline (not a variant)."""
    return {label: spread[m["model"]] for label, m in rows.items() if metrics.get(m["model"]) is m}


def learning_rate_runs(metrics: dict[str, dict], rates: dict | None) -> dict[float, dict[str, dict]]:
    """Learning-rate factor -> model -> metrics: 1.0 from this pipeline, the others from the bound runs of the
    learning-rate group (each run names its factor per model in train.lr_factor.<model>)."""
    by_factor = {1.0: dict(metrics)}
    for run in (rates or {"runs": {}})["runs"].values():
        for key, factor in run["overrides"].items():
            name = key.removeprefix("train.lr_factor.")
            if key.startswith("train.lr_factor.") and name in run["models"]:
                by_factor.setdefault(float(factor), {})[name] = run["models"][name]["metrics"]
    return by_factor


def learning_rate_section(by_factor: dict[float, dict[str, dict]], reference: dict, base_lr: dict[str, float],
                          excluded: dict, command: str, spread: dict | None = None,
                          verdicts: list | None = None) -> list[str]:
    """analysis.learning_rate_sensitivity as a table and a sentence; each model's gain from its best learning rate
    is set against its seed spread of validation NLL."""
    lines = ["## Learning-rate sensitivity", ""]
    if len(by_factor) < 2:
        return lines + [f"No learning-rate run of this study has been collected yet: run `{command}`."] + \
            excluded_lines(excluded, command) + [""]
    result = learning_rate_sensitivity(by_factor, reference)
    factors = sorted(by_factor)
    kinds = ", ".join(f"{display_name(name)} {KIND_SHORT[m['perplexity_kind']]}" for name, m in by_factor[1.0].items())
    lines += [f"Each model retrained at {', '.join(f'{f:g}x' for f in factors)} its default peak learning rate "
              f"(`{command}`, one seed each; the 1x column is this pipeline's run). Validation NLL per token is each "
              f"model's own kind ({kinds}), comparable along a row but not down a column; the best learning rate "
              "of a model is the one with its lowest NLL. Distance to real text (judge cross-entropy gap plus "
              "entropy gap, nats) compares every model.", "",
              "| model | " + " | ".join(f"{f:g}x: NLL / distance" for f in factors) + " | best |",
              "|---|" + "---|" * (len(factors) + 1)]
    for name, row in result["table"].items():
        cells = [f"{row[f]['nll']:.3f} / {row[f]['distance']:.2f}" if f in row else "–" for f in factors]
        best = result["best_factor"][name]
        lines.append(f"| {display_name(name)} | " + " | ".join(cells)
                     + f" | {best:g}x (lr {base_lr[name] * best:.2g}) |")
    order = " < ".join(display_name(n) for n in result["best_ranking"])
    add(verdicts, "learning_rate", "holds" if result["holds"] else "changes",
        f"ranking by distance to real text at the best rates {order}; at the default "
        + " < ".join(display_name(n) for n in result["default_ranking"]))
    lines += ["", f"Ranking by distance to real text at each model's best learning rate: {order}; at the default: "
              f"{' < '.join(display_name(n) for n in result['default_ranking'])}. The ranking "
              f"**{'holds' if result['holds'] else 'changes'}** when every model gets its best learning rate."]
    for name, best in result["best_factor"].items():
        if best != 1.0 and spread and name in spread:
            gain = result["table"][name][1.0]["nll"] - result["table"][name][best]["nll"]
            lines[-1] += " " + margin_words(against_spread(gain, [spread[name].get("nll_per_token")]),
                                             f"{display_name(name)}'s gain from {best:g}x", "nats of NLL", ".3f")
    return lines + excluded_lines(excluded, command) + [""]


def length_runs(metrics: dict[str, dict], curves: dict[str, list[dict]], lengths: dict | None
                ) -> dict[str, list[tuple[str, list[dict], dict]]]:
    """Model -> [(label, learning curve, metrics)]: this pipeline's run of each model and, from the
    training-length group's bound runs, each model whose steps a run changes (train.steps_factor.<model>)."""
    runs = {name: [(f"{m['train_steps']} steps", curves.get(name, []), m)] for name, m in metrics.items()}
    for run in (lengths or {"runs": {}})["runs"].values():
        for key in run["overrides"]:
            name = key.removeprefix("train.steps_factor.")
            if key.startswith("train.steps_factor.") and name in run["models"] and name in runs:
                model = run["models"][name]
                runs[name].append((f"{model['metrics']['train_steps']} steps", model.get("learning_curve") or [],
                                   model["metrics"]))
    return runs


#: Masked diffusion needs about this many times AR's training compute to reach the same validation loss
#: (Nie et al. 2024, "Scaling up Masked Diffusion Models on Text"), the published figure set beside ours.
PUBLISHED_MULTIPLIER = 16


def plot_length_samples(runs: dict[str, list[tuple[str, list[dict], dict]]], reference: dict, path: Path) -> None:
    """Judge perplexity and entropy of each run's samples, and SDD-like models' context-only accuracy, against
    training tokens, with real text marked."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), dpi=120)
    for name, model_runs in runs.items():
        ordered = sorted(model_runs, key=lambda r: r[2]["train_tokens"])
        tokens = [m["train_tokens"] for _, _, m in ordered]
        line, = axes[0].plot(tokens, [m["sample_judge_perplexity"] for _, _, m in ordered], marker="o",
                             label=display_name(name))
        color = line.get_color()  # one colour per model in every panel; the runs of a model differ by line style
        axes[1].plot(tokens, [m["sample_entropy"] for _, _, m in ordered], marker="o", color=color,
                     label=display_name(name))
        for (label, curve, m), style in zip(ordered, itertools.cycle(("-", "--", "-.", ":"))):
            if curve and "context_only_accuracy" in curve[0]:
                axes[2].plot([p["tokens"] for p in curve], [p["context_only_accuracy"] for p in curve], alpha=0.7,
                             color=color, linestyle=style, label=f"{display_name(name)}, {label} (during training)")
        if "context_only_accuracy" in ordered[0][2]:
            axes[2].scatter(tokens, [m["context_only_accuracy"] for _, _, m in ordered], zorder=4, color=color,
                            label=f"{display_name(name)} (end of each run, whole split)")
            floor = ordered[0][2].get("diagnostics", {}).get("most_frequent_token_accuracy")
            if floor is not None:
                axes[2].axhline(floor, color="gray", linestyle=":", label="always the most frequent token")
    axes[0].axhline(reference["judge_perplexity"], color="black", linestyle="--", label="validation text")
    axes[1].axhline(reference["entropy"], color="black", linestyle="--", label="validation text")
    titles = ("Judge perplexity of samples", "Unigram entropy of samples (nats)",
              "Context-only accuracy (only the context tells the token)")
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("training tokens")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    from matplotlib.ticker import PercentFormatter

    axes[2].yaxis.set_major_formatter(PercentFormatter(1.0))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def training_length_section(runs: dict[str, list[tuple[str, list[dict], dict]]], by_seed: dict[str, dict],
                            lengths: dict | None, reference: dict, nll_plot: str, samples_plot: str,
                            verdicts: list | None = None) -> list[str]:
    """The seed's open question, answered from the training-length runs (analysis.token_multiplier, overfitting,
    gap_narrows)."""
    lines = ["## Does the gap narrow with longer training?", ""]
    command = (lengths or {}).get("command", "python stages/experiments.py training_length")
    if not lengths or not lengths["runs"]:
        return lines + [f"No training-length run of this study has been collected yet: run `{command}`."] + \
            excluded_lines((lengths or {}).get("excluded", {}), command) + [""]
    lines += [f"Each model also trained for longer (`{command}`), each run a full warmup-and-cosine schedule of its "
              "own at the CPU default's model size, evaluated like the main study. Every learning curve scores the "
              "same fixed uniform sample of validation rows; the end points score the whole split.", "",
              f"![validation NLL against training tokens]({nll_plot})", "",
              "| model | steps | training tokens | epochs | validation NLL (kind) | judge PPL | entropy "
              "| context-only accuracy |", "|---|---|---|---|---|---|---|---|"]
    for name, model_runs in runs.items():
        for label, curve, m in sorted(model_runs, key=lambda r: r[2]["train_tokens"]):
            context = f"{m['context_only_accuracy']:.1%}" if "context_only_accuracy" in m else "–"
            lines.append(f"| {display_name(name)} | {m['train_steps']:,} | {m['train_tokens']:,} "
                         f"| {m.get('train_epochs', float('nan')):.2f} | {with_error(m, 'nll_per_token', '.3f')} "
                         f"({KIND_SHORT[m['perplexity_kind']]}) | {m['sample_judge_perplexity']:.1f} "
                         f"| {m['sample_entropy']:.2f} | {context} |")
    lines.append(f"| validation text | – | – | – | – | {reference['judge_perplexity']:.1f} | {reference['entropy']:.2f} | – |")
    exact = next((n for n, r in runs.items() if r[0][2]["perplexity_kind"] == "exact"), None)
    bound = next((n for n, r in runs.items() if r[0][2]["perplexity_kind"] == "bound"), None)
    if exact and bound:
        ends = {name: {m["train_tokens"]: m for _, _, m in runs[name]} for name in (exact, bound)}
        common = sorted(set(ends[exact]) & set(ends[bound]))
        ratios = [f"{t:,} tokens: ≤ {ends[bound][t]['perplexity'] / ends[exact][t]['perplexity']:.2f}" for t in common]
        gaps = {t: ends[bound][t]["nll_per_token"] - ends[exact][t]["nll_per_token"] for t in common}
        seed_gaps = [run[bound]["nll_per_token"] - run[exact]["nll_per_token"] for run in by_seed.values()
                     if bound in run and exact in run]
        gap_spread = max(seed_gaps) - min(seed_gaps) if len(seed_gaps) > 1 else None
        verdict = gap_narrows(gaps, gap_spread)
        multipliers = token_multiplier([(t, m["nll_per_token"]) for t, m in ends[exact].items()],
                                       [(t, m["nll_per_token"]) for t, m in ends[bound].items()])
        lines += ["", f"{display_name(bound)}'s bound ÷ {display_name(exact)}'s perplexity at equal training tokens: "
                  + ("; ".join(ratios) if ratios else "no common length") + " (published: 1.21 on LM1B at 33B tokens, "
                  "1.10 at 327B).", ""]
        if multipliers:
            lines.append(f"Tokens {display_name(bound)} needs to reach {display_name(exact)}'s validation NLL, as a "
                         f"multiple of {display_name(exact)}'s (interpolated in log tokens between "
                         f"{display_name(bound)}'s end points; \"more than\" where it never got that low): "
                         + "; ".join(f"at {r['tokens']:,} tokens (NLL {r['nll']:.3f}): "
                                     f"{'more than ' if r['at_least'] else ''}{r['multiplier']:.1f}x"
                                     for r in multipliers)
                         + f". Published for masked diffusion against AR at scale: about {PUBLISHED_MULTIPLIER}x "
                         "(Nie et al. 2024).")
            lines.append("")
        if verdict["verdict"]:
            add(verdicts, "length", f"the gap {verdict['verdict']}",
                f"{display_name(bound)} − {display_name(exact)} NLL: "
                + " → ".join(f"{g:.3f}" for g in verdict["gaps"].values())
                + f" nats from {verdict['shortest']:,} to {verdict['longest']:,} tokens (change {verdict['change']:+.3f}; "
                + (f"seed spread {gap_spread:.3f})" if gap_spread is not None else "no seed spread)"))
            margin = (f"the spread of the gap over the training seeds at the default length, {verdict['margin']:.3f} "
                      "nats" if gap_spread is not None else "zero (no seed runs to measure the spread)")
            lines.append(
                f"**Verdict: the gap {verdict['verdict']}.** Rule: the gap ({display_name(bound)}'s validation NLL "
                f"minus {display_name(exact)}'s, nats per token, at equal training tokens) narrows when it is smaller "
                f"at the longest common length than at the shortest by more than {margin}, and widens when it is "
                f"larger by more. Gap: " + "; ".join(f"{t:,} tokens: {g:.3f}" for t, g in verdict["gaps"].items())
                + f" (change {verdict['change']:+.3f}).")
            lines.append("")
    for name, model_runs in runs.items():
        longest = max(model_runs, key=lambda r: r[2]["train_tokens"])
        rise = overfitting(longest[1])
        if rise and rise["rising"]:
            lines.append(f"- {display_name(name)} overfits in its longest run ({longest[0]}, "
                         f"{longest[2].get('train_epochs', float('nan')):.1f} epochs): its validation NLL is lowest "
                         f"({rise['lowest_nll']:.3f}) at {rise['lowest_tokens']:,.0f} tokens and rises to "
                         f"{rise['last_nll']:.3f} by the end, while its training loss keeps falling: repeated data.")
        elif rise:
            lines.append(f"- {display_name(name)}'s validation NLL does not rise in its longest run ({longest[0]}, "
                         f"{longest[2].get('train_epochs', float('nan')):.1f} epochs).")
    for name, model_runs in runs.items():
        ends = [(m["train_tokens"], m["context_only_accuracy"], m.get("context_only_accuracy_standard_error", 0.0))
                for _, _, m in model_runs if "context_only_accuracy" in m]
        floor = model_runs[0][2].get("diagnostics", {}).get("most_frequent_token_accuracy")
        use = context_use(ends, floor) if floor is not None else None
        question = f"- Does {display_name(name)} start modelling language with longer training? "
        against = (f"against {use['floor']:.2%} for always guessing the most frequent token" if use else "")
        if use and use["trend"] is None:  # one bound length: a level, not a trend, so no answer
            lines.append(question + f"**Not run for this study yet**: only one of its training lengths is bound; "
                         f"at {use['longest_tokens']:,} tokens its accuracy where only the context tells the token "
                         f"is {use['longest_accuracy']:.2%}, {against}.")
        elif use:
            trend = {"rises": "rises", "falls": "falls",
                     "cannot tell": "stays within its standard errors"}[use["trend"]]
            lines.append(question + f"**{'Yes' if use['uses_context'] else 'No'}**: where only the context tells the "
                         f"token, its accuracy {trend} with training ({use['shortest_accuracy']:.2%} in its shortest "
                         f"run, {use['longest_accuracy']:.2%} at {use['longest_tokens']:,} tokens), {against}. "
                         f"Rule: it models language from context when that accuracy is over the guess by more than "
                         f"{RISE_IN_STANDARD_ERRORS:g} standard errors.")
    lines += ["", f"![sample quality against training tokens]({samples_plot})", ""]
    if lengths.get("not_run"):
        lines += [f"Listed in params.yaml but not run yet: {', '.join(lengths['not_run'])} (`{command} <name>`)."]
    return lines + excluded_lines(lengths.get("excluded", {}), command) + [""]


def parallelism(sessions: list[dict]) -> str:
    """How sessions ran their runs, e.g. '2 at a time on 1 torch thread each'."""
    kinds = sorted({(s["jobs"], s["threads_per_job"]) for s in sessions})
    return " or ".join(f"{jobs} at a time on {counted(threads, 'torch thread')} each" for jobs, threads in kinds)


def sessions_cell(sessions: list[dict], shown) -> str:
    """The sessions that ran a group's shown runs: their runs, how they ran them, their summed wall time. A shown
    run is the one its last session made: an earlier session that ran a run of the same name, kept for another run
    of it not rerun since, did not make it."""
    last = {run: index for index, s in enumerate(sessions) for run in s["runs"]}
    live = [s for index, s in enumerate(sessions) if any(last.get(run) == index for run in shown)]
    if not live:
        return "–"
    shared = sorted({name for s in live for name in s.get("queued_with", [])})
    return (f"{counted(sum(len(s['runs']) for s in live), 'run')} in {counted(len(live), 'session')}, {parallelism(live)}: "
            f"{sum(s['wall_s'] for s in live) / 60:.0f} min wall on {live[-1]['cores']} cores"
            + (f" (one queue with {', '.join(shared)})" if shared else ""))


def groups_table(collected: dict[str, dict], groups: dict[str, dict]) -> str:
    """Each collected experiment group: its command, runs shown (bound to this study) of those collected and
    listed, the stage time its shown runs took (the stages each run reproduced, from their timings), and the
    sessions that ran them (runs, parallel jobs and threads each, wall time on how many cores)."""
    lines = ["| group | command | runs shown / collected / listed | stage time of the runs shown | sessions that ran them |",
             "|---|---|---|---|---|"]
    for name, c in collected.items():
        shown = groups[name]["runs"]
        seconds = [sum(c["runs"][run].get("stage_seconds", {}).values()) for run in shown]
        timed = [s for s in seconds if s]
        time_cell = (f"{sum(timed) / 60:.0f} min ({sum(timed) / 60 / len(timed):.0f} min a run)" if timed else "–")
        listed = len(c["runs"]) + len(c["not_run"])
        lines.append(f"| {name} | `{c['command']}` | {len(shown)} / {len(c['runs'])} / {listed} | {time_cell} "
                     f"| {sessions_cell(collected_sessions(c), shown)} |")
    return "\n".join(lines) + "\n"


def generic_group_section(name: str, group: dict, reference: dict) -> list[str]:
    """A collected group the report has no section of its own for (a new question is a new group in params.yaml,
    not new code): each bound run's headline figures per model, and the runs not shown with their reasons."""
    from ..analysis import distance_to_real_text, degenerate
    lines = [f"## Experiment group `{name}`", "",
             f"Run by `{group['command']}`; no section of this report interprets it yet, so its runs bound to this "
             "study are listed with each model's headline figures (validation NLL of its kind; its samples' judge "
             "perplexity, entropy and distance to real text, ⚠ where repetitive).", ""]
    if group["runs"]:
        lines += ["| run | overrides | model | validation NLL (kind) | judge PPL | entropy | distance to real text |",
                  "|---|---|---|---|---|---|---|"]
        for run_name, run in group["runs"].items():
            overrides = ", ".join(f"{key}={value}" for key, value in run["overrides"].items())
            for model, data in run["models"].items():
                m = data["metrics"]
                flag = " ⚠" if degenerate(m, reference) else ""
                lines.append(f"| {run_name} | {overrides} | {display_name(model)} | {with_error(m, 'nll_per_token', '.3f')} "
                             f"({KIND_SHORT[m['perplexity_kind']]}) | {m['sample_judge_perplexity']:.1f} "
                             f"| {m['sample_entropy']:.2f}{flag} | {distance_to_real_text(m, reference):.2f} |")
        lines.append(f"| validation text | – | – | – | {reference['judge_perplexity']:.1f} | {reference['entropy']:.2f} "
                     "| 0.00 |")
    else:
        lines.append("No run of this group is bound to this study yet.")
    if group["not_run"]:
        lines += ["", "Not run yet: " + ", ".join(group["not_run"]) + "."]
    return lines + excluded_lines(group["excluded"], group["command"]) + [""]
