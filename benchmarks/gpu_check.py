"""GPU check at the seed scale: for every model of the study, step time, peak memory and MFU, then a
short training run of each through the study's own training loop. Sized for one 10-minute call
on a lent H100 (the device tool): about 1 minute of timing and 200 training steps per model.

    python benchmarks/gpu_check.py [--steps 200] [--out reports/gpu_check.json]

Training uses data/packed/train.npy if it was packed at the seed scale (seq_len 256), else random
token rows of that shape (the timing does not depend on the data; the losses then only show that
the loop runs). MFU = achieved model FLOP/s / the chip's bf16 dense peak (see textdiff.flops).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from textdiff.data import load_rows, save_rows  # noqa: E402
from textdiff.models import model_names  # noqa: E402
from textdiff.study import parse_params  # noqa: E402
from textdiff.train import train  # noqa: E402
from train_step import interleaved_step_times, peak_memory  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default=str(REPO / "reports" / "gpu_check.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check needs a CUDA device")
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["scale"] = "seed"
    raw["train"]["device"] = "cuda"
    params = parse_params(raw)
    scale = params.scale
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "scale": dataclasses.asdict(scale),
               "model_params": {name: dataclasses.asdict(params.models[name]) for name in model_names()}, "models": {}}
    rows_path = REPO / "data" / "packed" / "train.npy"
    with tempfile.TemporaryDirectory() as tmp:
        if rows_path.exists() and load_rows(rows_path).shape[1] == scale.seq_len:
            data = "data/packed/train.npy"
        else:
            rows_path = Path(tmp) / "rows.npy"
            rng = np.random.default_rng(0)
            save_rows(rows_path, rng.integers(4, scale.vocab_size, (20000, scale.seq_len)).astype(np.uint16))
            data = "random token rows"
        for name in model_names():
            torch.cuda.reset_peak_memory_stats()
            step_s = statistics.median(interleaved_step_times([name], params, steps=20, warmup=5)[name])
            timing = {"median_step_s": round(step_s, 4), **peak_memory(name, params)}
            short = dataclasses.replace(params, scale=dataclasses.replace(scale, steps=args.steps,
                                                                          warmup_steps=min(50, args.steps // 4)))
            tic = time.perf_counter()
            summary = train(name, short, rows_path, Path(tmp) / name, Path(tmp) / "ckpt", progress=False)
            log = (Path(tmp) / name / "train_log.csv").read_text().splitlines()
            results["models"][name] = {**timing, "train_steps": args.steps, "train_wall_s": round(time.perf_counter() - tic, 1),
                                       "first_loss": float(log[1].split(",")[1]), "final_loss": summary["final_loss"],
                                       "mfu": summary.get("mfu"), "data": data}
            print(json.dumps({name: results["models"][name]}), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
