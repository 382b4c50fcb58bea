"""What every stage entry point shares: one-line errors and warnings, and a non-zero exit."""
from __future__ import annotations

import sys
import warnings

from .data import DataError
from .params import ParamError
from .train import CheckpointMismatch, NonFiniteLoss

EXPECTED_ERRORS = (ParamError, DataError, NonFiniteLoss, CheckpointMismatch)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def run_stage(main) -> None:
    """Runs main(); an expected failure becomes `error: <one line>` on stderr and exit status 2."""
    warnings.showwarning = _one_line_warning
    try:
        main()
    except EXPECTED_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
