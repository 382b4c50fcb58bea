"""Running many runs through DVC's own queue (`dvc queue start --jobs N`), and what Ctrl-C there means."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time

from ..errors import ParamError
from .groups import Group, experiment_name, queue_command, source_name
from .runner import experiment_env, newest_experiment, run_dvc, seeded_workspace, set_aside, settle, source_experiment


class QueueInterrupted(KeyboardInterrupt):
    """Ctrl-C while the queue ran: the runs still running go on in DVC's detached workers (`going_on`), which
    finish them and then stop; the runs still waiting were taken out of the queue (`removed`)."""

    def __init__(self, going_on: list[str], removed: list[str]):
        super().__init__()
        self.going_on, self.removed = going_on, removed


def run_in_queue(selection: list[tuple[Group, str]], jobs: int, cwd=".",
                 poll_s: float = 10.0) -> tuple[list[tuple[Group, str]], list[tuple[Group, str]]]:
    """Runs the (group, run) pairs through DVC's own queue, in their order, `jobs` at a time (`dvc queue start
    --jobs`; never more than there are runs), each on cores // jobs torch threads; returns the pairs that failed and
    those that did not run.
    Runs of several groups share one queue, so no core waits for a group's last run while another group's runs
    wait. As with run_experiment, an earlier experiment is removed only where its rerun succeeded. A run taken out of
    the queue before it ran (`dvc queue remove`) did not run; it did not fail.

    Ctrl-C raises QueueInterrupted: the runs waiting in the queue are removed; those running go on to their end in
    DVC's workers (a worker runs its run in a process of its own, which the runner does not own), and each keeps
    its earlier experiment under <name>-previous, so whatever collect names stays held by a ref and whatever
    finishes can be collected (`--collect-only`)."""
    names = {experiment_name(group, run): (group, run) for group, run in selection}
    jobs = min(jobs, len(names))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    for group, run in selection:  # a queued run is set up when queued, before any run of its queue has run
        if source_name(group, run) in names:
            raise ParamError(f"{group.name} / {run} starts from {group.start_from[run]}, which is in the same queue: "
                             "queue it after its source has run")
    busy = {name: state for name, state in read_queue_states(cwd).items()
            if name in names and state in ("Queued", "Running")}
    if busy:  # queued twice, its earlier experiment would be set aside twice and the first rerun's lost
        raise ParamError(f"{', '.join(sorted(busy))} already queued or running (dvc queue status): wait for it to end, "
                         "or take it out with `dvc queue kill` / `dvc queue remove`")
    sources = {name: source_experiment(group, run, cwd) for name, (group, run) in names.items()}
    aside = set_aside(list(names), cwd)
    before = {name: newest_experiment(name, cwd) for name in names}
    going_on: list[str] = []
    try:
        for group, run in selection:
            with seeded_workspace(sources[experiment_name(group, run)], group.stages, cwd) as taken:
                queued = subprocess.run(queue_command(group, run), cwd=cwd, env=experiment_env(threads),
                                        capture_output=True, text=True)
            if taken:
                stale = sorted({path for paths in taken.values() for path in paths})
                print(f"{group.name} / {run} starts from {group.start_from[run]}: {', '.join(taken)}"
                      + (f"; its code has changed since ({', '.join(stale)}), so DVC reruns what rests on it"
                         if stale else ""), flush=True)
            if queued.returncode:
                raise ParamError(f"dvc could not queue {group.name} / {run}: {queued.stderr.strip().splitlines()[-1]}")
        def start_workers(count: int):
            """`dvc queue start --jobs count`: DVC starts each of its workers numbered 1..count that does not answer
            celery's broadcast. A busy worker answers (DVC runs its run on a thread of its own for that), so asking
            for `jobs` starts exactly the missing ones."""
            returncode, errors = run_detaching(["dvc", "queue", "start", "--jobs", str(count)], cwd,
                                               experiment_env(threads))
            if returncode:
                raise ParamError(f"dvc queue start failed: {errors}")
        start_workers(jobs)
        print(f"queued {len(selection)} runs; {jobs} at a time on {threads} torch thread(s) each", flush=True)
        wait_for_queue(jobs, lambda: queue_states(cwd), start_workers, poll_s)
    except KeyboardInterrupt:
        states = read_queue_states(cwd)
        waiting = [name for name in names if states.get(name) == "Queued"]
        going_on = [name for name in names if states.get(name) == "Running"]
        if waiting:  # by task id: `dvc queue remove <name>` can take a finished task of the same name instead
            run_dvc("queue", "remove", *(task for task, name, state in queue_tasks(cwd) or []
                                         if name in waiting and state == "Queued"), cwd=cwd)
        raise QueueInterrupted(going_on, waiting) from None
    finally:
        run_dvc("queue", "stop", cwd=cwd)  # each worker stops once its current run has ended
        # Whatever stopped the wait, a run that made its experiment keeps it (and its earlier one goes). A run
        # still going on keeps its earlier one aside until its end is known (set_aside settles it next time).
        succeeded = {name for name in names if newest_experiment(name, cwd) not in (None, before[name])}
        settle([name for name in aside if name not in going_on], succeeded, cwd)
    # A run DVC does not call Failed was taken out of the queue (`dvc queue remove`) before it ran: not run.
    failed = {name for name, state in read_queue_states(cwd).items() if state == "Failed"}
    return ([pair for name, pair in names.items() if name not in succeeded and name in failed],
            [pair for name, pair in names.items() if name not in succeeded and name not in failed])


def queue_waves(selection: list[tuple[Group, str]]) -> list[list[tuple[Group, str]]]:
    """The (group, run) pairs as queues to run one after another, each in the selection's order: a run that starts
    from another run of the selection goes in a later queue than its source (a queued run is set up when it is
    queued, so its source must have run by then)."""
    names = {experiment_name(group, run): (group, run) for group, run in selection}

    def wave(pair):
        source = source_name(*pair)
        return 1 + wave(names[source]) if source in names else 0
    waves = [wave(pair) for pair in selection]
    return [[pair for pair, index in zip(selection, waves) if index == number]
            for number in range(max(waves, default=-1) + 1)]


def run_in_waves(selection: list[tuple[Group, str]], jobs: int, cwd=".",
                 poll_s: float = 10.0) -> tuple[list[tuple[Group, str]], list[tuple[Group, str]]]:
    """run_in_queue over queue_waves, one queue after another, so that one command can train a model and then run
    what starts from it (in a fresh clone no experiment of an earlier session is here to start from). A run whose
    source failed or did not run does not run. Returns the pairs that failed and those that did not run; Ctrl-C
    lists the later queues' runs, never queued, with those taken out of the queue."""
    failed: list[tuple[Group, str]] = []
    not_run: list[tuple[Group, str]] = []
    waves = queue_waves(selection)
    for number, wave in enumerate(waves):
        missing = {experiment_name(*pair) for pair in failed + not_run}
        ready = [pair for pair in wave if source_name(*pair) not in missing]
        not_run += [pair for pair in wave if source_name(*pair) in missing]
        if not ready:
            continue
        try:
            wave_failed, wave_not_run = run_in_queue(ready, jobs, cwd, poll_s)
        except QueueInterrupted as error:
            later = [experiment_name(*pair) for later_wave in waves[number + 1:] for pair in later_wave]
            raise QueueInterrupted(error.going_on, error.removed + later) from None
        failed += wave_failed
        not_run += wave_not_run
    return failed, not_run


def run_detaching(command: list[str], cwd, env) -> tuple[int, str]:
    """(exit status, stderr) of a command that leaves detached children behind, as `dvc queue start` leaves its
    workers. They inherit its stdout and stderr, so these go to a file, not a pipe: reading a pipe to its end
    waits for the last child to close it (here, for the queue to empty: the runner once sat that way for most of an
    hour, unable to restart a worker that had left)."""
    with tempfile.TemporaryFile() as errors:
        returncode = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors).returncode
        errors.seek(0)
        return returncode, errors.read().decode(errors="replace").strip()


def read_queue_states(cwd=".", attempts: int = 5, wait_s: float = 2.0) -> dict[str, str]:
    """queue_states where an answer is needed now: asked again a few times, then a one-line error."""
    for _ in range(attempts):
        states = queue_states(cwd)
        if states is not None:
            return states
        time.sleep(wait_s)
    raise ParamError("dvc queue status failed; the queue's state is unknown (run it to see why)")


RESTART_AFTER_S = 120.0  # a worker short for this long, with runs still queued, is started again


def wait_for_queue(jobs: int, states, start_workers, poll_s: float, clock=time.monotonic, sleep=time.sleep) -> None:
    """Waits until the queue has no run queued or running. DVC's workers can stop with runs still queued
    (treeverse/dvc#10562: one finished its run and left while the other's ran on for an hour), so where fewer
    than `jobs` run while some wait, for RESTART_AFTER_S (a started worker takes a while to show its run as
    running), the missing workers are started again: start_workers(jobs), as DVC numbers its workers and skips
    those that answer. (Asking for the missing count checked only workers 1..count: with worker 2 gone and worker
    1 busy it started none, and the queue ran on one core for its last four runs, 2026-12-07.)"""
    short_since = None
    while True:
        read = states()
        if read is None:  # dvc could not say this time: no answer is not an empty queue
            sleep(poll_s)
            continue
        current = read.values()
        running, queued = sum(s == "Running" for s in current), sum(s == "Queued" for s in current)
        if not running and not queued:
            return
        if queued and running < jobs:
            short_since = clock() if short_since is None else short_since
            if clock() - short_since >= RESTART_AFTER_S:
                start_workers(jobs)  # DVC starts the missing ones only
                short_since = None
        else:
            short_since = None
        sleep(poll_s)


STATES = ("Queued", "Running", "Success", "Failed")


def queue_tasks(cwd=".") -> list[tuple[str, str, str]] | None:
    """`dvc queue status` as (task id, experiment name, state) in its order (the waiting and running tasks, then
    the finished ones, oldest first); None where dvc failed to answer (a non-zero exit)."""
    status = run_dvc("queue", "status", cwd=cwd)
    if status.returncode:
        return None
    return [(words[0], words[1], state) for words in map(str.split, status.stdout.splitlines()) if len(words) > 2
            for state in STATES if state in words]


def states_of(tasks: list[tuple[str, str, str]]) -> dict[str, str]:
    """Experiment name -> the state of its run now. A rerun's name also labels its earlier, finished tasks (DVC
    keeps them listed), so a task waiting or running wins, and otherwise the newest finished one: the runner once
    read a queued rerun as its earlier task's Success, took the queue for empty with 13 runs waiting, stopped the
    workers and reported the 13 as taken out of the queue."""
    states: dict[str, str] = {}
    for _, name, state in tasks:
        if states.get(name) not in ("Queued", "Running"):
            states[name] = state
    return states


def queue_states(cwd=".") -> dict[str, str] | None:
    """`dvc queue status` as experiment name -> state (states_of); None where dvc failed to answer."""
    tasks = queue_tasks(cwd)
    return None if tasks is None else states_of(tasks)
