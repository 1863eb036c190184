"""Training config: JSON loading, unknown keys and bad values raise ConfigError."""

from __future__ import annotations

import json

import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.training.config import TrainingConfig, load_config


def test_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"max_steps": 7, "crop": [32, 48]}))
    config = load_config(path)
    assert (config.max_steps, config.crop, config.batch_size) == (7, [32, 48], TrainingConfig().batch_size)


def test_round_trip_through_json(tmp_path):
    config = TrainingConfig(max_steps=3, use_text=False)
    path = tmp_path / "c.json"
    path.write_text(config.to_json())
    assert load_config(path) == config


def test_latent_flips_may_be_a_comma_separated_string():
    assert load_config({"latent_flips": "none,hv"}).latent_flips == ["none", "hv"]  # not its letters


def test_overrides_replace_fields():
    assert load_config({"max_steps": 7}, max_steps=9).max_steps == 9


@pytest.mark.parametrize(
    "values, message",
    [
        ({"max_stepz": 3}, "unknown key(s) max_stepz"),
        ({"crop": [30, 32]}, "crop must be"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"text_dropout": 1.5}, "text_dropout must be in [0, 1]"),
        ({"mixed_precision": "fp8"}, "mixed_precision must be one of"),
        ({"prediction_type": "sample"}, "prediction_type must be"),
        ({"ema_decay": 1.0}, "ema_decay must be in [0, 1)"),
        ({"ei_training_fraction": 0.5}, "need ei_training_estimate"),
        ({"use_estimate": True}, "need ei_training_estimate"),
        ({"caption_sentence_dropout": 1.5}, "caption_sentence_dropout"),
        ({"ei_training_timesteps": [300, 50]}, "ei_training_timesteps must be"),
        ({"low_noise_max_timestep": 0}, "low_noise_max_timestep must be in"),
        ({"low_noise_fraction": -0.1}, "low_noise_fraction must be in [0, 1]"),
        ({"more_data_dirs": "data_more"}, "more_data_dirs must be a list of folders"),
    ],
)
def test_bad_values_raise_config_error(values, message):
    with pytest.raises(ConfigError) as error:
        load_config(values)
    assert message in str(error.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{max_steps: 3")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
