"""Benchmark: pipeline overhead, the wall time of a no-change `dvc repro` (median of --runs).

Run from the repository root after a complete `dvc repro`; it fails if anything would rerun.

    python benchmarks/pipeline.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.io import write_json  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "pipeline.json"))
    args = parser.parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    times = []
    for _ in range(args.runs):
        tic = time.perf_counter()
        result = subprocess.run(["dvc", "repro"], cwd=REPO, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - tic)
        if result.returncode or "Running stage" in result.stdout:
            sys.exit(f"dvc repro was not a no-op:\n{result.stdout}{result.stderr}")
    report = {"no_change_repro_s": {"median": round(statistics.median(times), 3),
                                    "runs": [round(t, 3) for t in times]}}
    print(f"no-change dvc repro: median {report['no_change_repro_s']['median']:.2f} s over {args.runs} runs")
    write_json(args.out, report)


if __name__ == "__main__":
    main()
