import pytest
import yaml

from textdiff.errors import ParamError
from textdiff.study import load_params, parse_params
from tests.conftest import REPO


def test_committed_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.scale_name == "cpu" and params.models["sdd"].k == 8


def test_seed_scale_is_the_seed_projects_config():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["scale"] = "seed"
    s = parse_params(raw).scale
    assert (s.vocab_size, s.seq_len, s.d_model, s.n_layers, s.n_heads, s.d_ff, s.batch_size, s.steps) == (
        8192, 256, 384, 6, 6, 1536, 32, 10000)


def _set(raw, dotted, value):
    *path, last = dotted.split(".")
    node = raw
    for key in path:
        node = node[key]
    node[last] = value


@pytest.mark.parametrize("key, value", [
    ("k", 0), ("k", 100000), ("k", 2.5), ("k", "eight"),
    ("scales.cpu.steps", 0), ("scales.cpu.batch_size", -1), ("scales.cpu.lr", 0), ("scales.cpu.lr", -0.1),
    ("scales.cpu.n_heads", 3), ("scales.cpu.seq_len", 100000), ("scale", "huge"), ("mdlm.schedule", "sqrt"),
    ("sdd.clean_other_prob", 0.5), ("sdd.embed_noise_std", -1.0), ("sdd.k_curriculum", "yes"),
    ("evaluate.sample_length", 1000), ("train.device", "tpu"), ("data.valid_fraction", 1.5),
    ("sdd.index_swap", "sometimes"), ("sdd.schedule", "sqrt"), ("sdd.shuffle_slots", 1),
    ("sample.sdd.candidates", "top_p"), ("sample.sdd.final_temperature", 0), ("sample.sdd.renoise", "no"),
    ("sample.ar.sweep", None), ("sample.ar.top_p", 0), ("sample.ar.top_p", 1.5), ("sample.ar.top_k", 0),
    ("sample.mdlm.order", "random"), ("sample.mdlm.remask", "loop"), ("sample.mdlm.remask_eta", 2.0),
    ("sample.mdlm.top_p", -0.1), ("sample.udlm.top_p", 2), ("sample.udlm.greedy_final", "yes"),
    ("udlm.schedule", "sqrt"), ("udlm.t_eps", 0),
])
def test_bad_value_is_one_line_error_naming_the_key(micro_raw, key, value):
    _set(micro_raw, key, value)
    with pytest.raises(ParamError) as error:
        parse_params(micro_raw)
    message = str(error.value)
    assert "\n" not in message
    named = "n_heads" if key.endswith("n_heads") else key.split(".")[-1]
    assert named in message, message


@pytest.mark.parametrize("key, value, nearest", [
    ("sdd.embed_noise_sdt", 0.1, "sdd.embed_noise_std"), ("scales.cpu.stepz", 3, "scales.cpu.steps"),
    ("sample.sdd.final_temprature", None, "sample.sdd.final_temperature"), ("seeed", 1, "seed"),
    ("scales.seed.lrr", 0.1, "scales.seed.lr"),  # a scale not run now is checked too
])
def test_unknown_keys_are_refused_naming_the_nearest_valid_key(micro_raw, key, value, nearest):
    _set(micro_raw, key, value)
    with pytest.raises(ParamError) as error:
        parse_params(micro_raw)
    assert str(error.value) == f"params.yaml: unknown key {key} (did you mean {nearest}?); remove it or fix its name"


def test_stages_that_build_no_model_still_refuse_unknown_shared_keys(micro_raw):
    from textdiff.params import parse_params as shared_params

    _set(micro_raw, "data.train_storiez", 5)
    with pytest.raises(ParamError, match="unknown key data.train_storiez"):
        shared_params(micro_raw)


def test_a_number_yaml_read_as_a_string_says_so_and_how_to_write_it(micro_raw):
    micro_raw["scales"]["cpu"]["lr"] = yaml.safe_load("lr: 1e-3")["lr"]  # '1e-3': YAML 1.1 wants a dot
    with pytest.raises(ParamError) as error:
        parse_params(micro_raw)
    assert str(error.value) == ("params.yaml: scales.cpu.lr is the string '1e-3', not a number (YAML reads exponent "
                                "notation as a number only with a dot and a signed exponent): write 1.0e-03, "
                                "got '1e-3'")
    micro_raw["scales"]["cpu"]["lr"] = yaml.safe_load("lr: 1.0e-03")["lr"]
    assert parse_params(micro_raw).scale.lr == 0.001


def test_a_quoted_number_without_an_exponent_is_told_to_lose_its_quotes(micro_raw):
    micro_raw["scales"]["cpu"]["lr"] = "0.001"
    with pytest.raises(ParamError) as error:
        parse_params(micro_raw)
    assert str(error.value) == "params.yaml: scales.cpu.lr is the string '0.001', not a number: remove its quotes, got '0.001'"


def test_a_seed_too_large_for_the_step_generators_is_refused(micro_raw):
    micro_raw["seed"] = 10**14
    with pytest.raises(ParamError, match=r"seed must be an integer \[0, 4294967295\]"):
        parse_params(micro_raw)


# roneneldan/TinyStories' train split, as its dataset card gives it: what the seed scale takes whole (train_stories: null).
HUB_TRAIN_STORIES = 2_119_719


def test_the_seed_scale_sees_its_data_under_one_and_a_half_times_and_warns_on_the_offline_copy(shared_data):
    from textdiff.tokenizer import train_tokenizer
    from textdiff.train import epochs_warning

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    params = parse_params({**raw, "scale": "seed"})
    assert params.data.train_stories is None  # the hub's whole train split
    s = params.scale
    tokens_seen = s.steps * s.batch_size * s.seq_len
    # Tokens per story at the seed scale's vocabulary, measured on the offline copy's stories.
    stories = [t.strip() for t in (shared_data / "train.txt").read_text(encoding="utf-8").split("<|endoftext|>")
               if t.strip()]
    tokenizer = train_tokenizer(stories[:3000], s.vocab_size)
    tokens_per_story = sum(len(e.ids) for e in tokenizer.encode_batch(stories[3000:4000])) / 1000
    hub_epochs = tokens_seen / (HUB_TRAIN_STORIES * tokens_per_story)
    assert hub_epochs < 1.5
    assert epochs_warning("sdd", tokens_seen, HUB_TRAIN_STORIES * tokens_per_story, params, "scales.seed.steps") is None
    # Pointed at the 7,000-story offline copy instead, it would pass over every token dozens of times: warned.
    offline_tokens = int(len(stories) * tokens_per_story)
    warning = epochs_warning("sdd", tokens_seen, offline_tokens, params, "scales.seed.steps")
    assert warning.startswith("warning: sdd sees its") and "scales.seed.train_stories" in warning
    assert tokens_seen / offline_tokens > 40
