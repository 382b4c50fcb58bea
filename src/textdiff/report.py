"""Regenerates reports/ from what the pipeline actually produced: nothing here is typed in by hand."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_path, read_json, write_text  # noqa: E402

DISPLAY_NAMES = {"ar": "AR", "mdlm": "MDLM", "sdd": "SDD"}
LOSS_MEANING = {
    "ar": "next-token cross-entropy",
    "mdlm": "NELBO per token (masked cross-entropy weighted by 1/t)",
    "sdd": "denoising cross-entropy at random t",
}
SAMPLES_QUOTED = 2
# A sample set whose unigram entropy is below this share of real text's counts as degenerate
# (repetitive) when picking which model writes best: low judge perplexity alone can come from repetition.
ENTROPY_FLOOR = 0.9


def _perplexity_cell(metrics: dict) -> str:
    prefix = "≤ " if metrics["perplexity_kind"] == "bound" else ""
    return f"{prefix}{metrics['perplexity']:.2f}"


def results_table(metrics: dict[str, dict]) -> str:
    """The comparison table: the seed's columns plus what each number is."""
    gen_tokens = next(iter(metrics.values()))["gen_tokens"]
    lines = [
        f"| Model | Perplexity | Perplexity kind | NLL/token | Accuracy | Gen time ({gen_tokens} tok, batch 1) "
        "| Sampling steps | Params | Train time | Train tokens/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        lines.append(
            f"| {DISPLAY_NAMES[name]} | {_perplexity_cell(m)} | {m['perplexity_kind']} | {m['nll_per_token']:.3f} "
            f"| {m['accuracy']:.1%} | {m['gen_ms_per_sample']:.0f} ms | {m['gen_steps']} "
            f"| {m['parameters'] / 1e6:.2f}M | {m['train_wall_s']:.0f} s | {m['train_tokens_per_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


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
                label=f"{DISPLAY_NAMES[name]}: {LOSS_MEANING[name]}")
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
            f"| {DISPLAY_NAMES[name]} | {m['gen_steps']} steps, T={m['gen_temperature']} "
            f"| {m['sample_judge_perplexity']:.2f} | {m['sample_entropy']:.3f} | {m['sample_distinct_1']:.3f} "
            f"| {m['sample_distinct_2']:.3f} | {m['sample_distinct_3']:.3f} | {m['sample_repeat_4gram_rate']:.3f} "
            f"| {m['sample_ms_per_sample']:.1f} |")
    return "\n".join(lines) + "\n"


def _setting_label(row) -> str:
    return f"{DISPLAY_NAMES[row['model']]} {int(row['steps'])} steps T={row['temperature']}"


def plot_quality(sweeps: pd.DataFrame, reference: dict, scatter_path: Path, time_path: Path) -> None:
    """Judge perplexity against entropy (one point per setting), and against sampling time."""
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for name, group in sweeps.groupby("model", sort=False):
        ax.scatter(group["entropy"], group["judge_perplexity"], label=DISPLAY_NAMES[name], s=30)
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
        ax.plot(group["ms_per_sample"], group["judge_perplexity"], marker="o", label=DISPLAY_NAMES[name])
    ax.axhline(reference["judge_perplexity"], color="black", linestyle="--", linewidth=1, label="validation text")
    ax.set_xscale("log")
    _finish_plot(fig, ax, "sampling wall time per sample (ms, batched)", "judge perplexity (lower is better)",
                 "Sample quality against sampling time (every sweep setting)", time_path)


def best_at_equal_time(sweeps: pd.DataFrame, reference: dict) -> str:
    """Which model writes best when every model gets the same sampling time, in words, from the numbers."""
    budget = sweeps.groupby("model")["ms_per_sample"].min().max()
    floor = ENTROPY_FLOOR * reference["entropy"]
    picks = []
    for name, group in sweeps[sweeps["ms_per_sample"] <= budget].groupby("model", sort=False):
        fair = group[group["entropy"] >= floor]
        pool = fair if len(fair) else group
        best = pool.loc[pool["judge_perplexity"].idxmin()]
        picks.append((best["judge_perplexity"], best, len(fair) > 0))
    picks.sort(key=lambda pick: (not pick[2], pick[0]))
    described = [f"{_setting_label(row)}: judge perplexity {ppl:.1f}, entropy {row['entropy']:.2f}"
                 + ("" if fair else " (below the entropy floor: repetitive)") for ppl, row, fair in picks]
    winner = picks[0][1]
    return (f"At equal sampling time (at most {budget:.1f} ms per sample, the slowest model's fastest setting; "
            f"settings whose entropy is below {ENTROPY_FLOOR:.0%} of real text's {reference['entropy']:.2f} nats "
            f"count as repetitive and rank last), **{DISPLAY_NAMES[winner['model']]} writes best**. "
            f"Best setting of each model within that time: " + "; ".join(described) +
            f". Real validation text scores judge perplexity {reference['judge_perplexity']:.1f}.")


def cost_section(timings: dict[str, float]) -> list[str]:
    total = sum(timings.values())
    lines = ["## Cost of the study", "",
             "Wall time of each stage in this run, from the stage's start (imports included) to its last output; "
             "their sum is the time of a full `dvc repro` less DVC's own bookkeeping between stages.", "",
             "| stage | wall time |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.0f} s |" for stage, seconds in timings.items()]
    lines += [f"| **total** | **{total:.0f} s ({total / 60:.1f} min)** |", ""]
    return lines


def diagnostics_section(diagnostics: dict) -> list[str]:
    """SDD's accuracy and NLL by t bucket on each kind of state, and the train/sample mismatch."""
    buckets = diagnostics["by_t_bucket"]
    mismatch = diagnostics["sampler_mismatch"]
    lines = ["## Why SDD repeats (diagnostics)", "",
             "SDD trains on states whose true token is always a candidate (slot 0, the most probable one whenever "
             "t < 1), but samples from k random candidates. Accuracy / NLL per token of the trained SDD on "
             "validation rows, by noise level, on three kinds of state with the same training probabilities: "
             "the training noise; the true token replaced by a random one; all k candidates drawn as the prior "
             "draws them. The trivial predictor outputs the most probable candidate, with no network.", "",
             "| t | trivial predictor | training state | true token replaced | prior candidates "
             "| sampler/training mismatch |", "|---|---|---|---|---|---|"]
    for name, b in buckets.items():
        lines.append(
            f"| {name[1:].replace('-', '–')} | {b['trivial_top_candidate_accuracy']:.1%} "
            f"| {b['training_accuracy']:.1%} / {b['training_nll']:.2f} "
            f"| {b['true_token_replaced_accuracy']:.1%} / {b['true_token_replaced_nll']:.2f} "
            f"| {b['prior_candidates_accuracy']:.1%} / {b['prior_candidates_nll']:.2f} "
            f"| {f'{mismatch[name]:.3f}' if name in mismatch else '–'} |")
    low = next(iter(buckets.values()))
    lines += ["", "Mismatch: half the L1 distance between the sorted candidate weights the sampler feeds the network "
              "and those of a training state at the same t (0 = the same weights), averaged over the sampler's steps "
              f"in each bucket; {mismatch['mean']:.3f} over all steps. At the lowest noise, SDD is right "
              f"{low['training_accuracy']:.1%} of the time when the true token is a candidate, "
              f"{low['true_token_replaced_accuracy']:.1%} when it is not, and the network-free top-candidate "
              f"predictor scores {low['trivial_top_candidate_accuracy']:.1%}.", ""]
    return lines


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def render_report(metrics, samples, manifest, pack_stats, table: str, plot_name: str, reference: dict,
                  sweeps: pd.DataFrame, timings: dict[str, float]) -> str:
    ar, mdlm = metrics.get("ar"), metrics.get("mdlm")
    first = next(iter(metrics.values()))
    lines = [
        "# Text generation by diffusion on TinyStories: AR vs MDLM vs SDD",
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
        f"batch 1 for {first['gen_tokens']} tokens, the median of several runs after a warm-up.",
        "",
        "## Results",
        "",
        table,
        "What the numbers mean:",
        "",
    ]
    for name, m in metrics.items():
        lines.append(f"- **{DISPLAY_NAMES[name]}**: perplexity = {m['perplexity_meaning']}; "
                     f"accuracy = {m['accuracy_definition']}; sampled at temperature {m['gen_temperature']} "
                     f"with {m['gen_steps']} network calls.")
    if ar and mdlm:
        lines += ["", f"MDLM's NELBO bound against AR's exact perplexity: ≤ {mdlm['perplexity']:.2f} vs "
                      f"{ar['perplexity']:.2f}, a ratio of ≤ {mdlm['perplexity'] / ar['perplexity']:.2f} "
                      "(the MDLM paper reports about 1.2 on LM1B at 33B tokens; this run is far smaller). "
                      f"For scale, a unigram model of the training tokens, which uses no context at all, "
                      f"scores perplexity {pack_stats['unigram_valid_perplexity']:.2f} on the validation tokens."]
    lines += [
        "", "## Sample quality", "",
        f"Every model's samples ({first['sample_count']} per setting, {first['gen_tokens']} tokens, fixed seeds) are "
        f"scored by one fixed judge: an AR model with the study's backbone, trained {reference['judge_steps']:,} steps "
        f"on the same training rows in its own stage (validation perplexity {reference['judge_valid_perplexity']:.2f}). "
        "The study's own AR model is not the judge, because it would score its own samples and flatter the AR row. "
        "Judge perplexity alone rewards repetitive text, so it stands next to the unigram entropy of each sample, "
        "distinct-n (distinct n-grams over all n-grams of all samples) and the repeated-4-gram rate (share of a "
        "sample's 4-grams seen earlier in it), with the same figures for windows of real validation text.", "",
        quality_table(metrics, reference),
        best_at_equal_time(sweeps, reference), "",
        "![judge perplexity against entropy](judge_perplexity_vs_entropy.png)", "",
        "![quality against sampling time](quality_vs_time.png)", "",
        "Sweep: MDLM and SDD at " + ", ".join(str(s) for s in sorted(set(sweeps[sweeps['model'] != 'ar']['steps'])))
        + " steps, and every model at temperatures " + ", ".join(str(t) for t in sorted(set(sweeps['temperature'])))
        + "; all points are in `eval/<model>/sweep.csv` (DVC plots).",
    ]
    lines += ["", "## Training loss", "", f"![training loss]({plot_name})", "",
              "Each curve is the model's own objective, so the curves show how each run converged, "
              "not which model is better.", ""]
    if "diagnostics" in metrics.get("sdd", {}):
        lines += diagnostics_section(metrics["sdd"]["diagnostics"])
    lines += cost_section(timings)
    lines += ["## Samples", ""]
    for name, s in samples.items():
        sampling = ", ".join(f"{k} {v}" for k, v in s["sampling"].items())
        lines += [f"### {DISPLAY_NAMES[name]} ({sampling}; seed {s['seed']})", ""]
        for text in s["samples"][:SAMPLES_QUOTED]:
            lines += [_indent(text), ""]
    return "\n".join(lines).rstrip() + "\n"


def build_report(eval_dir, model_dir, data_dir, out_dir, model_names, timings_dir="timings") -> None:
    eval_dir, model_dir, data_dir, out_dir, timings_dir = map(Path, (eval_dir, model_dir, data_dir, out_dir,
                                                                      timings_dir))
    metrics = {name: read_json(eval_dir / name / "metrics.json") for name in model_names}
    samples = {name: read_json(eval_dir / name / "samples.json") for name in model_names}
    logs = {name: pd.read_csv(model_dir / name / "train_log.csv") for name in model_names}
    manifest = read_json(data_dir / "prepared" / "manifest.json")
    pack_stats = read_json(data_dir / "packed" / "stats.json")
    reference = read_json(eval_dir / "reference" / "metrics.json")
    sweeps = pd.concat([pd.read_csv(eval_dir / name / "sweep.csv") for name in model_names], ignore_index=True)
    stages = ["prepare", "tokenizer", "pack", *(f"train@{n}" for n in model_names), "judge",
              *(f"evaluate@{n}" for n in model_names)]
    timings = {stage: read_json(timings_dir / f"{stage}.json")["wall_s"] for stage in stages}
    table = results_table(metrics)
    plot_training_loss(logs, out_dir / "training_loss.png")
    plot_quality(sweeps, reference, out_dir / "judge_perplexity_vs_entropy.png", out_dir / "quality_vs_time.png")
    write_text(out_dir / "results.md", table)
    write_text(out_dir / "report.md", render_report(metrics, samples, manifest, pack_stats, table,
                                                    "training_loss.png", reference, sweeps, timings))


README_BLOCKS = {"results": "reports/results.md", "benchmarks": "reports/benchmarks/summary.md"}


def replace_block(readme: str, name: str, content: str) -> str:
    """README text with the block between <!-- name:start --> and <!-- name:end --> replaced by content."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}{end}{tail}"


def readme_block(readme: str, name: str) -> str:
    return readme.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
