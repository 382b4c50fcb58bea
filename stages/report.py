"""Stage report: reports/report.md, reports/results.md and reports/training_loss.png from the evaluations."""
import argparse

from textdiff.cli import run_stage
from textdiff.models import MODEL_NAMES
from textdiff.report import build_report


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="reports")
    args = parser.parse_args()
    build_report("eval", "models", "data", args.out, MODEL_NAMES)


if __name__ == "__main__":
    run_stage(main)
