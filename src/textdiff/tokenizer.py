"""Byte-level BPE (HF tokenizers) trained on the training stories only; special tokens at fixed ids."""
from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .errors import DataError

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<mask>")
SPECIAL_IDS = {"pad": 0, "bos": 1, "eos": 2, "mask": 3}


def train_tokenizer(stories: Iterable[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),  # listed first, so they get ids 0..3
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes: no unknown tokens
        show_progress=False,
    )
    tokenizer.train_from_iterator(stories, trainer=trainer)
    for name, token_id in SPECIAL_IDS.items():
        if tokenizer.token_to_id(SPECIAL_TOKENS[token_id]) != token_id:
            raise RuntimeError(f"special token {name} did not get its fixed id {token_id}")
    return tokenizer


def check_vocabulary(tokenizer: Tokenizer, vocab_size: int, key: str) -> None:
    """BPE stops merging when the text runs out of pairs: a vocabulary smaller than asked is refused, not used."""
    learned = tokenizer.get_vocab_size()
    if learned < vocab_size:
        raise DataError(f"the training stories give only {learned} tokens, not {key}={vocab_size}; "
                        "lower it or train on more stories")


def decode(tokenizer: Tokenizer, ids) -> str:
    """Text of ids, each end-of-story token shown as a paragraph break."""
    pieces, current = [], []
    for token_id in ids:
        if token_id == SPECIAL_IDS["eos"]:
            pieces.append(tokenizer.decode(current))
            current = []
        else:
            current.append(int(token_id))
    pieces.append(tokenizer.decode(current))
    return "\n<|endoftext|>\n".join(pieces)
