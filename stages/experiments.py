"""Experiment groups (not part of `dvc repro`): runs the runs of one group of params.yaml's
`experiments` (or only those named) as DVC experiments, then collects every run's newest experiment
into eval/experiments/<group>.json for the report. `dvc repro` then updates the report.

    python stages/experiments.py                          # list the groups
    python stages/experiments.py sdd_variants             # run every run of a group, then collect
    python stages/experiments.py sdd_variants k1 shuffle  # run these, collect all
    python stages/experiments.py sdd_variants --collect-only

A run that fails is reported and the others still run; the command then exits 1.
"""
import argparse
import sys

from textdiff.cli import UsageError, run_stage
from textdiff.experiments import collect, read_groups, run_experiment


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("group", nargs="?", help="a group of params.yaml's experiments (default: list them)")
    parser.add_argument("runs", nargs="*", help="run names (default: all of the group)")
    parser.add_argument("--collect-only", action="store_true")
    args = parser.parse_args()
    groups = read_groups()
    if args.group is None:
        for name, group in groups.items():
            print(f"{name}: {len(group.runs)} runs of {' '.join(group.stages)}: {', '.join(group.runs)}")
        return
    if args.group not in groups:
        raise UsageError(f"unknown experiment group {args.group!r}; params.yaml defines {', '.join(groups)}")
    group = groups[args.group]
    unknown = sorted(set(args.runs) - set(group.runs))
    if unknown:
        raise UsageError(f"unknown run {', '.join(unknown)} of {group.name}; it has {', '.join(group.runs)}")
    failed = []
    if not args.collect_only:
        for run in args.runs or group.runs:
            print(f"--- {group.name} / {run}: {group.runs[run]}", flush=True)
            if not run_experiment(group, run):
                print(f"error: {group.name} / {run} failed (its output is above); going on with the rest", flush=True)
                failed.append(run)
    collected = collect(group)
    print(f"collected {len(collected['runs'])} of {len(group.runs)} runs into eval/experiments/{group.name}.json")
    if failed:
        print(f"error: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)
