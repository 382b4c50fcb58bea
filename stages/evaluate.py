"""Stage evaluate@<model>: validation NLL, accuracy, generation time, judged sample sweeps -> eval/<model>/."""
import argparse
import sys

from tokenizers import Tokenizer

from textdiff.cli import run_stage
from textdiff.evaluate import evaluate, write_outputs
from textdiff.models import model_class, model_names
from textdiff.study import load_params
from textdiff.device import resolve_device


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help=", ".join(model_names()))
    parser.add_argument("--rows", default="data/packed/valid.npy")
    parser.add_argument("--tokenizer", default="data/tokenizer.json")
    parser.add_argument("--judge", default="models/judge")
    parser.add_argument("--out", default=None, help="default: eval/<model>")
    args = parser.parse_args()
    model_class(args.model)  # an unknown name fails here, in one line
    params = load_params()
    device = resolve_device(params.train.device)
    metrics, samples, sweep = evaluate(f"models/{args.model}", args.rows, Tokenizer.from_file(args.tokenizer),
                                       params, args.model, args.judge, device)
    write_outputs(args.out or f"eval/{args.model}", metrics, samples, sweep)
    print({k: v for k, v in metrics.items() if not isinstance(v, str)})


if __name__ == "__main__":
    run_stage(main, timing_path=f"timings/evaluate@{sys.argv[1]}.json" if len(sys.argv) > 1 else None)
