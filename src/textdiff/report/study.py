"""The main study's part of report.md: results and sample-quality tables, the seed spread, training curves,
the cost of each stage and samples; render_report assembles the whole page."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..analysis import (RISE_IN_STANDARD_ERRORS, SAME_WITHIN, TIE, against_spread, best_at_equal_time,
                        closest_to_real_text, distance_to_real_text, few_step_comparison, noise_injection,
                        ratio_per_seed)
from ..evaluate import TIMING_SPREAD_LIMIT
from ..models import MODELS
from .format import (KIND_SHORT, TIMED_APART, apart_mark, counted, display_name, excluded_lines, finish_plot, gen_time,
                     indent, margin_words, overrides_text, perplexity_cell, sampler_note, seeds_header, spread_cell,
                     timed_apart_note, with_error)
from .groups import (LR_GROUP, SEEDS_GROUP, generic_group_section, has_own_section, learning_rate_runs,
                     learning_rate_section, spreads_by_label)
from .variants import variants_section
from .verdicts import add, verdict_table


SPREAD_FIGURES = {"perplexity": ("perplexity", ".2f"), "nll_per_token": ("NLL/token", ".3f"),
                  "accuracy": ("accuracy", ".1%"), "context_only_accuracy": ("context-only accuracy", ".2%"),
                  "judge_perplexity": ("judge PPL of samples", ".1f"), "entropy": ("entropy of samples", ".3f"),
                  "distinct_1": ("distinct-1", ".3f"), "distinct_2": ("distinct-2", ".3f"),
                  "distinct_3": ("distinct-3", ".3f"), "repeat_4gram_rate": ("repeat-4", ".3f"),
                  "distance": ("distance to real text", ".2f")}
SAMPLES_QUOTED = 2


def spread_table(spread: dict[str, dict], seeds: list[str]) -> list[str]:
    """Every figure of every model over the training seeds: mean (min–max)."""
    if not spread or max(s["perplexity"]["seeds"] for s in spread.values()) < 2:
        return []
    models = list(spread)
    lines = ["## Spread over the training seeds", "",
             f"Every figure of the two tables above, as mean (min–max) over {len(seeds)} training seeds "
             f"({', '.join(seeds)}; each seed draws the initial weights, batches, noise and samples; data, tokenizer "
             "and judge are the same):", "",
             "| figure | " + " | ".join(display_name(n) for n in models) + " |", "|---|" + "---|" * len(models)]
    for figure, (label, fmt) in SPREAD_FIGURES.items():
        if any(figure in spread[n] for n in models):
            lines.append(f"| {label} | " + " | ".join(spread_cell(spread[n], figure, fmt) for n in models) + " |")
    return lines + [""]


def results_table(metrics: dict[str, dict], spreads: dict[str, dict] | None = None) -> str:
    """The comparison table (one row per label): the seed's columns plus what each number is. Perplexity and
    accuracy carry their standard error over validation rows, and, per label in spreads, their mean and range
    over the training seeds."""
    spreads = spreads or {}
    seeds = seeds_header(spreads)
    gen_tokens = next(iter(metrics.values()))["gen_tokens"]
    lines = [
        f"| Model | Perplexity ± SE | over {seeds} | Perplexity kind | NLL/token | Accuracy ± SE | over {seeds} "
        f"| Gen time ({gen_tokens} tok, batch 1) | Sampling steps | Params | Train time | Epochs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        spread = spreads.get(name)
        lines.append(
            f"| {name} | {perplexity_cell(m)} | {spread_cell(spread, 'perplexity', '.2f')} | {m['perplexity_kind']} "
            f"| {m['nll_per_token']:.3f} | {with_error(m, 'accuracy', '.1%')} | {spread_cell(spread, 'accuracy', '.1%')} "
            f"| {gen_time(m)} | {m['gen_steps']} | {m['parameters'] / 1e6:.2f}M | {m['train_wall_s']:.0f} s{apart_mark(m)} "
            f"| {m.get('train_epochs', float('nan')):.2f} |"
        )
    return "\n".join(lines) + "\n" + timed_apart_note(metrics)


def plot_training_loss(logs: dict[str, pd.DataFrame], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for name, log in logs.items():
        line, = ax.plot(log["step"], log["loss"], alpha=0.25, linewidth=0.8)
        smooth = log["loss"].rolling(window=max(1, len(log) // 30), min_periods=1).mean()
        ax.plot(log["step"], smooth, color=line.get_color(), linewidth=1.8,
                label=f"{display_name(name)}: {MODELS[name].loss_meaning}")
    finish_plot(fig, ax, "training step", "training loss (nats per token)",
                 "Training loss (each model's own objective; faint: per step, bold: moving mean)", path)


def plot_learning_curves(runs: dict[str, list[tuple[str, list[dict], dict]]], path: Path,
                         title: str = "Validation NLL during training") -> None:
    """Validation NLL per token against training tokens, log-log: per model, each run's learning curve (a line)
    and its end point (a marker), labelled by the kind of NLL. runs: model -> [(run label, curve, metrics)]."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, model_runs in runs.items():
        color = None
        for index, (label, curve, m) in enumerate(sorted(model_runs, key=lambda r: r[2]["train_tokens"])):
            if curve:
                line, = ax.plot([p["tokens"] for p in curve], [p["valid_nll"] for p in curve], linewidth=1,
                                alpha=0.6, color=color)
                color = line.get_color()
            marker = ax.scatter([m["train_tokens"]], [m["nll_per_token"]], s=40, color=color, zorder=4,
                                label=f"{display_name(name)} ({KIND_SHORT[m['perplexity_kind']]})" if index == 0 else None)
            color = marker.get_facecolor()[0] if color is None else color
    ax.set_xscale("log")
    finish_plot(fig, ax, "training tokens (log)", "validation NLL per token, nats (log)",
                 title + "\n(lines: learning curves on fixed validation rows; dots: each run's end, whole split)",
                 path, plain_ticks=True)


def quality_table(metrics: dict[str, dict], reference: dict, spreads: dict[str, dict] | None = None) -> str:
    """Sample quality per label, with standard errors over samples and, per label in spreads, the mean and range
    over the training seeds of judge perplexity, entropy and distance to real text."""
    spreads = spreads or {}
    seeds = seeds_header(spreads)
    lines = [f"| Text | Sampling | Judge PPL ± SE | over {seeds} | Entropy (nats) ± SE | over {seeds} "
             f"| Distinct-1 | Distinct-2 | Distinct-3 | Repeat-4 | Distance to real text | over {seeds} "
             "| ms per sample (batched) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
             f"| validation text | {reference['num_samples']} windows of {reference['length']} tokens, drawn from the "
             f"whole split | {with_error(reference, 'judge_perplexity', '.2f')} | – "
             f"| {with_error(reference, 'entropy', '.3f')} | – | {reference['distinct_1']:.3f} "
             f"| {reference['distinct_2']:.3f} | {reference['distinct_3']:.3f} | {reference['repeat_4gram_rate']:.3f} "
             "| 0 | – | – |"]
    for name, m in metrics.items():
        spread = spreads.get(name)
        lines.append(
            f"| {name} | {m['gen_steps']} steps, T={m['gen_temperature']}{sampler_note(m)} "
            f"| {with_error(m, 'sample_judge_perplexity', '.2f')} | {spread_cell(spread, 'judge_perplexity', '.2f')} "
            f"| {with_error(m, 'sample_entropy', '.3f')} | {spread_cell(spread, 'entropy', '.3f')} "
            f"| {m['sample_distinct_1']:.3f} | {m['sample_distinct_2']:.3f} | {m['sample_distinct_3']:.3f} "
            f"| {m['sample_repeat_4gram_rate']:.3f} | {distance_to_real_text(m, reference):.2f} "
            f"| {spread_cell(spread, 'distance', '.2f')} | {m['sample_ms_per_sample']:.1f}{apart_mark(m)} |")
    return "\n".join(lines) + "\n" + timed_apart_note(metrics)


def labelled_rows(metrics: dict[str, dict], variants: dict, best: str | None,
                  variants_model: str | None) -> dict[str, dict]:
    """Table rows by label: each model; the variants' model shown as the seed's design and, if run, its best variant
    (marked as timed apart: its times come from its own experiment run)."""
    rows = {}
    for name, m in metrics.items():
        shown_with_variant = name == variants_model and best
        rows[f"{display_name(name)} (seed design)" if shown_with_variant else display_name(name)] = m
        if shown_with_variant:
            rows[f"{display_name(name)} best variant: {best}"] = {**variants[best]["metrics"], TIMED_APART: True}
    return rows


def plot_quality(sweeps: pd.DataFrame, reference: dict, scatter_path: Path, time_path: Path) -> None:
    """Judge perplexity against entropy (one point per setting), and against sampling time."""
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for name, group in sweeps.groupby("model", sort=False):
        ax.scatter(group["entropy"], group["judge_perplexity"], label=display_name(name), s=30)
        for _, row in group.iterrows():
            ax.annotate(f"{int(row['steps'])}s T{row['temperature']}", (row["entropy"], row["judge_perplexity"]),
                        fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.scatter([reference["entropy"]], [reference["judge_perplexity"]], marker="*", s=220, color="black",
               label="validation text", zorder=5)
    finish_plot(fig, ax, "mean unigram entropy of a 64-token sample (nats)", "judge perplexity",
                 "Sample quality: judge perplexity against entropy (one point per setting)", scatter_path)

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for name, group in sweeps.groupby("model", sort=False):
        group = group.sort_values("ms_per_sample")
        ax.plot(group["ms_per_sample"], group["judge_perplexity"], marker="o", label=display_name(name))
    ax.axhline(reference["judge_perplexity"], color="black", linestyle="--", linewidth=1, label="validation text")
    ax.set_xscale("log")
    finish_plot(fig, ax, "sampling wall time per sample (ms, batched)", "judge perplexity (lower is better)",
                 "Sample quality against sampling time (every sweep setting)", time_path)


def equal_time_paragraph(ranking: dict, reference: dict, spread: dict | None = None,
                         defaults: dict | None = None, verdicts: list | None = None) -> str:
    """analysis.best_at_equal_time in words, with the winner's margin set against the seed spread (spread:
    model -> figure -> seed statistics) of the two models' distance to real text, which the seed runs measure at
    each model's default setting (defaults: model -> (steps, temperature)): only where both picks are at that
    setting; elsewhere no spread is known, and the paragraph says so."""
    described = [f"{display_name(p['model'])} {p['steps']} steps T={p['temperature']}: judge perplexity "
                 f"{p['judge_perplexity']:.1f}, entropy {p['entropy']:.2f}, distance {p['distance']:.2f}"
                 + (" (below the entropy floor: repetitive)" if p["repetitive"] else "") for p in ranking["picks"]]
    text = (f"At equal sampling time (at most {ranking['budget_ms']:.1f} ms per sample, the slowest model's fastest "
            f"setting; settings whose entropy is below {ranking['entropy_floor']:.0%} of real text's "
            f"{ranking['reference_entropy']:.2f} nats count as repetitive and rank last, the others by distance to "
            "real text), "
            f"**{display_name(ranking['picks'][0]['model'])} writes best**. Best setting of each model within that "
            f"time: " + "; ".join(described) +
            f". Real validation text scores judge perplexity {reference['judge_perplexity']:.1f}.")
    first, second = ranking["picks"][:2] if len(ranking["picks"]) > 1 else (None, None)
    add(verdicts, "writes_best", display_name(ranking["picks"][0]["model"]),
        f"distance to real text of each model's best setting within {ranking['budget_ms']:.0f} ms: "
        + ", ".join(f"{display_name(p['model'])} {p['distance']:.2f}{' (repetitive)' if p['repetitive'] else ''}"
                    for p in ranking["picks"]))
    at_default = first and all((p["steps"], p["temperature"]) == (defaults or {}).get(p["model"])
                               for p in (first, second))
    if first and spread and not first["repetitive"] and not second["repetitive"] and not at_default:
        text += (f" No seed spread is known for these settings (the seed runs judge each model's default setting "
                 f"only), so {display_name(first['model'])}'s margin over {display_name(second['model'])} cannot be "
                 "set against one.")
    elif first and spread and not first["repetitive"] and not second["repetitive"]:
        margin = against_spread(second["distance"] - first["distance"],
                                [spread.get(p["model"], {}).get("distance") for p in (first, second)])
        text += " " + margin_words(margin, f"{display_name(first['model'])}'s margin over "
                                            f"{display_name(second['model'])}", "nats of distance to real text", ".2f")
    return text


def _winner(name: str) -> str:
    return "neither" if name == TIE else display_name(name)


def few_step_lines(metrics: dict, sweeps: pd.DataFrame, reference: dict) -> list[str]:
    """analysis.few_step_comparison in words: every bound model after the first (MDLM) against the first."""
    bounds = [name for name, m in metrics.items() if m["perplexity_kind"] == "bound"]
    temperatures = {name: m["gen_temperature"] for name, m in metrics.items()}
    lines = []
    for challenger in bounds[1:]:
        c = few_step_comparison(sweeps, temperatures, reference, challenger, bounds[0])
        a, b = display_name(challenger), display_name(bounds[0])
        cells = []
        for n, step in c["by_steps"].items():
            if step["winner"] is None:
                cells.append(f"at {n} steps: not in both sweeps")
                continue
            described = [f"{display_name(name)} judge perplexity {p['judge_perplexity']:.1f}, entropy "
                         f"{p['entropy']:.2f}{' (repetitive)' if step['ranks'][name][0] else ''}"
                         for name, p in step["points"].items()]
            cells.append(f"at {n} steps **{_winner(step['winner'])}** ({'; '.join(described)})")
        timed = (f"at equal sampling time (the rule above, over these two models) **{_winner(c['equal_time_winner'])}**"
                 if c["equal_time_winner"] else "at equal sampling time: not in both sweeps")
        lines += [f"**Few-step sampling, {a} against {b}.** Which writes better, by the one rule of this report "
                  "(repetitive sample sets last, then the smaller distance to real text; neither where the two are "
                  f"within {SAME_WITHIN:.0%} of each other's distance), at each model's default "
                  f"temperature: " + "; ".join(cells) + f"; {timed}.", ""]
    return lines


def noise_injection_lines(sdd_name: str, metrics: dict, variants: dict, reference: dict,
                          verdicts: list | None = None) -> list[str]:
    """The seed's open question "would different noise injection help?", answered by analysis.noise_injection from
    the models whose noise can remove the true token: the uniform-state model and SDD's index-swapping variants."""
    noisier = {display_name(name): m for name, m in metrics.items()
               if name != sdd_name and "context_only_accuracy" in m}
    noisier.update({f"{display_name(sdd_name)} {name}": v["metrics"] for name, v in variants.items()
                    if v["overrides"].get("sdd.index_swap", "none") != "none"})
    if not noisier:
        return []
    floor = metrics[sdd_name].get("diagnostics", {}).get("most_frequent_token_accuracy")
    v = noise_injection(metrics[sdd_name], noisier, reference, floor)
    guess = f" and {floor:.1%} for always guessing the most frequent token" if floor is not None else ""
    both = [label for label, r in v["models"].items() if r["predicts_better"] and r["writes_better"]]
    leader = (min(both, key=lambda label: v["models"][label]["distance"]) if both else
              max(v["models"], key=lambda label: v["models"][label]["context_only_accuracy"]))
    add(verdicts, "noise", v["answer"],
        f"{'best of those that predict and write better' if both else 'highest context-only accuracy'}: {leader}, "
        f"context-only accuracy {v['models'][leader]['context_only_accuracy']:.1%} against the seed design's "
        f"{v['seed_context_only_accuracy']:.1%}{guess}, distance to real text "
        f"{v['models'][leader]['distance']:.2f} against {v['seed_distance']:.2f}")
    cells = [f"{label}: context-only accuracy {r['context_only_accuracy']:.1%}, distance to real text "
             f"{r['distance']:.2f}{' (repetitive)' if r['repetitive'] else ''}" for label, r in v["models"].items()]
    return ["### Would different noise injection help?", "",
            f"**{v['answer']}**. The rule: noise that can remove the true token helps where a model trained with it "
            f"both predicts better from context alone (a context-only accuracy above {display_name(sdd_name)}'s "
            f"seed design's, {v['seed_context_only_accuracy']:.1%}"
            + (f", and above always guessing the most frequent token, {floor:.1%}," if floor is not None else "")
            + f" by more than {RISE_IN_STANDARD_ERRORS:g} of its standard errors) and writes better (ahead of the "
            f"seed design's distance {v['seed_distance']:.2f}{' (repetitive)' if v['seed_repetitive'] else ''} by "
            f"the one ranking rule, beyond {SAME_WITHIN:.0%}); partly where it only predicts better. "
            + "; ".join(cells) + ". "
            "Context-only accuracy is each model's own: SDD's at positions whose true token was removed from the "
            "candidates, the uniform-state model's at positions the noise changed.", ""]


def cost_section(timings: dict[str, float]) -> list[str]:
    total = sum(timings.values())
    lines = ["## Cost of the study", "",
             "Wall time of each stage in this run, from the stage's start (imports included) to its last output; "
             "their sum is the time of a full `dvc repro` less DVC's own bookkeeping between stages.", "",
             "| stage | wall time |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.0f} s |" for stage, seconds in timings.items()]
    lines += [f"| **total** | **{total:.0f} s ({total / 60:.1f} min)** |", "",
              "The CPU default targets under 30 minutes on 2 CPU cores. `benchmarks/full_repro.py` times a whole "
              "`dvc repro --force` from outside, DVC's bookkeeping included; README quotes its last run. A stage "
              "that resumed from a checkpoint counts only its resumed part here.", ""]
    return lines


def _rows_note(m: dict) -> str:
    """Which validation rows were scored."""
    total = m.get("valid_rows_in_split")
    whole = total is None or total == m["valid_rows"]
    return (f"{m['valid_rows']:,} validation rows ({m['valid_tokens']:,} tokens), "
            + ("the whole split" if whole else f"a fixed uniform sample of the split's {total:,}"))


def _first_of_kind(metrics: dict[str, dict], kind: str) -> str | None:
    return next((name for name, m in metrics.items() if m["perplexity_kind"] == kind), None)


def render_report(metrics, samples, manifest, pack_stats, table: str, plot_name: str, reference: dict,
                  sweeps: pd.DataFrame, timings: dict[str, float], group: dict | None = None,
                  spread: dict | None = None, groups: dict | None = None, by_seed: dict | None = None,
                  base_lr: dict | None = None, length_lines: list[str] | None = None,
                  verdicts: list | None = None, summary_plot: str | None = None) -> str:
    """report.md. group: the collected variants group (see group_runs), or None; spread: the seed spread per
    model (analysis.seed_spread); groups: every collected group by name; by_seed: the runs behind spread (seed
    label -> model -> metrics); verdicts: the rows the sections before this one decided (report.verdicts), to which
    this one's are added: the table opens the report, with summary_plot."""
    verdicts = [] if verdicts is None else verdicts
    group = group or {"model": None, "runs": {}, "excluded": {}, "command": "", "not_run": []}
    groups, by_seed = groups or {}, by_seed or {}
    seeds = list(by_seed)
    variants, variants_model = group["runs"], group["model"]
    best = closest_to_real_text(variants, reference)
    exact, bound = _first_of_kind(metrics, "exact"), _first_of_kind(metrics, "bound")
    first = next(iter(metrics.values()))
    lines = [
        "# Text generation by diffusion on TinyStories: " + " vs ".join(map(display_name, metrics)),
        "",
        "Regenerated by the `report` stage of `dvc repro` from the evaluation outputs; "
        "`dvc.lock` records the code, params and data that produced it.",
        "",
        "## What ran",
        "",
        f"- Data: {manifest['train_stories']:,} training and {manifest['valid_stories']:,} validation stories "
        f"from the {manifest['source']}; validation: {manifest['validation']} (sha256 {manifest['sha256'][:12]}).",
        f"- Tokens: byte-level BPE, vocabulary {pack_stats['vocab_size']:,}, trained on the training stories only; "
        f"{pack_stats['train_tokens']:,} training and {pack_stats['valid_tokens']:,} validation tokens packed "
        f"into rows of {pack_stats['seq_len']} ({pack_stats['train_rows']:,} and {pack_stats['valid_rows']:,} rows), "
        "the same rows for every model.",
        f"- Training: the same backbone, {first['train_steps']:,} steps and {first['train_tokens']:,} tokens "
        f"for each model ({first.get('train_epochs', float('nan')):.2f} epochs of the distinct training tokens), "
        f"on {first['device']}; {counted(len(seeds), 'training seed')} ({', '.join(seeds)}): "
        "the tables give this pipeline's run with its standard error, and the mean and range over the seeds.",
        f"- Evaluation: {_rows_note(first)}; every figure ± its standard error over validation rows (or "
        f"samples); generation timed at "
        f"batch 1 for {first['gen_tokens']} tokens: the median and the fastest of {first.get('gen_timing_runs', 'several')} "
        f"runs after a warm-up, on {first.get('gen_threads', '?')} CPU threads (or the GPU); ⚠ marks a median over "
        f"{TIMING_SPREAD_LIMIT}x the fastest run, measured while the machine was busy: trust the minimum there.",
        "",
        "## Results",
        "",
        table,
        "What the numbers mean:",
        "",
    ]
    for name, m in metrics.items():
        extra = [key for key in MODELS[name].validation_accuracies if key != "accuracy" and key in m]
        lines.append(f"- **{display_name(name)}**: perplexity = {m['perplexity_meaning']}; "
                     f"accuracy = {m['accuracy_definition']}; "
                     + "".join(f"{key.replace('context_only', 'context-only').replace('_', ' ')} "
                               f"{with_error(m, key, '.2%')}; " for key in extra)
                     + f"sampled at temperature {m['gen_temperature']} with {m['gen_steps']} network calls.")
    if exact and bound:
        e, b = metrics[exact], metrics[bound]
        ratios = list(ratio_per_seed(by_seed, bound, exact).values())
        if len(ratios) > 1:
            low, high = min(ratios), max(ratios)
            gap_note = (f" Each of the {len(ratios)} seeds' own ratio lies between ≤ {low:.2f} and ≤ {high:.2f}"
                        + ("; the order could change with a seed." if low <= 1 else ", so the order holds for every seed."))
            seeds_note = f"; each seed's own ratio {low:.2f}–{high:.2f}"
        else:
            gap_note = seeds_note = ""
        add(verdicts, "default_gap", f"≤ {b['perplexity'] / e['perplexity']:.2f}x {display_name(exact)}'s perplexity",
            f"{display_name(bound)} ≤ {b['perplexity']:.1f} against {display_name(exact)} {e['perplexity']:.1f}"
            f"{seeds_note}; a unigram model scores {pack_stats['unigram_valid_perplexity']:.1f}")
        lines += ["", f"{display_name(bound)}'s NELBO bound against {display_name(exact)}'s exact perplexity: "
                      f"≤ {b['perplexity']:.2f} vs {e['perplexity']:.2f}, a ratio of ≤ {b['perplexity'] / e['perplexity']:.2f} "
                      f"(the MDLM paper reports about 1.2 on LM1B at 33B tokens; this run is far smaller).{gap_note} "
                      f"For scale, a unigram model of the training tokens, which uses no context at all, "
                      f"scores perplexity {pack_stats['unigram_valid_perplexity']:.2f} on the validation tokens."]
    for other in [name for name, m in metrics.items() if m["perplexity_kind"] == "bound" and name != bound]:
        if exact:
            lines += ["", f"{display_name(other)}'s NELBO bound against {display_name(exact)}'s exact perplexity: "
                          f"≤ {metrics[other]['perplexity']:.2f}, a ratio of ≤ "
                          f"{metrics[other]['perplexity'] / metrics[exact]['perplexity']:.2f} ({display_name(bound)}: "
                          f"≤ {metrics[bound]['perplexity'] / metrics[exact]['perplexity']:.2f}; published, LM1B: "
                          "UDLM ≤ 31.3 and MDLM ≤ 27.0 against AR's 22.3, ratios 1.40 and 1.21)."]
    stepped = [name for name in metrics if "steps" in samples[name]["sampling"]]  # samplers with a step count
    lines += [
        "", "## Sample quality", "",
        f"Every model's samples ({first['sample_count']} per setting, {first['gen_tokens']} tokens, fixed seeds) are "
        f"scored by one fixed judge: an AR model with the study's backbone, trained {reference['judge_steps']:,} steps "
        f"on the same training rows in its own stage (validation perplexity {reference['judge_valid_perplexity']:.2f}). "
        "The study's own AR model is not the judge, because it would score its own samples and flatter the AR row. "
        "Judge perplexity alone rewards repetitive text, so it stands next to the unigram entropy of each sample, "
        "distinct-n (distinct n-grams over all n-grams of all samples) and the repeated-4-gram rate (share of a "
        "sample's 4-grams seen earlier in it), with the same figures for windows of real validation text.", "",
        quality_table(rows := labelled_rows(metrics, variants, best, variants_model), reference,
                      spreads_by_label(rows, metrics, spread or {})),
        equal_time_paragraph(best_at_equal_time(sweeps, reference), reference, spread,
                             {name: (m["gen_steps"], m["gen_temperature"]) for name, m in metrics.items()}, verdicts), "",
        *few_step_lines(metrics, sweeps, reference),
        "![judge perplexity against entropy](judge_perplexity_vs_entropy.png)", "",
        "![quality against sampling time](quality_vs_time.png)", "",
        f"Sweep: {' and '.join(map(display_name, stepped))} at "
        + ", ".join(str(s) for s in sorted(set(sweeps[sweeps["model"].isin(stepped)]["steps"])))
        + " steps, and every model at temperatures " + ", ".join(str(t) for t in sorted(set(sweeps['temperature'])))
        + "; all points are in `eval/<model>/sweep.csv` (DVC plots).",
    ]
    lines += [""] + spread_table(spread or {}, seeds)
    lines += ["## Training loss and learning curves", "", f"![training loss]({plot_name})", "",
              "Each curve is the model's own objective, so the curves show how each run converged, "
              "not which model is better.", "", "![learning curves](learning_curves.png)", "",
              "Learning curves: each model's validation figure (AR's exact NLL, MDLM's NELBO bound, SDD's denoising "
              "cross-entropy) on a fixed uniform sample of validation rows at fixed token intervals during training "
              "(`models/<model>/learning_curve.csv`, drawn by `dvc plots show`).", ""]
    lines += length_lines or []
    rates = groups.get(LR_GROUP)
    if rates is not None:
        lines += learning_rate_section(learning_rate_runs(metrics, rates), reference, base_lr or {},
                                       rates["excluded"], rates["command"], spread, verdicts)
    if variants_model and "diagnostics" in metrics.get(variants_model, {}):
        baseline = (display_name(exact), metrics[exact]) if exact else None
        lines += variants_section(metrics[variants_model], variants, reference, baseline, best, group["command"],
                                  "sdd_variants.png", group["not_run"], group.get("excluded"),
                                  (spread or {}).get(variants_model), verdicts)
    sdd_name = variants_model or _first_of_kind(metrics, "denoising cross-entropy")
    if sdd_name in metrics and "context_only_accuracy" in metrics[sdd_name]:
        lines += noise_injection_lines(sdd_name, metrics, variants, reference, verdicts)
    for name, other in groups.items():
        if not has_own_section(name):
            lines += generic_group_section(name, other, reference)
    if groups.get(SEEDS_GROUP) and groups[SEEDS_GROUP]["excluded"]:
        lines += ["## Seed runs not shown", ""] + excluded_lines(groups[SEEDS_GROUP]["excluded"],
                                                                 groups[SEEDS_GROUP]["command"])[1:] + [""]
    lines += cost_section(timings)
    lines += ["## Samples", ""]
    for name, s in samples.items():
        steps = f"{s['sampling']['steps']} steps, " if "steps" in s["sampling"] else ""
        sampling = f"{steps}T={s['sampling']['temperature']}{sampler_note(metrics[name])}"
        shown_with_variant = name == variants_model and best
        label = f"{display_name(name)}, the seed's design" if shown_with_variant else display_name(name)
        lines += [f"### {label} ({sampling}; seed {s['seed']})", ""]
        for text in s["samples"][:SAMPLES_QUOTED]:
            lines += [indent(text), ""]
        if shown_with_variant:
            lines += [f"### {display_name(name)}, best variant: {best} ({overrides_text(variants[best]['overrides'])}; "
                      f"seed {s['seed']})", ""]
            lines += [line for text in variants[best]["samples"][:SAMPLES_QUOTED] for line in (indent(text), "")]
    glance = ["## Verdicts at a glance", "",
              "Each row is decided by the rule its section states, from the figures beside it; a margin counts only "
              "beyond the spread over training seeds where one is given.", "", verdict_table(verdicts)]
    if summary_plot:
        glance += [f"![validation NLL against training tokens, every model and data regime]({summary_plot})", ""]
    lines[4:4] = glance  # after the title and the line on how it was made
    return "\n".join(lines).rstrip() + "\n"
