"""Benchmark: training step time of AR, MDLM and SDD against a plain reference transformer.

Also timed: "mdlm-every-position", MDLM with its head and log-softmax computed at every position
and the NELBO then taken at the masked ones (what it did before issue 16): the same loss, so MDLM's
ratio to it is the saving of scoring masked positions only, measured in the same run.

The reference is a minimal GPT written here (embedding, pre-norm blocks with SDPA causal
attention and a GELU MLP, tied head, AdamW) at the same size, so the AR/reference and
MDLM/reference ratios show any overhead our models add. The four models train in one
process, taking turns step by step, so a shared machine whose speed drifts slows them
alike; each model's ratio is the median of its step times over the reference's step of
the same turn. Peak memory is measured apart, each model in its own subprocess.

    python benchmarks/train_step.py                   # CPU default scale, from params.yaml
    python benchmarks/train_step.py --scale seed      # any scale of params.yaml
    python benchmarks/train_step.py --d-model 256 --n-layers 6 --steps 30   # a given config
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.io import write_json  # noqa: E402
from textdiff.models import build_model, model_names, model_spec  # noqa: E402
from textdiff.study import load_params  # noqa: E402
from textdiff.device import resolve_device  # noqa: E402
from textdiff.models.mdlm import MaskedDiffusionLM  # noqa: E402


class ReferenceBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff, bias=False), nn.GELU(), nn.Linear(d_ff, d_model, bias=False))

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.ln2(x))


# Bumped whenever the reference model changes: its step times are comparable only within one version
# (2: GPT-2's embedding init; 1 ran mostly on subnormal floats, so its time was the CPU's subnormal penalty).
REFERENCE_VERSION = 2


class ReferenceGPT(nn.Module):
    def __init__(self, vocab, d_model, n_layers, n_heads, d_ff, seq_len):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(seq_len, d_model)
        self.blocks = nn.Sequential(*[ReferenceBlock(d_model, n_heads, d_ff) for _ in range(n_layers)])
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        self.head.weight = self.tok.weight
        # GPT-2's initialisation, not nn.Embedding's N(0, 1): tied to the head, unit-variance embeddings give
        # logits of std ~sqrt(d_model), whose softmax is mostly subnormal floats, and a step's time then
        # measures the host CPU's subnormal penalty (2.2 s against 0.26 s with flush-to-zero, 2026-12-02).
        for embedding in (self.tok, self.pos):
            nn.init.normal_(embedding.weight, std=0.02)

    def training_loss(self, rows, generator):
        x = self.tok(rows[:, :-1]) + self.pos(torch.arange(rows.shape[1] - 1, device=rows.device))
        logits = self.head(self.ln(self.blocks(x)))
        return F.cross_entropy(logits.flatten(0, 1).float(), rows[:, 1:].flatten())


class EveryPositionMDLM(MaskedDiffusionLM):
    """MDLM's loss with the output head and log-softmax at every position (then read at the masked ones)."""

    def denoiser_log_probs(self, noisy, at):
        logits = self.head(self.hidden(noisy)).float()
        logits[..., self.mask_id] = -math.inf
        return logits.log_softmax(dim=-1)[at]


class Trainee:
    """One model of the benchmark with its AdamW optimizer and a fixed batch."""

    def __init__(self, name: str, params, device, compile: bool = False):
        s = params.scale
        torch.manual_seed(0)
        if name == "reference":
            self.model = ReferenceGPT(s.vocab_size, s.d_model, s.n_layers, s.n_heads, s.d_ff, s.seq_len + 1)
        elif name == "mdlm-every-position":
            self.model = build_model(model_spec("mdlm", params))
            self.model.__class__ = EveryPositionMDLM
        else:
            self.model = build_model(model_spec(name, params))
        self.model.to(device)
        self.name, self.device = name, device
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=device.type == "cuda")
        self.generator = torch.Generator(device=device).manual_seed(0)
        self.rows = torch.randint(4, s.vocab_size, (s.batch_size, s.seq_len + (name == "reference")), device=device,
                                  generator=self.generator)
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
        self.loss = torch.compile(self.model.training_loss) if compile else self.model.training_loss

    def step_seconds(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        with self.autocast:
            loss = self.loss(self.rows, self.generator)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss.item()  # waits for the device
        return time.perf_counter() - tic


def interleaved_step_times(names, params, steps: int, warmup: int) -> dict[str, list[float]]:
    """Step times of each model, the models taking turns step by step in this process, so that a
    shared machine whose speed drifts slows them alike."""
    device = resolve_device(params.train.device)
    trainees = [Trainee(name, params, device) for name in names]
    times = {name: [] for name in names}
    for step in range(warmup + steps):
        for trainee in trainees:
            seconds = trainee.step_seconds()
            if step >= warmup:
                times[trainee.name].append(seconds)
    return times


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM, not ru_maxrss: a child's ru_maxrss starts
    from its parent's peak (it survives exec), which would give every model the parent's figure."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def peak_memory(name: str, params, steps: int = 3) -> dict:
    """Peak memory of a few training steps of one model, alone in this process."""
    device = resolve_device(params.train.device)
    trainee = Trainee(name, params, device)
    for _ in range(steps):
        trainee.step_seconds()
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = peak_rss_mb()
    return {"peak_memory_mb": round(peak_mb, 1), "parameters": sum(p.numel() for p in set(trainee.model.parameters())),
            "device": str(device)}


def configured_params(args):
    params = load_params(REPO / "params.yaml")
    raw_scale = dataclasses.asdict(params.scale)
    if args.scale:
        import yaml

        raw = yaml.safe_load((REPO / "params.yaml").read_text())
        raw_scale = raw["scales"][args.scale]
    for key in ("d_model", "n_layers", "n_heads", "d_ff", "batch_size", "seq_len", "vocab_size"):
        value = getattr(args, key)
        if value is not None:
            raw_scale[key] = value
    scale = dataclasses.replace(params.scale, **raw_scale)
    train = dataclasses.replace(params.train, device=args.device)
    return dataclasses.replace(params, scale=scale, train=train)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("cpu", "seed"))
    for key in ("d_model", "n_layers", "n_heads", "d_ff", "batch_size", "seq_len", "vocab_size"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: measure one model in this process
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "train_step.json"))
    args = parser.parse_args()
    params = configured_params(args)
    if args.only:
        print(json.dumps(peak_memory(args.only, params)))
        return

    names = ("reference", *model_names(), "mdlm-every-position")
    times = interleaved_step_times(names, params, args.steps, args.warmup)
    tokens_per_step = params.scale.batch_size * params.scale.seq_len
    rows = []
    for name in names:
        memory = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", name], check=True,
                                capture_output=True, text=True).stdout  # its own process: its own peak
        step_s = statistics.median(times[name])
        row = {"model": name, "median_step_s": round(step_s, 4), "tokens_per_s": round(tokens_per_step / step_s, 1),
               **json.loads(memory.strip().splitlines()[-1]), "steps_timed": args.steps}
        if name != "reference":  # each step against the reference step of the same turn
            row["ratio_to_reference"] = round(statistics.median(
                t / ref for t, ref in zip(times[name], times["reference"])), 3)
        if name == "mdlm":
            row["ratio_to_every_position"] = round(statistics.median(
                t / ref for t, ref in zip(times[name], times["mdlm-every-position"])), 3)
        rows.append(row)
    s = params.scale
    model_params = {name: dataclasses.asdict(params.models[name]) for name in model_names()}
    report = {"config": dataclasses.asdict(s), "model_params": model_params, "device": rows[0]["device"],
              "torch": torch.__version__, "threads": torch.get_num_threads(), "reference_version": REFERENCE_VERSION,
              "results": rows}
    print(f"\nTraining step, {s.d_model}d x {s.n_layers} layers, batch {s.batch_size} x {s.seq_len} tokens, "
          f"vocab {s.vocab_size}, on {rows[0]['device']} (models taking turns; median of "
          f"{args.steps} steps after {args.warmup})")
    print(f"{'model':<10} {'s/step':>9} {'tokens/s':>10} {'peak MB':>9} {'vs ref':>7}")
    for r in rows:
        print(f"{r['model']:<10} {r['median_step_s']:>9.4f} {r['tokens_per_s']:>10.0f} {r['peak_memory_mb']:>9.0f} "
              f"{r.get('ratio_to_reference', 1.0):>7.3f}")
    write_json(args.out, report)


if __name__ == "__main__":
    main()
