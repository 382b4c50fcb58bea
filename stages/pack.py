"""Stage pack: stories -> fixed-length uint16 token rows (data/packed/{train,valid}.npy), the same for every model."""
import argparse
from pathlib import Path

from tokenizers import Tokenizer

from textdiff.cli import run_stage
from textdiff.data import pack, read_stories, save_rows, unigram_perplexity
from textdiff.io import write_json
from textdiff.params import load_params


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stories", default="data/prepared")
    parser.add_argument("--tokenizer", default="data/tokenizer.json")
    parser.add_argument("--out", default="data/packed")
    args = parser.parse_args()
    seq_len = load_params().scale.seq_len
    tokenizer = Tokenizer.from_file(args.tokenizer)
    stats = {"vocab_size": tokenizer.get_vocab_size(), "seq_len": seq_len}
    packed = {}
    for split in ("train", "valid"):
        rows, tokens = pack(tokenizer, read_stories(Path(args.stories) / f"{split}.jsonl"), seq_len)
        save_rows(Path(args.out) / f"{split}.npy", rows)
        stats.update({f"{split}_tokens": tokens, f"{split}_rows": len(rows)})
        packed[split] = rows
    stats["unigram_valid_perplexity"] = round(unigram_perplexity(packed["train"], packed["valid"],
                                                                 stats["vocab_size"]), 2)
    write_json(Path(args.out) / "stats.json", stats)
    print(stats)


if __name__ == "__main__":
    run_stage(main, timing_path="timings/pack.json")
