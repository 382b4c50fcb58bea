"""Regenerates reports/ from what the pipeline actually produced: nothing here is typed in by hand."""
from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from .analysis import (ENTROPY_FLOOR, SAME_WITHIN, best_at_equal_time, closest_to_real_text,  # noqa: E402
                       degenerate, distance_to_real_text, headline_metrics, run_binding, seed_conclusions,
                       state_accuracy)
from .errors import DataError  # noqa: E402
from .evaluate import TIMING_SPREAD_LIMIT  # noqa: E402
from .experiments import entry, read_groups, study_params  # noqa: E402
from .io import atomic_path, read_json, write_json, write_text  # noqa: E402
from .models import MODELS  # noqa: E402

SAMPLES_QUOTED = 2
#: The experiment group whose runs the report's "Why SDD repeats" section shows (eval/experiments/<group>.json).
VARIANTS_GROUP = "sdd_variants"


def display_name(name: str) -> str:
    return MODELS[name].display_name


def _perplexity_cell(metrics: dict) -> str:
    prefix = "≤ " if metrics["perplexity_kind"] == "bound" else ""
    return f"{prefix}{metrics['perplexity']:.2f}"


def results_table(metrics: dict[str, dict]) -> str:
    """The comparison table (one row per label): the seed's columns plus what each number is."""
    gen_tokens = next(iter(metrics.values()))["gen_tokens"]
    lines = [
        f"| Model | Perplexity | Perplexity kind | NLL/token | Accuracy | Gen time ({gen_tokens} tok, batch 1) "
        "| Sampling steps | Params | Train time | Train tokens/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        lines.append(
            f"| {name} | {_perplexity_cell(m)} | {m['perplexity_kind']} | {m['nll_per_token']:.3f} "
            f"| {m['accuracy']:.1%} | {_gen_time(m)} | {m['gen_steps']} "
            f"| {m['parameters'] / 1e6:.2f}M | {m['train_wall_s']:.0f} s | {m['train_tokens_per_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _gen_time(m: dict) -> str:
    """Median batch-1 time, with the fastest run (which a busy machine cannot lower) and a mark if busy."""
    if "gen_ms_min" not in m:
        return f"{m['gen_ms_per_sample']:.0f} ms"
    return f"{m['gen_ms_per_sample']:.0f} ms (min {m['gen_ms_min']:.0f}){' ⚠' if m['gen_timing_busy'] else ''}"


def _finish_plot(fig, ax, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    """Labels, log-scale grid and legend shared by every plot, then an atomic PNG write."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
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


def quality_table(metrics: dict[str, dict], reference: dict) -> str:
    lines = ["| Text | Sampling | Judge PPL | Entropy (nats) | Distinct-1 | Distinct-2 | Distinct-3 | Repeat-4 "
             "| ms per sample (batched) |", "|---|---|---|---|---|---|---|---|---|",
             f"| validation text | {reference['num_samples']} windows of {reference['length']} tokens "
             f"| {reference['judge_perplexity']:.2f} | {reference['entropy']:.3f} | {reference['distinct_1']:.3f} "
             f"| {reference['distinct_2']:.3f} | {reference['distinct_3']:.3f} | {reference['repeat_4gram_rate']:.3f} "
             "| – |"]
    for name, m in metrics.items():
        lines.append(
            f"| {name} | {m['gen_steps']} steps, T={m['gen_temperature']}{_sampler_note(m)} "
            f"| {m['sample_judge_perplexity']:.2f} | {m['sample_entropy']:.3f} | {m['sample_distinct_1']:.3f} "
            f"| {m['sample_distinct_2']:.3f} | {m['sample_distinct_3']:.3f} | {m['sample_repeat_4gram_rate']:.3f} "
            f"| {m['sample_ms_per_sample']:.1f} |")
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


def equal_time_paragraph(ranking: dict, reference: dict) -> str:
    """analysis.best_at_equal_time in words."""
    described = [f"{display_name(p['model'])} {p['steps']} steps T={p['temperature']}: judge perplexity "
                 f"{p['judge_perplexity']:.1f}, entropy {p['entropy']:.2f}"
                 + (" (below the entropy floor: repetitive)" if p["repetitive"] else "") for p in ranking["picks"]]
    return (f"At equal sampling time (at most {ranking['budget_ms']:.1f} ms per sample, the slowest model's fastest "
            f"setting; settings whose entropy is below {ranking['entropy_floor']:.0%} of real text's "
            f"{ranking['reference_entropy']:.2f} nats count as repetitive and rank last), "
            f"**{display_name(ranking['picks'][0]['model'])} writes best**. Best setting of each model within that "
            f"time: " + "; ".join(described) +
            f". Real validation text scores judge perplexity {reference['judge_perplexity']:.1f}.")


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
    if not excluded:
        return []
    return ["", f"Collected but not shown, because they ran under another study than this report's (rerun them: "
                f"`{command} <name>`):", ""] + [f"- {name}: {'; '.join(reasons)}." for name, reasons in excluded.items()]


def variants_section(seed: dict, variants: dict, reference: dict, baseline: tuple[str, dict] | None,
                     best: str | None, command: str, plot_name: str, not_run=(), excluded=None) -> list[str]:
    lines = diagnostics_section(seed["diagnostics"])
    if not variants:
        return lines + [f"No variant experiment of this study has been collected yet: run `{command}`."] + \
            excluded_lines(excluded or {}, command) + [""]
    lines += ["### Variants", "",
              f"Each variant is a DVC experiment (`{command}`; `dvc exp show` lists them) that retrains SDD at this "
              "scale with the params shown changed (a variant that changes only the sampler reuses the pipeline's trained "
              "SDD) and judges the default sampling setting. Accuracy is averaged over the four t buckets above; "
              "the denoising CE is on each variant's own training noise, so it is not comparable across noises.", ""]
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
              "whatever its options, outputs the highest-weight candidate of its last state.", ""]
    return lines


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _first_of_kind(metrics: dict[str, dict], kind: str) -> str | None:
    return next((name for name, m in metrics.items() if m["perplexity_kind"] == kind), None)


def render_report(metrics, samples, manifest, pack_stats, table: str, plot_name: str, reference: dict,
                  sweeps: pd.DataFrame, timings: dict[str, float], group: dict | None = None) -> str:
    """report.md. group: the collected variants group (see group_runs), or None."""
    group = group or {"model": None, "runs": {}, "excluded": {}, "command": "", "not_run": []}
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
        f"for each model, on {first['device']}.",
        f"- Evaluation: {first['valid_rows']:,} validation rows ({first['valid_tokens']:,} tokens); generation timed at "
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
        lines.append(f"- **{display_name(name)}**: perplexity = {m['perplexity_meaning']}; "
                     f"accuracy = {m['accuracy_definition']}; sampled at temperature {m['gen_temperature']} "
                     f"with {m['gen_steps']} network calls.")
    if exact and bound:
        e, b = metrics[exact], metrics[bound]
        lines += ["", f"{display_name(bound)}'s NELBO bound against {display_name(exact)}'s exact perplexity: "
                      f"≤ {b['perplexity']:.2f} vs {e['perplexity']:.2f}, a ratio of ≤ {b['perplexity'] / e['perplexity']:.2f} "
                      "(the MDLM paper reports about 1.2 on LM1B at 33B tokens; this run is far smaller). "
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
        quality_table(labelled_rows(metrics, variants, best, variants_model), reference),
        equal_time_paragraph(best_at_equal_time(sweeps, reference), reference), "",
        "![judge perplexity against entropy](judge_perplexity_vs_entropy.png)", "",
        "![quality against sampling time](quality_vs_time.png)", "",
        f"Sweep: {' and '.join(map(display_name, stepped))} at "
        + ", ".join(str(s) for s in sorted(set(sweeps[sweeps["model"].isin(stepped)]["steps"])))
        + " steps, and every model at temperatures " + ", ".join(str(t) for t in sorted(set(sweeps['temperature'])))
        + "; all points are in `eval/<model>/sweep.csv` (DVC plots).",
    ]
    lines += ["", "## Training loss", "", f"![training loss]({plot_name})", "",
              "Each curve is the model's own objective, so the curves show how each run converged, "
              "not which model is better.", ""]
    if variants_model and "diagnostics" in metrics.get(variants_model, {}):
        baseline = (display_name(exact), metrics[exact]) if exact else None
        lines += variants_section(metrics[variants_model], variants, reference, baseline, best, group["command"],
                                  "sdd_variants.png", group["not_run"], group.get("excluded"))
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


def group_runs(collected: dict, params_path: Path, root: Path = Path(".")) -> dict:
    """A collected experiment group (experiments.collect) as the report uses it: its one model, and per run that
    matches the current study (analysis.run_binding) its overrides, that model's metrics and samples; the other
    runs under "excluded", each with its reasons."""
    model = collected["models"][0] if len(collected["models"]) == 1 else None
    raw = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    group = read_groups(params_path).get(collected["group"])
    paths = {path for run in collected["runs"].values() for kind in ("code", "data", "judge")
             for path in run.get(kind, {})}
    study = {"params": study_params(raw), "md5": {path: file_md5(root / path) for path in paths}}
    runs, excluded = {}, {}
    for name, run in collected["runs"].items():
        reasons = run_binding(run, group and entry(group, name), study)
        if reasons:
            excluded[name] = reasons
        elif model:
            runs[name] = {"overrides": run["overrides"], "metrics": run["models"][model]["metrics"],
                          "samples": run["models"][model]["samples"]}
    return {"model": model, "runs": runs, "excluded": excluded, "command": collected["command"],
            "not_run": collected["not_run"]}


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
    group = group_runs(read_json(Path(experiments_dir) / f"{VARIANTS_GROUP}.json"), Path(params_path))
    variants, variants_model = group["runs"], group["model"]
    table = results_table(labelled_rows(metrics, variants, closest_to_real_text(variants, reference), variants_model))
    if variants_model in metrics:
        plot_variants(metrics[variants_model], variants, reference, out_dir / "sdd_variants.png")
    plot_training_loss(logs, out_dir / "training_loss.png")
    plot_quality(sweeps, reference, out_dir / "judge_perplexity_vs_entropy.png", out_dir / "quality_vs_time.png")
    write_text(out_dir / "results.md", table)
    write_json(out_dir / "metrics.json", headline_metrics(metrics, reference))
    write_text(out_dir / "report.md", render_report(metrics, samples, manifest, pack_stats, table,
                                                    "training_loss.png", reference, sweeps, timings, group))


README_BLOCKS = {"results": "reports/results.md", "benchmarks": "reports/benchmarks/summary.md"}


def replace_block(readme: str, name: str, content: str) -> str:
    """README text with the block between <!-- name:start --> and <!-- name:end --> replaced by content."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}{end}{tail}"


def readme_block(readme: str, name: str) -> str:
    return readme.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
