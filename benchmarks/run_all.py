"""Runs every CPU benchmark and writes reports/benchmarks/summary.md from their JSON results
(README quotes that file). Run from the repository root after a complete `dvc repro`.

    python benchmarks/run_all.py            # every benchmark, then the summary
    python benchmarks/run_all.py --summary  # only rewrite the summary from the JSON files
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "reports" / "benchmarks"
sys.path.insert(0, str(REPO / "src"))

from textdiff.io import write_text  # noqa: E402


def by_length_lines(gen: dict) -> list[str]:
    """A model's two generation cases by sample length (AR: KV cache against recompute), and what a forward
    over L positions costs."""
    study = gen.get("by_length")
    if not study:
        return []
    rows, forward, fast, slow = study["rows"], study["forward_ms"], study["fast"], study["slow"]
    lines = ["", f"{study['model']}, {fast} against {slow}, by sample length (same model size, room for "
             f"{rows[-1]['length']} positions). The last column is what one forward over L positions costs against "
             f"one over a single position: recomputing pays the former per token at the end of a sample, the cache "
             "the latter:", "",
             f"| tokens | {fast} (ms) | {slow} (ms) | speed-up | forward(L) / forward(1) |", "|---|---|---|---|---|"]
    lines += [f"| {r['length']} | {r['fast_ms']:.1f} | {r['slow_ms']:.1f} | {r['speedup']:.2f}x "
              f"| {r['forward_cost_vs_one_position']:.2f} |" for r in rows]
    first = rows[0]
    lines += ["", f"A forward over {first['length']} positions costs only {first['forward_cost_vs_one_position']:.1f}x one "
              f"over a single position ({forward[str(first['length'])]:.2f} ms against {forward['1']:.2f} ms): at this "
              "model size a forward's cost is mostly per call (reading the weights, launching many small tensor ops), not "
              "per position, so skipping the prefix saves less than its length suggests. The gain grows with length: "
              + "; ".join(f"{r['speedup']:.1f}x at {r['length']} tokens" for r in rows) + "."]
    return lines


def _threads(count: int) -> str:
    return f"{count} thread{'s' if count != 1 else ''}"


def cross_host_lines() -> list[str]:
    """The committed study rerun on another CPU (benchmarks/cross_host.py): what came out bit-identical and how
    far each model's validation NLL moved, against its range over the training seeds."""
    path = OUT / "cross_host.json"
    if not path.exists():
        return []
    c = json.loads(path.read_text())
    models = c["models"]
    identical = sum(m["weights_identical"] for m in models.values())
    moved = "; ".join(f"{name.upper()} {m['change']:+.3f} ({m['committed_nll']:.3f} to {m['here_nll']:.3f}, "
                      f"{'within' if m['within_seed_range'] else 'outside'} its {m['seeds']} seeds' "
                      f"{m['seed_nll_range'][0]:.3f}-{m['seed_nll_range'][1]:.3f})" for name, m in models.items())
    same_data = [p for p in c["outputs_identical"] if p.startswith("data/")]
    return ["", f"The same study on another CPU ({', '.join(c['cpu']['isa_flags'])}; {c['date']}; against "
                f"{c['against'][:7]}'s outputs): {len(same_data)} data outputs (prepared stories, tokenizer, packed "
                f"rows) came out bit-identical, but {identical} of {len(models)} models' weights did, and the "
                f"judge's {'did' if 'models/judge/model.safetensors' in c['outputs_identical'] else 'did not'}: "
                "float kernels are chosen by the CPU's instruction set, and training amplifies their last bits. "
                f"Validation NLL per token moved by {moved}. The committed outputs stay those of the machine that "
                "ran the committed study: this one's would replace the judge every collected experiment is bound to."]


def summary() -> str:
    train = json.loads((OUT / "train_step.json").read_text())
    gen = json.loads((OUT / "generation.json").read_text())
    pipe = json.loads((OUT / "pipeline.json").read_text())
    c = train["config"]
    lines = [f"Training step ({c['d_model']}d, {c['n_layers']} layers, batch {c['batch_size']} x {c['seq_len']} tokens, "
             f"vocab {c['vocab_size']}; {train['device']}, {_threads(train['threads'])}; "
             "median step time; reference: a plain SDPA transformer of the same size; each model's own params in "
             "train_step.json):", "",
             "| model | s/step | tokens/s | peak memory (MB) | vs reference |", "|---|---|---|---|---|"]
    for r in train["results"]:
        lines.append(f"| {r['model']} | {r['median_step_s']:.3f} | {r['tokens_per_s']:.0f} | {r['peak_memory_mb']:.0f} "
                     f"| {r.get('ratio_to_reference', 1.0):.2f} |")
    mdlm = next((r for r in train["results"] if "ratio_to_every_position" in r), None)
    if mdlm:
        lines += ["", f"MDLM scores only its masked positions: its step takes {mdlm['ratio_to_every_position']:.2f}x "
                  "the time of the same loss with the output head and log-softmax at every position "
                  "(`mdlm-every-position`, timed in the same run)."]
    lines += ["", f"Generation at batch 1, {gen['length']} tokens, {gen['steps']} sampling steps where a sampler takes "
              f"steps ({gen['device']}, median of {gen['runs']} runs after a warm-up):", "",
              "| case | ms per sample | tokens/s |", "|---|---|---|"]
    lines += [f"| {r['case']} | {r['ms_per_sample']:.1f} | {r['tokens_per_s']:.0f} |" for r in gen["results"]]
    lines += by_length_lines(gen)
    lines += ["", "; ".join(f"{s['model']}: {s['fast']} {s['speedup']:.1f}x faster than {s['slow']}"
                            for s in gen["speedups"])
              + f". A no-change `dvc repro` takes {pipe['no_change_repro_s']['median']:.2f} s (median of "
              f"{len(pipe['no_change_repro_s']['runs'])})."]
    versus = OUT / "sampling_vs_commit.json"
    if versus.exists():
        v = json.loads(versus.read_text())
        lines += ["", f"Batch-1 sampling against the code of {v['before']} (before issue 16), same weights, taking "
                  f"turns ({_threads(v['threads'])}, {v['length']} tokens; speed-up = earlier time / current time, "
                  "median over turns):", "", "| scale | model | before (ms/step) | now (ms/step) | speed-up | same samples |",
                  "|---|---|---|---|---|---|"]
        for scale, models in v["scales"].items():
            for name, r in models.items():
                lines.append(f"| {scale} | {name} | {r['before_ms_per_step']:.2f} | {r['ms_per_step']:.2f} "
                             f"| {r['speedup']:.2f}x | {'yes' if r['same_samples'] else 'no'} |")
        for scale, models in v["scales"].items():
            sdd = models["sdd"]
            lines += ["", f"What is left of an SDD sampling step at the {scale} scale (share of its CPU time): "
                      + ", ".join(f"{c['op']} {c['share']:.0%}" for c in sdd["top_costs"][:6]) + "."]
            if "network_ms" in sdd:
                lines[-1] += (f" The network alone (one forward, no softmax or top-k) takes {sdd['network_ms']:.2f} ms "
                              f"of the {sdd['ms_per_step']:.2f} ms step, so a sampler that cost nothing beyond it would "
                              f"be at most {sdd['network_ceiling']:.2f}x faster than {v['before']}; compiled "
                              f"(torch.compile fusing the elementwise work) it takes {sdd['compiled_ms']:.2f} ms, "
                              f"a ceiling of {sdd['compiled_ceiling']:.2f}x.")
    head = OUT / "validation_head_bias.json"
    if head.exists():
        h = json.loads(head.read_text())
        lines += ["", f"Validation on the first {h['head_rows']} rows of the file (what the study scored before) "
                  f"against all {h['all_rows']} (what it scores now), the same trained models:", "",
                  f"| model | perplexity, first {h['head_rows']} rows | perplexity, all rows | first rows optimistic by |",
                  "|---|---|---|---|"]
        for name, r in h["models"].items():
            bound = "≤ " if r["all"]["perplexity_kind"] == "bound" else ""
            lines.append(f"| {name} | {bound}{r['head']['perplexity']:.2f} | {bound}{r['all']['perplexity']:.2f} "
                         f"| {r['nats_optimistic']:.3f} nats per token |")
    trajectory = OUT / "retrain_trajectory.json"
    if trajectory.exists():
        t = json.loads(trajectory.read_text())
        lines += ["", f"{t['model'].upper()} retrained by this code against the run of {t['before']} (the same loss "
                  f"function of the same draws, computed differently): the per-step training losses agree within "
                  f"{t['largest_gap_before_it']:.0e} nats up to step {t['first_step_apart'] - 1}, then part (more than "
                  f"{t['tolerance']:.0e} from step {t['first_step_apart']}): training amplifies float rounding. Mean "
                  f"loss over the last 50 steps: {t['mean_loss_last_50_before']:.3f} before, "
                  f"{t['mean_loss_last_50_now']:.3f} now."]
    full = OUT / "full_repro.json"
    if full.exists():
        f = json.loads(full.read_text())
        lines += ["", f"The whole study, `dvc repro --force` at the {f['scale']} scale: {f['wall_s'] / 60:.1f} min "
                      f"on {f['cpu_cores']} CPU cores ({len(f['stages_run'])} stages, measured {f['date']}); "
                      + ("within" if f["wall_s"] < 30 * 60 else "over") + " the CPU default's 30-minute target."]
        if f.get("earlier"):  # the same stages measured on other days: the machine's drift, in the study's time
            walls = [e["wall_s"] / 60 for e in f["earlier"]] + [f["wall_s"] / 60]
            dates = ", ".join(sorted({e["date"] for e in f["earlier"]} | {f["date"]}))
            lines[-1] += (f" Over its {len(walls)} measurements ({dates}): median {statistics.median(walls):.1f} min, "
                          f"from {min(walls):.1f} to {max(walls):.1f}.")
        if "reference_step_s" in f and f.get("reference_version") == train.get("reference_version"):
            # the machine's speed during that run, against the train-step table above (the same reference model)
            reference = next(r["median_step_s"] for r in train["results"] if r["model"] == "reference")
            before, after = f["reference_step_s"]
            lines[-1] += (f" The machine ran the reference training step in {before:.3f} s before it and {after:.3f} s "
                          f"after (the table above: {reference:.3f} s), so the study took {f['reference_steps']} "
                          f"reference steps: {f['reference_steps'] * reference / 60:.1f} min at the table's speed.")
    lines += cross_host_lines()
    phases = OUT / "evaluate_phases.json"
    if phases.exists():  # which cut would shorten the study: the shares of each evaluation's time
        e = json.loads(phases.read_text())
        names = {"validation": "validation over the whole split", "diagnostics": "diagnostics",
                 "batch1_timing": "batch-1 timings",
                 "sweep_generation": "the sample sweep's generations (the default setting's among them)",
                 "judge_scoring": "the judge's scoring of them", "other": "the rest"}
        lines += ["", f"Where evaluation's time goes ({_threads(e['threads'])}"
                  + (f"; {e['note']}" if e["note"] else "") + f"; {e['date']}):", "",
                  "| stage | " + " | ".join(names.values()) + " | total (s) |", "|---" * (len(names) + 2) + "|"]
        for name, r in e["models"].items():
            lines.append(f"| evaluate@{name} | " + " | ".join(f"{r['share'][key]:.0%}" for key in names)
                         + f" | {r['seconds']['total']:.0f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args()
    if not args.summary:
        for script, *script_args in (["train_step.py"], ["generation.py"], ["sampling_vs_commit.py"],
                                     ["validation_head_bias.py"], ["retrain_trajectory.py"], ["pipeline.py"],
                                     ["evaluate_phases.py", "sdd", "udlm"]):
            subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *script_args], cwd=REPO, check=True)
    write_text(OUT / "summary.md", summary())
    print(summary())


if __name__ == "__main__":
    main()
