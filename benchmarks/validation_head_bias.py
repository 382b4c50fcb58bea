"""How optimistic the first rows of the validation file are: each trained model (and the judge) scored on the
first N validation rows, as the study did before it scored the whole split, and on the whole split.

The offline copy's validation stories vary in difficulty along the file, so its head is not a sample of it.
Writes reports/benchmarks/validation_head_bias.json; README quotes it. Run after `dvc repro`.

    python benchmarks/validation_head_bias.py            # first 512 rows against all
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from textdiff.checkpoints import load_trained  # noqa: E402
from textdiff.io import write_json  # noqa: E402
from textdiff.models import model_names  # noqa: E402
from textdiff.study import load_params  # noqa: E402
from textdiff.validation import validation_metrics  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--head", type=int, default=512)
    parser.add_argument("--out", default=str(REPO / "reports/benchmarks/validation_head_bias.json"))
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    rows = torch.from_numpy(np.load(REPO / "data/packed/valid.npy").astype("int64"))
    results = {"head_rows": args.head, "all_rows": len(rows), "models": {}}
    for name in (*model_names(), "judge"):
        model, config = load_trained(REPO / "models" / name)
        options = params.validation.get(config["spec"]["model"], {})
        scored = {}
        for label, subset in (("head", rows[: args.head]), ("all", rows)):
            generator = torch.Generator().manual_seed(params.seed)
            m = validation_metrics(model, subset, params.evaluate.batch_size, generator, progress=False, **options)
            scored[label] = {"nll_per_token": m["nll_per_token"], "nll_standard_error": m["nll_standard_error"],
                             "perplexity": m["perplexity"], "perplexity_kind": m["perplexity_kind"]}
        scored["nats_optimistic"] = round(scored["all"]["nll_per_token"] - scored["head"]["nll_per_token"], 4)
        results["models"][name] = scored
        print(f"{name:6} first {args.head} rows: {scored['head']['perplexity']:.2f}  all {len(rows)}: "
              f"{scored['all']['perplexity']:.2f}  ({scored['nats_optimistic']:+.3f} nats, "
              f"{math.exp(scored['nats_optimistic']):.2f}x)")
    write_json(args.out, results)


if __name__ == "__main__":
    main()
