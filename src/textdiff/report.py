"""Regenerates reports/ from what the pipeline actually produced: nothing here is typed in by hand."""
from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from .analysis import (ENTROPY_FLOOR, SAME_WITHIN, against_spread, best_at_equal_time,  # noqa: E402
                       closest_to_real_text, degenerate, distance_to_real_text, gap_narrows, headline_metrics,
                       learning_rate_sensitivity, overfitting, run_binding, seed_conclusions, seed_spread,
                       state_accuracy, token_multiplier)
from .errors import DataError  # noqa: E402
from .evaluate import TIMING_SPREAD_LIMIT  # noqa: E402
from .experiments import entry, read_groups, study_params  # noqa: E402
from .io import atomic_path, read_json, write_json, write_text  # noqa: E402
from .models import MODELS  # noqa: E402

SAMPLES_QUOTED = 2
#: The experiment groups the report reads (eval/experiments/<group>.json): SDD's variants ("Why SDD repeats"),
#: the training seeds (the spread of every figure), the learning rates, and the training lengths.
VARIANTS_GROUP = "sdd_variants"
SEEDS_GROUP = "seeds"
LR_GROUP = "learning_rates"
LENGTH_GROUP = "training_length"


def display_name(name: str) -> str:
    return MODELS[name].display_name


def _perplexity_cell(metrics: dict) -> str:
    prefix = "≤ " if metrics["perplexity_kind"] == "bound" else ""
    error = metrics.get("perplexity_standard_error")
    return f"{prefix}{metrics['perplexity']:.2f}" + (f" ± {error:.2f}" if error is not None else "")


def _with_error(m: dict, key: str, fmt: str) -> str:
    """A figure with its standard error over rows (or samples), where the metrics have one."""
    error = m.get(f"{key}_standard_error")
    return f"{m[key]:{fmt}}" + (f" ± {error:{fmt}}" if error is not None else "")


SPREAD_FIGURES = {"perplexity": ("perplexity", ".2f"), "nll_per_token": ("NLL/token", ".3f"),
                  "accuracy": ("accuracy", ".1%"), "context_only_accuracy": ("context-only accuracy", ".2%"),
                  "judge_perplexity": ("judge PPL of samples", ".1f"), "entropy": ("entropy of samples", ".3f"),
                  "distinct_1": ("distinct-1", ".3f"), "distinct_2": ("distinct-2", ".3f"),
                  "distinct_3": ("distinct-3", ".3f"), "repeat_4gram_rate": ("repeat-4", ".3f"),
                  "distance": ("distance to real text", ".2f")}


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
            lines.append(f"| {label} | " + " | ".join(_spread_cell(spread[n], figure, fmt) for n in models) + " |")
    return lines + [""]


def _seeds_header(spreads: dict) -> str:
    """"3 seeds" over the seeds the spreads come from ("seeds" without seed runs)."""
    seeds = max((s["perplexity"]["seeds"] for s in spreads.values()), default=1)
    return f"{seeds} seeds" if seeds > 1 else "seeds"


def _spread_cell(spread: dict | None, figure: str, fmt: str) -> str:
    """mean (min–max) over seeds, or – without seed runs."""
    s = (spread or {}).get(figure)
    if not s or s["seeds"] < 2:
        return "–"
    return f"{s['mean']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"


def results_table(metrics: dict[str, dict], spreads: dict[str, dict] | None = None) -> str:
    """The comparison table (one row per label): the seed's columns plus what each number is. Perplexity and
    accuracy carry their standard error over validation rows, and, per label in spreads, their mean and range
    over the training seeds."""
    spreads = spreads or {}
    seeds = _seeds_header(spreads)
    gen_tokens = next(iter(metrics.values()))["gen_tokens"]
    lines = [
        f"| Model | Perplexity ± SE | over {seeds} | Perplexity kind | NLL/token | Accuracy ± SE | over {seeds} "
        f"| Gen time ({gen_tokens} tok, batch 1) | Sampling steps | Params | Train time | Epochs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        spread = spreads.get(name)
        lines.append(
            f"| {name} | {_perplexity_cell(m)} | {_spread_cell(spread, 'perplexity', '.2f')} | {m['perplexity_kind']} "
            f"| {m['nll_per_token']:.3f} | {_with_error(m, 'accuracy', '.1%')} | {_spread_cell(spread, 'accuracy', '.1%')} "
            f"| {_gen_time(m)} | {m['gen_steps']} | {m['parameters'] / 1e6:.2f}M | {m['train_wall_s']:.0f} s "
            f"| {m.get('train_epochs', float('nan')):.2f} |"
        )
    return "\n".join(lines) + "\n"


def _gen_time(m: dict) -> str:
    """Median batch-1 time, with the fastest run (which a busy machine cannot lower) and a mark if busy."""
    if "gen_ms_min" not in m:
        return f"{m['gen_ms_per_sample']:.0f} ms"
    return f"{m['gen_ms_per_sample']:.0f} ms (min {m['gen_ms_min']:.0f}){' ⚠' if m['gen_timing_busy'] else ''}"


def _finish_plot(fig, ax, xlabel: str, ylabel: str, title: str, path: Path, plain_ticks: bool = False) -> None:
    """Labels, log-scale grid and legend shared by every plot, then an atomic PNG write. plain_ticks: the log
    axes labelled 2, 3, 4 rather than 2x10^0 (for values within a decade or two)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    if plain_ticks:
        from matplotlib.ticker import ScalarFormatter

        for axis in (ax.yaxis,):
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(ScalarFormatter())
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_training_loss(logs: dict[str, pd.DataFrame], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for name, log in logs.items():
        line, = ax.plot(log["step"], log["loss"], alpha=0.25, linewidth=0.8)
        smooth = log["loss"].rolling(window=max(1, len(log) // 30), min_periods=1).mean()
        ax.plot(log["step"], smooth, color=line.get_color(), linewidth=1.8,
                label=f"{display_name(name)}: {MODELS[name].loss_meaning}")
    _finish_plot(fig, ax, "training step", "training loss (nats per token)",
                 "Training loss (each model's own objective; faint: per step, bold: moving mean)", path)


KIND_SHORT = {"exact": "exact NLL", "bound": "NELBO bound", "denoising cross-entropy": "denoising CE"}
#: Masked diffusion needs about this many times AR's training compute to reach the same validation loss
#: (Nie et al. 2024, "Scaling up Masked Diffusion Models on Text"), the published figure set beside ours.
PUBLISHED_MULTIPLIER = 16


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
    _finish_plot(fig, ax, "training tokens (log)", "validation NLL per token, nats (log)",
                 title + "\n(lines: learning curves on fixed validation rows; dots: each run's end, whole split)",
                 path, plain_ticks=True)


def quality_table(metrics: dict[str, dict], reference: dict, spreads: dict[str, dict] | None = None) -> str:
    """Sample quality per label, with standard errors over samples and, per label in spreads, the mean and range
    over the training seeds of judge perplexity, entropy and distance to real text."""
    spreads = spreads or {}
    seeds = _seeds_header(spreads)
    lines = [f"| Text | Sampling | Judge PPL ± SE | over {seeds} | Entropy (nats) ± SE | over {seeds} "
             f"| Distinct-1 | Distinct-2 | Distinct-3 | Repeat-4 | Distance to real text | over {seeds} "
             "| ms per sample (batched) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
             f"| validation text | {reference['num_samples']} windows of {reference['length']} tokens, drawn from the "
             f"whole split | {_with_error(reference, 'judge_perplexity', '.2f')} | – "
             f"| {_with_error(reference, 'entropy', '.3f')} | – | {reference['distinct_1']:.3f} "
             f"| {reference['distinct_2']:.3f} | {reference['distinct_3']:.3f} | {reference['repeat_4gram_rate']:.3f} "
             "| 0 | – | – |"]
    for name, m in metrics.items():
        spread = spreads.get(name)
        lines.append(
            f"| {name} | {m['gen_steps']} steps, T={m['gen_temperature']}{_sampler_note(m)} "
            f"| {_with_error(m, 'sample_judge_perplexity', '.2f')} | {_spread_cell(spread, 'judge_perplexity', '.2f')} "
            f"| {_with_error(m, 'sample_entropy', '.3f')} | {_spread_cell(spread, 'entropy', '.3f')} "
            f"| {m['sample_distinct_1']:.3f} | {m['sample_distinct_2']:.3f} | {m['sample_distinct_3']:.3f} "
            f"| {m['sample_repeat_4gram_rate']:.3f} | {distance_to_real_text(m, reference):.2f} "
            f"| {_spread_cell(spread, 'distance', '.2f')} | {m['sample_ms_per_sample']:.1f} |")
    return "\n".join(lines) + "\n"


def _sampler_note(m: dict) -> str:
    """SDD's sampler options that differ from the seed's, e.g. ", stochastic, renoise"."""
    options = m.get("sampler") or {}
    notes = [f"T→{options['final_temperature']}" if options.get("final_temperature") is not None else "",
             "stochastic" if options.get("candidates") == "stochastic" else "",
             "renormalised" if options.get("renormalise") else "", "renoise" if options.get("renoise") else ""]
    return "".join(f", {note}" for note in notes if note)


def labelled_rows(metrics: dict[str, dict], variants: dict, best: str | None,
                  variants_model: str | None) -> dict[str, dict]:
    """Table rows by label: each model; the variants' model shown as the seed's design and, if run, its best variant."""
    rows = {}
    for name, m in metrics.items():
        shown_with_variant = name == variants_model and best
        rows[f"{display_name(name)} (seed design)" if shown_with_variant else display_name(name)] = m
        if shown_with_variant:
            rows[f"{display_name(name)} best variant: {best}"] = variants[best]["metrics"]
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
    _finish_plot(fig, ax, "mean unigram entropy of a 64-token sample (nats)", "judge perplexity",
                 "Sample quality: judge perplexity against entropy (one point per setting)", scatter_path)

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for name, group in sweeps.groupby("model", sort=False):
        group = group.sort_values("ms_per_sample")
        ax.plot(group["ms_per_sample"], group["judge_perplexity"], marker="o", label=display_name(name))
    ax.axhline(reference["judge_perplexity"], color="black", linestyle="--", linewidth=1, label="validation text")
    ax.set_xscale("log")
    _finish_plot(fig, ax, "sampling wall time per sample (ms, batched)", "judge perplexity (lower is better)",
                 "Sample quality against sampling time (every sweep setting)", time_path)


def equal_time_paragraph(ranking: dict, reference: dict, spread: dict | None = None) -> str:
    """analysis.best_at_equal_time in words, with the winner's margin set against the seed spread (spread:
    model -> figure -> seed statistics) of the two models' judge perplexity at their default setting."""
    described = [f"{display_name(p['model'])} {p['steps']} steps T={p['temperature']}: judge perplexity "
                 f"{p['judge_perplexity']:.1f}, entropy {p['entropy']:.2f}"
                 + (" (below the entropy floor: repetitive)" if p["repetitive"] else "") for p in ranking["picks"]]
    text = (f"At equal sampling time (at most {ranking['budget_ms']:.1f} ms per sample, the slowest model's fastest "
            f"setting; settings whose entropy is below {ranking['entropy_floor']:.0%} of real text's "
            f"{ranking['reference_entropy']:.2f} nats count as repetitive and rank last), "
            f"**{display_name(ranking['picks'][0]['model'])} writes best**. Best setting of each model within that "
            f"time: " + "; ".join(described) +
            f". Real validation text scores judge perplexity {reference['judge_perplexity']:.1f}.")
    first, second = ranking["picks"][:2] if len(ranking["picks"]) > 1 else (None, None)
    if first and spread and not first["repetitive"] and not second["repetitive"]:
        margin = against_spread(second["judge_perplexity"] - first["judge_perplexity"],
                                [spread.get(p["model"], {}).get("judge_perplexity") for p in (first, second)])
        text += " " + _margin_words(margin, f"{display_name(first['model'])}'s margin over "
                                            f"{display_name(second['model'])}", "judge perplexity", ".1f")
    return text


def _margin_words(margin: dict, what: str, figure: str, fmt: str) -> str:
    """analysis.against_spread in words."""
    if margin["within"] is None:
        return ""
    return (f"{what} ({margin['difference']:{fmt}} {figure}) is **{'within' if margin['within'] else 'beyond'}** "
            f"the spread over training seeds of the figures behind it (up to {margin['spread']:{fmt}})"
            + (": another seed could reverse it." if margin["within"] else "."))


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


def diagnostics_section(diagnostics: dict) -> list[str]:
    """SDD's accuracy and NLL by t bucket on each kind of state, and the train/sample mismatch."""
    buckets = diagnostics["by_t_bucket"]
    mismatch = diagnostics["sampler_mismatch"]
    lines = ["## Why SDD repeats", "", "### Diagnostics of the seed's design", "",
             "SDD trains on states whose true token is always a candidate (slot 0, the most probable one whenever "
             "t < 1), but samples from k random candidates. Accuracy / NLL per token of the trained SDD (the "
             "seed's design) on validation rows, by noise level, on four kinds of state with the same training "
             "probabilities: the training noise; context-only (the true token removed from "
             f"{diagnostics['context_only_share']:.0%} of positions and scored there, so only the context tells it); the true "
             "token removed everywhere; all k candidates drawn as the prior draws them. The trivial predictor "
             "outputs the most probable candidate, with no network. In the last two kinds no position holds "
             "its true token, so nothing beats always guessing the most frequent token "
             f"({diagnostics['most_frequent_token_accuracy']:.1%}).", "",
             "| t | trivial predictor | training state | context-only | true token removed | prior candidates "
             "| sampler/training mismatch |", "|---|---|---|---|---|---|---|"]
    for name, b in buckets.items():
        lines.append(
            f"| {name[1:].replace('-', '–')} | {b['trivial_top_candidate_accuracy']:.1%} "
            f"| {b['training_accuracy']:.1%} / {b['training_nll']:.2f} "
            f"| {b['context_only_accuracy']:.1%} / {b['context_only_nll']:.2f} "
            f"| {b['true_token_replaced_accuracy']:.1%} / {b['true_token_replaced_nll']:.2f} "
            f"| {b['prior_candidates_accuracy']:.1%} / {b['prior_candidates_nll']:.2f} "
            f"| {f'{mismatch[name]:.3f}' if name in mismatch else '–'} |")
    low = next(iter(buckets.values()))
    lines += ["", "Mismatch: half the L1 distance between the sorted candidate weights the sampler feeds the network "
              "and those of a training state at the same t (0 = the same weights), averaged over the sampler's steps "
              f"in each bucket; {mismatch['mean']:.3f} over all steps. At the lowest noise, SDD is right "
              f"{low['training_accuracy']:.1%} of the time when the true token is a candidate, "
              f"{low['context_only_accuracy']:.1%} when only the context can tell it, and the network-free top-candidate "
              f"predictor scores {low['trivial_top_candidate_accuracy']:.1%}.", ""]
    return lines


STATE_COLUMNS = {"training": "training", "context_only": "context-only", "true_token_replaced": "true token removed",
                 "prior_candidates": "prior candidates"}


def _overrides(overrides: dict) -> str:
    """`key=value` as `dvc exp run -S` takes it (true, not True)."""
    return ", ".join(f"`{key}={str(value).lower() if isinstance(value, bool) else value}`"
                     for key, value in overrides.items())


def variants_table(seed: dict, variants: dict, reference: dict) -> list[str]:
    header = ("| variant | changes | " + " | ".join(f"acc. {c}" for c in STATE_COLUMNS.values())
              + " | denoising CE | judge PPL | entropy | distinct-1 | repeat-4 | distance to real text | train time |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    rows = [("seed design", "– (the main pipeline's SDD)", seed)]
    rows += [(name, _overrides(v["overrides"]), v["metrics"]) for name, v in variants.items()]
    for name, changes, m in rows:
        flag = " (repetitive)" if degenerate(m, reference) else ""
        lines.append(
            f"| {name} | {changes} | " + " | ".join(f"{state_accuracy(m, kind):.1%}" for kind in STATE_COLUMNS)
            + f" | {m['nll_per_token']:.3f} | {m['sample_judge_perplexity']:.1f} | {m['sample_entropy']:.2f}{flag} "
            f"| {m['sample_distinct_1']:.3f} | {m['sample_repeat_4gram_rate']:.3f} "
            f"| {distance_to_real_text(m, reference):.2f} | {m['train_wall_s']:.0f} s |")
    lines.append("| real validation text | – |" + " – |" * (len(STATE_COLUMNS) + 1) + f" {reference['judge_perplexity']:.1f} "
                 f"| {reference['entropy']:.2f} | {reference['distinct_1']:.3f} | {reference['repeat_4gram_rate']:.3f} "
                 "| 0 | – |")
    return lines


def _verdict(holds: bool) -> str:
    return "confirmed" if holds else "refuted"


def seed_conclusion_lines(seed: dict, variants: dict, reference: dict, baseline: tuple[str, dict] | None) -> list[str]:
    """analysis.seed_conclusions in words, one bullet per conclusion, with the figures that decide it.
    baseline: (display name, metrics) of the exact-likelihood model, whose accuracy is quoted for scale."""
    verdicts = seed_conclusions(seed, variants, reference)
    r = verdicts["representations"]
    baseline_note = f", {baseline[0]}'s next-token accuracy {baseline[1]['accuracy']:.1%}" if baseline else ""
    lines = [
        f"- *\"SDD learns useful representations\" (the seed's evidence: 54% accuracy)*: "
        f"**{'confirmed' if r['holds'] else 'refuted'}** as evidence. Here the seed design scores "
        f"{r['training_accuracy']:.1%} on its training states, while a predictor with no network, which outputs the "
        f"most probable candidate, scores {r['trivial_accuracy']:.1%}: that accuracy measures copying. With only the "
        f"context to go on (context-only states) it scores {r['context_only_accuracy']:.1%} (most frequent token "
        f"{r['most_frequent_token_accuracy']:.1%}{baseline_note}).",
    ]
    g = verdicts["generation_problem"]
    lines.append(
        f"- *\"SDD has a generation problem\"*: **{_verdict(g['holds'])}**. Its samples "
        f"score judge perplexity {seed['sample_judge_perplexity']:.0f} ({g['times_real_text']:.0f}x real text's "
        f"{reference['judge_perplexity']:.1f}) with unigram entropy {seed['sample_entropy']:.2f} nats "
        f"(real text {reference['entropy']:.2f}), distinct-1 {seed['sample_distinct_1']:.3f}.")
    if "sampling_bottleneck" in verdicts:
        b = verdicts["sampling_bottleneck"]
        name = b["best_sampler"]
        m = variants[name]["metrics"]
        lines.append(
            f"- *\"The bottleneck is sampling, not learning\"*: **{_verdict(b['holds'])}**. "
            f"The seed's trained model with its best sampler variant ({name}: {_overrides(variants[name]['overrides'])}) "
            f"scores judge perplexity {m['sample_judge_perplexity']:.0f} and entropy {m['sample_entropy']:.2f} "
            f"(the default sampler: {seed['sample_judge_perplexity']:.0f} and {seed['sample_entropy']:.2f}); with "
            f"context-only accuracy {b['context_only_accuracy']:.1%}, the network has learned little language for any "
            "sampler to draw out.")
        if "best_learner" in b:
            learner = b["best_learner"]
            t = variants[learner]["metrics"]
            lines[-1] += (f" Training changes do more for the network than for the samples: the highest context-only "
                          f"accuracy, {state_accuracy(t, 'context_only'):.1%}, comes with {learner} "
                          f"({_overrides(variants[learner]['overrides'])}), whose samples score judge perplexity "
                          f"{t['sample_judge_perplexity']:.0f} and entropy {t['sample_entropy']:.2f}.")

    def described(m: dict) -> str:
        return (f"distance {distance_to_real_text(m, reference):.2f} (judge perplexity "
                f"{m['sample_judge_perplexity']:.0f}, entropy {m['sample_entropy']:.2f}"
                f"{', repetitive' if degenerate(m, reference) else ''})")
    if "curriculum" in verdicts:
        c = verdicts["curriculum"]
        lines.append(
            f"- *\"Fixed k={c['k']} works as well as the curriculum\"*: **{_verdict(c['holds'])}** (as well = "
            f"distances to real text within {SAME_WITHIN:.0%}): fixed k={c['k']} {described(seed)}; curriculum "
            f"{described(c['curriculum'])}.")
    if "fixed_k" in verdicts:
        f = verdicts["fixed_k"]
        cells = "; ".join(f"k={kk}: {described(m)}" for kk, m in f["by_k"].items())
        lines.append(f"- *\"Different k values: fixed k={f['k']} works\"*: **{_verdict(f['holds'])}** "
                     f"(k={f['k']} within {SAME_WITHIN:.0%} of the closest other k, or closer): {cells}.")
    return lines


def plot_variants(seed: dict, variants: dict, reference: dict, path: Path) -> None:
    """Judge perplexity against entropy of each SDD variant's samples, with the seed design and real text."""
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    points = {"seed design": seed, **{name: v["metrics"] for name, v in variants.items()}}
    for name, m in points.items():
        ax.scatter(m["sample_entropy"], m["sample_judge_perplexity"], s=30,
                   color="tab:red" if name == "seed design" else "tab:blue")
        ax.annotate(name, (m["sample_entropy"], m["sample_judge_perplexity"]), fontsize=6, xytext=(3, 2),
                    textcoords="offset points")
    ax.scatter([reference["entropy"]], [reference["judge_perplexity"]], marker="*", s=220, color="black",
               label="validation text", zorder=5)
    ax.axvline(ENTROPY_FLOOR * reference["entropy"], color="gray", linestyle=":", linewidth=1,
               label="entropy floor (left of it: repetitive)")
    _finish_plot(fig, ax, "mean unigram entropy of a sample (nats)", "judge perplexity",
                 "SDD variants: sample quality (red: the seed's design)", path)


def excluded_lines(excluded: dict[str, list[str]], command: str) -> list[str]:
    """The runs not shown, with their reasons; runs excluded for the same reasons share a line."""
    if not excluded:
        return []
    by_reasons: dict[tuple, list[str]] = {}
    for name, reasons in excluded.items():
        by_reasons.setdefault(tuple(reasons), []).append(name)
    return ["", f"Collected but not shown, because they ran under another study than this report's (rerun them: "
                f"`{command} <name>`):", ""] + [f"- {', '.join(names)}: {'; '.join(reasons)}."
                                                for reasons, names in by_reasons.items()]


def variants_section(seed: dict, variants: dict, reference: dict, baseline: tuple[str, dict] | None,
                     best: str | None, command: str, plot_name: str, not_run=(), excluded=None,
                     spread: dict | None = None) -> list[str]:
    lines = diagnostics_section(seed["diagnostics"])
    if not variants:
        return lines + [f"No variant experiment of this study has been collected yet: run `{command}`."] + \
            excluded_lines(excluded or {}, command) + [""]
    lines += ["### Variants", "",
              f"Each variant is a DVC experiment (`{command}`; `dvc exp show` lists them) that retrains SDD at this "
              "scale with the params shown changed (a variant that changes only the sampler reuses the pipeline's trained "
              "SDD) and judges the default sampling setting. Accuracy is averaged over the four t buckets above; "
              "the denoising CE is on each variant's own training noise, so it is not comparable across noises. "
              "Train time is each run's wall time: a run that shared the machine (or ran at low priority beside "
              "other groups) shows that, not its cost.", ""]
    lines += variants_table(seed, variants, reference)
    if not_run:
        lines += ["", f"Listed in params.yaml but not run yet: {', '.join(not_run)} (`{command} <name>`)."]
    lines += excluded_lines(excluded or {}, command)
    lines += ["", f"![SDD variants]({plot_name})", "", "### The seed's conclusions, re-tested", ""]
    lines += seed_conclusion_lines(seed, variants, reference, baseline)
    distances = f"{distance_to_real_text(variants[best]['metrics'], reference):.2f}, against the seed design's " \
        f"{distance_to_real_text(seed, reference):.2f}"
    lines += ["", f"Best variant: **{best}** (distance {distances}), the one whose samples are closest to real "
              "text: the smallest gap in judge "
              "cross-entropy (log judge perplexity) plus gap in unigram entropy, both in nats per token, so that "
              "neither repetition (low entropy) nor noise (high judge perplexity) can win. Every SDD sampler, "
              "whatever its options, outputs the highest-weight candidate of its last state."]
    if spread:
        margin = against_spread(distance_to_real_text(seed, reference)
                                - distance_to_real_text(variants[best]["metrics"], reference), [spread["distance"]])
        lines[-1] += " " + _margin_words(margin, "Its lead over the seed design", "nats of distance", ".2f") + (
            " Each variant ran with one seed; so did the comparisons of the seed's conclusions above, whose "
            "differences are to be read against the same spread." if margin["within"] is not None else "")
    lines.append("")
    return lines


def _rows_note(m: dict) -> str:
    """Which validation rows were scored."""
    total = m.get("valid_rows_in_split")
    whole = total is None or total == m["valid_rows"]
    return (f"{m['valid_rows']:,} validation rows ({m['valid_tokens']:,} tokens), "
            + ("the whole split" if whole else f"a fixed uniform sample of the split's {total:,}"))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _first_of_kind(metrics: dict[str, dict], kind: str) -> str | None:
    return next((name for name, m in metrics.items() if m["perplexity_kind"] == kind), None)


def render_report(metrics, samples, manifest, pack_stats, table: str, plot_name: str, reference: dict,
                  sweeps: pd.DataFrame, timings: dict[str, float], group: dict | None = None,
                  spread: dict | None = None, groups: dict | None = None, seeds: list | None = None,
                  base_lr: dict | None = None, length_lines: list[str] | None = None) -> str:
    """report.md. group: the collected variants group (see group_runs), or None; spread: the seed spread per
    model (analysis.seed_spread); groups: every collected group by name; seeds: the seed labels behind spread."""
    group = group or {"model": None, "runs": {}, "excluded": {}, "command": "", "not_run": []}
    groups, seeds = groups or {}, seeds or []
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
        f"on {first['device']}; {len(seeds)} training seed{'s' if len(seeds) != 1 else ''} ({', '.join(seeds)}): "
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
                               f"{_with_error(m, key, '.2%')}; " for key in extra)
                     + f"sampled at temperature {m['gen_temperature']} with {m['gen_steps']} network calls.")
    if exact and bound:
        e, b = metrics[exact], metrics[bound]
        if spread and exact in spread and bound in spread and spread[exact]["perplexity"]["seeds"] > 1:
            low = spread[bound]["perplexity"]["min"] / spread[exact]["perplexity"]["max"]
            high = spread[bound]["perplexity"]["max"] / spread[exact]["perplexity"]["min"]
            gap_note = (f" Over the {spread[exact]['perplexity']['seeds']} seeds the ratio lies between ≤ {low:.2f} "
                        f"and ≤ {high:.2f}" + ("; the two ranges overlap, so the order could change with a seed."
                                               if low <= 1 else ", so the order holds for every seed."))
        else:
            gap_note = ""
        lines += ["", f"{display_name(bound)}'s NELBO bound against {display_name(exact)}'s exact perplexity: "
                      f"≤ {b['perplexity']:.2f} vs {e['perplexity']:.2f}, a ratio of ≤ {b['perplexity'] / e['perplexity']:.2f} "
                      f"(the MDLM paper reports about 1.2 on LM1B at 33B tokens; this run is far smaller).{gap_note} "
                      f"For scale, a unigram model of the training tokens, which uses no context at all, "
                      f"scores perplexity {pack_stats['unigram_valid_perplexity']:.2f} on the validation tokens."]
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
        equal_time_paragraph(best_at_equal_time(sweeps, reference), reference, spread), "",
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
                                       rates["excluded"], rates["command"], spread)
    if variants_model and "diagnostics" in metrics.get(variants_model, {}):
        baseline = (display_name(exact), metrics[exact]) if exact else None
        lines += variants_section(metrics[variants_model], variants, reference, baseline, best, group["command"],
                                  "sdd_variants.png", group["not_run"], group.get("excluded"),
                                  (spread or {}).get(variants_model))
    if groups.get(SEEDS_GROUP) and groups[SEEDS_GROUP]["excluded"]:
        lines += ["## Seed runs not shown", ""] + excluded_lines(groups[SEEDS_GROUP]["excluded"],
                                                                 groups[SEEDS_GROUP]["command"])[1:] + [""]
    lines += cost_section(timings)
    lines += ["## Samples", ""]
    for name, s in samples.items():
        steps = f"{s['sampling']['steps']} steps, " if "steps" in s["sampling"] else ""
        sampling = f"{steps}T={s['sampling']['temperature']}{_sampler_note(metrics[name])}"
        shown_with_variant = name == variants_model and best
        label = f"{display_name(name)}, the seed's design" if shown_with_variant else display_name(name)
        lines += [f"### {label} ({sampling}; seed {s['seed']})", ""]
        for text in s["samples"][:SAMPLES_QUOTED]:
            lines += [_indent(text), ""]
        if shown_with_variant:
            lines += [f"### {display_name(name)}, best variant: {best} ({_overrides(variants[best]['overrides'])}; "
                      f"seed {s['seed']})", ""]
            lines += [line for text in variants[best]["samples"][:SAMPLES_QUOTED] for line in (_indent(text), "")]
    return "\n".join(lines).rstrip() + "\n"


def file_md5(path: Path) -> str | None:
    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else None  # as dvc.lock records it


def group_runs(collected: dict, raw_params: dict, defined: dict, root: Path = Path(".")) -> dict:
    """A collected experiment group (experiments.collect) as the report uses it: per run that matches the current
    study (analysis.run_binding) its overrides and every model's metrics, samples and learning curve ("models"),
    and for a group of one model that model's metrics and samples; the other runs under "excluded", each with its
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
            if model:
                runs[name].update(metrics=run["models"][model]["metrics"], samples=run["models"][model]["samples"])
    return {"model": model, "runs": runs, "excluded": excluded, "command": collected["command"],
            "not_run": collected["not_run"]}


def seed_runs(metrics: dict[str, dict], seeds: dict | None, seed: int) -> dict[str, dict[str, dict]]:
    """Seed label -> model -> metrics: this pipeline's run (its seed) and each seed run bound to this study."""
    by_seed = {f"seed {seed}": metrics}
    for run in (seeds or {"runs": {}})["runs"].values():
        label = "seed " + ", ".join(str(v) for v in run["overrides"].values())
        by_seed[label] = {name: model["metrics"] for name, model in run["models"].items() if name in metrics}
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
                          excluded: dict, command: str, spread: dict | None = None) -> list[str]:
    """analysis.learning_rate_sensitivity as a table and a sentence; each model's gain from its best learning rate
    is set against its seed spread of validation NLL."""
    lines = ["## Learning-rate sensitivity", ""]
    if len(by_factor) < 2:
        return lines + [f"No learning-rate run of this study has been collected yet: run `{command}`."] + \
            excluded_lines(excluded, command) + [""]
    result = learning_rate_sensitivity(by_factor, reference)
    factors = sorted(by_factor)
    lines += [f"Each model retrained at {', '.join(f'{f:g}x' for f in factors)} its default peak learning rate "
              f"(`{command}`, one seed each; the 1x column is this pipeline's run). Validation NLL per token is each "
              "model's own kind (AR exact, MDLM a bound, SDD a denoising cross-entropy), comparable along a row "
              "but not down a column; the best learning rate of a model is the one with its lowest NLL. Distance "
              "to real text (judge cross-entropy gap plus entropy gap, nats) compares all three.", "",
              "| model | " + " | ".join(f"{f:g}x: NLL / distance" for f in factors) + " | best |",
              "|---|" + "---|" * (len(factors) + 1)]
    for name, row in result["table"].items():
        cells = [f"{row[f]['nll']:.3f} / {row[f]['distance']:.2f}" if f in row else "–" for f in factors]
        best = result["best_factor"][name]
        lines.append(f"| {display_name(name)} | " + " | ".join(cells)
                     + f" | {best:g}x (lr {base_lr[name] * best:.2g}) |")
    order = " < ".join(display_name(n) for n in result["best_ranking"])
    lines += ["", f"Ranking by distance to real text at each model's best learning rate: {order}; at the default: "
              f"{' < '.join(display_name(n) for n in result['default_ranking'])}. The ranking "
              f"**{'holds' if result['holds'] else 'changes'}** when every model gets its best learning rate."]
    for name, best in result["best_factor"].items():
        if best != 1.0 and spread and name in spread:
            gain = result["table"][name][1.0]["nll"] - result["table"][name][best]["nll"]
            lines[-1] += " " + _margin_words(against_spread(gain, [spread[name].get("nll_per_token")]),
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


def plot_length_samples(runs: dict[str, list[tuple[str, list[dict], dict]]], reference: dict, path: Path) -> None:
    """Judge perplexity and entropy of each run's samples, and SDD-like models' context-only accuracy, against
    training tokens, with real text marked."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), dpi=120)
    for name, model_runs in runs.items():
        ordered = sorted(model_runs, key=lambda r: r[2]["train_tokens"])
        tokens = [m["train_tokens"] for _, _, m in ordered]
        axes[0].plot(tokens, [m["sample_judge_perplexity"] for _, _, m in ordered], marker="o", label=display_name(name))
        axes[1].plot(tokens, [m["sample_entropy"] for _, _, m in ordered], marker="o", label=display_name(name))
        for label, curve, m in ordered:
            if curve and "context_only_accuracy" in curve[0]:
                axes[2].plot([p["tokens"] for p in curve], [p["context_only_accuracy"] for p in curve], alpha=0.6,
                             label=f"{display_name(name)}, {label} (during training)")
        if "context_only_accuracy" in ordered[0][2]:
            axes[2].scatter(tokens, [m["context_only_accuracy"] for _, _, m in ordered], zorder=4,
                            label=f"{display_name(name)} (end of each run)")
            floor = ordered[0][2].get("diagnostics", {}).get("most_frequent_token_accuracy")
            if floor is not None:
                axes[2].axhline(floor, color="gray", linestyle=":", label="always the most frequent token")
    axes[0].axhline(reference["judge_perplexity"], color="black", linestyle="--", label="validation text")
    axes[1].axhline(reference["entropy"], color="black", linestyle="--", label="validation text")
    titles = ("Judge perplexity of samples", "Unigram entropy of samples (nats)",
              "SDD: accuracy where only the context tells the token")
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
                            lengths: dict | None, reference: dict, nll_plot: str, samples_plot: str) -> list[str]:
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
                         f"| {m.get('train_epochs', float('nan')):.2f} | {_with_error(m, 'nll_per_token', '.3f')} "
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
    lines += ["", f"![sample quality against training tokens]({samples_plot})", ""]
    if lengths.get("not_run"):
        lines += [f"Listed in params.yaml but not run yet: {', '.join(lengths['not_run'])} (`{command} <name>`)."]
    return lines + excluded_lines(lengths.get("excluded", {}), command) + [""]


def read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as error:  # missing, unreadable or not CSV
        raise DataError(f"{path}: {str(error).splitlines()[0][:80]}; rerun the stage that writes it (dvc repro)") \
            from None


def build_report(eval_dir, model_dir, data_dir, out_dir, model_names, timings_dir="timings",
                 experiments_dir="eval/experiments", params_path="params.yaml") -> None:
    try:
        _build_report(eval_dir, model_dir, data_dir, out_dir, model_names, timings_dir, experiments_dir, params_path)
    except KeyError as error:  # an input that parses but lacks a field it must have
        raise DataError(f"a report input lacks the field {error}; rerun the stage that writes it "
                        "(dvc repro -f <stage>)") from None


def _build_report(eval_dir, model_dir, data_dir, out_dir, model_names, timings_dir, experiments_dir,
                  params_path) -> None:
    eval_dir, model_dir, data_dir, out_dir, timings_dir = map(Path, (eval_dir, model_dir, data_dir, out_dir,
                                                                      timings_dir))
    metrics = {name: read_json(eval_dir / name / "metrics.json") for name in model_names}
    samples = {name: read_json(eval_dir / name / "samples.json") for name in model_names}
    logs = {name: read_csv(model_dir / name / "train_log.csv") for name in model_names}
    manifest = read_json(data_dir / "prepared" / "manifest.json")
    pack_stats = read_json(data_dir / "packed" / "stats.json")
    reference = read_json(eval_dir / "reference" / "metrics.json")
    sweeps = pd.concat([read_csv(eval_dir / name / "sweep.csv") for name in model_names], ignore_index=True)
    stages = ["prepare", "tokenizer", "pack", *(f"train@{n}" for n in model_names), "judge",
              *(f"evaluate@{n}" for n in model_names)]
    timings = {stage: read_json(timings_dir / f"{stage}.json")["wall_s"] for stage in stages}
    collected = {name: read_json(path) for name in (SEEDS_GROUP, LR_GROUP, LENGTH_GROUP, VARIANTS_GROUP)
                 if (path := Path(experiments_dir) / f"{name}.json").exists()}
    raw_params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))  # read once for every group
    defined = read_groups(params_path)
    groups = {name: group_runs(c, raw_params, defined) for name, c in collected.items()}
    write_text(out_dir / "experiments.md", groups_table(collected, groups))
    group = groups.get(VARIANTS_GROUP)
    variants, variants_model = (group["runs"], group["model"]) if group else ({}, None)
    by_seed = seed_runs(metrics, groups.get(SEEDS_GROUP), raw_params["seed"])
    spread = seed_spread(by_seed, reference)
    scale = raw_params["scales"][raw_params["scale"]]
    base_lr = {name: scale["lr"] * raw_params["train"]["lr_factor"].get(name, 1.0) for name in model_names}
    rows = labelled_rows(metrics, variants, closest_to_real_text(variants, reference), variants_model)
    table = results_table(rows, spreads_by_label(rows, metrics, spread))
    if variants_model in metrics:
        plot_variants(metrics[variants_model], variants, reference, out_dir / "sdd_variants.png")
    plot_training_loss(logs, out_dir / "training_loss.png")
    curves = {name: read_csv(model_dir / name / "learning_curve.csv").to_dict("records") for name in model_names}
    runs_by_length = length_runs(metrics, curves, groups.get(LENGTH_GROUP))
    plot_learning_curves({name: model_runs[:1] for name, model_runs in runs_by_length.items()},
                         out_dir / "learning_curves.png")
    plot_learning_curves(runs_by_length, out_dir / "training_length_nll.png",
                         "Validation NLL against training tokens, every training length")
    plot_length_samples(runs_by_length, reference, out_dir / "training_length_samples.png")
    plot_quality(sweeps, reference, out_dir / "judge_perplexity_vs_entropy.png", out_dir / "quality_vs_time.png")
    write_text(out_dir / "results.md", table)
    write_json(out_dir / "metrics.json", headline_metrics(metrics, reference))
    write_text(out_dir / "report.md", render_report(metrics, samples, manifest, pack_stats, table,
                                                    "training_loss.png", reference, sweeps, timings, group,
                                                    spread, groups, list(by_seed), base_lr,
                                                    training_length_section(runs_by_length, by_seed,
                                                                            groups.get(LENGTH_GROUP), reference,
                                                                            "training_length_nll.png",
                                                                            "training_length_samples.png")))


README_BLOCKS = {"results": "reports/results.md", "benchmarks": "reports/benchmarks/summary.md",
                 "experiments": "reports/experiments.md"}


def groups_table(collected: dict[str, dict], groups: dict[str, dict]) -> str:
    """Each collected experiment group: its command, runs shown (bound to this study) of those collected and
    listed, and the stage time its shown runs took (the stages each run reproduced, from their timings)."""
    lines = ["| group | command | runs shown / collected / listed | stage time of the runs shown |", "|---|---|---|---|"]
    for name, c in collected.items():
        shown = groups[name]["runs"]
        seconds = [sum(c["runs"][run].get("stage_seconds", {}).values()) for run in shown]
        timed = [s for s in seconds if s]
        time_cell = (f"{sum(timed) / 60:.0f} min ({sum(timed) / 60 / len(timed):.0f} min a run)" if timed else "–")
        listed = len(c["runs"]) + len(c["not_run"])
        lines.append(f"| {name} | `{c['command']}` | {len(shown)} / {len(c['runs'])} / {listed} | {time_cell} |")
    return "\n".join(lines) + "\n"


def replace_block(readme: str, name: str, content: str) -> str:
    """README text with the block between <!-- name:start --> and <!-- name:end --> replaced by content."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}{end}{tail}"


def readme_block(readme: str, name: str) -> str:
    return readme.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
