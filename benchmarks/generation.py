"""Benchmark: generation at batch 1, 64 tokens, untrained weights at the params.yaml scale.

Compares, in one run: AR with its KV cache against AR recomputing the whole prefix for
every token; MDLM's cached sampler (the network runs only when a token was unmasked)
against its uncached one; and SDD. Each figure is the median of --runs timed samples
after one warm-up. Speed does not depend on the weights, so no trained model is needed.

    python benchmarks/generation.py [--runs 7] [--length 64] [--steps 64]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.evaluate import generation_time_ms  # noqa: E402
from textdiff.models import build_model, model_spec  # noqa: E402
from textdiff.params import load_params  # noqa: E402
from textdiff.train import resolve_device  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=64, help="sampling steps of MDLM and SDD")
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "generation.json"))
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    device = resolve_device(params.train.device)
    torch.manual_seed(0)
    models = {name: build_model(model_spec(name, params)).to(device).eval() for name in ("ar", "mdlm", "sdd")}
    cases = [
        ("AR, KV cache", "ar", {"use_cache": True}),
        ("AR, recompute prefix", "ar", {"use_cache": False}),
        ("MDLM, cached", "mdlm", {"use_cache": True, "steps": args.steps}),
        ("MDLM, uncached", "mdlm", {"use_cache": False, "steps": args.steps}),
        ("SDD", "sdd", {"steps": args.steps}),
    ]
    rows = []
    for label, name, sampling in cases:
        ms = generation_time_ms(models[name], args.length, args.runs, sampling, seed=0)
        rows.append({"case": label, "model": name, "sampling": sampling, "ms_per_sample": round(ms, 2),
                     "tokens_per_s": round(args.length / ms * 1000, 1)})
        print(f"  measured {label}: {ms:.1f} ms", file=sys.stderr)
    by_case = {r["case"]: r["ms_per_sample"] for r in rows}
    speedups = {"ar_kv_cache": round(by_case["AR, recompute prefix"] / by_case["AR, KV cache"], 2),
                "mdlm_cache": round(by_case["MDLM, uncached"] / by_case["MDLM, cached"], 2)}
    report = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "length": args.length, "batch_size": 1, "steps": args.steps, "runs": args.runs,
              "results": rows, "speedups": speedups}
    print(f"\nGeneration at batch 1, {args.length} tokens, on {device} (median of {args.runs} after a warm-up)")
    print(f"{'case':<22} {'ms/sample':>10} {'tokens/s':>9}")
    for r in rows:
        print(f"{r['case']:<22} {r['ms_per_sample']:>10.1f} {r['tokens_per_s']:>9.0f}")
    print(f"KV cache speed-up (AR): {speedups['ar_kv_cache']}x; MDLM cache speed-up: {speedups['mdlm_cache']}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
