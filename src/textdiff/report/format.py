"""Cells, words and plot styling that every part of the report shares."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..io import atomic_path
from ..models import MODELS


def display_name(name: str) -> str:
    return MODELS[name].display_name


def counted(count: int, noun: str) -> str:
    """'1 run', '3 runs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def perplexity_cell(metrics: dict) -> str:
    prefix = "≤ " if metrics["perplexity_kind"] == "bound" else ""
    error = metrics.get("perplexity_standard_error")
    return f"{prefix}{metrics['perplexity']:.2f}" + (f" ± {error:.2f}" if error is not None else "")


#: Figures whose standard error is not under <figure>_standard_error (validation.validation_metrics' names).
ERROR_KEYS = {"nll_per_token": "nll_standard_error"}


def with_error(m: dict, key: str, fmt: str) -> str:
    """A figure with its standard error over rows (or samples), where the metrics have one."""
    error = m.get(ERROR_KEYS.get(key, f"{key}_standard_error"))
    return f"{m[key]:{fmt}}" + (f" ± {error:{fmt}}" if error is not None else "")


def seeds_header(spreads: dict) -> str:
    """"3 seeds" over the seeds the spreads come from ("seeds" without seed runs)."""
    seeds = max((s["perplexity"]["seeds"] for s in spreads.values()), default=1)
    return f"{seeds} seeds" if seeds > 1 else "seeds"


def spread_cell(spread: dict | None, figure: str, fmt: str) -> str:
    """mean (min–max) over seeds, or – without seed runs."""
    s = (spread or {}).get(figure)
    if not s or s["seeds"] < 2:
        return "–"
    return f"{s['mean']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"


def gen_time(m: dict) -> str:
    """Median batch-1 time, with the fastest run (which a busy machine cannot lower) and a mark if busy."""
    if "gen_ms_min" not in m:
        return f"{m['gen_ms_per_sample']:.0f} ms{apart_mark(m)}"
    return (f"{m['gen_ms_per_sample']:.0f} ms (min {m['gen_ms_min']:.0f}){' ⚠' if m['gen_timing_busy'] else ''}"
            f"{apart_mark(m)}")


TIMED_APART = "timed_apart"  # set on a table row whose metrics come from a collected experiment run


def apart_mark(m: dict) -> str:
    """† on a time measured in another run than the table's other rows."""
    return " †" if m.get(TIMED_APART) else ""


def timed_apart_note(rows: dict[str, dict]) -> str:
    """The footnote of the † marks: where those times were measured, against the pipeline's own rows."""
    apart = {label: m for label, m in rows.items() if m.get(TIMED_APART)}
    if not apart:
        return ""
    here = next((m for m in rows.values() if not m.get(TIMED_APART)), {})
    where = "; ".join(f'"{label}" in its own experiment run (its evaluation on {_threads(m.get("gen_threads"))})'
                      for label, m in apart.items())
    return (f"\n† Timed elsewhere: {where}; the other rows by this pipeline (evaluation on "
            f"{_threads(here.get('gen_threads'))}). Times from runs on other threads, or on a machine shared with "
            "other runs, are not comparable with each other.\n")


def _threads(count: int | None) -> str:
    return "an unrecorded number of CPU threads" if count is None else counted(count, "CPU thread")


def finish_plot(fig, ax, xlabel: str, ylabel: str, title: str, path: Path, plain_ticks: bool = False) -> None:
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
    save_png(fig, path)


def save_png(fig, path: Path) -> None:
    """Lays the figure out and writes it atomically as PNG (every plot is a DVC output)."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_panels(fig, axes, ylabel: str, title: str, path: Path) -> None:
    """A row of panels sharing one y label (on the first) and one title, written as save_png does."""
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path)


KIND_SHORT = {"exact": "exact NLL", "bound": "NELBO bound", "denoising cross-entropy": "denoising CE"}


def margin_words(margin: dict, what: str, figure: str, fmt: str) -> str:
    """analysis.against_spread in words."""
    if margin["within"] is None:
        return ""
    return (f"{what} ({margin['difference']:{fmt}} {figure}) is **{'within' if margin['within'] else 'beyond'}** "
            f"the spread over training seeds of the figures behind it (up to {margin['spread']:{fmt}})"
            + (": another seed could reverse it." if margin["within"] else "."))


def sampler_note(m: dict) -> str:
    """The sampler options that differ from each model's plain sampler, e.g. ", stochastic, renoise"."""
    options = m.get("sampler") or {}
    notes = [f"T→{options['final_temperature']}" if options.get("final_temperature") is not None else "",
             "stochastic" if options.get("candidates") == "stochastic" else "",
             "renormalised" if options.get("renormalise") else "", "renoise" if options.get("renoise") else "",
             f"{options['order']} order" if options.get("order", "ancestral") != "ancestral" else "",
             f"ReMDM {options['remask']} η={options.get('remask_eta')}" if options.get("remask") else "",
             f"top-p {options['top_p']}" if options.get("top_p") is not None else "",
             f"top-k {options['top_k']}" if options.get("top_k") is not None else "",
             "greedy last step" if options.get("greedy_final") else ""]
    return "".join(f", {note}" for note in notes if note)


def overrides_text(overrides: dict) -> str:
    """`key=value` as `dvc exp run -S` takes it (true, not True)."""
    return ", ".join(f"`{key}={str(value).lower() if isinstance(value, bool) else value}`"
                     for key, value in overrides.items())


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


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def label_points(ax, points: dict[str, tuple[float, float]], fontsize: int = 6) -> None:
    """Names each point beside it, moving a label down in steps of its own height while it would overlap one
    already placed, so that close points stay readable. Call once the axes' scales and limits are final."""
    placed: list[tuple[float, float, float]] = []  # display x, y and width of each label
    height = fontsize * ax.figure.dpi / 72 * 1.6
    for name, (x, y) in sorted(points.items(), key=lambda item: (-item[1][1], item[1][0])):
        px, py = ax.transData.transform((x, y))
        width = 0.6 * fontsize * ax.figure.dpi / 72 * len(name)
        shift = 0.0
        while any(abs(py - shift - qy) < height and px < qx + qw and qx < px + width for qx, qy, qw in placed):
            shift += height
        placed.append((px, py - shift, width))
        ax.annotate(name, (x, y), fontsize=fontsize, xytext=(3, 2 - shift * 72 / ax.figure.dpi),
                    textcoords="offset points", arrowprops={"arrowstyle": "-", "color": "gray", "lw": 0.5}
                    if shift else None)
