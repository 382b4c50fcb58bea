"""Stage tokenizer: byte-level BPE trained on the training stories only -> data/tokenizer.json."""
import argparse

from textdiff.cli import run_stage
from textdiff.data import read_stories
from textdiff.io import atomic_path
from textdiff.params import load_params
from textdiff.tokenizer import check_vocabulary, train_tokenizer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stories", default="data/prepared/train.jsonl")
    parser.add_argument("--out", default="data/tokenizer.json")
    args = parser.parse_args()
    params = load_params()
    tokenizer = train_tokenizer(read_stories(args.stories), params.scale.vocab_size)
    check_vocabulary(tokenizer, params.scale.vocab_size, f"scales.{params.scale_name}.vocab_size")
    with atomic_path(args.out) as tmp:
        tokenizer.save(str(tmp))
    print(f"vocabulary of {tokenizer.get_vocab_size()} tokens")


if __name__ == "__main__":
    run_stage(main, timing_path="timings/tokenizer.json")
