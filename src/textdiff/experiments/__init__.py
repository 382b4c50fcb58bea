"""Experiment groups: named sets of params overrides, each run as a DVC experiment outside `dvc repro`.

params.yaml's `experiments` maps a group name to
    stages: the stages each run reproduces (their upstream stages come along when their inputs change);
    set:    overrides common to every run of the group (optional);
    runs:   run name -> its own params overrides (dotted keys, as `dvc exp run -S` takes them);
    start_from: run name -> "<group>/<run>" whose trained models it reuses (optional; see seeded_workspace).
Each run is `dvc exp run --temp --name <group>-<run> -S ... <stages>`: the workspace is left as it
is and the result is an experiment commit (`dvc exp show` lists it). `collect` reads each run's
newest experiment commit, and from it the metrics and first samples of every model the group
evaluates, into eval/experiments/<group>.json, which the report stage reads like any other input.
One runner serves every group; a new question is a new group in params.yaml.

A collected run is evidence only for the study it ran in, so `collect` also records what that
was, all read from the experiment commit itself: the params it ran with (and the overrides that
made them, against its baseline commit), and from its dvc.lock the hashes of the code, the
packed data and the judge behind its results. analysis.run_binding compares them with the
current study.

The parts: groups (what params.yaml defines), runner (one run; a run others start from kept in artifacts/ for
other clones), queue (many runs through DVC's queue),
collection (eval/experiments/<group>.json) and binding (whether a collected run is still the study's evidence).
"""
from .binding import JUDGE_WEIGHTS, run_binding, study_hashes  # noqa: F401
from .collection import (COLLECTED_DIR, collect, collected_sessions, reproduced_stage_seconds,  # noqa: F401
                         sessions_after)
from .groups import (COMMAND, Group, changed_keys, entry, exp_run_command, experiment_name, flatten,  # noqa: F401
                     read_groups, read_yaml, study_params)
from .queue import (RESTART_AFTER_S, QueueInterrupted, queue_states, queue_waves, run_detaching,  # noqa: F401
                    run_in_queue, run_in_waves, wait_for_queue)
from .runner import (KEPT_SOURCES, keep_source, newest_experiment, run_experiment, seeded_workspace,  # noqa: F401
                     upstream_stages)
