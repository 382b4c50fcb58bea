"""Stage judge: trains the fixed AR judge (models/judge/) and scores real validation text with it
(eval/reference/metrics.json), the reference row of every sample-quality comparison."""
import argparse

import torch

from textdiff.cli import run_stage
from textdiff.checkpoints import load_trained
from textdiff.data import load_rows, uniform_rows
from textdiff.device import resolve_device
from textdiff.io import write_json
from textdiff.judge import judge_params, reference_quality
from textdiff.study import load_params
from textdiff.train import train
from textdiff.validation import validation_metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="data/packed/train.npy")
    parser.add_argument("--valid-rows", default="data/packed/valid.npy")
    parser.add_argument("--out", default="models/judge")
    parser.add_argument("--reference", default="eval/reference/metrics.json")
    args = parser.parse_args()
    params = judge_params(load_params())
    device = resolve_device(params.train.device)
    train("ar", params, args.rows, args.out, label="judge", valid_rows_path=args.valid_rows)
    judge, _ = load_trained(args.out, device)
    ev = params.evaluate
    valid = torch.from_numpy(load_rows(args.valid_rows).astype("int64"))
    generator = torch.Generator(device=device).manual_seed(params.seed)
    own = validation_metrics(judge, uniform_rows(valid, ev.max_valid_rows).to(device), ev.batch_size, generator)
    reference = reference_quality(judge, valid, ev.num_samples, ev.sample_length)
    reference.update(judge_valid_perplexity=own["perplexity"],
                     judge_valid_perplexity_standard_error=own["perplexity_standard_error"],
                     judge_valid_rows=own["valid_rows"], judge_steps=params.scale.steps, judge_seed=params.seed)
    write_json(args.reference, reference)
    print(reference)


if __name__ == "__main__":
    run_stage(main, timing_path="timings/judge.json")
