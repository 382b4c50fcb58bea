"""Benchmark: generation at batch 1, untrained weights at the params.yaml scale.

Compares, in one run: AR with its KV cache against AR recomputing the whole prefix for
every token; MDLM's cached sampler (the network runs only when a token was unmasked)
against its uncached one; and SDD. Speed does not depend on the weights, so no trained
model is needed. Cases that are compared take turns within every run, so a shared machine
whose speed drifts slows them alike; each figure is the median of --runs after a warm-up.

It also times AR with and without the cache at longer lengths, and one AR forward over L
positions against one over a single position. Recomputing pays a forward over the whole
prefix for each new token, the cache a forward over one position; how much that saves
depends on how much of a forward's cost grows with the positions, which on a small model
is little (its cost is mostly per call: reading the weights, launching tensor ops).

    python benchmarks/generation.py [--runs 7] [--length 64] [--steps 64] [--lengths 64 128 256]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.evaluate import generation_time_ms  # noqa: E402
from textdiff.models import build_model, model_spec  # noqa: E402
from textdiff.params import load_params  # noqa: E402
from textdiff.train import resolve_device  # noqa: E402


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


def ar_by_length(params, device, lengths: list[int], runs: int) -> tuple[list[dict], dict[int, float]]:
    """KV cache against recompute at each length, and what one forward costs at 1 and at each length."""
    spec = {**model_spec("ar", params), "seq_len": max(lengths)}  # room for the longest sample
    model = build_model(spec).to(device).eval()
    forward = forward_ms(model, [1, *lengths], runs=max(runs, 15))
    rows = []
    for length in lengths:
        cached, recompute = generation_time_ms([(model, {"use_cache": True}), (model, {"use_cache": False})],
                                               length, runs, seed=0)
        rows.append({"length": length, "kv_cache_ms": round(cached, 2), "recompute_ms": round(recompute, 2),
                     "speedup": round(recompute / cached, 2),
                     "forward_cost_vs_one_position": round(forward[length] / forward[1], 2)})
        print(f"  AR at {length} tokens: cache {cached:.1f} ms, recompute {recompute:.1f} ms", file=sys.stderr)
    return rows, forward


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=64, help="sampling steps of MDLM and SDD")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256],
                        help="sample lengths of the AR KV-cache comparison")
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "generation.json"))
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    device = resolve_device(params.train.device)
    torch.manual_seed(0)
    models = {name: build_model(model_spec(name, params)).to(device).eval() for name in ("ar", "mdlm", "sdd")}
    groups = [  # the cases within a group are compared, so they are timed in turns
        [("AR, KV cache", "ar", {"use_cache": True}), ("AR, recompute prefix", "ar", {"use_cache": False})],
        [("MDLM, cached", "mdlm", {"use_cache": True, "steps": args.steps}),
         ("MDLM, uncached", "mdlm", {"use_cache": False, "steps": args.steps})],
        [("SDD", "sdd", {"steps": args.steps})],
    ]
    rows = []
    for group in groups:
        times = generation_time_ms([(models[name], sampling) for _, name, sampling in group], args.length,
                                   args.runs, seed=0)
        for (label, name, sampling), ms in zip(group, times):
            rows.append({"case": label, "model": name, "sampling": sampling, "ms_per_sample": round(ms, 2),
                         "tokens_per_s": round(args.length / ms * 1000, 1)})
            print(f"  measured {label}: {ms:.1f} ms", file=sys.stderr)
    by_case = {r["case"]: r["ms_per_sample"] for r in rows}
    speedups = {"ar_kv_cache": round(by_case["AR, recompute prefix"] / by_case["AR, KV cache"], 2),
                "mdlm_cache": round(by_case["MDLM, uncached"] / by_case["MDLM, cached"], 2)}
    by_length, forward = ar_by_length(params, device, args.lengths, args.runs)
    report = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "length": args.length, "batch_size": 1, "steps": args.steps, "runs": args.runs,
              "results": rows, "speedups": speedups, "ar_kv_cache_by_length": by_length,
              "ar_forward_ms": {str(n): round(ms, 3) for n, ms in forward.items()}}
    print(f"\nGeneration at batch 1, {args.length} tokens, on {device} (median of {args.runs} after a warm-up)")
    print(f"{'case':<22} {'ms/sample':>10} {'tokens/s':>9}")
    for r in rows:
        print(f"{r['case']:<22} {r['ms_per_sample']:>10.1f} {r['tokens_per_s']:>9.0f}")
    print(f"KV cache speed-up (AR): {speedups['ar_kv_cache']}x; MDLM cache speed-up: {speedups['mdlm_cache']}x")
    print(f"\n{'AR tokens':>9} {'cache ms':>9} {'recompute ms':>13} {'speed-up':>9} {'forward(L)/forward(1)':>22}")
    for r in by_length:
        print(f"{r['length']:>9} {r['kv_cache_ms']:>9.1f} {r['recompute_ms']:>13.1f} {r['speedup']:>9.2f} "
              f"{r['forward_cost_vs_one_position']:>22.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
