"""Benchmark: the committed study rerun on this machine. Run it after `benchmarks/full_repro.py` has rerun every
stage here and before the committed outputs are restored (`git checkout -- .` on the outputs, `dvc.lock` included).

The study repeats bitwise on one machine, but float kernels are chosen by the CPU's instruction set (MKL, oneDNN
and ATen dispatch by it), so on another CPU the same code, params and data can give other weights. This writes
reports/benchmarks/cross_host.json: this CPU, which tracked outputs came out bit-identical to the committed
ones, and how far each model's validation NLL moved, set against its range over the training seeds (the
committed run and the `seeds` group's runs, from eval/experiments/seeds.json).

    TINYSTORIES_DIR=../shared/data/tinystories python benchmarks/full_repro.py
    python benchmarks/cross_host.py                  # compares with HEAD's outputs
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from full_repro import cpu  # noqa: E402
from textdiff.io import write_json  # noqa: E402
from textdiff.models import model_names  # noqa: E402


def at_commit(commit: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout


def output_hashes(lock_text: str) -> dict[str, str]:
    """Every stage output's md5 in a dvc.lock; stage timings (wall times, different on every run) left out."""
    lock = yaml.safe_load(lock_text)
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])
            if not out["path"].startswith("timings/")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="HEAD", help="the commit whose outputs are the committed study")
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "cross_host.json"))
    args = parser.parse_args()
    committed = output_hashes(at_commit(args.against, "dvc.lock"))
    here = output_hashes((REPO / "dvc.lock").read_text())
    if committed == here:
        sys.exit("cross_host: every output equals the committed one; nothing to compare (run full_repro.py first)")
    seed_runs = json.loads((REPO / "eval" / "experiments" / "seeds.json").read_text())["runs"].values()
    models = {}
    for name in model_names():
        path = f"eval/{name}/metrics.json"
        before = json.loads(at_commit(args.against, path))["nll_per_token"]
        now = json.loads((REPO / path).read_text())["nll_per_token"]
        seeds = [before] + [run["models"][name]["metrics"]["nll_per_token"] for run in seed_runs
                            if name in run["models"]]
        models[name] = {"committed_nll": before, "here_nll": now, "change": round(now - before, 5),
                        "weights_identical": committed[f"models/{name}/model.safetensors"]
                        == here[f"models/{name}/model.safetensors"],
                        "seed_nll_range": [min(seeds), max(seeds)], "seeds": len(seeds),
                        "within_seed_range": min(seeds) <= now <= max(seeds)}
    against = subprocess.run(["git", "rev-parse", args.against], cwd=REPO, check=True, capture_output=True,
                             text=True).stdout.strip()
    result = {"date": datetime.date.today().isoformat(), "against": against,
              "cpu": cpu(), "outputs_identical": sorted(p for p in here if committed.get(p) == here[p]),
              "outputs_differing": sorted(p for p in here if committed.get(p) != here[p]), "models": models}
    write_json(args.out, result)
    print(json.dumps(models, indent=1))


if __name__ == "__main__":
    main()
