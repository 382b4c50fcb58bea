"""GPU check in one device call: the GPU tests, then at the seed scale for every model of the study its
step time, tokens/s, peak memory and MFU (eager and torch.compile'd), a short training run through the
study's own loop (does the loss fall?), 64-token generation at batch 1, and SDD's memory (peak at the
seed batch, and the largest batch that fits). Sized for at most 8 minutes on one H100.

    python benchmarks/gpu_check.py                        # on a CUDA device -> reports/benchmarks/gpu_check.json
    python benchmarks/gpu_check.py --cpu-micro --out X    # the same script on CPU at a micro size (its test)

Training uses random token rows of the seed scale's shape over 36 tokens: the timing does not depend on the
data, and the loss falling (towards ln 36) shows the loop and its optimizer work. MFU = achieved model FLOP/s / the chip's bf16 dense
peak (textdiff.flops); it is not defined on CPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from textdiff.data import save_rows  # noqa: E402
from textdiff.evaluate import generation_runs_ms  # noqa: E402
from textdiff.flops import peak_flops  # noqa: E402
from textdiff.io import write_json  # noqa: E402
from textdiff.models import MODELS, build_model, model_names, model_spec  # noqa: E402
from textdiff.study import parse_params  # noqa: E402
from textdiff.train import train  # noqa: E402
from train_step import Trainee  # noqa: E402

MICRO = {"vocab_size": 300, "seq_len": 16, "d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "batch_size": 4}
MEMORY_LIMIT_GB = 80  # an H100's: the largest SDD batch is searched up to what fits there


def check_params(cpu_micro: bool):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    if cpu_micro:
        raw["scales"]["cpu"].update(MICRO)
        raw["evaluate"]["sample_length"] = MICRO["seq_len"]
        raw["sample"]["mdlm"]["steps"] = raw["sample"]["sdd"]["steps"] = 4
        raw["train"]["device"] = "cpu"
    else:
        raw["scale"] = "seed"
        raw["train"]["device"] = "cuda"
    return parse_params(raw)


def gpu_tests() -> dict:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", str(REPO / "tests" / "test_gpu.py")],
                            cwd=REPO, capture_output=True, text=True)
    summary = (result.stdout.strip().splitlines() or [""])[-1]
    return {"passed": result.returncode == 0, "summary": summary, "output_tail": result.stdout[-3000:]}


def step_profile(name: str, params, device, compile: bool, steps: int, warmup: int) -> dict:
    """Median step time, tokens/s, peak memory and MFU of one model (eager or compiled)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainee = Trainee(name, params, device, compile=compile)
    times = [trainee.step_seconds() for _ in range(warmup + steps)][warmup:]
    step_s = statistics.median(times)
    s = params.scale
    peak = peak_flops(device)
    flops_per_row = trainee.model.training_flops_per_row(s.seq_len)
    flops = flops_per_row * s.batch_size / step_s
    return {"median_step_s": round(step_s, 5), "tokens_per_s": round(s.batch_size * s.seq_len / step_s, 1),
            "training_flops_per_row": flops_per_row,
            "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
            "mfu": round(flops / peak, 4) if peak else None}


def largest_batch(name: str, params, device, start: int) -> int | None:
    """The largest batch (doubling from `start`) whose training step fits in the device's memory."""
    if device.type != "cuda":
        return None
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, MEMORY_LIMIT_GB * 2**30 / total))  # an H200 acts as 80 GB
    fits, batch = None, start
    while batch <= 4096:
        scaled = dataclasses.replace(params, scale=dataclasses.replace(params.scale, batch_size=batch))
        try:
            step_profile(name, scaled, device, compile=False, steps=1, warmup=0)
            fits, batch = batch, batch * 2
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return fits


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-micro", action="store_true", help="run on CPU at a micro size (the script's own test)")
    parser.add_argument("--steps", type=int, default=200, help="training steps per model")
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "gpu_check.json"))
    args = parser.parse_args()
    if not args.cpu_micro and not torch.cuda.is_available():
        sys.exit("error: gpu_check needs a CUDA device (or --cpu-micro)")
    params = check_params(args.cpu_micro)
    device = torch.device(params.train.device)
    tic = time.perf_counter()
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "generation_tokens": params.evaluate.sample_length,
              "torch": torch.__version__, "scale": dataclasses.asdict(params.scale),
              "model_params": {name: dataclasses.asdict(params.models[name]) for name in model_names()},
              "gpu_tests": gpu_tests(), "models": {}}
    print(f"GPU tests: {result['gpu_tests']['summary']}", flush=True)
    s = params.scale
    timed = {"steps": 3, "warmup": 1} if args.cpu_micro else {"steps": 10, "warmup": 3}
    with tempfile.TemporaryDirectory() as tmp:
        rows_path = Path(tmp) / "rows.npy"
        # Random rows over 36 of the vocabulary's tokens: nothing to learn but which tokens occur, which is
        # enough for the loss to fall from ln(vocab) towards ln(36) if the loop and its optimizer work.
        save_rows(rows_path, np.random.default_rng(0).integers(4, 40, (4096, s.seq_len)).astype(np.uint16))
        for name in model_names():
            row = {"eager": step_profile(name, params, device, compile=False, **timed)}
            # torch.compile needs a C++ toolchain on CPU; the CPU run checks the script, not the compiler.
            row["compiled"] = step_profile(name, params, device, compile=True, **timed) \
                if device.type == "cuda" else None
            short = dataclasses.replace(params, scale=dataclasses.replace(
                s, steps=args.steps, warmup_steps=max(1, min(50, args.steps // 4))))
            summary = train(name, short, rows_path, Path(tmp) / name, Path(tmp) / "ckpt", progress=False)
            losses = [float(line.split(",")[1]) for line in (Path(tmp) / name / "train_log.csv").read_text().splitlines()[1:]]
            window = max(1, len(losses) // 10)
            row["training"] = {"steps": args.steps, "wall_s": summary["train_wall_s"],
                               "first_loss": round(statistics.mean(losses[:window]), 4),
                               "last_loss": round(statistics.mean(losses[-window:]), 4), "mfu": summary.get("mfu")}
            row["training"]["loss_fell"] = row["training"]["last_loss"] < row["training"]["first_loss"]
            model = build_model(model_spec(name, params)).to(device).eval()
            times = generation_runs_ms([(model, params.sample[name])], params.evaluate.sample_length, runs=3, seed=0)[0]
            row["generation_batch1_ms"] = {"median": round(statistics.median(times), 2),
                                                     "min": round(min(times), 2)}
            result["models"][name] = row
            print(name, row, flush=True)
        # The loss read back every step (a wait for the device each time) against every SYNC_EVERY steps (CUDA only;
        # on the CPU both read every step): AR's training throughput both ways.
        import textdiff.train as training
        default_interval, throughput = training.SYNC_EVERY, {}
        try:
            for interval in (1, default_interval):
                training.SYNC_EVERY = interval
                summary = train("ar", short, rows_path, Path(tmp) / f"ar-read-{interval}", Path(tmp) / "ckpt",
                                progress=False)
                throughput[f"loss_read_every_{interval}_steps"] = summary["train_tokens_per_s"]
        finally:
            training.SYNC_EVERY = default_interval
        result["loss_read_tokens_per_s"] = throughput
        print("AR tokens/s by loss-read interval:", throughput, flush=True)
    # The heaviest step by its model FLOPs, not by measured time: at the CPU micro size step times are
    # overhead and noise, and the FLOPs order (SDD's backbone over L*k positions) is the one that holds on a GPU.
    heaviest = max(model_names(), key=lambda n: result["models"][n]["eager"]["training_flops_per_row"])
    result["memory"] = {"model": heaviest, "batch": s.batch_size,
                        "peak_gb_at_batch": result["models"][heaviest]["eager"]["peak_memory_gb"],
                        "largest_batch_that_fits": largest_batch(heaviest, params, device, 2 * s.batch_size),
                        "limit_gb": MEMORY_LIMIT_GB}
    result["wall_s"] = round(time.perf_counter() - tic, 1)
    write_json(args.out, result)
    print(f"gpu_check: {result['wall_s']} s -> {args.out}")


if __name__ == "__main__":
    main()
