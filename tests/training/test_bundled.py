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
    # the learned fusion (stage 10) replaced the fixed estimate mix; both only in the real sensors' range
    assert pipeline.options.fusion and pipeline.options.estimate_mix == 0
    assert pipeline.options.estimate_mix_gate
    assert pipeline.fusion is not None and pipeline.fusion.config.channels == 16
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


# The bundled checkpoint's stages in training order: the recipe's config, the asset's file stem of its
# resolved config and loss log (`<stem>_config.json`, `<stem>_log.csv`), and the overrides the run used
BUNDLED_STAGES = (
    ("tiny.json", "training", {"max_steps": 5500, "validate_every": 1000}),
    ("tiny_ei.json", "finetune", {}),
    ("tiny_pienet.json", "estimate", {}),
    ("tiny_prev_estimate.json", "prev_estimate", {}),
    ("tiny_realistic.json", "realistic", {}),
    ("tiny_keep_lighting.json", "keep_lighting", {}),
    ("tiny_pienet_estimates.json", "pienet_estimates", {}),
    ("tiny_pienet_more.json", "pienet_more", {}),
    ("tiny_more_data.json", "more_data", {}),
)


def test_bundled_weights_come_from_the_documented_recipe():
    # tiny.json trained 3000 steps, continued with `--max-steps` to 5500, fine-tuned for EI sampling
    # with tiny_ei.json, for PIE-Net-Lite estimates with tiny_pienet.json, then on estimated previous
    # frames with tiny_prev_estimate.json, then on sequences in the real sensors' range with
    # tiny_realistic.json, then on in-range sequences that keep the generator's lighting with
    # tiny_keep_lighting.json, then on PIE-Net's estimates with tiny_pienet_estimates.json and, on a
    # second folder of sequences as well, tiny_pienet_more.json, then on a third folder as well,
    # tiny_more_data.json, then with those weights frozen the learned fusion, retrained in stage 12 to
    # also take CISTA-TC's frames (see the asset's README)
    stages = {}
    for recipe, stem, overrides in BUNDLED_STAGES:
        config = load_config(REPO / "configs/train" / recipe, **overrides)
        assert load_config(LASE_TINY_DIR / f"{stem}_config.json") == config, stem
        last_step = (LASE_TINY_DIR / f"{stem}_log.csv").read_text().splitlines()[-1].split(",")[0]
        assert int(last_step) == config.max_steps, stem
        stages[stem] = config
    finetune, estimate, previous = stages["finetune"], stages["estimate"], stages["prev_estimate"]
    assert finetune.init_from == "runs/tiny/pipeline" and finetune.ei_training_estimate == "firenet_plus"
    assert estimate.init_from == "runs/tiny_ei/pipeline" and estimate.use_estimate
    assert previous.init_from == "runs/tiny_pienet/pipeline"
    assert previous.previous_frame_estimate_fraction == 0.5
    realistic, keep_lighting = stages["realistic"], stages["keep_lighting"]
    assert realistic.init_from == "runs/tiny_prev_estimate/pipeline"
    assert realistic.data_dir == "data_synth_real96"
    assert keep_lighting.init_from == "runs/tiny_realistic/pipeline"
    assert keep_lighting.data_dir == "data_synth_keep64"
    pienet, more, more_data = stages["pienet_estimates"], stages["pienet_more"], stages["more_data"]
    assert pienet.init_from == "runs/tiny_keep_lighting/pipeline" and pienet.ei_training_estimate == "pienet"
    assert more.init_from == "runs/tiny_pienet_estimates/pipeline" and more.ei_training_estimate == "pienet"
    assert (more.data_dir, more.more_data_dirs, more.in_range_only) == (
        "data_synth_keep32", ["data_synth_keep32b"], True)
    assert more_data.init_from == "runs/tiny_pienet_more/pipeline" and more_data.in_range_only
    assert (more_data.data_dir, more_data.more_data_dirs) == (
        "data_synth_keep32", ["data_synth_keep32b", "data_synth_keep64r"])
    # stages 10 and 12: `lase-e2v train-fusion --second-estimate cista_tc` writes the base's sampling with
    # the fusion on, the mix off and the peer it trained with
    assert json.loads((LASE_TINY_DIR / "sampling.json").read_text()) == {
        "ei_strength": 0.1, "estimate": "pienet", "num_samples": 4, "dtype": "auto", "estimate_mix": 0.0,
        "fusion": True, "fusion_estimate": "cista_tc"}
    assert json.loads((LASE_TINY_DIR / "fusion" / "config.json").read_text())["second_estimate"] is True
    assert json.loads((LASE_TINY_DIR / "pipeline.json").read_text())["fusion"] == {"subfolder": "fusion"}
