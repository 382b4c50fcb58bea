"""The report's "Does diffusion win when data repeats?" section, from the data_reuse groups (textdiff.reuse decides)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from ..analysis import degenerate, distance_to_real_text
from ..experiments import COMMAND
from ..io import atomic_path
from ..models import MODELS
from ..reuse import (PUBLISHED_HALF_LIFE, best_epochs, crossover, diffusion_wins, half_life, repetition_cost,
                     reuse_points, seed_nll_spread, series)
from .format import KIND_SHORT, counted, display_name, excluded_lines, save_panels
from .groups import is_reuse_group
from .verdicts import add


def u_label(unique_rows: int | None, total_rows: int, width: int | None = None) -> str:
    share = "all rows" if unique_rows is None else f"U = {unique_rows:,} rows (1/{round(total_rows / unique_rows)})"
    return share + (f", d_model {width}" if width else "")


def plot_reuse(lines: dict[tuple, list], total_rows: int, path: Path) -> None:
    """Validation NLL against epochs, a panel per (U, width): each model's end points (its best marked), and the
    longest run's learning curve in epochs of its U, faint."""
    panels = sorted({(u, w) for _, u, w in lines if u is not None}, key=lambda k: (k[1] or 0, -(k[0] or 0)))
    if not panels:  # the file is a DVC output of the report stage: say there is nothing yet
        fig, ax = plt.subplots(figsize=(6, 2), dpi=110)
        ax.axis("off")
        ax.text(0.5, 0.5, "no data_reuse run is bound to this study yet\n(python stages/experiments.py data_reuse "
                "--jobs 2)", ha="center", va="center")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 4.2), dpi=110, squeeze=False)
    for ax, (unique_rows, width) in zip(axes[0], panels):
        for (model, u, w), line in lines.items():
            if (u, w) != (unique_rows, width):
                continue
            epochs, nll = [p.epochs for p in line], [p.nll for p in line]
            color = f"C{list(MODELS).index(model)}"  # a model keeps its colour in every panel
            ax.plot(epochs, nll, marker="o", color=color, label=f"{display_name(model)} ({KIND_SHORT[line[0].kind]})")
            best = min(line, key=lambda p: p.nll)
            ax.scatter([best.epochs], [best.nll], s=120, facecolors="none", edgecolors=color)
            curve = line[-1].curve
            if curve:
                per_epoch = line[-1].epochs / line[-1].tokens
                ax.plot([c["tokens"] * per_epoch for c in curve], [c["valid_nll"] for c in curve],
                        color=color, alpha=0.3, linewidth=1)
        ax.set_xscale("log")
        # Ticks at the epoch counts run, labelled plainly (log minor labels overlap within a decade).
        run_epochs = sorted({1.0} | {p.epochs for (_, u, w), line in lines.items() if (u, w) == (unique_rows, width)
                                     for p in line})
        ax.xaxis.set_major_locator(FixedLocator(run_epochs))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(u_label(unique_rows, total_rows, width), fontsize=9)
        ax.set_xlabel("epochs of its U")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_panels(fig, axes[0], "validation NLL per token (AR exact, diffusion ≤)",
                "Validation NLL against epochs (circles: each model's best; faint: learning curves)", path)


def reuse_section(groups: dict[str, dict], reference: dict, total_rows: int, plot_name: str, out_dir: Path,
                  listed: dict[str, list[str]] | None = None, verdicts: list | None = None) -> list[str]:
    """The section (nothing where no data_reuse group is collected); writes its plot in every case. listed: the
    runs of each group params.yaml defines, so that a data-reuse group nobody has run yet counts as runs to come."""
    reuse_groups = {name: group for name, group in groups.items() if is_reuse_group(name)}
    if reuse_groups:
        for name, runs in (listed or {}).items():
            if is_reuse_group(name) and name not in reuse_groups:
                reuse_groups[name] = {"runs": {}, "excluded": {}, "not_run": list(runs), "command": f"{COMMAND} {name}"}
    if not reuse_groups:
        plot_reuse({}, total_rows, out_dir / plot_name)
        return []
    present = list(reuse_groups.values())
    runs = {f"{group_name}/{name}": run for group_name, group in reuse_groups.items()
            for name, run in group["runs"].items()}
    lines = ["## Does diffusion win when data repeats?", "",
             "Each model trained on a seeded subset of U of the packed training rows (the same rows for every model "
             "and run) for E epochs, each a full warmup-and-cosine schedule of its own, with the study's tokenizer, "
             "validation rows and judge. Published (Prabhudesai et al. 2025, 25M-100M unique tokens): repeated data "
             "is worth about as much as fresh for about 4 epochs for AR and about 100 for masked diffusion; "
             "diffusion's best validation loss beats AR's at 100M unique tokens (3.55 at 500 epochs against 3.71 at "
             "50).", ""]
    points = reuse_points(runs)
    if not points:
        plot_reuse({}, total_rows, out_dir / plot_name)
        lines.append("No run of these groups is bound to this study yet: "
                     + "; ".join(f"`{g['command']}`" for g in present) + ".")
    else:
        pending = sum(len(group["not_run"]) for group in present)
        lines += _section_body(points, reference, total_rows, plot_name, out_dir, pending, verdicts)
    for group in present:
        if group["not_run"]:
            lines += ["", f"Not run yet ({group['command']} <name>): {', '.join(group['not_run'])}."]
        lines += excluded_lines(group["excluded"], group["command"])
    return lines + [""]


def _section_body(points, reference, total_rows, plot_name, out_dir, pending: int = 0,
                  verdicts: list | None = None) -> list[str]:
    lines = series(points)
    plot_reuse(lines, total_rows, out_dir / plot_name)
    body = [f"![validation NLL against epochs]({plot_name})", "",
            "| model | U | runs | validation NLL at each epoch count (kind) | best epochs | NLL rises from "
            "| curve's lowest | judge PPL at best | entropy at best | distance at best |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for (model, unique_rows, width), line in lines.items():
        b = best_epochs(line)
        m = b["best"].metrics
        cells = ", ".join(f"{p.epochs:g}: {p.nll:.3f}" for p in line)
        lowest = f"{b['curve_lowest_epochs']:.1f} epochs" if b["curve_lowest_epochs"] is not None else "–"
        rises = f"{b['rises_from']:g} epochs" if b["rises_from"] is not None else "no rise"
        body.append(f"| {display_name(model)} | {u_label(unique_rows, total_rows, width)} | {len(line)} "
                    f"| {cells} ({KIND_SHORT[line[0].kind]}) | {b['best'].epochs:g} "
                    f"| {rises} | {lowest} "
                    f"| {m['sample_judge_perplexity']:.1f} | {m['sample_entropy']:.2f}"
                    f"{' (repetitive)' if degenerate(m, reference) else ''} | {distance_to_real_text(m, reference):.2f} |")
    cost = repetition_cost(points)
    if cost:
        body += ["", "At equal training tokens, validation NLL on repeated data minus that on fresh data (every row "
                 "once): " + "; ".join(f"{display_name(model)} " + ", ".join(f"{e:g} epochs {c:+.3f}"
                                                                           for e, c in sorted(by_e.items()))
                                       for model, by_e in cost.items()) + " nats per token (above 0: repetition cost it)."]
    crossings = {(u, w): crossover(points, u, w) for u, w in
                 sorted({(p.unique_rows, p.width) for p in points if p.unique_rows}, key=lambda k: (k[1] or 0, k[0]))}
    body += ["", "Crossover (the fewest training tokens at which a diffusion model's bound falls below AR's best "
             "exact NLL at the same U and width; a bound below an exact figure decides it):"]
    # A U (and width) says something only where AR's exact figure has a bound model's beside it.
    decidable = {key: c for key, c in crossings.items() if c["exact_best"] and c["models"]}
    if not decidable:
        body.append("- none yet: no U has AR's exact figure and a bound model's beside it.")
    for (u, width), c in decidable.items():
        cells = []
        for model, v in c["models"].items():
            cells.append(f"{display_name(model)} at {v['reached'].epochs:g} epochs ({v['reached'].tokens:,} tokens)"
                         if v["reached"] else f"{display_name(model)} not reached within {v['max_epochs']:g} epochs")
        body.append(f"- {u_label(u, total_rows, width)}: AR's best {c['exact_best'].nll:.3f} at "
                    f"{c['exact_best'].epochs:g} epochs; " + "; ".join(cells) + ".")
    body += ["", "Data-reuse half-life R* (epochs), fitted per model to L = c + B·D'^-β with D' = U + U·R*·(1 − "
             "e^(−(E−1)/R*)) over its points before its NLL rises (published: AR about "
             f"{PUBLISHED_HALF_LIFE['exact']}, diffusion about {PUBLISHED_HALF_LIFE['bound']}):"]
    for model in sorted({p.model for p in points}):
        own = [p for p in points if p.model == model and p.width is None and p.seed is None]
        h = half_life(own, total_rows)
        if h["r_star"] is None:
            text = f"not identifiable ({counted(h['points'], 'point')} before any rise; at least 6 needed)"
        elif not h["identifiable"]:
            side = (f"≥ {h['low']:.0f}" if h["high_open"] and not h["low_open"] else
                    f"≤ {h['high']:.0f}" if h["low_open"] and not h["high_open"] else "anywhere from 1 to 10,000")
            text = f"not identifiable: R* {side} epochs fits within the bound ({h['points']} points)"
        else:
            text = f"{h['r_star']:.0f} epochs ({h['low']:.0f}–{h['high']:.0f}; {h['points']} points)"
        body.append(f"- {display_name(model)}: {text}.")
    spread = seed_nll_spread(points)
    if spread:
        seeded = sorted({(p.unique_rows, p.epochs, p.width) for p in points if p.seed is not None},
                        key=lambda k: (k[2] or 0, k[0] or 0, k[1]))
        where = ", ".join(f"{u_label(u, total_rows, width)} at {e:g} epochs" for u, e, width in seeded)
        ranges = "; ".join(f"{display_name(model)} {s['min']:.3f} to {s['max']:.3f} ({s['max'] - s['min']:.3f} "
                           f"nats over {s['seeds']} seeds)" for model, s in sorted(spread.items()))
        body += ["", f"Spread of validation NLL over training seeds ({where}; the same rows, other initial weights "
                 f"and draws): {ranges}."]
    verdict = diffusion_wins({u: c for (u, width), c in crossings.items() if width is None}, spread)
    # While runs are missing, an answer holds only for the epochs and U run so far: say so beside it.
    so_far = f" so far ({counted(pending, 'run')} of these groups not run yet)" if pending and verdict["per_unique_rows"] else ""
    gaps = [(v["best"].nll - c["exact_best"].nll, u, model, v["best"], c["exact_best"])
            for (u, width), c in decidable.items() if width is None for model, v in c["models"].items()]
    if gaps:
        gap, u, model, best, ar_best = min(gaps, key=lambda g: g[0])
        widest = max((s["max"] - s["min"] for s in spread.values()), default=None) if spread else None
        add(verdicts, "reuse", f"{verdict['answer']}{so_far}",
            f"closest: {display_name(model)} at {u_label(u, total_rows)}, {best.epochs:g} epochs, ≤ {best.nll:.3f} "
            f"against AR's best {ar_best.nll:.3f} ({ar_best.epochs:g} epochs): {gap:+.3f} nats"
            + (f"; seed spread up to {widest:.3f}" if widest is not None else ""))
    body += ["", f"**Does diffusion win when data repeats? {verdict['answer']}{so_far}.** The rule: at some U, a diffusion "
             "model's best bound is below AR's best exact NLL by more than the spread over training seeds of the two "
             "figures (the seed runs at U/16, 64 epochs)."]
    return body
