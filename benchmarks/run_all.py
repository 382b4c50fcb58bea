"""Runs every CPU benchmark and writes reports/benchmarks/summary.md from their JSON results
(README quotes that file). Run from the repository root after a complete `dvc repro`.

    python benchmarks/run_all.py            # all three benchmarks, then the summary
    python benchmarks/run_all.py --summary  # only rewrite the summary from the JSON files
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "reports" / "benchmarks"


def kv_cache_lines(gen: dict) -> list[str]:
    """The AR cache against recompute by sample length, beside the ideal cache's speed-up."""
    rows = gen.get("ar_kv_cache_by_length")
    if not rows:
        return []
    forward_ms = gen["ar_forward_ms_by_positions"]
    at_main = next((r for r in rows if r["length"] == gen["length"]), rows[0])
    lines = ["", "AR with and without the KV cache by sample length (same model size, room for "
             f"{len(forward_ms)} positions). *Ideal* is recomputing's cost over L forwards of one position, "
             "the most any cache can gain:", "",
             "| tokens | KV cache (ms) | recompute (ms) | speed-up | ideal |", "|---|---|---|---|---|"]
    lines += [f"| {r['length']} | {r['kv_cache_ms']:.1f} | {r['recompute_ms']:.1f} | {r['speedup']:.2f}x "
              f"| {r['ideal_speedup']:.2f}x |" for r in rows]
    n = at_main["length"]
    lines += ["", f"One AR forward over {n} positions costs {forward_ms[n - 1] / forward_ms[0]:.1f}x a forward over one "
              f"({forward_ms[0]:.2f} ms against {forward_ms[n - 1]:.2f} ms): at this model size a forward is mostly "
              f"fixed per-call cost, so at {n} tokens even an ideal cache gains only {at_main['ideal_speedup']:.1f}x, "
              f"and ours gains {at_main['speedup']:.1f}x ({at_main['speedup'] / at_main['ideal_speedup']:.0%} of it)."]
    longest = rows[-1]
    if longest["length"] > n:
        lines[-1] += (f" At {longest['length']} tokens, where recomputing costs more per token, the cache gains "
                      f"{longest['speedup']:.1f}x (ideal {longest['ideal_speedup']:.1f}x).")
    return lines


def summary() -> str:
    train = json.loads((OUT / "train_step.json").read_text())
    gen = json.loads((OUT / "generation.json").read_text())
    pipe = json.loads((OUT / "pipeline.json").read_text())
    c = train["config"]
    lines = [f"Training step ({c['d_model']}d, {c['n_layers']} layers, batch {c['batch_size']} x {c['seq_len']} tokens, "
             f"vocab {c['vocab_size']}, k={c['k']}; {train['device']}, {train['threads']} threads; "
             "median step time; reference: a plain SDPA transformer of the same size):", "",
             "| model | s/step | tokens/s | peak memory (MB) | vs reference |", "|---|---|---|---|---|"]
    for r in train["results"]:
        lines.append(f"| {r['model']} | {r['median_step_s']:.3f} | {r['tokens_per_s']:.0f} | {r['peak_memory_mb']:.0f} "
                     f"| {r.get('ratio_to_reference', 1.0):.2f} |")
    lines += ["", f"Generation at batch 1, {gen['length']} tokens, {gen['steps']} sampling steps for MDLM and SDD "
              f"({gen['device']}, median of {gen['runs']} runs after a warm-up):", "",
              "| case | ms per sample | tokens/s |", "|---|---|---|"]
    lines += [f"| {r['case']} | {r['ms_per_sample']:.1f} | {r['tokens_per_s']:.0f} |" for r in gen["results"]]
    lines += kv_cache_lines(gen)
    lines += ["", f"KV-cache speed-up for AR: {gen['speedups']['ar_kv_cache']:.1f}x; "
              f"MDLM cached vs uncached sampler: {gen['speedups']['mdlm_cache']:.1f}x. "
              f"A no-change `dvc repro` takes {pipe['no_change_repro_s']['median']:.2f} s (median of "
              f"{len(pipe['no_change_repro_s']['runs'])})."]
    full = OUT / "full_repro.json"
    if full.exists():
        f = json.loads(full.read_text())
        lines += ["", f"The whole study, `dvc repro --force` at the {f['scale']} scale: {f['wall_s'] / 60:.1f} min "
                      f"on {f['cpu_cores']} CPU cores ({len(f['stages_run'])} stages, measured {f['date']})."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args()
    if not args.summary:
        for script in ("train_step.py", "generation.py", "pipeline.py"):
            subprocess.run([sys.executable, str(REPO / "benchmarks" / script)], cwd=REPO, check=True)
    (OUT / "summary.md").write_text(summary())
    print(summary())


if __name__ == "__main__":
    main()
