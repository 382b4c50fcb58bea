"""Stage train@<model>: the shared training loop -> models/<model>/ (safetensors weights, config, log)."""
import argparse
import sys

from textdiff.cli import run_stage
from textdiff.models import model_class, model_names
from textdiff.study import load_params, training_params
from textdiff.train import train


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help=", ".join(model_names()))
    parser.add_argument("--rows", default="data/packed/train.npy")
    parser.add_argument("--valid-rows", default="data/packed/valid.npy", help="the learning curve's rows")
    parser.add_argument("--out", default=None, help="default: models/<model>")
    parser.add_argument("--checkpoints", default=".cache/checkpoints")
    args = parser.parse_args()
    model_class(args.model)  # an unknown name fails here, in one line
    params = training_params(load_params(), args.model)  # before anything expensive: bad params fail here
    summary = train(args.model, params, args.rows, args.out or f"models/{args.model}", args.checkpoints,
                    valid_rows_path=args.valid_rows)
    print(summary)


if __name__ == "__main__":
    run_stage(main, timing_path=f"timings/train@{sys.argv[1]}.json" if len(sys.argv) > 1 else None)
