"""The bundled tiny checkpoint: loads by default with its recommended sampling, matches its recipe."""

from __future__ import annotations

import json
from pathlib import Path

from lase_e2v.pipelines.integrator import IntegratorPipeline
from lase_e2v.pipelines.lase import LASE_TINY_DIR, load_lase_pipeline
from lase_e2v.pipelines.recurrent import RecurrentReconstructionPipeline
from lase_e2v.training import load_config

REPO = Path(__file__).resolve().parents[2]


def test_bundled_checkpoint_loads_with_recommended_sampling():
    pipeline = load_lase_pipeline()
    assert (pipeline.options.ei_strength, pipeline.options.num_samples) == (0.1, 4)
    assert isinstance(pipeline.options.estimate, RecurrentReconstructionPipeline)
    assert pipeline.options.estimate.name == "pienet"
    assert pipeline.options.detail_transfer == 0
    # a quarter of the way toward the estimate, in the real sensors' range only (chosen on synthetic sets)
    assert (pipeline.options.estimate_mix, pipeline.options.estimate_mix_sigma) == (0.25, None)
    assert pipeline.options.estimate_mix_gate
    assert pipeline.unet.config.use_estimate  # the estimate's latent is a U-Net input
    assert pipeline.unet.config.prediction_type == "v_prediction"
    assert pipeline.autoencoder.source == "tae" and pipeline.text_encoder.source == "minilm"


def test_user_options_override_the_recommended_ones():
    pipeline = load_lase_pipeline(estimate="integrate", ei_strength=0.5, prompt="a desk")
    assert isinstance(pipeline.options.estimate, IntegratorPipeline)
    assert (pipeline.options.ei_strength, pipeline.options.prompt) == (0.5, "a desk")


def test_a_named_estimate_peer_runs_in_the_pipelines_precision():
    # "auto" (the bundled default) keeps the recurrent peer in float32: its rounding accumulates
    default = load_lase_pipeline()
    assert (default.options.dtype, default.options.estimate.dtype) == ("auto", "float32")
    assert load_lase_pipeline(dtype="float32").options.estimate.dtype == "float32"
    pipeline = load_lase_pipeline(dtype="bfloat16")
    assert (pipeline.options.dtype, pipeline.options.estimate.dtype) == ("bfloat16", "bfloat16")
    integrator = load_lase_pipeline(dtype="bfloat16", estimate="integrate").options.estimate
    assert isinstance(integrator, IntegratorPipeline)


def test_bundled_weights_come_from_the_documented_recipe():
    # tiny.json trained 3000 steps, continued with `--max-steps` to 5500, fine-tuned for EI sampling
    # with tiny_ei.json, for PIE-Net-Lite estimates with tiny_pienet.json, then on estimated previous
    # frames with tiny_prev_estimate.json, then on sequences in the real sensors' range with
    # tiny_realistic.json, then on in-range sequences that keep the generator's lighting with
    # tiny_keep_lighting.json, then on PIE-Net's estimates with tiny_pienet_estimates.json and, on a
    # second folder of sequences as well, tiny_pienet_more.json, then on a third folder as well,
    # tiny_more_data.json (see the asset's README)
    recipe = load_config(REPO / "configs/train/tiny.json", max_steps=5500, validate_every=1000)
    assert load_config(LASE_TINY_DIR / "training_config.json") == recipe
    finetune = load_config(REPO / "configs/train/tiny_ei.json")
    assert load_config(LASE_TINY_DIR / "finetune_config.json") == finetune
    assert finetune.init_from == "runs/tiny/pipeline" and finetune.ei_training_estimate == "firenet_plus"
    estimate = load_config(REPO / "configs/train/tiny_pienet.json")
    assert load_config(LASE_TINY_DIR / "estimate_config.json") == estimate
    assert estimate.init_from == "runs/tiny_ei/pipeline" and estimate.use_estimate
    previous = load_config(REPO / "configs/train/tiny_prev_estimate.json")
    assert load_config(LASE_TINY_DIR / "prev_estimate_config.json") == previous
    assert previous.init_from == "runs/tiny_pienet/pipeline"
    assert previous.previous_frame_estimate_fraction == 0.5
    realistic = load_config(REPO / "configs/train/tiny_realistic.json")
    assert load_config(LASE_TINY_DIR / "realistic_config.json") == realistic
    assert realistic.init_from == "runs/tiny_prev_estimate/pipeline"
    assert realistic.data_dir == "data_synth_real96"
    keep_lighting = load_config(REPO / "configs/train/tiny_keep_lighting.json")
    assert load_config(LASE_TINY_DIR / "keep_lighting_config.json") == keep_lighting
    assert keep_lighting.init_from == "runs/tiny_realistic/pipeline"
    assert keep_lighting.data_dir == "data_synth_keep64"
    pienet = load_config(REPO / "configs/train/tiny_pienet_estimates.json")
    assert load_config(LASE_TINY_DIR / "pienet_estimates_config.json") == pienet
    assert pienet.init_from == "runs/tiny_keep_lighting/pipeline" and pienet.ei_training_estimate == "pienet"
    more = load_config(REPO / "configs/train/tiny_pienet_more.json")
    assert load_config(LASE_TINY_DIR / "pienet_more_config.json") == more
    assert more.init_from == "runs/tiny_pienet_estimates/pipeline" and more.ei_training_estimate == "pienet"
    assert (more.data_dir, more.more_data_dirs, more.in_range_only) == (
        "data_synth_keep32", ["data_synth_keep32b"], True)
    more_data = load_config(REPO / "configs/train/tiny_more_data.json")
    assert load_config(LASE_TINY_DIR / "more_data_config.json") == more_data
    assert more_data.init_from == "runs/tiny_pienet_more/pipeline" and more_data.in_range_only
    assert (more_data.data_dir, more_data.more_data_dirs) == (
        "data_synth_keep32", ["data_synth_keep32b", "data_synth_keep64r"])
    logs = (("training_log.csv", recipe), ("finetune_log.csv", finetune), ("estimate_log.csv", estimate),
            ("prev_estimate_log.csv", previous), ("realistic_log.csv", realistic),
            ("keep_lighting_log.csv", keep_lighting), ("pienet_estimates_log.csv", pienet),
            ("pienet_more_log.csv", more), ("more_data_log.csv", more_data))
    for log, config in logs:
        last_step = (LASE_TINY_DIR / log).read_text().splitlines()[-1].split(",")[0]
        assert int(last_step) == config.max_steps
    assert json.loads((LASE_TINY_DIR / "sampling.json").read_text()) == {
        "ei_strength": 0.1, "estimate": "pienet", "num_samples": 4, "dtype": "auto", "estimate_mix": 0.25}
