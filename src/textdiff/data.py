"""TinyStories in, packed token rows out.

prepare: stories from the Hugging Face hub (streamed, only as many as asked) or
from a local copy named by the TINYSTORIES_DIR environment variable, so the
same params.yaml runs offline. pack: stories tokenised, joined by the
end-of-story token and cut into fixed-length rows, the same rows for all three
models.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .io import atomic_path, write_json
from .tokenizer import SPECIAL_IDS

LOCAL_DIR_ENV = "TINYSTORIES_DIR"
STORY_SEPARATOR = "<|endoftext|>"
LOCAL_SUFFIXES = (".txt", ".jsonl", ".parquet")


@dataclass
class Stories:
    train: list[str]
    valid: list[str]
    source: str
    split: str  # how the validation stories were obtained
    in_both: int = 0  # validation stories dropped because a training story is the same text


# --- reading sources ----------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror}); check that it exists and is readable") from None


def _read_txt(path: Path) -> list[str]:
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (invalid byte at offset {error.start})") from None
    stories, current = [], []
    for line in text.splitlines():
        if line.strip() == STORY_SEPARATOR:
            stories.append("\n".join(current))
            current = []
        else:
            current.append(line)
    stories.append("\n".join(current))
    return stories


def _read_jsonl(path: Path) -> list[str]:
    stories = []
    try:
        lines = _read_bytes(path).decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (invalid byte at offset {error.start})") from None
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                text = json.loads(line)["text"]
            except (ValueError, KeyError, TypeError):
                raise DataError(f"{path}:{number}: expected a JSON object with a 'text' field") from None
            if not isinstance(text, str):
                raise DataError(f"{path}:{number}: 'text' must be a string, got {type(text).__name__}")
            stories.append(text)
    return stories


def _read_parquet(path: Path) -> list[str]:
    import pandas as pd

    _read_bytes(path)  # unreadable: one line
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several kinds for a corrupt file
        raise DataError(f"{path}: not a readable parquet file ({str(error).splitlines()[0][:120]})") from None
    if "text" not in frame.columns:
        raise DataError(f"{path}: no 'text' column (columns: {', '.join(map(str, frame.columns))})")
    texts = frame["text"]
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if bad is not None:
        raise DataError(f"{path}: row {bad}: 'text' must be a string, got {texts.iloc[bad]!r}")
    return texts.tolist()


READERS = {".txt": _read_txt, ".jsonl": _read_jsonl, ".parquet": _read_parquet}


def _clean(stories) -> list[str]:
    return [story.strip() for story in stories if story and story.strip()]


def _split_of(path: Path) -> str:
    name = path.name.lower()
    if "valid" in name or "val." in name or "_val" in name or "-val" in name or name.startswith("validation"):
        return "valid"
    return "train"


def read_local(directory: str | Path) -> tuple[list[str], list[str] | None]:
    """(train, valid or None) stories from the .txt/.jsonl/.parquet files of a directory.

    Files whose name says valid/validation/val hold validation stories; all others training stories.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{LOCAL_DIR_ENV}={directory}: no such directory")
    files = sorted(p for p in directory.iterdir() if p.suffix in LOCAL_SUFFIXES)
    if not files:
        raise DataError(f"{directory}: no {'/'.join(LOCAL_SUFFIXES)} files")
    splits: dict[str, list[str]] = {"train": [], "valid": []}
    for path in files:
        stories = _clean(READERS[path.suffix](path))
        if not stories:
            raise DataError(f"{path}: no stories (the file is empty)")
        splits[_split_of(path)].extend(stories)
    if not splits["train"]:
        raise DataError(f"{directory}: no training stories (every file is named as validation)")
    return splits["train"], splits["valid"] or None


def read_hub(dataset: str, train_stories: int | None, valid_stories: int | None):
    """Streams only the stories asked for from the Hugging Face hub (None: the whole split)."""
    hint = f"set {LOCAL_DIR_ENV} to a local TinyStories copy (e.g. {LOCAL_DIR_ENV}=../shared/data/tinystories)"
    try:  # fail in seconds, not after the hub client's retries
        socket.create_connection((HUB_HOST, 443), timeout=HUB_TIMEOUT_S).close()
    except OSError:
        raise DataError(f"cannot reach the Hugging Face hub ({HUB_HOST}) and {LOCAL_DIR_ENV} is not set; {hint}") from None
    from datasets import load_dataset

    def take(split, count):
        try:
            stream = load_dataset(dataset, split=split, streaming=True)
            return _clean(row["text"] for row in itertools.islice(stream, count))
        except Exception as error:  # network and hub errors come in many kinds
            raise DataError(f"hub dataset {dataset} ({split}): {str(error).splitlines()[0][:160]}; {hint}") from None

    return take("train", train_stories), take("validation", valid_stories)


HUB_HOST = "huggingface.co"
HUB_TIMEOUT_S = 5


def normalised(story: str) -> str:
    """A story compared across splits: lower case, every run of non-alphanumerics one space."""
    return re.sub(r"[\W_]+", " ", story.lower()).strip()


def held_out(story: str, fraction: float) -> bool:
    """Deterministic split by content hash: the same story is always on the same side."""
    digest = hashlib.sha256(story.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _take(stories: list[str], count: int | None, what: str) -> list[str]:
    if count is not None and len(stories) < count:
        warnings.warn(f"{what}: asked for {count} stories, the source has only {len(stories)}; using them all",
                      stacklevel=2)
    return stories if count is None else stories[:count]


def load_stories(data_params, environ=os.environ) -> Stories:
    local_dir = environ.get(LOCAL_DIR_ENV)
    if local_dir:
        train, valid = read_local(local_dir)
        # Its name only: an absolute path would record the machine that ran it (the content hash identifies it).
        source = f"local copy '{Path(local_dir).resolve().name}' ({LOCAL_DIR_ENV})"
    else:
        train, valid = read_hub(data_params.hf_dataset, data_params.train_stories, data_params.valid_stories)
        source = f"hub dataset {data_params.hf_dataset}"
    split = "the source's validation split"
    if valid is None:
        valid = [story for story in train if held_out(story, data_params.valid_fraction)]
        train = [story for story in train if not held_out(story, data_params.valid_fraction)]
        split = f"held out by content hash ({data_params.valid_fraction:.0%} of the source's stories)"
    train = _take(train, data_params.train_stories, data_params.train_stories_key)
    if not train:
        raise DataError(f"no training stories left in the {source}")
    # A validation story that is also a training story would flatter every model: it is dropped and counted.
    seen = set(map(normalised, train))
    kept = [story for story in valid if normalised(story) not in seen]
    in_both = len(valid) - len(kept)
    valid = _take(kept, data_params.valid_stories, "data.valid_stories")
    if not valid:
        raise DataError("no validation stories: the source has none, the held-out share is empty, "
                        "or every one is also a training story")
    return Stories(train, valid, source, split, in_both)


def write_stories(path: Path, stories: list[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for story in stories:
            out.write(json.dumps({"text": story}, ensure_ascii=False) + "\n")


def read_stories(path: Path) -> list[str]:
    return _read_jsonl(Path(path))


def prepare(data_params, out_dir: str | Path, environ=os.environ) -> dict:
    """Writes train.jsonl, valid.jsonl and manifest.json (what was used) to out_dir."""
    out_dir = Path(out_dir)
    stories = load_stories(data_params, environ)
    write_stories(out_dir / "train.jsonl", stories.train)
    write_stories(out_dir / "valid.jsonl", stories.valid)
    content = hashlib.sha256()
    for name in ("train.jsonl", "valid.jsonl"):
        content.update((out_dir / name).read_bytes())
    manifest = {
        "source": stories.source,
        "validation": stories.split,
        "train_stories": len(stories.train),
        "valid_stories": len(stories.valid),
        "valid_stories_dropped_as_in_train": stories.in_both,
        "train_characters": sum(map(len, stories.train)),
        "sha256": content.hexdigest(),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


# --- packing ---------------------------------------------------------------------------------
def pack(tokenizer, stories: list[str], seq_len: int) -> tuple[np.ndarray, int]:
    """Rows [N, seq_len] of uint16 ids: each story followed by <eos>, concatenated, cut into rows.

    Returns the rows and the number of tokens before the ragged tail was dropped.
    """
    stream = []
    for encoding in tokenizer.encode_batch(stories):
        stream.extend(encoding.ids)
        stream.append(SPECIAL_IDS["eos"])
    n_rows = len(stream) // seq_len
    if n_rows == 0:
        raise DataError(f"{len(stream)} tokens cannot fill one row of seq_len={seq_len}")
    rows = np.asarray(stream[: n_rows * seq_len], dtype=np.uint16).reshape(n_rows, seq_len)
    return rows, len(stream)


def unigram_perplexity(train_rows: np.ndarray, valid_rows: np.ndarray, vocab_size: int) -> float:
    """Perplexity of the validation tokens under the training split's token frequencies (add-1/2
    smoothing): the level a model reaches without using any context, for scale in the report."""
    counts = np.bincount(train_rows.ravel(), minlength=vocab_size).astype(np.float64) + 0.5
    log_probs = np.log(counts / counts.sum())
    return float(np.exp(-log_probs[valid_rows.ravel()].mean()))


def save_rows(path: Path, rows: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        np.save(out, rows)


SUBSET_SEED = 0  # the draw of every row sample below: the same rows for every run, whatever the study's seed


def uniform_rows(rows, count: int | None, seed: int = SUBSET_SEED):
    """`count` of rows [N, L] drawn uniformly without replacement, kept in file order; all of them when
    count is None or not below N. Validation files vary in difficulty along their length, so a sample
    is drawn from the whole file, never taken from its head."""
    if count is None or count >= len(rows):
        return rows
    pick = np.sort(np.random.default_rng(seed).permutation(len(rows))[:count])
    return rows[pick.tolist()]


def load_rows(path: str | Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; run the pack stage (dvc repro pack)") from None
    except (ValueError, EOFError, OSError) as error:
        raise DataError(f"{path}: not a complete token-row file ({str(error).splitlines()[0][:80]}); "
                        "rerun the pack stage (dvc repro -f pack)") from None
