"""Atomic writes: every output is written to a temporary file and renamed into place, so a crash
never leaves a truncated file where a result is expected.

The temporary file lives in .cache/tmp/ of the directory the stage runs in (the repository root),
not beside the output: a process killed mid-write leaves it there, outside every DVC output and
git's view (.cache/ is ignored), instead of inside a directory whose hash DVC records. An output
outside that tree (tests' temporary directories) gets its temporary file beside it. Outputs get
ordinary permissions (0666 less the umask), not the 0600 of a fresh temporary file.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError

TMP_DIR = Path(".cache") / "tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_dir_for(path: Path) -> Path:
    here = Path.cwd().resolve()
    if here == path.resolve().parent or here in path.resolve().parents:
        (here / TMP_DIR).mkdir(parents=True, exist_ok=True)  # same filesystem as the output: rename is atomic
        return here / TMP_DIR
    return path.parent


@contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path; renames it to `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=_tmp_dir_for(path), prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path):
    """A JSON input of a stage; a missing or malformed one is a one-line DataError saying what to do."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the stage that writes it (dvc repro)") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({str(error).splitlines()[0][:80]}); "
                        "rerun the stage that writes it (dvc repro -f <stage>)") from None
