"""Weights on disk: the trained model of a train stage, and the resume checkpoints of a run.

Both are safetensors, never pickle. A trained model directory holds model.safetensors and
config.json (the model's spec and the run's fingerprint), so `load_trained` rebuilds exactly
the model that was trained. A resume checkpoint holds weights, optimizer state and the log so
far, and is named and stamped by the fingerprint of everything that defines its run; loading
one written for another run is refused.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_file, save_model

import textdiff

from .errors import CheckpointMismatch, CorruptCheckpoint, DataError
from .io import atomic_path, read_json
from .models import build_model


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- trained weights ---------------------------------------------------------------------------
def save_weights(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        save_model(model, str(tmp))  # safetensors; handles the tied embedding/head


def load_trained(model_dir: str | Path, device: torch.device | str = "cpu"):
    """(model, config) from a train stage's output directory."""
    model_dir = Path(model_dir)
    config = read_json(model_dir / "config.json")
    model = build_model(config["spec"])
    weights = model_dir / "model.safetensors"
    try:
        load_model(model, str(weights), device=str(device))
    except FileNotFoundError:
        raise DataError(f"{weights}: missing; run its train stage (dvc repro)") from None
    except (SafetensorError, OSError) as error:
        raise DataError(f"{weights}: not complete safetensors weights ({str(error).splitlines()[0][:80]}); "
                        f"rerun its train stage (dvc repro -f <stage>)") from None
    return model.to(device).eval(), config


# --- resume checkpoints ------------------------------------------------------------------------
def code_digest(package_dir: Path = Path(textdiff.__file__).parent) -> str:
    """sha256 of every module of the library: a resume checkpoint is only resumed by the code that wrote it."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def stale_checkpoints(checkpoint_dir: str | Path, label: str, current: Path) -> list[Path]:
    """Checkpoints of the same run label written by other code or another config: never resumable."""
    return sorted(p for p in Path(checkpoint_dir).glob(f"{label}-*.safetensors") if p != current)


def checkpoint_path(checkpoint_dir: str | Path, label: str, fingerprint: dict) -> Path:
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
    return Path(checkpoint_dir) / f"{label}-{digest[:16]}.safetensors"


def save_checkpoint(path: Path, model, optimizer, step: int, fingerprint: dict, log, elapsed: float, average=None):
    """The run's state at `step`: weights, optimizer state, the weight average (if the recipe keeps one) and log."""
    tensors = {f"model.{name}": value.detach().clone().contiguous() for name, value in model.state_dict().items()}
    if average is not None:
        tensors.update({f"average.{name}": value.detach().clone().contiguous()
                        for name, value in average.state_dict().items()})
    optim_state = optimizer.state_dict()
    for index, state in optim_state["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = value.detach().clone().contiguous()
    metadata = {"fingerprint": json.dumps(fingerprint, sort_keys=True), "step": str(step),
                "elapsed": repr(elapsed), "log": json.dumps(log),
                "param_groups": json.dumps(optim_state["param_groups"])}
    with atomic_path(path) as tmp:
        save_file({k: v.cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_checkpoint(path: Path, model, optimizer, fingerprint: dict, average=None):
    """Restores model, optimizer and weight average in place; returns (step, log, elapsed). Refuses another config.
    A checkpoint that cannot be read (cut short by a kill or a full disk) raises CorruptCheckpoint."""
    try:
        return _load_checkpoint(path, model, optimizer, fingerprint, average)
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise CorruptCheckpoint(f"{path}: {str(error).splitlines()[0][:80]}") from None


def _load_checkpoint(path: Path, model, optimizer, fingerprint: dict, average):
    with safe_open(str(path), framework="pt", device=str(model.device)) as handle:
        metadata = handle.metadata()
        if json.loads(metadata["fingerprint"]) != fingerprint:
            raise CheckpointMismatch(f"{path}: checkpoint of a different config; delete it to start over")
        parts = {"model": {}, "optim": {}, "average": {}}
        for key in handle.keys():
            kind, rest = key.split(".", 1)
            parts[kind][rest] = handle.get_tensor(key)
    model_state, optim_tensors = parts["model"], parts["optim"]
    model.load_state_dict(model_state)
    if average is not None:
        average.load_state_dict(parts["average"])
    state: dict[int, dict] = {}
    for key, value in optim_tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})
    return int(metadata["step"]), json.loads(metadata["log"]), float(metadata["elapsed"])
