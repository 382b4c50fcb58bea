"""Experiment groups (not part of `dvc repro`): runs the runs of one group of params.yaml's
`experiments` (or only those named) as DVC experiments, then collects every run's newest experiment
into eval/experiments/<group>.json for the report. `dvc repro` then updates the report.

    python stages/experiments.py                          # list the groups
    python stages/experiments.py sdd_variants             # run every run of a group, then collect
    python stages/experiments.py sdd_variants k1 shuffle  # run these, collect all
    python stages/experiments.py sdd_variants --collect-only
    python stages/experiments.py data_reuse --jobs 2      # through DVC's queue, 2 runs at a time

A run that fails is reported and the others still run; the command then exits 1. A rerun replaces a run's
earlier experiment only once it succeeds; Ctrl-C stops with one line and leaves the earlier one.
"""
import argparse
import os
import sys
import time

import torch

from textdiff.cli import UsageError, run_stage
from textdiff.experiments import collect, read_groups, run_experiment, run_in_queue


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("group", nargs="?", help="a group of params.yaml's experiments (default: list them)")
    parser.add_argument("runs", nargs="*", help="run names (default: all of the group)")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--jobs", type=int, default=None,
                        help="run through DVC's queue (dvc queue start --jobs N), each run on cores/N torch threads")
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
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    failed, session, runs = [], None, list(args.runs or group.runs)
    if not args.collect_only:
        tic = time.perf_counter()
        if args.jobs:
            failed = run_in_queue(group, runs, args.jobs)
            for run in failed:
                print(f"error: {group.name} / {run} failed (`dvc queue logs {group.name}-{run}` shows why)", flush=True)
        else:
            for run in runs:
                print(f"--- {group.name} / {run}: {group.runs[run]}", flush=True)
                if not run_experiment(group, run):
                    print(f"error: {group.name} / {run} failed (its output is above); going on with the rest",
                          flush=True)
                    failed.append(run)
        cores = os.cpu_count() or 1
        session = {"runs": runs, "jobs": args.jobs or 1, "cores": cores,
                   "threads_per_job": max(1, cores // args.jobs) if args.jobs else torch.get_num_threads(),
                   "wall_s": round(time.perf_counter() - tic, 1)}
    collected = collect(group, session=session)
    print(f"collected {len(collected['runs'])} of {len(group.runs)} runs into eval/experiments/{group.name}.json")
    if failed:
        print(f"error: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)
