"""Stage judge: trains the fixed AR judge (models/judge/) and scores real validation text with it
(eval/reference/metrics.json), the reference row of every sample-quality comparison."""
import argparse

import torch

from textdiff.cli import run_stage
from textdiff.data import load_rows
from textdiff.evaluate import validation_metrics
from textdiff.io import write_json
from textdiff.judge import judge_params, reference_quality
from textdiff.study import load_params
from textdiff.checkpoints import load_trained
from textdiff.device import resolve_device
from textdiff.train import train


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="data/packed/train.npy")
    parser.add_argument("--valid-rows", default="data/packed/valid.npy")
    parser.add_argument("--out", default="models/judge")
    parser.add_argument("--reference", default="eval/reference/metrics.json")
    args = parser.parse_args()
    params = load_params()
    device = resolve_device(params.train.device)
    train("ar", judge_params(params), args.rows, args.out, label="judge")
    judge, _ = load_trained(args.out, device)
    ev = params.evaluate
    valid = torch.from_numpy(load_rows(args.valid_rows).astype("int64"))
    generator = torch.Generator(device=device).manual_seed(params.seed)
    own = validation_metrics(judge, valid[: ev.max_valid_rows].to(device), ev.batch_size, generator)
    reference = reference_quality(judge, valid, ev.num_samples, ev.sample_length)
    reference.update(judge_valid_perplexity=own["perplexity"], judge_steps=judge_params(params).scale.steps)
    write_json(args.reference, reference)
    print(reference)


if __name__ == "__main__":
    run_stage(main, timing_path="timings/judge.json")
