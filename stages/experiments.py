"""Experiment groups (not part of `dvc repro`): runs the runs of groups of params.yaml's `experiments`
(all of a group's, or only those named after it) as DVC experiments, then collects every run's newest
experiment into eval/experiments/<group>.json for the report. `dvc repro` then updates the report.

    python stages/experiments.py                          # list the groups
    python stages/experiments.py sdd_variants             # run every run of a group, then collect
    python stages/experiments.py sdd_variants k1 shuffle  # run these, collect all
    python stages/experiments.py sdd_variants --collect-only
    python stages/experiments.py data_reuse --jobs 2      # through DVC's queue, 2 runs at a time
    python stages/experiments.py learning_rates training_length ar-x4 mdlm-x4 --jobs 2
                                                          # runs of several groups in one queue, in this order
    python stages/experiments.py training_length ar-x16 samplers ar-x16-top-p --jobs 2
                                                          # a run after the run it starts from: two queues

A run that fails is reported and the others still run; the command then exits 1. A rerun replaces a run's
earlier experiment only once it succeeds. Ctrl-C stops with one line that says what it left: run by run, the
run stops and keeps its earlier experiment; in the queue (--jobs), the runs still waiting are removed and those
running go on to their end in DVC's workers, to be collected with --collect-only once `dvc queue status` shows
them done. Nothing is collected after Ctrl-C.
"""
import argparse
import os
import sys
import time

import torch

from textdiff.cli import UsageError, run_stage
from textdiff.experiments import (QueueInterrupted, collect, experiment_name, keep_source, read_groups,
                                  run_experiment, run_in_waves)


def selected_runs(names: list[str], groups: dict) -> dict[str, list[str]]:
    """Group -> its runs to run, in order, from arguments that are each a group's name or a run of the group
    named before it (a group named with no runs after it: all of its runs)."""
    selection: dict[str, list[str]] = {}
    for name in names:
        if name in groups:
            selection.setdefault(name, [])
        elif not selection:
            raise UsageError(f"unknown experiment group {name!r}; params.yaml defines {', '.join(groups)}")
        else:
            group = groups[list(selection)[-1]]
            if name not in group.runs:
                raise UsageError(f"unknown run {name} of {group.name}; it has {', '.join(group.runs)}")
            selection[group.name].append(name)
    return {name: runs or list(groups[name].runs) for name, runs in selection.items()}


def interrupted_line(selection: dict[str, list[str]], error: KeyboardInterrupt) -> str:
    """The one line Ctrl-C leaves: what stopped, what goes on, and how to collect it."""
    if not isinstance(error, QueueInterrupted):
        return ("interrupted: the run stopped and keeps its earlier experiment; nothing was collected "
                "(the finished runs of this call: `python stages/experiments.py <group> --collect-only`)")
    line = "interrupted: nothing was collected"
    if error.removed:
        line += f"; {len(error.removed)} queued run(s) taken out of the queue ({', '.join(error.removed)})"
    if error.going_on:
        line += (f"; {len(error.going_on)} run(s) go on in DVC's workers to their end ({', '.join(error.going_on)}): "
                 f"once `dvc queue status` shows them done, python stages/experiments.py {' '.join(selection)} "
                 "--collect-only")
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="group [run ...]",
                        help="a group of params.yaml's experiments, then any of its runs (default: all of them); "
                             "more groups may follow (no group: list them)")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--jobs", type=int, default=None,
                        help="run through DVC's queue (dvc queue start --jobs N), each run on cores/N torch threads; "
                             "the runs of every group named share the queue")
    args = parser.parse_args()
    groups = read_groups()
    if not args.names:
        for name, group in groups.items():
            print(f"{name}: {len(group.runs)} runs of {' '.join(group.stages)}: {', '.join(group.runs)}")
        return
    selection = selected_runs(args.names, groups)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    failed, skipped, wall_s, shared = [], [], {}, []  # wall_s: group -> its session's wall time; shared: one queue's
    try:
        if not args.collect_only and args.jobs:
            tic = time.perf_counter()
            pairs = [(groups[name], run) for name, runs in selection.items() for run in runs]
            failing, removed = run_in_waves(pairs, args.jobs)
            for group, run in failing:
                print(f"error: {group.name} / {run} failed (`dvc queue logs {group.name}-{run}` shows why)", flush=True)
                failed.append(f"{group.name} / {run}")
            skipped = [f"{group.name} / {run}" for group, run in removed]
            if skipped:
                print(f"not run (taken out of the queue before they ran, or their source did not run): "
                      f"{', '.join(skipped)}", flush=True)
            wall_s, shared = dict.fromkeys(selection, round(time.perf_counter() - tic, 1)), list(selection)
        elif not args.collect_only:
            for name, runs in selection.items():
                tic = time.perf_counter()
                for run in runs:
                    print(f"--- {name} / {run}: {groups[name].runs[run]}", flush=True)
                    if not run_experiment(groups[name], run):
                        print(f"error: {name} / {run} failed (its output is above); going on with the rest",
                              flush=True)
                        failed.append(f"{name} / {run}")
                wall_s[name] = round(time.perf_counter() - tic, 1)
    except KeyboardInterrupt as error:  # one line of our own: run_stage's would say "its outputs are unchanged"
        print(interrupted_line(selection, error), file=sys.stderr)
        sys.exit(130)
    cores = os.cpu_count() or 1
    sources = {source for group in groups.values() for source in group.start_from.values()}  # "<group>/<run>"
    jobs = min(args.jobs, sum(map(len, selection.values()))) if args.jobs else None  # as run_in_queue caps it
    for name, runs in selection.items():
        made = [run for run in runs if f"{name} / {run}" not in failed + skipped]  # a failed run's earlier one stays
        session = None if args.collect_only else {
            "runs": made, "jobs": jobs or 1, "cores": cores,
            "threads_per_job": max(1, cores // jobs) if jobs else torch.get_num_threads(),
            "wall_s": wall_s[name], "queued_with": [other for other in shared if other != name]}
        collected = collect(groups[name], session=session)
        print(f"collected {len(collected['runs'])} of {len(groups[name].runs)} runs into eval/experiments/{name}.json")
        for run in groups[name].runs:  # what other runs start from, kept for clones that never ran it
            if f"{name}/{run}" in sources and keep_source(experiment_name(groups[name], run), groups[name].stages):
                print(f"kept {name} / {run} in artifacts/ for other clones to start from (commit artifacts/)")
    if failed:
        print(f"error: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)
