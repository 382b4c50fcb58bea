"""The report's "Does better sampling close the gap?" section, from the samplers group (textdiff.samplers decides)."""
from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..analysis import ENTROPY_FLOOR
from ..io import atomic_path
from ..samplers import PLAIN, best_samplers, gap_with_samplers, sampler_sweeps
from .format import display_name, excluded_lines
from .groups import parallelism
from .verdicts import add

SAMPLERS_GROUP = "samplers"
LONGEST = 16.0  # the training-length factor of the longest runs


def plot_samplers(sweeps: pd.DataFrame, reference: dict, path: Path) -> None:
    """Judge perplexity against entropy (left) and against sampling time (right), one row per training length
    (sweeps' `factor`), one colour per model and one marker per sampler, every judged setting a point; real text
    marked. A legend, not point labels, names them, so that nothing stacks however many settings there are."""
    factors = sorted(sweeps["factor"].unique()) or [1.0]
    fig, axes = plt.subplots(len(factors), 2, figsize=(13, 5 * len(factors)), dpi=110, squeeze=False)
    if sweeps.empty:
        axes[0][0].text(0.5, 0.5, "no sampler run is bound to this study yet", ha="center",
                        transform=axes[0][0].transAxes)
    colours = dict(zip(sweeps["model"].unique(), plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    other_markers = itertools.cycle("sD^vP*Xh<>p")  # "o" is the plain samplers'
    markers = {key: "o" if key[1] == PLAIN else next(other_markers)
               for key in sweeps[["model", "sampler"]].drop_duplicates().itertuples(index=False, name=None)}
    legend = {}
    for (left, right), factor in zip(axes, factors):
        for (model, sampler), group in sweeps[sweeps["factor"] == factor].groupby(["model", "sampler"], sort=False):
            style = {"color": colours[model], "marker": markers[model, sampler], "linestyle": "none", "alpha": 0.85,
                     "label": f"{display_name(model)}: {sampler}"}
            legend.setdefault(style["label"], left.plot(group["entropy"], group["judge_perplexity"], **style)[0])
            right.plot(group["ms_per_sample"], group["judge_perplexity"], **style)
        star = left.scatter([reference["entropy"]], [reference["judge_perplexity"]], marker="*", s=250,
                            color="black", zorder=5, label="validation text")
        left.axvline(ENTROPY_FLOOR * reference["entropy"], color="gray", linestyle=":", linewidth=1)
        right.axhline(reference["judge_perplexity"], color="black", linestyle="--", linewidth=1)
        for ax, xlabel in ((left, "mean unigram entropy of a sample (nats; dotted: the repetition floor)"),
                           (right, "sampling wall time per sample (ms, batched)")):
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("judge perplexity")
            ax.set_title(f"models trained {factor:g}x the default steps", fontsize=9)
            ax.grid(alpha=0.3)
        right.set_xscale("log")
    legend["validation text"] = star
    fig.legend(list(legend.values()), list(legend), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle("Every sampler's settings: judge perplexity against entropy and against sampling time", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


def samplers_section(groups: dict, metrics: dict, sweeps: pd.DataFrame, reference: dict, spread: dict,
                     plot_name: str, out_dir: Path, verdicts: list | None = None) -> list[str]:
    """The section (nothing where the samplers group is not collected); writes its plot in every case."""
    group = groups.get(SAMPLERS_GROUP)
    others = [groups[name]["runs"] for name in ("training_length",) if name in groups]
    table = sampler_sweeps(sweeps, ([group["runs"]] if group else []) + others, list(metrics))
    shown = table[table["factor"].isin([1.0, table["factor"].max()])]  # the default length and the longest
    plot_samplers(shown if group else table.iloc[0:0], reference, out_dir / plot_name)
    if group is None:
        return []
    lines = ["## Does better sampling close the gap?", "",
             "Each sampler option of the `samplers` group against its model's plain sampler (ancestral unmasking for "
             "MDLM, the posterior for UDLM, plain temperature for AR), every setting judged like the main sweep. Each "
             "model's best sampler is its best setting at equal sampling time under the rule above (repetitive "
             "settings rank last). Published (OpenWebText, 4,096 steps): ReMDM's remasking raises MDLM's MAUVE from "
             "0.035 to 0.656 and lowers its judge perplexity from 50.9 to 17.6; AR with nucleus 0.9 scores 0.760 / "
             "12.1.", "", f"![samplers]({plot_name})", ""]
    if group.get("sessions"):
        lines += [f"Timing caveat: the sampler runs ran {parallelism(group['sessions'])} "
                  f"({group['sessions'][-1]['cores']} cores), the plain samplers in this pipeline on its own "
                  "threads; times from different runs are not strictly comparable, so a pick at equal time may move "
                  "by a step count where two settings' times are close.", ""]
    exact = next((n for n, m in metrics.items() if m["perplexity_kind"] == "exact"), None)
    bound = next((n for n, m in metrics.items() if m["perplexity_kind"] == "bound"), None)
    for factor, label, question in ((1.0, "at the default length", "samplers_default"),
                                    (LONGEST, f"at {LONGEST:g}x the steps", "samplers_longest")):
        # The plain samplers alone always have picks at the default length; without one sampler option bound
        # there, "best equals plain" would read as a verdict the runs never tested.
        options = table[(table["factor"] == factor) & (table["sampler"] != PLAIN)]
        if options.empty:
            lines.append(f"- {label}: no bound run yet.")
            continue
        # Likewise the gap: with no option of its two models bound (only UDLM's, say), it is plain against plain.
        gap_tested = bool(exact and bound) and options["model"].isin([exact, bound]).any()
        gap = gap_with_samplers(table, reference, factor, exact, bound, spread) if gap_tested else None
        ranking = gap["ranking"] if gap else best_samplers(table, reference, factor)
        picks = "; ".join(f"{display_name(p['model'])} {p['sampler']} ({p['steps']} steps, T={p['temperature']}: "
                          f"judge perplexity {p['judge_perplexity']:.1f}, entropy {p['entropy']:.2f}"
                          f"{', repetitive' if p['repetitive'] else ''})" for p in ranking["picks"])
        lines.append(f"- {label}, best at equal time (at most {ranking['budget_ms']:.1f} ms a sample): {picks}.")
        if exact and bound and not gap_tested:
            lines[-1] += (f" No sampler option of {display_name(bound)} or {display_name(exact)} is bound at this "
                          f"length yet, so their gap is not judged.")
        if gap:
            lines[-1] += " " + gap_sentence(gap, display_name(bound), display_name(exact))
            spread_note = f"; seed spread up to {gap['margin']['spread']:.2f}" if gap["margin"]["spread"] else ""
            add(verdicts, question, "unchanged" if gap["best"] == gap["plain"] else gap["verdict"],
                f"{display_name(bound)} − {display_name(exact)} distance to real text at equal time: plain "
                f"{gap['plain']:.2f}, best samplers {gap['best']:.2f} nats{spread_note}")
    lines += ["", "The rule: both gaps are taken at the same sampling time. Better sampling narrows (widens) the gap "
              "where the gap with each model's best sampler is smaller (larger) than with the plain samplers by more "
              "than the seed spread of the distances, and closes it where the diffusion model's best is at least as "
              "close to real text as AR's; a change no larger than the spread is within it."]
    if group["not_run"]:
        lines += ["", f"Not run yet: {', '.join(group['not_run'])} (`{group['command']} <name>`)."]
    return lines + excluded_lines(group["excluded"], group["command"]) + [""]


def gap_sentence(gap: dict, bound: str, exact: str) -> str:
    """samplers.gap_with_samplers in words that follow its numbers: which way the gap moved, and whether that
    counts against the seed spread."""
    change, spread = gap["best"] - gap["plain"], gap["margin"]["spread"]
    how = {"closed": "closed: the diffusion model's best is at least as close to real text as AR's",
           "narrowed": "narrowed, beyond the seed spread",
           "widened": "widened, beyond the seed spread",
           "within the seed spread": ("unchanged" if change == 0 else
                                      f"{'narrower' if change < 0 else 'wider'}, but within the seed spread: another "
                                      "seed could reverse it"),
           "no seed spread": "moved, with no seed spread to judge it by"}[gap["verdict"]]
    return (f"The {bound}–{exact} gap in distance to real text at equal time: {gap['plain']:.2f} nats with the plain "
            f"samplers, {gap['best']:.2f} with each one's best (a change of {change:+.2f}"
            + (f"; seed spread up to {spread:.2f}" if spread is not None else "") + f"): **{how}**.")
