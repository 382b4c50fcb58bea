"""Stage prepare: TinyStories (hub, or the local copy named by TINYSTORIES_DIR) -> data/prepared/."""
import argparse

from textdiff.cli import run_stage
from textdiff.data import prepare
from textdiff.params import load_params


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="data/prepared")
    args = parser.parse_args()
    manifest = prepare(load_params().data, args.out)
    print(f"{manifest['train_stories']} train / {manifest['valid_stories']} valid stories from {manifest['source']}")


if __name__ == "__main__":
    run_stage(main, timing_path="timings/prepare.json")
