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

The recipe's optional ingredients (params.TrainParams): dropout on the backbone's residual branches (its random
draws seeded per step too, so a resume still takes the same path), GPT-2's scaled residual init, and an exponential
moving average of the weights, which the learning curve and the saved weights (so evaluation) use, and which
checkpoints carry.

Every `train.curve_every_steps` steps, the model's validation figure on a fixed uniform sample of
validation rows (the same for every model and run) is a point of its learning curve
(learning_curve.csv), and training states how many epochs it runs (tokens seen / distinct training
tokens), warning when over MAX_EPOCHS. The summary states where a likelihood model's curve leaves the unigram
plateau (plateau.py).

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
import dataclasses
import io
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from .backbone import Backbone
from .checkpoints import (checkpoint_path, code_digest, file_sha256, load_checkpoint, save_checkpoint, save_weights,
                          stale_checkpoints)
from .data import load_rows, uniform_rows
from .device import distributed_setup, resolve_device
from .errors import CorruptCheckpoint, DataError, NonFiniteLoss
from .flops import peak_flops
from .io import write_json, write_text
from .models import build_model, model_spec
from .params import epoch_steps
from .plateau import plateau_exit, unigram_nll
from .validation import validation_metrics

LOG_COLUMNS = ("step", "loss", "lr", "tokens_per_s", "elapsed_s", "mfu")
MAX_EPOCHS = 4  # more passes over the same tokens than this, and a model of the study's size overfits
SYNC_EVERY = 10  # on CUDA: steps between reads of the loss (each read waits for the device)
CPU_NOTICE_HOURS = 2  # a CPU run estimated to take longer than this says so after its first steps
NOTICE_AFTER_STEPS = 3
UNIQUE_ROWS_SEED = 1  # the draw of a data-constrained run's training rows (not the validation samples' seed)


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


def steps_key(params, model_name: str, label: str) -> str:
    """The params.yaml key that set a run's steps, for advice about them."""
    if params.train.epochs is not None:
        return "train.epochs"
    if label == "judge":
        return "judge.steps_factor"
    factor = params.train.steps_factor.get(model_name, 1)
    return f"train.steps_factor.{model_name}" if factor != 1 else f"scales.{params.scale_name}.steps"


def epochs_warning(label: str, tokens_seen: int, distinct_tokens: int, params, set_by: str) -> str | None:
    """One line when a run would pass over its training tokens more than MAX_EPOCHS times; set_by is the key that
    set its steps (steps_key)."""
    epochs = tokens_seen / distinct_tokens
    if epochs <= MAX_EPOCHS or params.train.unique_rows is not None:  # a data-constrained run repeats on purpose
        return None
    more_data = ("" if params.train.epochs is not None else f", or give the scale more stories "
                 f"(scales.{params.scale_name}.train_stories, from a source that has them)")
    return (f"warning: {label} sees its {distinct_tokens:,} distinct training tokens {epochs:.1f} times "
            f"({tokens_seen:,} tokens); over {MAX_EPOCHS} epochs a model overfits: lower {set_by}{more_data}")


def warmup_warning(label: str, params) -> str | None:
    """One line when the warmup does not end before the run does, so the peak learning rate is never reached."""
    scale = params.scale
    if scale.warmup_steps < scale.steps:
        return None
    reached = learning_rate(scale.steps - 1, scale.lr, scale.warmup_steps, scale.steps, params.train.min_lr_ratio)
    return (f"warning: {label} never leaves its warmup (scales.{params.scale_name}.warmup_steps={scale.warmup_steps} "
            f">= its {scale.steps} steps): its learning rate peaks at {reached:.3g}, not {scale.lr:g}")


def cpu_time_notice(label: str, device, seconds_per_step: float, steps_left: int, set_by: str) -> str | None:
    """One line when a run on the CPU would take hours, with its estimate and the key that set its steps."""
    hours = seconds_per_step * steps_left / 3600
    if device.type != "cpu" or hours < CPU_NOTICE_HOURS:
        return None
    return (f"notice: {label} on the CPU takes {seconds_per_step:.2g} s a step, about {hours:,.0f} h for its "
            f"{steps_left:,} steps left: lower {set_by}, or train on a GPU (train.device: cuda)")


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


# --- the loop, in its named steps --------------------------------------------------------------
@dataclass
class Run:
    """What set-up fixes for a run before its first step."""
    label: str
    params: object  # StudyParams (the model's training params)
    spec: dict
    fingerprint: dict  # what determines the weights (stored beside them)
    resume_fingerprint: dict  # ... and the code (stored in the checkpoint)
    checkpoint: Path
    device: torch.device
    rank: int
    world: int
    rows: torch.Tensor  # the training rows [N, L]
    curve_rows: torch.Tensor | None  # the learning curve's validation rows, or None
    unigram_nll: float | None  # the validation NLL of the training tokens' frequencies: the plateau's level
    steps_key: str  # the params.yaml key that set its steps, for advice


@dataclass
class Progress:
    """What a checkpoint carries: the step reached, the log and curve so far, and the training time."""
    start: int = 0
    log: list = field(default_factory=list)
    curve: list = field(default_factory=list)
    elapsed: float = 0.0


def load_token_rows(path, seq_len: int, key: str, device) -> torch.Tensor:
    rows = torch.from_numpy(load_rows(path).astype("int64")).to(device)
    if rows.shape[1] != seq_len:
        raise DataError(f"{path}: rows of {rows.shape[1]} tokens, but params.yaml's {key} is {seq_len}; "
                        "rerun the pack stage (dvc repro pack)")
    return rows


def unique_subset(rows: torch.Tensor, count: int | None, path) -> torch.Tensor:
    """The `count` training rows a data-constrained run repeats: a uniform sample drawn with a fixed seed,
    so the same rows for every model and run, whatever ran before (all rows when count is None)."""
    if count is None:
        return rows
    if count > len(rows):
        raise DataError(f"params.yaml: train.unique_rows={count:,} asks for more rows than {path} holds "
                        f"({len(rows):,}); lower it or set it to null (all rows)")
    return uniform_rows(rows, count, seed=UNIQUE_ROWS_SEED)


def set_up(model_name: str, params, train_rows_path, valid_rows_path, checkpoint_dir, label: str) -> Run:
    """The run's device and processes, its fingerprints and checkpoint (removing stale ones), its rows."""
    rank, world, device = distributed_setup(resolve_device(params.train.device), params.scale.batch_size,
                                            f"scales.{params.scale_name}.batch_size")
    seq_key = f"scales.{params.scale_name}.seq_len"
    all_rows = load_token_rows(train_rows_path, params.scale.seq_len, seq_key, device)
    rows = unique_subset(all_rows, params.train.unique_rows, train_rows_path)
    if params.train.epochs is not None:  # a full schedule of its own over that many passes of its rows
        steps = epoch_steps(params.train.epochs, len(rows), params.scale.batch_size,
                            f"scales.{params.scale_name}.batch_size")
        params = dataclasses.replace(params, scale=dataclasses.replace(params.scale, steps=steps))
    scale = params.scale
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
    curve_rows = plateau_level = None
    if valid_rows_path is not None:
        valid_rows = load_token_rows(valid_rows_path, scale.seq_len, seq_key, device)
        curve_rows = uniform_rows(valid_rows, params.train.curve_rows)
        # The study's unigram level (the pack stage's unigram_valid_perplexity, which the report uses too): every
        # training row's token frequencies, whatever subset this run trains on, over the whole validation split.
        plateau_level = unigram_nll(all_rows.cpu().numpy(), valid_rows.cpu().numpy(), scale.vocab_size)
    set_by = steps_key(params, model_name, label)
    for warning in (epochs_warning(label, scale.steps * scale.batch_size * scale.seq_len, rows.numel(), params,
                                   set_by),
                    warmup_warning(label, params)):
        if warning and rank == 0:
            print(warning)
    return Run(label, params, spec, fingerprint, resume_fingerprint, checkpoint, device, rank, world, rows, curve_rows,
               plateau_level, set_by)


def fresh_model(run: Run):
    """The model at its initial weights (the same on every rank) with the recipe's dropout, its optimizer, and
    the moving average of its weights (None without train.ema_decay)."""
    recipe = run.params.train
    torch.manual_seed(run.params.seed)
    model = build_model(run.spec).to(run.device)
    for backbone in (module for module in model.modules() if isinstance(module, Backbone)):
        if recipe.scaled_residual_init:
            backbone.scale_residual_init()
        backbone.set_residual_dropout(recipe.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.params.scale.lr, betas=(0.9, 0.99),
                                  weight_decay=recipe.weight_decay, fused=run.device.type == "cuda")
    average = None
    if recipe.ema_decay is not None:
        average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema_decay))
    return model, optimizer, average


def resume(run: Run):
    """(model, optimizer, weight average, progress): from the run's checkpoint where one is readable, else fresh."""
    model, optimizer, average = fresh_model(run)
    if not run.checkpoint.exists():
        return model, optimizer, average, Progress()
    try:
        start, saved, elapsed = load_checkpoint(run.checkpoint, model, optimizer, run.resume_fingerprint, average)
    except CorruptCheckpoint as error:
        if run.rank == 0:
            run.checkpoint.unlink(missing_ok=True)
            print(f"removed an unreadable checkpoint ({error}); training {run.label} from step 0")
        model, optimizer, average = fresh_model(run)  # as they were before the failed load
        return model, optimizer, average, Progress()
    if run.rank == 0:
        print(f"resuming {run.label} from step {start} ({run.checkpoint})")
    return model, optimizer, average, Progress(start, saved["steps"], saved["curve"], elapsed)


def wrapped_loss(run: Run, model):
    """model.training_loss as the module the step calls: under DDP across processes, compiled if asked."""
    loss_module = TrainingLoss(model)
    if run.world > 1:
        loss_module = torch.nn.parallel.DistributedDataParallel(loss_module)
    if run.params.train.compile:
        loss_module = torch.compile(loss_module)
    return loss_module


def training_step(run: Run, model, optimizer, loss_module, step: int, average=None) -> tuple[float, torch.Tensor]:
    """One AdamW step on step `step`'s batch and noise (and the weight average's update): (its learning rate, its
    loss, not read back)."""
    scale = run.params.scale
    generator = step_generator(run.params.seed, step, run.device)
    batch = run.rows[torch.randint(len(run.rows), (scale.batch_size,), generator=generator, device=run.device)]
    noise_seed = run.params.seed
    if run.world > 1:  # every rank drew the same global batch; each trains on its slice with its own noise
        local = scale.batch_size // run.world
        batch = batch[run.rank * local:(run.rank + 1) * local]
        noise_seed = run.params.seed + 7919 * (run.rank + 1)
        generator = step_generator(noise_seed, step, run.device)
    if run.params.train.dropout:  # dropout draws from torch's global generator: seeded per step, as the noise is
        torch.manual_seed(noise_seed * 1_000_003 + step)
    lr = learning_rate(step, scale.lr, scale.warmup_steps, scale.steps, run.params.train.min_lr_ratio)
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.on_training_progress(step / scale.steps)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.device.type == "cuda"):
        loss = loss_module(batch, generator)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), run.params.train.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if average is not None:
        average.update_parameters(model)
    loss = loss.detach()
    if run.world > 1:
        dist.all_reduce(loss)
        loss /= run.world
    return lr, loss


def log_window(run: Run, model, progress: Progress, pending: list, seconds: float) -> list[float]:
    """Reads a window of steps' losses back (one wait for the device), checks each, and logs each step."""
    scale = run.params.scale
    values = torch.stack([entry[2] for entry in pending]).float().tolist()
    peak = peak_flops(run.device)
    for (step, lr, _), value in zip(pending, values):
        if not math.isfinite(value):
            raise NonFiniteLoss(f"{run.label}: loss is {value} at step {step + 1}; "
                                f"the last good checkpoint is kept at {run.checkpoint}")
        progress.elapsed += seconds
        # Per step, as SDD's k curriculum changes its cost; only where the chip's peak is known (CUDA).
        flops = model.training_flops_per_row(scale.seq_len) * scale.batch_size
        progress.log.append({"step": step + 1, "loss": round(value, 6), "lr": lr,
                             "tokens_per_s": round(scale.batch_size * scale.seq_len / seconds, 1),
                             "elapsed_s": round(progress.elapsed, 3),
                             "mfu": round(flops / seconds / (peak * run.world), 4) if peak else ""})
    return values


def add_curve_point(run: Run, model, progress: Progress, done: int) -> None:
    """The learning curve's point at step `done`, with the mean training loss since the last point."""
    since = [row["loss"] for row in progress.log[len(progress.log) - (done - (progress.curve[-1]["step"]
                                                                         if progress.curve else 0)):]]
    progress.curve.append(curve_point(model, run.curve_rows, run.params,
                                      run.params.validation.get(run.spec["model"], {}), done,
                                      done * run.params.scale.batch_size * run.params.scale.seq_len, since))


def evaluated(model, average):
    """The weights the curve, the saved model and so evaluation use: the moving average where the recipe keeps one."""
    return model if average is None else average.module


def run_summary(run: Run, model, progress: Progress) -> dict:
    scale, tokens_per_step = run.params.scale, run.params.scale.batch_size * run.params.scale.seq_len
    log, curve = progress.log, progress.curve
    summary = {
        "model": run.label,
        "parameters": count_parameters(model),
        "steps": scale.steps,
        "tokens_seen": scale.steps * tokens_per_step,
        "distinct_train_tokens": run.rows.numel(),
        "epochs": round(scale.steps * tokens_per_step / run.rows.numel(), 3),
        "lr": scale.lr,
        "peak_lr_reached": max(row["lr"] for row in log),
        "train_wall_s": round(progress.elapsed, 2),
        "train_tokens_per_s": round(scale.steps * tokens_per_step / progress.elapsed, 1),
        "final_loss": log[-1]["loss"],
        "final_valid_nll": curve[-1]["valid_nll"] if curve else None,
        "curve_rows": len(run.curve_rows) if curve else 0,
        "device": str(run.device),
        "processes": run.world,
    }
    if curve and model.nll_kind in ("exact", "bound"):  # a denoising cross-entropy has no unigram level to leave
        exit_ = plateau_exit(curve, run.unigram_nll)
        summary.update(unigram_nll=round(run.unigram_nll, 5), plateau_exit_step=exit_["step"],
                       plateau_exit_tokens=exit_["tokens"])
    if peak_flops(run.device):
        summary["mfu"] = round(statistics.median(row["mfu"] for row in log[progress.start:]), 4)
    return summary


def write_run(run: Run, model, progress: Progress, summary: dict, out_dir: Path) -> None:
    save_weights(model, out_dir / "model.safetensors")
    write_json(out_dir / "config.json", {"spec": run.spec, "fingerprint": run.fingerprint})
    write_text(out_dir / "train_log.csv", log_csv(progress.log))
    if progress.curve:
        write_text(out_dir / "learning_curve.csv", log_csv(progress.curve, list(progress.curve[0])))
    write_json(out_dir / "train_summary.json", summary)
    run.checkpoint.unlink(missing_ok=True)


def train(model_name: str, params, train_rows_path: str | Path, out_dir: str | Path,
          checkpoint_dir: str | Path = ".cache/checkpoints", progress: bool = True,
          stop_after: int | None = None, label: str | None = None, valid_rows_path: str | Path | None = None) -> dict:
    """Trains `model_name` and writes model.safetensors, config.json, train_log.csv, train_summary.json and,
    given validation rows, learning_curve.csv.

    label names the run in logs and checkpoints (default: the model name; the judge is an "ar" model
    labelled "judge"). stop_after (tests only) ends the run after that many steps, as an interruption would.
    """
    run = set_up(model_name, params, train_rows_path, valid_rows_path, checkpoint_dir, label or model_name)
    params = run.params  # with a data-constrained run's steps
    model, optimizer, average, state = resume(run)
    model.train()
    loss_module = wrapped_loss(run, model)
    steps = params.scale.steps
    sync_every = SYNC_EVERY if run.device.type == "cuda" else 1
    pending, window_tic = [], time.perf_counter()  # losses not read back yet, and when their window began
    bar = tqdm(range(state.start, steps), initial=state.start, total=steps, desc=f"train {run.label}",
               disable=not progress or run.rank > 0, dynamic_ncols=True)
    for step in bar:
        lr, loss = training_step(run, model, optimizer, loss_module, step, average)
        pending.append((step, lr, loss))
        done = step + 1
        curve_due = run.curve_rows is not None and (done % params.train.curve_every_steps == 0 or done == steps)
        checkpoint_due = done % params.train.checkpoint_every == 0 and done < steps
        if len(pending) < sync_every and not (curve_due or checkpoint_due or done in (steps, stop_after)):
            continue
        seconds = (time.perf_counter() - window_tic) / len(pending)
        values = log_window(run, model, state, pending, seconds)
        if done == state.start + NOTICE_AFTER_STEPS and run.rank == 0:
            notice = cpu_time_notice(run.label, run.device, seconds, steps - done, run.steps_key)
            if notice:
                bar.write(notice)
        pending = []
        bar.set_postfix(loss=f"{values[-1]:.3f}", lr=f"{lr:.2e}")
        if curve_due and run.rank == 0:  # validation time is not training time: outside the timed window
            add_curve_point(run, evaluated(model, average), state, done)
        if checkpoint_due and run.rank == 0:
            save_checkpoint(run.checkpoint, model, optimizer, done, run.resume_fingerprint,
                            {"steps": state.log, "curve": state.curve}, state.elapsed, average)
        window_tic = time.perf_counter()
        if stop_after is not None and done >= stop_after:
            return {"stopped_at": done}
    bar.close()
    if run.rank > 0:
        return {"rank": run.rank}
    summary = run_summary(run, model, state)
    write_run(run, evaluated(model, average), state, summary, Path(out_dir))
    return summary
