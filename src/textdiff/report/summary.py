"""The picture at the top of the report: "when does diffusion win?" as validation NLL against training tokens for
every model, in a panel per data regime (fresh data, and each U of repeated data), AR's best marked in each."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from ..models import MODELS
from ..reuse import Point
from .format import KIND_SHORT, display_name, save_panels
from .reuse import u_label


def regimes(fresh: dict[str, list[tuple[int, float, str]]], points: list[Point]) -> dict:
    """Panel label key (None: fresh data, else U rows) -> model -> sorted [(training tokens, NLL, kind)]: the fresh
    panel from the training-length runs' end points (and the data-reuse runs on every row), the others from the
    data-reuse runs at the default width and seed."""
    panels: dict = {None: {model: list(rows) for model, rows in fresh.items()}}
    for p in points:
        if p.width is None and p.seed is None:
            panels.setdefault(p.unique_rows, {}).setdefault(p.model, []).append((p.tokens, p.nll, p.kind))
    return {key: {model: sorted(set(rows)) for model, rows in by_model.items()}
            for key, by_model in sorted(panels.items(), key=lambda item: -(item[0] or 10**12))}


def plot_summary(panels: dict, total_rows: int, tokens_per_epoch: int, path: Path) -> None:
    """panels: regimes(); tokens_per_epoch: the training tokens of one pass over every row."""
    epochs_of_all = max((r[0] for rows in panels.get(None, {}).values() for r in rows), default=0) / tokens_per_epoch
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), dpi=110, squeeze=False, sharey=True)
    for ax, (unique_rows, by_model) in zip(axes[0], panels.items()):
        for model, rows in by_model.items():
            if not rows or rows[0][2] == "denoising cross-entropy":  # SDD's figure is no NLL: not on this axis
                continue
            color = f"C{list(MODELS).index(model)}"
            ax.plot([r[0] for r in rows], [r[1] for r in rows], marker="o", color=color,
                    label=f"{display_name(model)} ({KIND_SHORT[rows[0][2]]})")
            if rows[0][2] == "exact":
                best = min(rows, key=lambda r: r[1])
                ax.axhline(best[1], color=color, linestyle="--", linewidth=1, alpha=0.7)
                ax.annotate("AR's best", (rows[0][0], best[1]), textcoords="offset points", xytext=(0, 4), fontsize=7,
                            color=color)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap within a decade
        ax.set_title(f"every row ({total_rows:,}; the longest runs see each about {epochs_of_all:.0f} times)"
                     if unique_rows is None else f"repeated data: {u_label(unique_rows, total_rows)}", fontsize=9)
        ax.set_xlabel("training tokens")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_panels(fig, axes[0], "validation NLL per token (AR exact, diffusion ≤)",
                "When does diffusion win? Below AR's best (dashed) in some panel, it would", path)
