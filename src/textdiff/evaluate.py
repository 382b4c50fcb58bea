"""Scores one trained model: validation NLL/perplexity (with its kind), accuracy (with its
definition), cost, generation time at batch 1, the quality of its samples under the
fixed judge at every sampling setting of the sweep, and a file of samples."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from .checkpoints import load_trained
from .data import load_rows, uniform_rows
from .io import read_json, write_json, write_text
from .sample_quality import sample_quality
from .tokenizer import decode
from .validation import validation_metrics

DIAGNOSTIC_ROWS = 128  # validation rows (a uniform sample) for a model's diagnostics (SDD's: 3 passes per t bucket)


def timed_generation(model, batch_size: int, length: int, seed: int, sampling: dict):
    """(tokens, milliseconds) of one generate() call, waiting for the device on both sides."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    tic = time.perf_counter()
    tokens = model.generate(batch_size, length, generator, **sampling)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return tokens, (time.perf_counter() - tic) * 1000


def generation_runs_ms(cases: list, length: int, runs: int, seed: int) -> list[list[float]]:
    """Wall times of `runs` batch-1 samples of `length` tokens for each (model, sampling) case. The cases
    take turns within every run, so a machine whose speed drifts slows them alike; an untimed warm-up
    run comes first."""
    times = [[] for _ in cases]
    for run in range(runs + 1):
        for case_times, (model, sampling) in zip(times, cases):
            case_times.append(timed_generation(model, 1, length, seed + run, sampling)[1])
    return [t[1:] for t in times]


def generation_time_ms(cases: list, length: int, runs: int, seed: int) -> list[float]:
    """The median of generation_runs_ms for each case."""
    return [statistics.median(t) for t in generation_runs_ms(cases, length, runs, seed)]


# A batch-1 timing whose median is this many times its fastest run was measured on a busy machine:
# on a quiet one the runs of a sample differ by a few percent.
TIMING_SPREAD_LIMIT = 1.5


def timing_metrics(times_ms: list[float]) -> dict:
    """The batch-1 generation metrics of one model's timed runs: the median, the minimum (which another
    process on the machine can only raise, so it resists interference), the thread count, and whether the
    spread says the machine was busy."""
    median, fastest = statistics.median(times_ms), min(times_ms)
    return {
        "gen_ms_per_sample": round(median, 2),
        "gen_ms_min": round(fastest, 2),
        "gen_timing_runs": len(times_ms),
        "gen_threads": torch.get_num_threads(),
        "gen_timing_busy": median > TIMING_SPREAD_LIMIT * fastest,
    }


def sweep_settings(default: dict, steps: tuple, temperatures: tuple) -> list[dict]:
    """The default setting first, then each temperature (at default steps) and, for the diffusion
    models, each step count (at the default temperature); no setting twice."""
    settings = [dict(default)] + [{**default, "temperature": t} for t in temperatures]
    if "steps" in default:
        settings += [{**default, "steps": n} for n in steps]
    unique = []
    for setting in settings:
        if setting not in unique:
            unique.append(setting)
    return unique


def judged_generation(model, judge, setting: dict, num_samples: int, length: int, seed: int):
    """(tokens, row): num_samples samples from a fixed seed, their quality and the wall time per sample."""
    tokens, ms = timed_generation(model, num_samples, length, seed, setting)
    row = {"steps": setting.get("steps", length), "temperature": setting["temperature"],
           "ms_per_sample": round(ms / num_samples, 3), **sample_quality(tokens, judge)}
    return tokens, row


def sample_metrics(row: dict) -> dict:
    """The default setting's sweep row as metrics: the quality of its samples, and batched time per sample."""
    return {
        "sample_ms_per_sample": row["ms_per_sample"],
        "sample_judge_perplexity": row["judge_perplexity"],
        "sample_judge_perplexity_standard_error": row["judge_perplexity_standard_error"],
        "sample_entropy": row["entropy"],
        "sample_entropy_standard_error": row["entropy_standard_error"],
        "sample_distinct_1": row["distinct_1"],
        "sample_distinct_2": row["distinct_2"],
        "sample_distinct_3": row["distinct_3"],
        "sample_repeat_4gram_rate": row["repeat_4gram_rate"],
    }


def evaluate(model_dir, valid_rows_path, tokenizer, params, model_name: str, judge_dir,
             device="cpu") -> tuple[dict, dict, list[dict]]:
    """(metrics, samples, sweep rows) for the model trained into model_dir."""
    model, config = load_trained(model_dir, device)
    judge, _ = load_trained(judge_dir, device)
    summary = read_json(Path(model_dir) / "train_summary.json")
    ev, sampling = params.evaluate, params.sample[model_name]
    all_rows = load_rows(valid_rows_path)
    rows = torch.from_numpy(uniform_rows(all_rows, ev.max_valid_rows).astype("int64")).to(device)
    generator = torch.Generator(device=device).manual_seed(params.seed)
    metrics = {"model": model_name, "model_spec": config["spec"],
               **validation_metrics(model, rows, ev.batch_size, generator, **params.validation[model_name]),
               "valid_rows_in_split": len(all_rows)}
    metrics.update(
        parameters=summary["parameters"],
        train_steps=summary["steps"],
        train_tokens=summary["tokens_seen"],
        train_epochs=summary["epochs"],
        train_lr=summary["lr"],
        train_wall_s=summary["train_wall_s"],
        train_tokens_per_s=summary["train_tokens_per_s"],
        **timing_metrics(generation_runs_ms([(model, sampling)], ev.sample_length, ev.timing_runs, params.seed)[0]),
        gen_tokens=ev.sample_length,
        gen_steps=sampling.get("steps", ev.sample_length),  # AR takes one network call per token
        gen_temperature=sampling["temperature"],
        sampler={key: value for key, value in sampling.items() if key not in ("steps", "temperature")},
        device=str(device),
    )
    diagnostics = model.diagnostics(uniform_rows(rows, DIAGNOSTIC_ROWS), generator, ev.batch_size, sampling,
                                    ev.sample_length)
    if diagnostics is not None:
        metrics["diagnostics"] = diagnostics
    sweep, default_tokens = [], None
    settings = sweep_settings(sampling, ev.sweep_steps, ev.sweep_temperatures) if params.sweep[
        model_name] else [sampling]
    for setting in tqdm(settings, desc=f"sample sweep {model_name}", leave=False, dynamic_ncols=True):
        tokens, row = judged_generation(model, judge, setting, ev.num_samples, ev.sample_length, params.seed)
        sweep.append({"model": model_name, **row})
        if default_tokens is None:  # the first setting is the default one
            default_tokens = tokens
            metrics.update(sample_metrics(row), sample_count=ev.num_samples)
    samples = {"model": model_name, "sampling": sampling, "length": ev.sample_length, "seed": params.seed,
               "samples": [decode(tokenizer, row.tolist()) for row in default_tokens.cpu()]}
    return metrics, samples, sweep


def write_outputs(out_dir, metrics: dict, samples: dict, sweep: list[dict]) -> None:
    write_json(Path(out_dir) / "samples.json", samples)
    write_text(Path(out_dir) / "sweep.csv", pd.DataFrame(sweep).to_csv(index=False))
    write_json(Path(out_dir) / "metrics.json", metrics)  # last: its presence means the evaluation finished
