"""Stage report: reports/report.md, reports/results.md and reports/training_loss.png from the evaluations.

`python stages/report.py --sync-readme README.md` copies the committed results table into README.md."""
import argparse
from pathlib import Path

from textdiff.cli import run_stage
from textdiff.models import MODEL_NAMES
from textdiff.io import write_text
from textdiff.report import build_report, readme_with_results


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="reports")
    parser.add_argument("--sync-readme", metavar="README", help="only copy reports/results.md into README's results block")
    args = parser.parse_args()
    if args.sync_readme:
        table = Path(args.out, "results.md").read_text(encoding="utf-8")
        readme = Path(args.sync_readme)
        write_text(readme, readme_with_results(readme.read_text(encoding="utf-8"), table))
        return
    build_report("eval", "models", "data", args.out, MODEL_NAMES)


if __name__ == "__main__":
    run_stage(main)
