"""Did this workspace's run of the study reproduce the committed one? (Not a stage: run it after `make study`.)

    python stages/reproduce.py                 # against HEAD: the study as committed
    python stages/reproduce.py --against REV   # against another commit

Prints, per model, whether its weights are the committed ones bit for bit (md5 in dvc.lock) and, per headline
figure (`dvc metrics diff`), whether it is the same, within the spread over the training seeds, or beyond it.
Exits 1 where a figure moved beyond the spread."""
import argparse
import json
import subprocess
import sys

import yaml

from textdiff.cli import UsageError, run_stage
from textdiff.reproduction import moved, render, reproduction

METRICS = "reports/metrics.json"


def git_show(rev: str, path: str) -> str:
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    if shown.returncode:
        raise UsageError(f"{rev} holds no {path}: {shown.stderr.strip().splitlines()[-1]}")
    return shown.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="HEAD", help="the commit whose study this run should reproduce")
    args = parser.parse_args()
    committed_lock = yaml.safe_load(git_show(args.against, "dvc.lock"))
    spread = json.loads(git_show(args.against, "reports/seed_spread.json"))
    with open("dvc.lock", encoding="utf-8") as lock:
        rerun_lock = yaml.safe_load(lock)
    diff = subprocess.run(["dvc", "metrics", "diff", args.against, "--all", "--json", "--targets", METRICS],
                          capture_output=True, text=True)
    if diff.returncode:
        raise UsageError(f"dvc metrics diff failed: {diff.stderr.strip()}")
    result = reproduction(committed_lock, rerun_lock, json.loads(diff.stdout or "{}").get(METRICS, {}), spread)
    print(render(result, args.against), end="")
    if any(verdict == "beyond" for _, _, verdict in moved(result)):
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)
