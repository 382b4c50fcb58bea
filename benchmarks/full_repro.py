"""Benchmark: wall time of the whole study, `dvc repro --force` (every stage runs).

Writes reports/benchmarks/full_repro.json. The report itself shows the sum of the stages'
own wall times (timings/); this adds DVC's overhead between them. The target at the CPU
default is under 30 minutes on 2 CPU cores.

A shared machine's speed drifts by half or more from day to day (this study's full repro took
21 to 34 minutes on the same code with identical outputs), so the wall time alone does not
say whether the code got slower. Before and after the repro, the benchmark also times the
train-step benchmark's reference step (a plain transformer at the CPU default's size, one
thread): the study's time in those reference steps is what compares across days.

    TINYSTORIES_DIR=../shared/data/tinystories python benchmarks/full_repro.py
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.io import write_json  # noqa: E402
from train_step import REFERENCE_VERSION, configured_params, interleaved_step_times  # noqa: E402

REFERENCE_STEPS = 20
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")  # what kernel choice keys on


def cpu() -> dict:
    """This machine's CPU as far as float kernels care: MKL, oneDNN and ATen pick theirs by its instruction set,
    so two CPUs can give the same code other floats (benchmarks/cross_host.py measures how far they drift)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = {key.strip(): value.strip() for key, value in
              (line.split(":", 1) for line in text.splitlines() if ":" in line)}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", platform.processor()),
            "isa_flags": [flag for flag in ISA_FLAGS if flag in flags], "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def reference_step_s() -> float:
    """The machine's speed now: the median time of the plain reference transformer's training step at the CPU
    default's size, on one thread (as benchmarks/train_step.py times it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        params = configured_params(argparse.Namespace(scale="cpu", device="cpu", d_model=None, n_layers=None,
                                                      n_heads=None, d_ff=None, batch_size=None, seq_len=None,
                                                      vocab_size=None))
        return statistics.median(interleaved_step_times(["reference"], params, REFERENCE_STEPS, 3)["reference"])
    finally:
        torch.set_num_threads(threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "full_repro.json"))
    args = parser.parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    speed_before = reference_step_s()
    tic = time.perf_counter()
    process = subprocess.Popen(["dvc", "repro", "--force"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:
        sys.stdout.write(line)
        output.append(line)
    if process.wait():
        sys.exit("dvc repro failed")
    wall = time.perf_counter() - tic
    speed_after = reference_step_s()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    result = {
        "wall_s": round(wall, 1),
        "stages_run": re.findall(r"Running stage '([^']+)'", "".join(output)),
        "scale": params["scale"],
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu(),
        # The machine's speed: the reference step (s) before and after, and the study in reference steps.
        "reference_step_s": [round(speed_before, 4), round(speed_after, 4)],
        "reference_version": REFERENCE_VERSION,
        "reference_steps": round(wall / statistics.mean((speed_before, speed_after))),
        "date": datetime.date.today().isoformat(),
    }
    # One measurement says little on a machine whose speed drifts: the earlier ones of the same stages stay,
    # so the summary can give their median and range.
    out = Path(args.out)
    if out.exists():
        last = json.loads(out.read_text())
        if last.get("stages_run") == result["stages_run"]:
            if last.get("reference_version") != REFERENCE_VERSION:  # another yardstick: its speed figures do not compare
                for key in ("reference_step_s", "reference_steps"):
                    last.pop(key, None)
            result["earlier"] = last.pop("earlier", []) + [last]
    write_json(out, result)
    print(f"full dvc repro: {wall / 60:.1f} min ({len(result['stages_run'])} stages)")


if __name__ == "__main__":
    main()
