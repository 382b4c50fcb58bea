"""Stage report: reports/report.md, reports/results.md and reports/training_loss.png from the evaluations.

`python stages/report.py --sync-readme README.md` copies the committed results and benchmark tables
into README.md's marked blocks."""
import argparse
from pathlib import Path

from textdiff.cli import run_stage
from textdiff.models import model_names
from textdiff.io import write_text
from textdiff.report import README_BLOCKS, build_report, replace_block
from textdiff.study import load_params


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="reports")
    parser.add_argument("--sync-readme", metavar="README",
                        help="only copy the committed results and benchmark tables into README's blocks")
    args = parser.parse_args()
    if args.sync_readme:
        readme = Path(args.sync_readme)
        text = readme.read_text(encoding="utf-8")
        for name, path in README_BLOCKS.items():
            text = replace_block(text, name, Path(path).read_text(encoding="utf-8"))
        write_text(readme, text)
        return
    load_params()  # every key of params.yaml checked (the report reruns on any change to it): a typo fails here
    build_report("eval", "models", "data", args.out, model_names())


if __name__ == "__main__":
    run_stage(main)
