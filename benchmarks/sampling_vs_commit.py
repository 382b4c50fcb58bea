"""Benchmark: batch-1 sampling of SDD (per step) and MDLM (a whole 64-step sample), this code against the
code of an earlier commit, and the profile of SDD's sampling step.

The earlier commit's library is extracted from git into a temporary directory as a package of
another name (the library imports itself relatively), so both run in this process with the same
weights, taking turns; the ratio is the median over turns of earlier time / current time (above 1:
the current code is faster), and the samples of both are compared token for token. Then one sampling
step of the current SDD is profiled and its top costs listed: what is left once the needless work is
gone. For SDD, the network alone (one forward on a sampler state, without the sampler's softmax and top-k)
is timed in the same turns: earlier step time / network time is the ceiling, the speed-up a sampler that
cost nothing beyond its network would reach; and the same network compiled by torch.compile (which fuses
the elementwise work between its matrix multiplies: GELU, layer norms, residual adds, rotary), for the
ceiling of a compiled sampler. Both the CPU default and the seed scale (at the same 64-token
sample).

    python benchmarks/sampling_vs_commit.py                  # against db4d920, the code before issue 16
    python benchmarks/sampling_vs_commit.py --before HEAD~3 --turns 9
"""
from __future__ import annotations

import argparse
import copy
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff import study  # noqa: E402
from textdiff.io import write_json  # noqa: E402
from textdiff.models import build_model, model_spec  # noqa: E402

BEFORE = "db4d920"  # the last commit before SDD's sampler lost its needless work (issue 16)


def earlier_library(commit: str, into: Path):
    """The library as it was at `commit`, imported as the package `textdiff_<commit>`."""
    name = f"textdiff_{commit.replace('~', '_').replace('^', '_')}"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "src/textdiff"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "src" / "textdiff").rename(into / name)
    sys.path.insert(0, str(into))
    return importlib.import_module(f"{name}.study"), importlib.import_module(f"{name}.models")


def step_ms(model, length: int, steps: int, seed: int = 0):
    """(milliseconds per sampling step, tokens) of one batch-1 sample."""
    generator = torch.Generator().manual_seed(seed)
    tic = time.perf_counter()
    tokens = model.generate(1, length, generator, steps=steps)
    return (time.perf_counter() - tic) * 1000 / steps, tokens


@torch.no_grad()
def network_ms(model, length: int, calls: int, seed: int = 0) -> float:
    """Milliseconds of one SDD forward (the network f(state, t)) on a batch-1 prior state at t = 1/2."""
    probs, tokens = model.prior(1, length, torch.Generator().manual_seed(seed))
    t = torch.full((1,), 0.5)
    tic = time.perf_counter()
    for _ in range(calls):
        model(probs, tokens, t)
    return (time.perf_counter() - tic) * 1000 / calls


def compare(earlier, current, length: int, steps: int, turns: int, network: bool = False) -> dict:
    """Both models take turns; the median of earlier/current time per turn, and whether the samples agree.
    network: also time the current network alone, eager and compiled, in every turn, and give the ceilings
    (see the docstring)."""
    for model in (earlier, current):  # warm-up
        step_ms(model, length, 2)
    compiled = None
    if network:
        compiled = torch.compile(current, dynamic=False)
        network_ms(compiled, length, 2)  # compiles
    ratios, times, same = [], {"before": [], "now": [], "network": [], "compiled": []}, True
    for turn in range(turns):
        before_ms, before_tokens = step_ms(earlier, length, steps, turn)
        now_ms, now_tokens = step_ms(current, length, steps, turn)
        times["before"].append(before_ms)
        times["now"].append(now_ms)
        ratios.append(before_ms / now_ms)
        same &= torch.equal(before_tokens, now_tokens)
        if network:
            times["network"].append(network_ms(current, length, steps, turn))
            times["compiled"].append(network_ms(compiled, length, steps, turn))
    result = {"before_ms_per_step": round(statistics.median(times["before"]), 3),
              "ms_per_step": round(statistics.median(times["now"]), 3),
              "speedup": round(statistics.median(ratios), 3), "same_samples": same}
    if network:
        for kind in ("network", "compiled"):
            result |= {f"{kind}_ms": round(statistics.median(times[kind]), 3),
                       f"{kind}_ceiling": round(statistics.median(
                           [before / alone for before, alone in zip(times["before"], times[kind])]), 3)}
    return result


def top_costs(model, length: int, rows: int = 8) -> list[dict]:
    """The operators of one sampling step by their own CPU time."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.generate(1, length, torch.Generator().manual_seed(0), steps=4)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3)} for e in events[:rows]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--turns", type=int, default=7)
    parser.add_argument("--steps", type=int, default=8, help="sampling steps per timed call")
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--out", default=str(REPO / "reports/benchmarks/sampling_vs_commit.json"))
    args = parser.parse_args()
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    # The earlier library checks params.yaml as it was then (it refuses keys added since): same model sizes.
    earlier_raw = yaml.safe_load(subprocess.run(["git", "-C", str(REPO), "show", f"{args.before}:params.yaml"],
                                                check=True, capture_output=True, text=True).stdout)
    results = {"before": args.before, "threads": torch.get_num_threads(), "length": args.length, "scales": {}}
    with tempfile.TemporaryDirectory() as tmp:
        old_study, old_models = earlier_library(args.before, Path(tmp))
        for scale in ("cpu", "seed"):
            scaled = {**copy.deepcopy(raw), "scale": scale}
            results["scales"][scale] = {}
            for name, steps in (("sdd", args.steps), ("mdlm", 64)):
                current = build_model(model_spec(name, study.parse_params(copy.deepcopy(scaled)))).eval()
                earlier = old_models.build_model(old_models.model_spec(name, old_study.parse_params(
                    {**copy.deepcopy(earlier_raw), "scale": scale}))).eval()
                current.load_state_dict(earlier.state_dict())
                r = compare(earlier, current, args.length, steps, args.turns, network=name == "sdd")
                if name == "sdd":
                    r["top_costs"] = top_costs(current, args.length)
                results["scales"][scale][name] = r
                what = "per SDD step" if name == "sdd" else f"per MDLM step ({steps} steps a sample)"
                print(f"{scale} {name}: {r['before_ms_per_step']} -> {r['ms_per_step']} ms {what}, "
                      f"speedup x{r['speedup']} (median of {args.turns}), same samples: {r['same_samples']}"
                      + (f"; network alone {r['network_ms']} ms (ceiling x{r['network_ceiling']}), compiled "
                         f"{r['compiled_ms']} ms (ceiling x{r['compiled_ceiling']})" if "network_ms" in r else ""))
                for cost in r.get("top_costs", []):
                    print(f"    {cost['share']:6.1%}  {cost['op']}")
    write_json(args.out, results)


if __name__ == "__main__":
    main()
