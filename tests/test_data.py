import io
import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from textdiff import data
from textdiff.data import held_out, load_stories, pack, prepare, read_local, read_stories
from textdiff.errors import DataError
from textdiff.study import parse_params
from textdiff.tokenizer import SPECIAL_IDS, train_tokenizer


def write_txt(path, stories):
    path.write_text("".join(f"{story}\n<|endoftext|>\n" for story in stories), encoding="utf-8")


def test_txt_is_split_on_separator_lines_keeping_inner_newlines(tmp_path):
    write_txt(tmp_path / "train.txt", ["One day.\nThe end.", "  Second story.  "])
    write_txt(tmp_path / "valid.txt", ["A valid story."])
    train, valid = read_local(tmp_path)
    assert train == ["One day.\nThe end.", "Second story."]
    assert valid == ["A valid story."]


def test_jsonl_and_parquet_sources(tmp_path):
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in ["a b", "c d"]) + "\n")
    pd.DataFrame({"text": ["e f"]}).to_parquet(tmp_path / "validation.parquet")
    assert read_local(tmp_path) == (["a b", "c d"], ["e f"])


def test_source_without_validation_is_split_deterministically_by_content(tmp_path, micro_raw):
    stories = [f"Story number {i}." for i in range(400)]
    write_txt(tmp_path / "stories.txt", stories)
    micro_raw["scales"]["cpu"]["train_stories"] = None
    micro_raw["data"].update(valid_stories=None, valid_fraction=0.25)
    data = parse_params(micro_raw).data
    first = load_stories(data, {"TINYSTORIES_DIR": str(tmp_path)})
    write_txt(tmp_path / "stories.txt", stories[::-1])  # order must not matter
    second = load_stories(data, {"TINYSTORIES_DIR": str(tmp_path)})
    assert sorted(first.valid) == sorted(second.valid) and not set(first.valid) & set(first.train)
    assert 60 < len(first.valid) < 140  # about a quarter of 400
    assert all(held_out(story, 0.25) for story in first.valid)


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        read_local(tmp_path / "nowhere")


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "train.txt").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_local(tmp_path)


def test_non_utf8_file_is_an_error_naming_the_offset(tmp_path):
    (tmp_path / "train.txt").write_bytes(b"Once upon a time \xff\xfe there was\n<|endoftext|>\n")
    with pytest.raises(DataError, match="not UTF-8.*offset 17"):
        read_local(tmp_path)


def test_fewer_stories_than_asked_warns_and_uses_them_all(tmp_path, micro_raw):
    write_txt(tmp_path / "train.txt", ["a", "b", "c"])
    write_txt(tmp_path / "valid.txt", ["d"])
    micro_raw["scales"]["cpu"]["train_stories"] = 10
    micro_raw["data"].update(valid_stories=1)
    with pytest.warns(UserWarning, match="asked for 10 stories, the source has only 3"):
        stories = load_stories(parse_params(micro_raw).data, {"TINYSTORIES_DIR": str(tmp_path)})
    assert stories.train == ["a", "b", "c"]


def test_prepare_records_what_it_used(tmp_path, micro_raw, shared_data):
    manifest = prepare(parse_params(micro_raw).data, tmp_path, {"TINYSTORIES_DIR": str(shared_data)})
    assert manifest["train_stories"] == 200 and manifest["valid_stories"] == 30
    assert len(read_stories(tmp_path / "train.jsonl")) == 200
    assert "local copy" in manifest["source"] and len(manifest["sha256"]) == 64
    assert not set(read_stories(tmp_path / "train.jsonl")) & set(read_stories(tmp_path / "valid.jsonl"))


def test_pack_joins_stories_with_eos_into_full_rows():
    stories = ["the cat sat", "a dog ran far away", "the end"] * 20
    tokenizer = train_tokenizer(stories, vocab_size=300)
    rows, total = pack(tokenizer, stories, seq_len=8)
    expected = []
    for story in stories:
        expected += tokenizer.encode(story).ids + [SPECIAL_IDS["eos"]]
    assert total == len(expected) and rows.dtype == np.uint16
    assert rows.shape == (len(expected) // 8, 8)
    assert rows.flatten().tolist() == expected[: rows.size]


def test_tokenizer_has_fixed_special_ids_and_round_trips():
    stories = ["Once upon a time, there was a little girl named Lily.", "She liked to play."] * 30
    tokenizer = train_tokenizer(stories, vocab_size=300)
    for name, token_id in SPECIAL_IDS.items():
        assert tokenizer.id_to_token(token_id) == f"<{name}>"
    text = "Lily played with a ball. Zebra!"  # unseen word and characters still encode: byte-level
    assert tokenizer.decode(tokenizer.encode(text).ids) == text


def test_unigram_perplexity_of_a_known_distribution():
    from textdiff.data import unigram_perplexity

    train = np.array([[4, 5] * 500])  # two tokens, equally often
    assert unigram_perplexity(train, np.array([[4, 5, 4, 5]]), vocab_size=8) == pytest.approx(2.0, rel=0.01)


def test_hub_source_streams_only_the_stories_asked_for(monkeypatch, micro_raw):
    import datasets

    pulled = {"train": 0, "validation": 0}

    def fake_load_dataset(name, split, streaming):
        assert name == "roneneldan/TinyStories" and streaming

        def rows():
            for i in range(10**9):  # an endless stream: taking all would never finish
                pulled[split] += 1
                yield {"text": f"{split} story {i}"}
        return rows()
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(data.socket, "create_connection", lambda *a, **k: io.BytesIO())  # the hub is reachable
    micro_raw["scales"]["cpu"]["train_stories"] = 5
    micro_raw["data"].update(valid_stories=3)
    stories = load_stories(parse_params(micro_raw).data, environ={})
    assert stories.train == [f"train story {i}" for i in range(5)] and len(stories.valid) == 3
    assert pulled == {"train": 5, "validation": 3}
    assert stories.source == "hub dataset roneneldan/TinyStories"


def test_no_network_and_no_local_copy_fails_in_seconds_with_a_hint(monkeypatch, micro_raw):
    def unreachable(*args, **kwargs):
        raise OSError("Network is unreachable")
    monkeypatch.setattr(data.socket, "create_connection", unreachable)
    tic = time.perf_counter()
    with pytest.raises(DataError, match="cannot reach the Hugging Face hub.*set TINYSTORIES_DIR") as error:
        load_stories(parse_params(micro_raw).data, environ={})
    assert time.perf_counter() - tic < 5 and "\n" not in str(error.value)


@pytest.mark.parametrize("name, content, message", [
    ("train.jsonl", '{"text": 12}\n', "train.jsonl:1: 'text' must be a string"),
    ("train.parquet", None, "row 1: 'text' must be a string"),
    ("train.parquet", b"PAR1 not really parquet", "not a readable parquet file"),
])
def test_bad_records_are_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        pd.DataFrame({"text": ["a story", None]}).to_parquet(path)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message) as error:
        read_local(tmp_path)
    assert "\n" not in str(error.value)


def test_an_unreadable_file_is_a_one_line_error(tmp_path):
    (tmp_path / "train.txt").mkdir()  # readable by nobody as a file, whoever runs the tests (root reads 0o000 files)
    with pytest.raises(DataError, match="train.txt: cannot be read .*check that it exists and is readable"):
        read_local(tmp_path)


def test_stories_in_both_splits_leave_validation_and_are_counted(tmp_path, micro_raw):
    (tmp_path / "train.txt").write_text("Once upon a time.\n<|endoftext|>\nThe cat sat.\n")
    (tmp_path / "valid.txt").write_text("once upon a TIME!\n<|endoftext|>\nA dog ran.\n")
    micro_raw["scales"]["cpu"]["train_stories"] = None
    micro_raw["data"].update(valid_stories=None)
    manifest = prepare(parse_params(micro_raw).data, tmp_path / "out", environ={"TINYSTORIES_DIR": str(tmp_path)})
    assert read_stories(tmp_path / "out" / "valid.jsonl") == ["A dog ran."]
    assert manifest["valid_stories_dropped_as_in_train"] == 1


def test_the_manifest_names_the_local_copy_without_a_machine_path(tmp_path, micro_raw):
    (tmp_path / "train.txt").write_text("Once upon a time.\n<|endoftext|>\nThe cat sat.\n")
    (tmp_path / "valid.txt").write_text("A dog ran.\n")
    micro_raw["scales"]["cpu"]["train_stories"] = None
    micro_raw["data"].update(valid_stories=None)
    manifest = prepare(parse_params(micro_raw).data, tmp_path / "out", environ={"TINYSTORIES_DIR": str(tmp_path)})
    assert str(tmp_path) not in json.dumps(manifest) and manifest["source"] == f"local copy '{tmp_path.name}' (TINYSTORIES_DIR)"


def test_a_vocabulary_smaller_than_asked_is_refused():
    from textdiff.tokenizer import check_vocabulary

    tokenizer = train_tokenizer(["a cat sat"] * 5, 4096)
    with pytest.raises(DataError, match=r"only \d+ tokens, not scales.cpu.vocab_size=4096"):
        check_vocabulary(tokenizer, 4096, "scales.cpu.vocab_size")
    check_vocabulary(tokenizer, tokenizer.get_vocab_size(), "scales.cpu.vocab_size")


def test_no_training_stories_left_is_a_one_line_error(tmp_path, micro_raw):
    (tmp_path / "stories.txt").write_text("Once upon a time.\n")  # no validation file: held out by hash
    micro_raw["scales"]["cpu"]["train_stories"] = None
    micro_raw["data"].update(valid_stories=None, valid_fraction=0.999999)
    with pytest.raises(DataError, match="no training stories left in the local copy"):
        prepare(parse_params(micro_raw).data, tmp_path / "out", environ={"TINYSTORIES_DIR": str(tmp_path)})
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_readme_states_how_many_training_stories_the_offline_copy_holds(shared_data):
    from textdiff.data import read_local
    from tests.conftest import REPO
    train, _ = read_local(shared_data)
    readme = (REPO / "README.md").read_text()
    assert f"7,000 of the {len(train):,} that `../shared/data/tinystories` holds" in readme
    assert f"{len(train):,}-story offline copy" in readme
