"""How a retrain with changed (but mathematically equal) code follows the earlier run: the per-step training
losses of a model at two commits, side by side.

MDLM's loss is computed differently since issue 16 (masked positions only) but is the same function of the
same draws (tests/models/test_mdlm.py checks loss and gradients against the full-vocabulary formula). Float
rounding differs, though, and training amplifies it: this finds the step where the two loss logs first differ
by more than the tolerance, and how far apart they end. Writes reports/benchmarks/retrain_trajectory.json.

    python benchmarks/retrain_trajectory.py                        # MDLM, db4d920 against the working tree
    python benchmarks/retrain_trajectory.py --model sdd --before 640f098
"""
from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.io import write_json  # noqa: E402


def losses(text: str) -> list[float]:
    return [float(row["loss"]) for row in csv.DictReader(io.StringIO(text))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mdlm")
    parser.add_argument("--before", default="db4d920")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="nats; the log rounds losses to 1e-6")
    parser.add_argument("--out", default=str(REPO / "reports/benchmarks/retrain_trajectory.json"))
    args = parser.parse_args()
    path = f"models/{args.model}/train_log.csv"
    before = losses(subprocess.run(["git", "-C", str(REPO), "show", f"{args.before}:{path}"], check=True,
                                   capture_output=True, text=True).stdout)
    now = losses((REPO / path).read_text())
    gaps = [abs(a - b) for a, b in zip(before, now)]
    first = next((step for step, gap in enumerate(gaps, 1) if gap > args.tolerance), None)
    result = {"model": args.model, "before": args.before, "steps": len(gaps), "tolerance": args.tolerance,
              "first_step_apart": first,
              "largest_gap_before_it": max(gaps[: (first or len(gaps) + 1) - 1], default=0.0),
              "final_loss_before": before[-1], "final_loss_now": now[-1],
              "mean_loss_last_50_before": round(sum(before[-50:]) / 50, 4),
              "mean_loss_last_50_now": round(sum(now[-50:]) / 50, 4)}
    write_json(args.out, result)
    print(result)


if __name__ == "__main__":
    main()
