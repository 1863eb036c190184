"""Config files that extend another: the ablations are one base plus one change each, and resolve to
exactly the full configs they stand for (the base as it was, plus the estimate-conditioning recipe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.training.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"
#: ablation_full.json as it was when every ablation was a full copy of it
FULL = {"run_dir": "runs/ablation_full", "data_dir": "data_synth", "model_preset": "tiny",
        "prediction_type": "v_prediction", "clip_frames": 4, "num_bins": 5, "crop": [64, 64], "batch_size": 2,
        "max_steps": 300, "learning_rate": 0.0003, "min_learning_rate": 3e-05, "warmup_steps": 30,
        "mask_loss_weight": 0.1, "mask_loss_max_timestep": 400, "text_dropout": 0.1, "previous_frame_dropout": 0.1,
        "ema_decay": 0.99, "log_every": 10, "checkpoint_every": 100, "validate_every": 0, "val_clips": 8,
        "val_inference_steps": 10, "ei_strength": 0.8, "seed": 0}
#: the recipe of the current bundled model that the ablation base took on (EI and conditioning from PIE-Net)
RECIPE = {"use_estimate": True, "ei_training_estimate": "pienet", "ei_training_fraction": 0.5,
          "ei_training_timesteps": [50, 300], "low_noise_fraction": 0.5, "low_noise_max_timestep": 300,
          "cache_latents": True, "latent_flips": ["none"], "caption_sentence_dropout": 0.25,
          "ei_strength": 0.1, "previous_frame_estimate_fraction": 0.5}
#: what each former full copy changed
CHANGES = {
    "full": {},
    "no_ei": {"ei_strength": 1.0},
    "no_esa": {"use_esa": False},
    "no_events": {"use_events": False},
    "no_mask_loss": {"mask_loss_weight": 0.0},
    "no_previous_frame": {"use_previous_frame": False},
    "no_text": {"use_text": False},
    "no_estimate": {"use_estimate": False},
    "no_prev_estimate": {"previous_frame_estimate_fraction": 0.0},
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_ablations_resolve_to_the_former_full_copies(name):
    expected = load_config({**FULL, **RECIPE, "run_dir": f"runs/ablation_{name}", **CHANGES[name]})
    assert load_config(CONFIGS / f"ablation_{name}.json") == expected


def test_every_ablation_file_holds_only_its_change():
    files = sorted(CONFIGS.glob("ablation_*.json"))
    assert [f.stem.removeprefix("ablation_") for f in files] == sorted(CHANGES)
    for file in files:
        values = json.loads(file.read_text())
        name = file.stem.removeprefix("ablation_")
        if name != "full":
            assert values == {"extends": "ablation_full.json", "run_dir": f"runs/ablation_{name}", **CHANGES[name]}


def test_extends_chains_and_errors(tmp_path):
    (tmp_path / "base.json").write_text(json.dumps({"max_steps": 7, "batch_size": 3}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mid.json").write_text(json.dumps({"extends": "../base.json", "batch_size": 4}))
    (tmp_path / "top.json").write_text(json.dumps({"extends": "sub/mid.json", "seed": 5}))
    config = load_config(tmp_path / "top.json", seed=6)
    assert (config.max_steps, config.batch_size, config.seed) == (7, 4, 6)
    (tmp_path / "loop.json").write_text(json.dumps({"extends": "loop2.json"}))
    (tmp_path / "loop2.json").write_text(json.dumps({"extends": "loop.json"}))
    with pytest.raises(ConfigError, match="leads back to loop.json"):
        load_config(tmp_path / "loop.json")
    (tmp_path / "gone.json").write_text(json.dumps({"extends": "missing.json"}))
    with pytest.raises(ConfigError, match="missing.json: training config not found"):
        load_config(tmp_path / "gone.json")
    (tmp_path / "bad.json").write_text(json.dumps({"extends": 3}))
    with pytest.raises(ConfigError, match="'extends' must be the path of a config file"):
        load_config(tmp_path / "bad.json")
