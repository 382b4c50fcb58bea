"""Benchmark: generation at batch 1, untrained weights at the params.yaml scale.

Times every registered model at its default sampling setting, and compares the cases each
model names in its `benchmark_cases` (models/*.py): AR with its KV cache against AR
recomputing the whole prefix for every token; MDLM's cached sampler (the network runs only
when a token was unmasked) against its uncached one. Speed does not depend on the weights,
so no trained model is needed. Cases that are compared take turns within every run, so a
shared machine whose speed drifts slows them alike; each figure is the median of --runs
after a warm-up.

For a model with `benchmark_by_length` (AR) it also times the two cases at longer lengths,
and one forward over L positions against one over a single position. Recomputing pays a forward over the whole
prefix for each new token, the cache a forward over one position; how much that saves
depends on how much of a forward's cost grows with the positions, which on a small model
is little (its cost is mostly per call: reading the weights, launching tensor ops).

    python benchmarks/generation.py [--runs 7] [--length 64] [--steps 64] [--lengths 64 128 256]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.evaluate import generation_time_ms  # noqa: E402
from textdiff.io import write_json  # noqa: E402
from textdiff.models import MODELS, build_model, model_spec  # noqa: E402
from textdiff.study import load_params  # noqa: E402
from textdiff.device import resolve_device  # noqa: E402


@torch.no_grad()
def forward_ms(model, positions: list[int], runs: int) -> dict[int, float]:
    """Median ms of one AR forward (embedding to logits) over n positions, for each n; the sizes take
    turns within every run, each timed right after an untimed call of the same size."""
    tokens = torch.randint(model.embed.num_embeddings, (1, max(positions)), device=model.device,
                           generator=torch.Generator(device=model.device).manual_seed(0))
    times = {n: [] for n in positions}
    for _ in range(runs):
        for n in positions:
            model.logits(tokens[:, :n])
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            tic = time.perf_counter()
            model.logits(tokens[:, :n])
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            times[n].append((time.perf_counter() - tic) * 1000)
    return {n: statistics.median(t) for n, t in times.items()}


def by_length(name: str, params, device, lengths: list[int], runs: int) -> tuple[list[dict], dict[int, float]]:
    """A model's two benchmark cases (e.g. AR's KV cache against recompute) at each length, and what one
    forward costs at 1 and at each length."""
    spec = {**model_spec(name, params), "seq_len": max(lengths)}  # room for the longest sample
    model = build_model(spec).to(device).eval()
    forward = forward_ms(model, [1, *lengths], runs=max(runs, 15))
    (fast_case, fast), (slow_case, slow) = model.benchmark_cases.items()
    rows = []
    for length in lengths:
        fast_ms, slow_ms = generation_time_ms([(model, fast), (model, slow)], length, runs, seed=0)
        rows.append({"length": length, "fast_ms": round(fast_ms, 2), "slow_ms": round(slow_ms, 2),
                     "speedup": round(slow_ms / fast_ms, 2),
                     "forward_cost_vs_one_position": round(forward[length] / forward[1], 2)})
        print(f"  {name} at {length} tokens: {fast_case} {fast_ms:.1f} ms, {slow_case} {slow_ms:.1f} ms", file=sys.stderr)
    return rows, forward


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=64, help="sampling steps of the samplers that take steps")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256],
                        help="sample lengths of the by-length comparison (AR's KV cache)")
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "generation.json"))
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    device = resolve_device(params.train.device)
    torch.manual_seed(0)
    rows, speedups = [], []
    for name, model_class in MODELS.items():
        model = build_model(model_spec(name, params)).to(device).eval()
        default = {**params.sample[name], **({"steps": args.steps} if "steps" in params.sample[name] else {})}
        cases = model_class.benchmark_cases or {"": {}}  # the cases of one model are compared: timed in turns
        times = generation_time_ms([(model, {**default, **case}) for case in cases.values()], args.length,
                                   args.runs, seed=0)
        for (case, sampling), ms in zip(cases.items(), times):
            label = f"{model_class.display_name}, {case}" if case else model_class.display_name
            rows.append({"case": label, "model": name, "sampling": sampling, "ms_per_sample": round(ms, 2),
                         "tokens_per_s": round(args.length / ms * 1000, 1)})
            print(f"  measured {label}: {ms:.1f} ms", file=sys.stderr)
        if len(cases) == 2:
            (fast, slow), (fast_ms, slow_ms) = cases, times
            speedups.append({"model": model_class.display_name, "fast": fast, "slow": slow,
                             "speedup": round(slow_ms / fast_ms, 2)})
    report = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "length": args.length, "batch_size": 1, "steps": args.steps, "runs": args.runs,
              "results": rows, "speedups": speedups}
    for name, model_class in MODELS.items():
        if model_class.benchmark_by_length:
            lengths, forward = by_length(name, params, device, args.lengths, args.runs)
            report["by_length"] = {"model": model_class.display_name, "fast": list(model_class.benchmark_cases)[0],
                                   "slow": list(model_class.benchmark_cases)[1], "rows": lengths,
                                   "forward_ms": {str(n): round(ms, 3) for n, ms in forward.items()}}
    print(f"\nGeneration at batch 1, {args.length} tokens, on {device} (median of {args.runs} after a warm-up)")
    for r in rows:
        print(f"{r['case']:<22} {r['ms_per_sample']:>10.1f} ms {r['tokens_per_s']:>9.0f} tokens/s")
    for s in speedups:
        print(f"{s['model']}: {s['fast']} is {s['speedup']}x faster than {s['slow']}")
    write_json(args.out, report)

if __name__ == "__main__":
    main()
