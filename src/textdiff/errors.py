"""The failures a stage reports as one line (`error: ...`, exit 2) instead of a traceback.

They live apart from the modules that raise them, so the stage runner (cli.py) can name them
without importing the training loop or the data readers.
"""


class ParamError(ValueError):
    """An invalid value in params.yaml; the message names the key."""


class DataError(ValueError):
    """Source data that cannot give a trustworthy dataset."""


class UsageError(ValueError):
    """A bad command-line argument of a stage."""


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss."""


class CheckpointMismatch(RuntimeError):
    """A resume checkpoint written for another run."""


class CorruptCheckpoint(Exception):
    """A resume checkpoint that cannot be read (cut short by a kill or a full disk): training starts over."""


EXPECTED_ERRORS = (ParamError, DataError, UsageError, NonFiniteLoss, CheckpointMismatch)
