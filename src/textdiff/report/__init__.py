"""Regenerates reports/ from what the pipeline actually produced: nothing here is typed in by hand.

build_report reads every input and writes the files; the modules render: format (cells and plot styling
shared by all), study (the main study's tables, plots and report.md), groups (the experiment groups:
seeds, learning rates, training length, and which collected runs are bound to this study), variants
(SDD's diagnostics and variants), samplers and reuse (their sections), plateau (the fair start and the recipe
screen), summary (the opening plot) and verdicts (the opening table, which every section adds its verdict to).
The verdicts themselves are computed in textdiff.analysis, textdiff.samplers and textdiff.reuse."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before any submodule imports pyplot: reports are written without a display
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from ..analysis import closest_to_real_text, headline_metrics, seed_spread  # noqa: E402
from ..errors import DataError  # noqa: E402
from ..experiments import read_groups  # noqa: E402
from ..io import read_json, write_json, write_text  # noqa: E402
from ..reuse import reuse_points  # noqa: E402
from .groups import (LENGTH_GROUP, SEEDS_GROUP, VARIANTS_GROUP, group_runs, groups_table, is_reuse_group,  # noqa: E402
                     length_runs, plot_length_samples, seed_runs, spreads_by_label, training_length_section)
from .inputs import collected_group, model_metrics, numeric_csv, reference_metrics  # noqa: E402
from .plateau import curves_by_seed, fair_start_section, recipe_lines, reuse_seed_curves  # noqa: E402
from .reuse import reuse_section, u_label  # noqa: E402
from .samplers import samplers_section  # noqa: E402
from .study import (labelled_rows, plot_learning_curves, plot_quality, plot_training_loss,  # noqa: E402
                    render_report, results_table)
from .summary import plot_summary, regimes  # noqa: E402
from .variants import plot_variants  # noqa: E402
from .verdicts import verdict_table  # noqa: E402

def build_report(eval_dir, model_dir, data_dir, out_dir, model_names, timings_dir="timings",
                 experiments_dir="eval/experiments", params_path="params.yaml") -> None:
    """Renders every file into a staging folder and moves them into out_dir only once all are written: a report
    that fails halfway (a bad input, a typo in params.yaml) leaves out_dir as it was. (dvc.yaml marks the report's
    outputs `persist`, so DVC does not remove them before the stage runs either.)"""
    out_dir = Path(out_dir)
    inside = out_dir.resolve().is_relative_to(Path.cwd().resolve())
    staging_root = Path(".cache") if inside else out_dir.parent  # .cache/ is outside git's and DVC's view
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="report-", dir=staging_root))
    try:
        _build_report(eval_dir, model_dir, data_dir, staging, model_names, timings_dir, experiments_dir,
                      params_path)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(staging.iterdir()):
            os.replace(path, out_dir / path.name)
    except KeyError as error:  # an input that parses but lacks a field it must have
        raise DataError(f"a report input lacks the field {error}; rerun the stage that writes it "
                        "(dvc repro -f <stage>)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build_report(eval_dir, model_dir, data_dir, out_dir, model_names, timings_dir, experiments_dir,
                  params_path) -> None:
    eval_dir, model_dir, data_dir, out_dir, timings_dir = map(Path, (eval_dir, model_dir, data_dir, out_dir,
                                                                      timings_dir))
    metrics = {name: model_metrics(eval_dir / name / "metrics.json", name) for name in model_names}
    samples = {name: read_json(eval_dir / name / "samples.json") for name in model_names}
    logs = {name: numeric_csv(model_dir / name / "train_log.csv") for name in model_names}
    manifest = read_json(data_dir / "prepared" / "manifest.json")
    pack_stats = read_json(data_dir / "packed" / "stats.json")
    reference = reference_metrics(eval_dir / "reference" / "metrics.json")
    sweeps = pd.concat([numeric_csv(eval_dir / name / "sweep.csv") for name in model_names], ignore_index=True)
    stages = ["prepare", "tokenizer", "pack", *(f"train@{n}" for n in model_names), "judge",
              *(f"evaluate@{n}" for n in model_names)]
    timings = {stage: read_json(timings_dir / f"{stage}.json")["wall_s"] for stage in stages}
    raw_params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))  # read once for every group
    defined = read_groups(params_path)
    # Every collected group: those params.yaml defines, in its order, then any it no longer defines.
    names = [*defined, *sorted(p.stem for p in Path(experiments_dir).glob("*.json") if p.stem not in defined)]
    collected = {name: collected_group(path) for name in names
                 if (path := Path(experiments_dir) / f"{name}.json").exists()}
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
    curves = {name: numeric_csv(model_dir / name / "learning_curve.csv").to_dict("records") for name in model_names}
    runs_by_length = length_runs(metrics, curves, groups.get(LENGTH_GROUP))
    plot_learning_curves({name: model_runs[:1] for name, model_runs in runs_by_length.items()},
                         out_dir / "learning_curves.png")
    plot_learning_curves(runs_by_length, out_dir / "training_length_nll.png",
                         "Validation NLL against training tokens, every training length")
    plot_length_samples(runs_by_length, reference, out_dir / "training_length_samples.png")
    plot_quality(sweeps, reference, out_dir / "judge_perplexity_vs_entropy.png", out_dir / "quality_vs_time.png")
    write_text(out_dir / "results.md", table)
    write_json(out_dir / "metrics.json", headline_metrics(metrics, reference))
    write_json(out_dir / "seed_spread.json", spread)  # the yardstick of a rerun's reproduction verdict
    verdicts: list[dict] = []  # each section adds the verdict it decides (report.verdicts)
    kinds = {name: m["perplexity_kind"] for name, m in metrics.items()}
    reuse_at, reuse_curves = reuse_seed_curves(groups, raw_params["seed"])
    default_curves = curves_by_seed(curves, metrics, groups.get(SEEDS_GROUP), raw_params["seed"])
    listed = {name: list(group.runs) for name, group in defined.items()}
    plateau_lines = fair_start_section(
        default_curves, reuse_curves, pack_stats["unigram_valid_perplexity"],
        f"{u_label(reuse_at[0], pack_stats['train_rows'])} for {reuse_at[1]:g} epochs" if reuse_at else "",
        kinds, verdicts) + recipe_lines(groups, default_curves, pack_stats["unigram_valid_perplexity"], kinds,
                                        "recipe.png", out_dir, listed, verdicts, raw_params["seed"],
                                        {name: group.common for name, group in defined.items()})
    length_lines = training_length_section(runs_by_length, by_seed, groups.get(LENGTH_GROUP), reference,
                                           "training_length_nll.png", "training_length_samples.png", verdicts)
    sampler_lines = samplers_section(groups, metrics, sweeps, reference, spread, "samplers.png", out_dir, verdicts)
    reuse_lines = reuse_section(groups, reference, pack_stats["train_rows"], "data_reuse.png", out_dir,
                                listed, verdicts)
    fresh = {name: [(m["train_tokens"], m["nll_per_token"], m["perplexity_kind"]) for _, _, m in model_runs]
             for name, model_runs in runs_by_length.items()}
    reuse_runs = {f"{name}/{run_name}": run for name, g in groups.items() if is_reuse_group(name)
                  for run_name, run in g["runs"].items()}
    plot_summary(regimes(fresh, reuse_points(reuse_runs)), pack_stats["train_rows"],
                 pack_stats["train_rows"] * pack_stats["seq_len"], out_dir / "summary.png")
    write_text(out_dir / "report.md", render_report(metrics, samples, manifest, pack_stats, table,
                                                    "training_loss.png", reference, sweeps, timings, group,
                                                    spread, groups, by_seed, base_lr,
                                                    plateau_lines + length_lines + sampler_lines + reuse_lines,
                                                    verdicts, "summary.png"))
    write_text(out_dir / "verdicts.md", verdict_table(verdicts, "reports/report.md"))  # README's findings table


README_BLOCKS = {"verdicts": "reports/verdicts.md", "results": "reports/results.md",
                 "benchmarks": "reports/benchmarks/summary.md", "experiments": "reports/experiments.md"}


def replace_block(readme: str, name: str, content: str) -> str:
    """README text with the block between <!-- name:start --> and <!-- name:end --> replaced by content."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}{end}{tail}"


def readme_block(readme: str, name: str) -> str:
    return readme.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
