"""Stage report: reports/report.md, reports/results.md and reports/training_loss.png from the evaluations.

`python stages/report.py --sync-readme README.md` copies the committed verdict, results, experiments and
benchmark tables into the marked blocks of README.md and of the pages in docs/ beside it."""
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
                        help="only copy the committed tables into the blocks of README and of docs/*.md beside it")
    args = parser.parse_args()
    if args.sync_readme:
        readme = Path(args.sync_readme)
        for page in [readme, *sorted((readme.parent / "docs").glob("*.md"))]:
            text = page.read_text(encoding="utf-8")
            for name, path in README_BLOCKS.items():
                if f"<!-- {name}:start -->" in text:
                    text = replace_block(text, name, Path(path).read_text(encoding="utf-8"))
            write_text(page, text)
        return
    load_params()  # every key of params.yaml checked (the report reruns on any change to it): a typo fails here
    build_report("eval", "models", "data", args.out, model_names())


if __name__ == "__main__":
    run_stage(main)
