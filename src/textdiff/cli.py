"""What every stage entry point shares: one-line errors and warnings, a non-zero exit, and a
record of the stage's wall time (timings/<stage>.json, which the report sums into the study's cost)."""
from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before the heavy imports below, so the stage's timing includes them

import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import warnings  # noqa: E402


def _interrupted_while_starting(signum, frame):
    print("interrupted: the stage stopped while starting, before it read or wrote anything", file=sys.stderr)
    sys.exit(130)


# Ctrl-C during the seconds the imports below take: one line, not a traceback from inside torch. run_stage puts
# Python's own handler back, so that main() sees KeyboardInterrupt.
if threading.current_thread() is threading.main_thread():  # where Python allows a handler
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import torch  # noqa: E402

from .errors import EXPECTED_ERRORS, UsageError  # noqa: E402,F401  (UsageError: for the stages)
from .io import write_json  # noqa: E402


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def run_stage(main, timing_path: str | None = None) -> None:
    """Runs main(); an expected failure becomes `error: <one line>` on stderr and exit status 2, Ctrl-C one
    line and exit status 130.

    On success, the stage's wall time (from before its imports) is written to timing_path.
    """
    warnings.showwarning = _one_line_warning
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        main()
        if timing_path and not (torch.distributed.is_initialized() and torch.distributed.get_rank() > 0):
            write_json(timing_path, {"wall_s": round(time.perf_counter() - _STARTED, 2)})
    except EXPECTED_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        # Outputs are written atomically and training checkpoints as it goes, so nothing half-written is left.
        print("interrupted: the stage stopped; its outputs are unchanged (a training stage resumes from its last "
              "checkpoint when rerun)", file=sys.stderr)
        sys.exit(130)
    finally:
        if torch.distributed.is_initialized():  # under torchrun
            torch.distributed.destroy_process_group()
