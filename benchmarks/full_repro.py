"""Benchmark: wall time of the whole study, `dvc repro --force` (every stage runs).

Writes reports/benchmarks/full_repro.json. The report itself shows the sum of the stages'
own wall times (timings/); this adds DVC's overhead between them. The target at the CPU
default is under 30 minutes on 2 CPU cores.

    TINYSTORIES_DIR=../shared/data/tinystories python benchmarks/full_repro.py
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.io import write_json  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "full_repro.json"))
    args = parser.parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
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
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    result = {
        "wall_s": round(wall, 1),
        "stages_run": re.findall(r"Running stage '([^']+)'", "".join(output)),
        "scale": params["scale"],
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
    }
    write_json(args.out, result)
    print(f"full dvc repro: {wall / 60:.1f} min ({len(result['stages_run'])} stages)")


if __name__ == "__main__":
    main()
