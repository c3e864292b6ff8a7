from __future__ import annotations

from pathlib import Path

import pytest

from i2i.config import (
    CONFIG_DIR,
    Config,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    parse_value,
)
from i2i.errors import ConfigError
from i2i.methods import Pix2PixConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_shipped_recipes_load_with_reference_hyperparameters():
    facades = load_config(CONFIG_DIR / "pix2pix_facades.yaml")
    assert isinstance(facades.model, Pix2PixConfig)
    assert facades.model.lambda_l1 == 100.0
    assert facades.optim["g"].lr == 2e-4 and facades.optim["g"].betas == (0.5, 0.999)
    assert facades.optim["d"].betas == (0.5, 0.999)
    assert (facades.data.load_size, facades.data.crop_size, facades.data.flip) == (286, 256, True)
    assert (facades.train.epochs, facades.train.epochs_decay) == (100, 100)
    assert facades.data.batch_size == 1 and facades.data.direction == "BtoA"
    shoes = load_config("pix2pix_edges2shoes")
    assert shoes.data.batch_size == 4 and shoes.data.direction == "AtoB"
    assert load_config("demo_pix2pix").data.source == "synthetic"


def test_unknown_key_names_dotted_path(tmp_path):
    path = write(tmp_path, "method: pix2pix\ntrain:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key; valid keys here: epochs"):
        load_config(path)
    path = write(tmp_path, "model:\n  generator: {name: unet, argz: {}}\n")
    with pytest.raises(ConfigError, match=r"model\.generator\.argz: unknown key"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: {epochs: ten}", r"train\.epochs: expected an integer, got 'ten'"),
        ("train: {epochs: 1.5}", r"train\.epochs: expected an integer"),
        ("data: {flip: 1}", r"data\.flip: expected true or false"),
        ("optim: {g: {betas: [0.5]}}", r"optim\.g\.betas: expected 2 values"),
        ("optim: {g: {lr: fast}}", r"optim\.g\.lr: expected a number, got 'fast'"),
        ("data: [1, 2]", r"data: expected a mapping"),
        ("method: cyclegan9", r"method: unknown method 'cyclegan9'"),
    ],
)
def test_wrong_types_are_rejected_with_path(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_error_message_names_the_file(tmp_path):
    path = write(tmp_path, "seed: x")
    with pytest.raises(ConfigError, match=str(path.name)):
        load_config(path)


def test_yaml_scientific_notation_string_is_a_float(tmp_path):
    # PyYAML reads "1e-4" as a string; a float field must still accept it.
    cfg = load_config(write(tmp_path, "optim: {g: {lr: 1e-4}}"))
    assert cfg.optim["g"].lr == pytest.approx(1e-4)
    assert cfg.optim["d"].lr == pytest.approx(2e-4)  # untouched default


def test_overrides_parse_values_safely():
    assert parse_value("1e-4") == pytest.approx(1e-4)
    assert parse_value("12") == 12
    assert parse_value("true") is True
    assert parse_value("[0.5, 0.99]") == [0.5, 0.99]
    assert parse_value("unet_128") == "unet_128"
    # Never evaluated: Python expressions stay strings.
    assert parse_value("__import__('os').system('true')") == "__import__('os').system('true')"


def test_overrides_apply_nested_and_create_sections():
    cfg = load_config(
        "demo_pix2pix",
        overrides=["train.max_steps=7", "model.generator.args.base_channels=8", "optim.d.lr=1e-3", "name=x"],
    )
    assert cfg.train.max_steps == 7
    assert cfg.model.generator.args["base_channels"] == 8
    assert cfg.optim["d"].lr == pytest.approx(1e-3)
    assert cfg.name == "x"
    assert apply_overrides({}, ["a.b.c=1"]) == {"a": {"b": {"c": 1}}}


@pytest.mark.parametrize("bad", ["train.max_steps", "=3", "train..x=1"])
def test_malformed_override(bad):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(overrides=[bad])


def test_override_of_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match=r"train\.max_step: unknown key"):
        load_config("demo_pix2pix", overrides=["train.max_step=3"])


def test_override_into_a_value_is_rejected():
    with pytest.raises(ConfigError, match="seed is a value, not a section"):
        load_config("demo_pix2pix", overrides=["seed.x=1"])
    with pytest.raises(ConfigError, match="seed: expected an integer"):
        load_config(overrides=["seed.x=1"])


def test_round_trip_through_plain_data_and_yaml():
    cfg = load_config("pix2pix_facades", overrides=["train.max_steps=3"])
    again = config_from_dict(config_to_dict(cfg))
    assert again == cfg
    assert "lambda_l1: 100.0" in dump_config(cfg)


def test_missing_config_file_lists_recipes():
    with pytest.raises(ConfigError, match="pix2pix_facades"):
        load_config("no_such_recipe")


def test_defaults_without_a_file():
    cfg = load_config()
    assert isinstance(cfg, Config) and isinstance(cfg.model, Pix2PixConfig)
