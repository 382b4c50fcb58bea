"""SDD's part of the report ("Why SDD repeats"): its diagnostics by noise level, the variants group's table
and plot, and the seed's conclusions re-tested from analysis.seed_conclusions."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..analysis import (ENTROPY_FLOOR, SAME_WITHIN, against_spread, degenerate, distance_to_real_text,
                        seed_conclusions, state_accuracy)
from .format import excluded_lines, finish_plot, label_points, margin_words, overrides_text
from .verdicts import add


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


def variants_table(seed: dict, variants: dict, reference: dict) -> list[str]:
    # Named apart from "context-only accuracy" (uniform t), which the other tables and the noise verdict show:
    # these are means over the t buckets, so the same run's two figures differ and must not share a name.
    header = ("| variant | changes | " + " | ".join(f"acc. {c} (t-bucket mean)" for c in STATE_COLUMNS.values())
              + " | denoising CE | judge PPL | entropy | distinct-1 | repeat-4 | distance to real text | train time |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    rows = [("seed design", "– (the main pipeline's SDD)", seed)]
    rows += [(name, overrides_text(v["overrides"]), v["metrics"]) for name, v in variants.items()]
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


def seed_conclusion_lines(seed: dict, variants: dict, reference: dict, baseline: tuple[str, dict] | None,
                          verdicts: list | None = None) -> list[str]:
    """analysis.seed_conclusions in words, one bullet per conclusion, with the figures that decide it.
    baseline: (display name, metrics) of the exact-likelihood model, whose accuracy is quoted for scale."""
    table, verdicts = verdicts, seed_conclusions(seed, variants, reference)
    r = verdicts["representations"]
    add(table, "seed_representations", _verdict(r["holds"]) + " as evidence",
        f"its {r['training_accuracy']:.1%} training-state accuracy is copying: a predictor with no network scores "
        f"{r['trivial_accuracy']:.1%}; context-only {r['context_only_accuracy']:.1%} (most frequent token "
        f"{r['most_frequent_token_accuracy']:.1%})")
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
    add(table, "seed_generation_problem", _verdict(g["holds"]),
        f"judge perplexity {seed['sample_judge_perplexity']:.0f} ({g['times_real_text']:.0f}x real text's), entropy "
        f"{seed['sample_entropy']:.2f} nats (real text {reference['entropy']:.2f})")
    lines.append(
        f"- *\"SDD has a generation problem\"*: **{_verdict(g['holds'])}**. Its samples "
        f"score judge perplexity {seed['sample_judge_perplexity']:.0f} ({g['times_real_text']:.0f}x real text's "
        f"{reference['judge_perplexity']:.1f}) with unigram entropy {seed['sample_entropy']:.2f} nats "
        f"(real text {reference['entropy']:.2f}), distinct-1 {seed['sample_distinct_1']:.3f}.")
    if "sampling_bottleneck" in verdicts:
        b = verdicts["sampling_bottleneck"]
        name = b["best_sampler"]
        m = variants[name]["metrics"]
        add(table, "seed_sampling_bottleneck", _verdict(b["holds"]),
            f"its best sampler ({name}) scores judge perplexity {m['sample_judge_perplexity']:.0f} (default "
            f"{seed['sample_judge_perplexity']:.0f}); context-only accuracy {b['context_only_accuracy']:.1%}")
        lines.append(
            f"- *\"The bottleneck is sampling, not learning\"*: **{_verdict(b['holds'])}**. "
            f"The seed's trained model with its best sampler variant ({name}: {overrides_text(variants[name]['overrides'])}) "
            f"scores judge perplexity {m['sample_judge_perplexity']:.0f} and entropy {m['sample_entropy']:.2f} "
            f"(the default sampler: {seed['sample_judge_perplexity']:.0f} and {seed['sample_entropy']:.2f}); with "
            f"context-only accuracy {b['context_only_accuracy']:.1%}, the network has learned little language for any "
            "sampler to draw out.")
        if "best_learner" in b:
            learner = b["best_learner"]
            t = variants[learner]["metrics"]
            lines[-1] += (f" Training changes do more for the network than for the samples: the highest context-only "
                          f"accuracy, {state_accuracy(t, 'context_only'):.1%}, comes with {learner} "
                          f"({overrides_text(variants[learner]['overrides'])}), whose samples score judge perplexity "
                          f"{t['sample_judge_perplexity']:.0f} and entropy {t['sample_entropy']:.2f}.")

    def described(m: dict) -> str:
        return (f"distance {distance_to_real_text(m, reference):.2f} (judge perplexity "
                f"{m['sample_judge_perplexity']:.0f}, entropy {m['sample_entropy']:.2f}"
                f"{', repetitive' if degenerate(m, reference) else ''})")
    if "curriculum" in verdicts:
        c = verdicts["curriculum"]
        add(table, "seed_curriculum", _verdict(c["holds"]),
            f"distance to real text: fixed k={c['k']} {distance_to_real_text(seed, reference):.2f}"
            f"{' (repetitive)' if degenerate(seed, reference) else ''}, curriculum "
            f"{distance_to_real_text(c['curriculum'], reference):.2f}")
        lines.append(
            f"- *\"Fixed k={c['k']} works as well as the curriculum\"*: **{_verdict(c['holds'])}** (as well = "
            f"not repetitive where the other is, else distances to real text within {SAME_WITHIN:.0%} or closer): fixed k={c['k']} {described(seed)}; curriculum "
            f"{described(c['curriculum'])}.")
    if "fixed_k" in verdicts:
        f = verdicts["fixed_k"]
        add(table, "seed_fixed_k", _verdict(f["holds"]),
            "distance to real text: " + ", ".join(f"k={kk} {distance_to_real_text(m, reference):.2f}"
                                                   for kk, m in {**f["by_k"], f["k"]: seed}.items()))
        cells = "; ".join(f"k={kk}: {described(m)}" for kk, m in f["by_k"].items())
        lines.append(f"- *\"Different k values: fixed k={f['k']} works\"*: **{_verdict(f['holds'])}** "
                     f"(k={f['k']} not repetitive where the best other k is not, and within {SAME_WITHIN:.0%} of its "
                     f"distance or closer; repetitive sets rank last): {cells}.")
    return lines


def plot_variants(seed: dict, variants: dict, reference: dict, path: Path) -> None:
    """Judge perplexity against entropy of each SDD variant's samples, with the seed design and real text."""
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    points = {"seed design": seed, **{name: v["metrics"] for name, v in variants.items()}}
    for name, m in points.items():
        ax.scatter(m["sample_entropy"], m["sample_judge_perplexity"], s=30,
                   color="tab:red" if name == "seed design" else "tab:blue")
    ax.scatter([reference["entropy"]], [reference["judge_perplexity"]], marker="*", s=220, color="black",
               label="validation text", zorder=5)
    ax.axvline(ENTROPY_FLOOR * reference["entropy"], color="gray", linestyle=":", linewidth=1,
               label="entropy floor (left of it: repetitive)")
    ax.set_yscale("log")
    ax.autoscale_view()  # the limits labels are placed in: every point drawn, real text's included
    label_points(ax, {name: (m["sample_entropy"], m["sample_judge_perplexity"]) for name, m in points.items()})
    finish_plot(fig, ax, "mean unigram entropy of a sample (nats)", "judge perplexity",
                 "SDD variants: sample quality (red: the seed's design)", path)


def variants_section(seed: dict, variants: dict, reference: dict, baseline: tuple[str, dict] | None,
                     best: str | None, command: str, plot_name: str, not_run=(), excluded=None,
                     spread: dict | None = None, verdicts: list | None = None) -> list[str]:
    lines = diagnostics_section(seed["diagnostics"])
    if not variants:
        return lines + [f"No variant experiment of this study has been collected yet: run `{command}`."] + \
            excluded_lines(excluded or {}, command) + [""]
    lines += ["### Variants", "",
              f"Each variant is a DVC experiment (`{command}`; `dvc exp show` lists them) that retrains SDD at this "
              "scale with the params shown changed (a variant that changes only the sampler reuses the pipeline's trained "
              "SDD) and judges the default sampling setting. Accuracy here is averaged over the four t buckets above "
              "with equal weight per bucket, so the training-state column differs from the results table's SDD "
              "accuracy, which draws t uniformly for each validation row; "
              "the denoising CE is on each variant's own training noise, so it is not comparable across noises. "
              "Train time is each run's wall time: a run that shared the machine (or ran at low priority beside "
              "other groups) shows that, not its cost.", ""]
    lines += variants_table(seed, variants, reference)
    if not_run:
        lines += ["", f"Listed in params.yaml but not run yet: {', '.join(not_run)} (`{command} <name>`)."]
    lines += excluded_lines(excluded or {}, command)
    lines += ["", f"![SDD variants]({plot_name})", "", "### The seed's conclusions, re-tested", ""]
    lines += seed_conclusion_lines(seed, variants, reference, baseline, verdicts)
    distances = f"{distance_to_real_text(variants[best]['metrics'], reference):.2f}, against the seed design's " \
        f"{distance_to_real_text(seed, reference):.2f}"
    lines += ["", f"Best variant: **{best}** (distance {distances}), the one whose samples are closest to real "
              "text: the smallest gap in judge "
              "cross-entropy (log judge perplexity) plus gap in unigram entropy, both in nats per token, so that "
              "neither repetition (low entropy) nor noise (high judge perplexity) can win; as in every verdict of "
              "this report, repetitive sample sets rank last whatever their distance. Every SDD sampler, "
              "whatever its options, outputs the highest-weight candidate of its last state."]
    if spread:
        margin = against_spread(distance_to_real_text(seed, reference)
                                - distance_to_real_text(variants[best]["metrics"], reference), [spread["distance"]])
        lines[-1] += " " + margin_words(margin, "Its lead over the seed design", "nats of distance", ".2f") + (
            " Each variant ran with one seed; so did the comparisons of the seed's conclusions above, whose "
            "differences are to be read against the same spread." if margin["within"] is not None else "")
    lines.append("")
    return lines
