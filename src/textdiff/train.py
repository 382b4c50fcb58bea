"""The one training loop of the study, the same for AR, MDLM and SDD.

AdamW (fused on CUDA), linear warmup then cosine decay, gradient clipping, bf16
autocast on CUDA, optional torch.compile. Every random draw of step n (its
batch and the objective's noise) comes from a generator seeded with (seed, n),
so a run resumed from a checkpoint takes exactly the same path as an
uninterrupted one.

Under torchrun (WORLD_SIZE > 1) the same loop runs data-parallel (DDP): every
process draws the same global batch of `batch_size` rows and trains on its own
slice, so the global batch, the logged loss and the update match a
single-process run; only rank 0 writes checkpoints, logs and outputs.

Every `train.curve_every_steps` steps, the model's validation figure on a fixed uniform sample of
validation rows (the same for every model and run) is a point of its learning curve
(learning_curve.csv), and training states how many epochs it runs (tokens seen / distinct training
tokens), warning when over MAX_EPOCHS.

On CUDA the loss is read back every SYNC_EVERY steps, not every step (each read waits for the
device): a non-finite loss then stops the run within SYNC_EVERY steps of its step, which it names,
and before any checkpoint holding its weights is written. On the CPU it is read every step.

Resume checkpoints (safetensors: weights, optimizer state, log so far) live in
a directory outside DVC's outputs, named by a fingerprint of everything that
defines the run and of the library's code; a rerun of the same config and code
after an interruption picks its checkpoint up. Checkpoints of the same run
written by other code or another config, or cut short, are removed (saying so)
and the run starts over; one renamed into place is refused.
"""
from __future__ import annotations

import csv
import io
import math
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from .checkpoints import (checkpoint_path, code_digest, file_sha256, load_checkpoint, save_checkpoint, save_weights,
                          stale_checkpoints)
from .data import load_rows, uniform_rows
from .device import distributed_setup, resolve_device
from .errors import CorruptCheckpoint, DataError, NonFiniteLoss
from .flops import peak_flops
from .io import write_json, write_text
from .models import build_model, model_spec
from .validation import validation_metrics

LOG_COLUMNS = ("step", "loss", "lr", "tokens_per_s", "elapsed_s", "mfu")
MAX_EPOCHS = 4  # more passes over the same tokens than this, and a model of the study's size overfits
SYNC_EVERY = 10  # on CUDA: steps between reads of the loss (each read waits for the device)


def learning_rate(step: int, peak: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to `peak` over `warmup` steps, then cosine decay to peak * min_ratio at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)


class TrainingLoss(torch.nn.Module):
    """model.training_loss as a forward(), which is what DDP and torch.compile wrap."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, rows, generator):
        return self.model.training_loss(rows, generator)


def run_fingerprint(spec: dict, params, data_sha256: str) -> dict:
    """Everything that determines the trained weights; two runs with equal fingerprints are the same run."""
    s = params.scale
    return {
        "spec": spec,
        "batch_size": s.batch_size, "steps": s.steps, "lr": s.lr, "warmup_steps": s.warmup_steps,
        "train": {k: v for k, v in asdict(params.train).items() if k not in ("checkpoint_every", "device", "compile")},
        "seed": params.seed,
        "train_rows_sha256": data_sha256,
    }


def log_csv(log: list[dict], columns=LOG_COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(log)
    return out.getvalue()


def epochs_warning(label: str, tokens_seen: int, distinct_tokens: int, params) -> str | None:
    """One line when a run would pass over its training tokens more than MAX_EPOCHS times."""
    epochs = tokens_seen / distinct_tokens
    if epochs <= MAX_EPOCHS:
        return None
    return (f"warning: {label} sees its {distinct_tokens:,} distinct training tokens {epochs:.1f} times "
            f"({tokens_seen:,} tokens); over {MAX_EPOCHS} epochs a model overfits: give the scale more stories "
            f"(scales.{params.scale_name}.train_stories, from a source that has them) or fewer steps")


@torch.no_grad()
def curve_point(model, valid_rows, params, validation_options: dict, step: int, tokens: int,
                train_losses: list[float]) -> dict:
    """A learning-curve row: the validation figure on the curve rows now, with the same noise draws at
    every point (a fresh generator of the same seed), and the mean training loss since the last point."""
    model.eval()
    generator = torch.Generator(device=valid_rows.device).manual_seed(params.seed)
    metrics = validation_metrics(model, valid_rows, params.scale.batch_size, generator, progress=False,
                                 **validation_options)
    model.train()
    point = {"step": step, "tokens": tokens, "train_loss": round(sum(train_losses) / len(train_losses), 5),
             "valid_nll": metrics["nll_per_token"], "valid_nll_standard_error": metrics["nll_standard_error"]}
    point.update({name: metrics[name] for name in model.validation_accuracies})
    return point


def count_parameters(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# --- the loop ------------------------------------------------------------------------------------
def train(model_name: str, params, train_rows_path: str | Path, out_dir: str | Path,
          checkpoint_dir: str | Path = ".cache/checkpoints", progress: bool = True,
          stop_after: int | None = None, label: str | None = None, valid_rows_path: str | Path | None = None) -> dict:
    """Trains `model_name` and writes model.safetensors, config.json, train_log.csv, train_summary.json and,
    given validation rows, learning_curve.csv.

    label names the run in logs and checkpoints (default: the model name; the judge is an "ar" model
    labelled "judge"). stop_after (tests only) ends the run after that many steps, as an interruption would.
    """
    label = label or model_name
    out_dir, scale = Path(out_dir), params.scale
    rank, world, device = distributed_setup(resolve_device(params.train.device), scale.batch_size,
                                            f"scales.{params.scale_name}.batch_size")
    spec = model_spec(model_name, params)
    fingerprint = run_fingerprint(spec, params, file_sha256(train_rows_path))
    # The checkpoint's own fingerprint adds the code, so a resume never mixes two codes' weights; the
    # output's (config.json) does not, so a change that leaves the weights alone leaves it alone too.
    resume_fingerprint = {**fingerprint, "code_sha256": code_digest()}
    checkpoint = checkpoint_path(checkpoint_dir, label, resume_fingerprint)
    if rank == 0:
        for stale in stale_checkpoints(checkpoint_dir, label, checkpoint):
            stale.unlink()
            print(f"removed {stale}: a checkpoint of {label} written by other code or another config")

    rows = torch.from_numpy(load_rows(train_rows_path).astype("int64")).to(device)
    if rows.shape[1] != scale.seq_len:
        raise DataError(f"{train_rows_path}: rows of {rows.shape[1]} tokens, but params.yaml's seq_len is "
                        f"{scale.seq_len}; rerun the pack stage (dvc repro pack)")
    curve_rows = None if valid_rows_path is None else torch.from_numpy(
        uniform_rows(load_rows(valid_rows_path), params.train.curve_rows).astype("int64")).to(device)
    if curve_rows is not None and curve_rows.shape[1] != scale.seq_len:
        raise DataError(f"{valid_rows_path}: rows of {curve_rows.shape[1]} tokens, but params.yaml's seq_len is "
                        f"{scale.seq_len}; rerun the pack stage (dvc repro pack)")
    tokens_per_step = scale.batch_size * scale.seq_len
    warning = epochs_warning(label, scale.steps * tokens_per_step, rows.numel(), params)
    if warning and rank == 0:
        print(warning)

    def fresh():
        torch.manual_seed(params.seed)  # initial weights, the same on every rank
        model = build_model(spec).to(device)
        return model, torch.optim.AdamW(model.parameters(), lr=scale.lr, betas=(0.9, 0.99),
                                        weight_decay=params.train.weight_decay, fused=device.type == "cuda")
    model, optimizer = fresh()
    start, log, curve, elapsed = 0, [], [], 0.0
    if checkpoint.exists():
        try:
            start, saved, elapsed = load_checkpoint(checkpoint, model, optimizer, resume_fingerprint)
            log, curve = saved["steps"], saved["curve"]
            if rank == 0:
                print(f"resuming {label} from step {start} ({checkpoint})")
        except CorruptCheckpoint as error:
            if rank == 0:
                checkpoint.unlink(missing_ok=True)
                print(f"removed an unreadable checkpoint ({error}); training {label} from step 0")
            model, optimizer = fresh()  # as they were before the failed load

    model.train()
    loss_module = TrainingLoss(model)
    if world > 1:
        loss_module = torch.nn.parallel.DistributedDataParallel(loss_module)
    if params.train.compile:
        loss_module = torch.compile(loss_module)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    sync_every = SYNC_EVERY if device.type == "cuda" else 1
    pending, window_tic = [], time.perf_counter()  # losses not read back yet, and when their window began
    local_batch = scale.batch_size // world
    peak = peak_flops(device)
    bar = tqdm(range(start, scale.steps), initial=start, total=scale.steps, desc=f"train {label}",
               disable=not progress or rank > 0, dynamic_ncols=True)
    for step in bar:
        generator = step_generator(params.seed, step, device)
        batch = rows[torch.randint(len(rows), (scale.batch_size,), generator=generator, device=device)]
        if world > 1:  # every rank drew the same global batch; each trains on its slice with its own noise
            batch = batch[rank * local_batch:(rank + 1) * local_batch]
            generator = step_generator(params.seed + 7919 * (rank + 1), step, device)
        lr = learning_rate(step, scale.lr, scale.warmup_steps, scale.steps, params.train.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.on_training_progress(step / scale.steps)
        with autocast:
            loss = loss_module(batch, generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), params.train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = loss.detach()
        if world > 1:
            dist.all_reduce(loss)
            loss /= world
        pending.append((step, lr, loss))
        done = step + 1
        curve_due = curve_rows is not None and (done % params.train.curve_every_steps == 0 or done == scale.steps)
        checkpoint_due = done % params.train.checkpoint_every == 0 and done < scale.steps
        if len(pending) < sync_every and not (curve_due or checkpoint_due or done == scale.steps
                                              or done == stop_after):
            continue
        # Read the window's losses back (one wait for the device), check them, and log each step.
        values = torch.stack([entry[2] for entry in pending]).float().tolist()
        seconds = (time.perf_counter() - window_tic) / len(pending)
        for (logged_step, logged_lr, _), value in zip(pending, values):
            if not math.isfinite(value):
                raise NonFiniteLoss(f"{label}: loss is {value} at step {logged_step + 1}; "
                                    f"the last good checkpoint is kept at {checkpoint}")
            elapsed += seconds
            # Per step, as SDD's k curriculum changes its cost; only where the chip's peak is known (CUDA).
            flops = model.training_flops_per_row(scale.seq_len) * scale.batch_size
            mfu = flops / seconds / (peak * world) if peak else None
            log.append({"step": logged_step + 1, "loss": round(value, 6), "lr": logged_lr,
                        "tokens_per_s": round(tokens_per_step / seconds, 1), "elapsed_s": round(elapsed, 3),
                        "mfu": round(mfu, 4) if peak else ""})
        pending = []
        bar.set_postfix(loss=f"{values[-1]:.3f}", lr=f"{lr:.2e}")
        if curve_due and rank == 0:  # validation time is not training time: outside the timed window
            since = [row["loss"] for row in log[len(log) - (done - (curve[-1]["step"] if curve else 0)):]]
            curve.append(curve_point(model, curve_rows, params, params.validation.get(model_name, {}), done,
                                     done * tokens_per_step, since))
        if checkpoint_due and rank == 0:
            save_checkpoint(checkpoint, model, optimizer, done, resume_fingerprint,
                            {"steps": log, "curve": curve}, elapsed)
        window_tic = time.perf_counter()
        if stop_after is not None and done >= stop_after:
            return {"stopped_at": done}
    bar.close()
    if rank > 0:
        return {"rank": rank}

    summary = {
        "model": label,
        "parameters": count_parameters(model),
        "steps": scale.steps,
        "tokens_seen": scale.steps * tokens_per_step,
        "distinct_train_tokens": rows.numel(),
        "epochs": round(scale.steps * tokens_per_step / rows.numel(), 3),
        "lr": scale.lr,
        "train_wall_s": round(elapsed, 2),
        "train_tokens_per_s": round(scale.steps * tokens_per_step / elapsed, 1),
        "final_loss": log[-1]["loss"],
        "final_valid_nll": curve[-1]["valid_nll"] if curve else None,
        "curve_rows": len(curve_rows) if curve else 0,
        "device": str(device),
        "processes": world,
    }
    if peak:
        summary["mfu"] = round(statistics.median(row["mfu"] for row in log[start:]), 4)
    save_weights(model, out_dir / "model.safetensors")
    write_json(out_dir / "config.json", {"spec": spec, "fingerprint": fingerprint})
    write_text(out_dir / "train_log.csv", log_csv(log))
    if curve:
        write_text(out_dir / "learning_curve.csv", log_csv(curve, list(curve[0])))
    write_json(out_dir / "train_summary.json", summary)
    checkpoint.unlink(missing_ok=True)
    return summary
