"""Benchmark: training step time of AR, MDLM and SDD against a plain reference transformer.

The reference is a minimal GPT written here (embedding, pre-norm blocks with SDPA causal
attention and a GELU MLP, tied head, AdamW) at the same size, so the AR/reference and
MDLM/reference ratios show any overhead our models add. Every model runs in its own
subprocess (so each peak-memory figure is its own), the same number of steps, and the
median step time is reported; the reference runs first and last, and its two medians
are averaged, to expose drift on a shared machine.

    python benchmarks/train_step.py                   # CPU default scale, from params.yaml
    python benchmarks/train_step.py --scale seed      # any scale of params.yaml
    python benchmarks/train_step.py --d-model 256 --n-layers 6 --steps 30   # a given config
"""
from __future__ import annotations

import argparse
import dataclasses
import json
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

from textdiff.models import build_model, model_spec  # noqa: E402
from textdiff.params import load_params  # noqa: E402
from textdiff.train import resolve_device  # noqa: E402


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


class ReferenceGPT(nn.Module):
    def __init__(self, vocab, d_model, n_layers, n_heads, d_ff, seq_len):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(seq_len, d_model)
        self.blocks = nn.Sequential(*[ReferenceBlock(d_model, n_heads, d_ff) for _ in range(n_layers)])
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        self.head.weight = self.tok.weight

    def training_loss(self, rows, generator):
        x = self.tok(rows[:, :-1]) + self.pos(torch.arange(rows.shape[1] - 1, device=rows.device))
        logits = self.head(self.ln(self.blocks(x)))
        return F.cross_entropy(logits.flatten(0, 1).float(), rows[:, 1:].flatten())


def measure(name: str, params, steps: int, warmup: int) -> dict:
    """Median AdamW step time of one model, in this process."""
    device = resolve_device(params.train.device)
    s = params.scale
    torch.manual_seed(0)
    if name == "reference":
        model = ReferenceGPT(s.vocab_size, s.d_model, s.n_layers, s.n_heads, s.d_ff, s.seq_len + 1).to(device)
    else:
        model = build_model(model_spec(name, params)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    rows = torch.randint(4, s.vocab_size, (s.batch_size, s.seq_len + (name == "reference")), device=device,
                         generator=generator)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for step in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        with autocast:
            loss = model.training_loss(rows, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        if step >= warmup:
            times.append(time.perf_counter() - tic)
    median = statistics.median(times)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"model": name, "median_step_s": round(median, 4), "tokens_per_s": round(s.batch_size * s.seq_len / median, 1),
            "peak_memory_mb": round(peak_mb, 1), "parameters": sum(p.numel() for p in set(model.parameters())),
            "steps_timed": steps, "device": str(device)}


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
        print(json.dumps(measure(args.only, params, args.steps, args.warmup)))
        return

    passthrough = [arg for arg in sys.argv[1:] if not arg.startswith("--out")]
    results = []
    for name in ("reference", "ar", "mdlm", "sdd", "reference"):
        out = subprocess.run([sys.executable, __file__, *passthrough, "--only", name], check=True,
                             capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  measured {name}: {results[-1]['median_step_s']:.4f} s/step", file=sys.stderr)
    reference_runs = [r for r in results if r["model"] == "reference"]
    reference_s = statistics.mean(r["median_step_s"] for r in reference_runs)
    rows = [reference_runs[0] | {"median_step_s": round(reference_s, 4),
                                 "tokens_per_s": round(params.scale.batch_size * params.scale.seq_len / reference_s, 1),
                                 "reference_runs_s": [r["median_step_s"] for r in reference_runs]}]
    rows += [r | {"ratio_to_reference": round(r["median_step_s"] / reference_s, 3)} for r in results[1:4]]
    s = params.scale
    report = {"config": dataclasses.asdict(s) | {"k": params.k}, "device": rows[0]["device"],
              "torch": torch.__version__, "threads": torch.get_num_threads(), "results": rows}
    print(f"\nTraining step, {s.d_model}d x {s.n_layers} layers, batch {s.batch_size} x {s.seq_len} tokens, "
          f"vocab {s.vocab_size}, on {rows[0]['device']} (median of {args.steps} steps after {args.warmup})")
    print(f"{'model':<10} {'s/step':>9} {'tokens/s':>10} {'peak MB':>9} {'vs ref':>7}")
    for r in rows:
        print(f"{r['model']:<10} {r['median_step_s']:>9.4f} {r['tokens_per_s']:>10.0f} {r['peak_memory_mb']:>9.0f} "
              f"{r.get('ratio_to_reference', 1.0):>7.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
