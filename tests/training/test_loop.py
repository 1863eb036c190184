"""A few real training steps on a tiny synthetic dataset: learning, exact resume, export."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.pipelines.lase import LaSeE2VPipeline
from lase_e2v.training import load_config, loop, train
from lase_e2v.training.checkpoint import STATE_FILE, STATE_KEYS, list_checkpoints, read_state
from lase_e2v.training.export import export_checkpoint

WEIGHTS = "diffusion_pytorch_model.safetensors"


def _config(data_dir, run_dir, **overrides):
    values = {"run_dir": str(run_dir), "data_dir": str(data_dir), "crop": [32, 32], "clip_frames": 2,
              "batch_size": 2, "max_steps": 4, "warmup_steps": 1, "checkpoint_every": 2, "log_every": 1,
              "validate_every": 0, "val_clips": 1, "val_inference_steps": 2, "mask_loss_max_timestep": 1000,
              "ema_decay": 0.9}
    return load_config(values, **overrides)


def _weights(folder):
    return {f"{name}.{key}": value for name in ("unet", "event_encoder")
            for key, value in load_file(folder / name / WEIGHTS).items()}


@pytest.fixture(scope="module")
def straight_run(data_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "straight"
    train(_config(data_dir, run_dir))
    return run_dir


def test_training_learns_logs_and_exports(straight_run, data_dir):
    rows = (straight_run / "log.csv").read_text().splitlines()
    assert rows[0] == "step,loss,diffusion_loss,mask_loss,pixel_loss,lr,elapsed_s"
    losses = [float(row.split(",")[1]) for row in rows[1:]]
    assert len(losses) == 4 and all(0 < value < 10 for value in losses)
    mask_losses = [float(row.split(",")[3]) for row in rows[1:]]
    assert any(value > 0 for value in mask_losses)  # every clip is below mask_loss_max_timestep
    assert [step for step, _ in list_checkpoints(straight_run)] == [2, 4]
    first, last = _weights(straight_run / "checkpoint-2"), _weights(straight_run / "checkpoint-4")
    assert any(not torch.equal(first[key], last[key]) for key in first)
    assert (straight_run / "loss.png").stat().st_size > 0
    val_log = (straight_run / "val.csv").read_text()
    assert val_log.startswith("step,split,mse,ssim,lpips,flicker\n4,synthetic,")
    assert load_config(straight_run / "config.json") == _config(data_dir, straight_run)
    pipeline = LaSeE2VPipeline.from_pretrained(straight_run / "pipeline")
    exported = pipeline.unet.state_dict()
    ema = load_file(straight_run / "checkpoint-4" / "ema" / "unet" / WEIGHTS)
    assert all(torch.equal(exported[key], ema[key]) for key in ema)


def test_killed_run_resumes_to_the_same_weights(straight_run, data_dir, tmp_path, monkeypatch):
    run_dir = tmp_path / "killed"
    calls = {"count": 0}
    original = loop.compute_losses

    def dies_after_the_first_checkpoint(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 3:  # step 3, after checkpoint-2 was written
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "compute_losses", dies_after_the_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(_config(data_dir, run_dir))
    monkeypatch.setattr(loop, "compute_losses", original)
    assert [step for step, _ in list_checkpoints(run_dir)] == [2]
    train(_config(data_dir, run_dir))
    for part in ("", "ema/"):
        resumed, straight = _weights(run_dir / f"checkpoint-4/{part}"), _weights(straight_run / f"checkpoint-4/{part}")
        assert all(torch.equal(resumed[key], straight[key]) for key in straight)
    logged = [row.split(",")[:5] for row in (run_dir / "log.csv").read_text().splitlines()]
    assert logged == [row.split(",")[:5] for row in (straight_run / "log.csv").read_text().splitlines()]


def test_existing_checkpoints_are_not_overwritten_without_resume(straight_run, data_dir):
    with pytest.raises(ConfigError, match="holds checkpoints"):
        train(_config(data_dir, straight_run), resume=False)


def test_learning_rate_schedule():
    config = load_config({"learning_rate": 1.0, "min_learning_rate": 0.1, "warmup_steps": 10, "max_steps": 110})
    assert loop.learning_rate(0, config) == pytest.approx(0.1)
    assert loop.learning_rate(9, config) == pytest.approx(1.0)
    assert loop.learning_rate(60, config) == pytest.approx(0.55)
    assert loop.learning_rate(110, config) == pytest.approx(0.1)


def test_ema_update_known_answer():
    model, ema = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.constant_(model.weight, 1.0)
    torch.nn.init.constant_(ema.weight, 0.0)
    loop.update_ema(ema, model, decay=0.9)
    assert ema.weight.item() == pytest.approx(0.1)


def test_corrective_target_is_the_usual_target_for_clean_latents_and_recovers_them():
    from lase_e2v.pipelines.lase import default_scheduler
    from lase_e2v.training.losses import predicted_clean_latents

    scheduler = default_scheduler("v_prediction")
    clean, noise = torch.randn(3, 2, 4, 4, 4), torch.randn(3, 2, 4, 4, 4)
    timesteps = torch.tensor([0, 150, 999])
    noisy = scheduler.add_noise(clean, noise, timesteps)
    usual = {"epsilon": noise, "v_prediction": scheduler.get_velocity(clean, noise, timesteps)}
    estimate_noisy = scheduler.add_noise(clean + 0.5, noise, timesteps)  # noised from a wrong estimate
    for kind, target in usual.items():
        assert torch.allclose(loop.corrective_target(scheduler.alphas_cumprod, noisy, clean, timesteps, kind),
                              target, atol=1e-4)
        corrective = loop.corrective_target(scheduler.alphas_cumprod, estimate_noisy, clean, timesteps, kind)
        recovered = predicted_clean_latents(scheduler.alphas_cumprod, estimate_noisy, corrective, timesteps, kind)
        assert torch.allclose(recovered, clean, atol=1e-3)


def test_timestep_sampling_switches():
    torch.manual_seed(0)
    config = load_config({"low_noise_fraction": 1.0, "low_noise_max_timestep": 100})
    timesteps, from_estimate = loop.sample_timesteps(config, 500, "cpu")
    assert timesteps.max() < 100 and not from_estimate.any()
    config = load_config({"ei_training_estimate": "integrate", "ei_training_fraction": 0.5,
                          "ei_training_timesteps": [50, 60]})
    timesteps, from_estimate = loop.sample_timesteps(config, 2000, "cpu")
    assert 0.45 < from_estimate.float().mean() < 0.55
    assert timesteps[from_estimate].min() >= 50 and timesteps[from_estimate].max() < 60
    assert timesteps[~from_estimate].max() > 900  # the others stay uniform over all timesteps


def test_previous_frame_from_the_estimate_swaps_whole_clips_at_the_given_rate():
    torch.manual_seed(0)
    true, estimated = torch.zeros(4000, 2, 3, 3), torch.ones(4000, 2, 3, 3)
    batch = {"previous_estimate_latent": estimated}
    swapped = loop.estimated_previous_latent(None, batch, true, 0.3)
    per_clip = swapped.flatten(1)
    assert torch.all(per_clip.min(1).values == per_clip.max(1).values)  # whole clips are swapped
    assert 0.27 < per_clip[:, 0].mean() < 0.33
    assert torch.equal(loop.estimated_previous_latent(None, batch, true, 0.0), true)
    assert torch.equal(loop.estimated_previous_latent(None, batch, true, 1.0), estimated)
    with pytest.raises(ConfigError, match="previous_frame_estimate_fraction"):
        load_config({"previous_frame_estimate_fraction": 0.5})  # needs a peer's estimates
    with pytest.raises(ConfigError, match="previous_frame_estimate_fraction must be in"):
        load_config({"previous_frame_estimate_fraction": 1.5, "ei_training_estimate": "integrate"})


def test_estimate_tone_jitter_raises_each_clip_to_one_power_and_drops_stale_latents():
    torch.manual_seed(0)
    estimate = torch.full((2000, 2, 1, 3, 3), 0.25)
    batch = {"estimate": estimate, "previous_estimate": torch.full((2000, 1, 3, 3), 0.5),
             "estimate_latents": torch.zeros(2000, 2, 4, 1, 1), "previous_estimate_latent": torch.zeros(2000, 4, 1, 1),
             "frames": torch.ones(2000, 2, 1, 3, 3)}
    jittered = loop.jitter_estimate_tone(batch, 0.4)
    assert "estimate_latents" not in jittered and "previous_estimate_latent" not in jittered
    assert jittered["frames"] is batch["frames"] and torch.equal(batch["estimate"], estimate)  # input untouched
    powers = torch.log(jittered["estimate"].flatten(1)) / torch.log(torch.tensor(0.25))
    assert torch.allclose(powers.min(1).values, powers.max(1).values)  # one power per clip
    previous = torch.log(jittered["previous_estimate"].flatten(1)[:, 0]) / torch.log(torch.tensor(0.5))
    assert torch.allclose(previous, powers[:, 0], atol=1e-4)  # the previous frame's estimate shares it
    log_powers = torch.log(powers[:, 0])
    assert -0.4 <= log_powers.min() < -0.38 and 0.38 < log_powers.max() <= 0.4
    assert abs(float(log_powers.mean())) < 0.02  # uniform in log: as often darker as brighter
    with pytest.raises(ConfigError, match="estimate_gamma_jitter must be in"):
        load_config({"estimate_gamma_jitter": -0.1})


def _batch_with_estimates(**latents):
    """A training batch of two 2-frame 32x32 clips with pixel estimates and the given cached latents (seed 0)."""
    torch.manual_seed(0)
    return {"frames": torch.rand(2, 2, 1, 32, 32), "voxels": torch.randn(2, 2, 5, 32, 32),
            "previous_frame": torch.rand(2, 1, 32, 32), "event_mask": torch.ones(2, 2, 1, 32, 32),
            "caption": ["a cat", "a dog"], "estimate": torch.rand(2, 2, 1, 32, 32),
            "previous_estimate": torch.rand(2, 1, 32, 32), **latents}


def test_jittered_estimates_are_encoded_in_the_step_not_read_from_the_cache(straight_run, data_dir, tmp_path):
    pipeline = LaSeE2VPipeline.from_pretrained(straight_run / "pipeline")
    denoiser = loop.Denoiser(pipeline.event_encoder, pipeline.unet)
    channels = pipeline.autoencoder.latent_channels
    batch = _batch_with_estimates(estimate_latents=torch.full((2, 2, channels, 4, 4), float("nan")),
                                  previous_estimate_latent=torch.full((2, channels, 4, 4), float("nan")))
    switches = {"ei_training_estimate": "integrate", "ei_training_fraction": 1.0,
                "previous_frame_estimate_fraction": 1.0, "previous_frame_dropout": 0.0}
    with torch.no_grad():
        cached = loop.compute_losses(pipeline, denoiser, batch, _config(data_dir, tmp_path, **switches))
        jittered = loop.compute_losses(pipeline, denoiser, batch,
                                       _config(data_dir, tmp_path, estimate_gamma_jitter=0.4, **switches))
    assert torch.isnan(cached["diffusion_loss"])  # the (stale) cached latents are what the plain step reads
    assert torch.isfinite(jittered["diffusion_loss"]) and 0 < float(jittered["diffusion_loss"]) < 100


def test_pixel_loss_is_the_decoded_frames_error_and_adds_with_its_weight(straight_run, data_dir, tmp_path):
    pipeline = LaSeE2VPipeline.from_pretrained(straight_run / "pipeline")
    denoiser = loop.Denoiser(pipeline.event_encoder, pipeline.unet)
    torch.manual_seed(0)
    batch = {"frames": torch.rand(2, 2, 1, 32, 32), "voxels": torch.randn(2, 2, 5, 32, 32),
             "previous_frame": torch.rand(2, 1, 32, 32), "event_mask": torch.ones(2, 2, 1, 32, 32),
             "caption": ["a cat", "a dog"]}

    def losses(**switches):
        torch.manual_seed(1)
        random.seed(1)
        with torch.no_grad():
            return loop.compute_losses(pipeline, denoiser, batch, _config(data_dir, tmp_path, **switches))

    plain, weighted = losses(), losses(pixel_loss_weight=2.0)
    assert float(plain["pixel_loss"]) == pytest.approx(float(weighted["pixel_loss"]))
    # random frames against what a 4-step model decodes: an L1 of a few tenths, never 0
    assert 0.05 < float(weighted["pixel_loss"]) < 0.9
    assert float(weighted["loss"] - plain["loss"]) == pytest.approx(2 * float(weighted["pixel_loss"]), rel=1e-5)
    # with the mask loss off the frames are still decoded for the pixel loss, and only then
    only_pixel = losses(mask_loss_weight=0.0, pixel_loss_weight=1.0)
    assert float(only_pixel["pixel_loss"]) == pytest.approx(float(plain["pixel_loss"]))
    assert float(only_pixel["loss"] - only_pixel["diffusion_loss"]) == pytest.approx(
        float(only_pixel["pixel_loss"]), rel=1e-5)
    assert float(losses(mask_loss_weight=0.0)["pixel_loss"]) == 0
    # the squared error of the same decoded frames: between the squared mean error (Jensen) and the
    # mean error itself (errors of a few tenths shrink when squared), and it adds with its weight too
    squared = losses(pixel_loss_weight=2.0, pixel_loss_norm="l2")
    l1, l2 = float(plain["pixel_loss"]), float(squared["pixel_loss"])
    assert l1 ** 2 <= l2 < 0.8 * l1
    assert float(squared["loss"] - plain["loss"]) == pytest.approx(2 * l2, rel=1e-5)
    with pytest.raises(ConfigError, match="pixel_loss_weight"):
        load_config({"pixel_loss_weight": -1.0})
    with pytest.raises(ConfigError, match="pixel_loss_norm"):
        load_config({"pixel_loss_norm": "l3"})


def test_with_tone_jitter_the_latent_cache_holds_the_frames_only(tmp_path, shared_dir):
    from lase_e2v.simulate.dataset import make_dataset

    data = tmp_path / "data"
    make_dataset(data, 2, duration_s=0.2, size=(32, 32), seed=0, num_val=0,
                 coco_dir=shared_dir / "data" / "coco_mini", progress=False)
    config = _config(data, tmp_path / "run", max_steps=2, use_estimate=True, ei_training_estimate="integrate",
                     cache_latents=True, estimate_gamma_jitter=0.4)
    train(config)
    assert (data / "estimates" / "integrate").is_dir()  # the pixel estimates the step jitters
    assert [p.name for p in (data / "latents" / "tae").iterdir()] == ["frames"]
    item = loop.make_dataset(config, "train", "tae")[0]
    assert "latents" in item and "estimate" in item and "estimate_latents" not in item
    losses = [float(row.split(",")[1]) for row in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    assert len(losses) == 2 and all(0 < value < 100 for value in losses)


def test_fine_tuning_from_a_pipeline_with_estimates(straight_run, data_dir, tmp_path):
    run_dir = tmp_path / "finetune"
    config = _config(data_dir, run_dir, max_steps=2, init_from=str(straight_run / "pipeline"),
                     ei_training_estimate="integrate", ei_training_fraction=1.0, ei_training_timesteps=[50, 300],
                     previous_frame_estimate_fraction=1.0, learning_rate=1e-12, min_learning_rate=0.0,
                     ema_decay=0.0)
    train(config)
    assert (data_dir / "estimates" / "integrate").is_dir()
    started, finished = _weights(straight_run / "pipeline"), _weights(run_dir / "pipeline")
    assert all(torch.allclose(started[key], finished[key], atol=1e-6) for key in started)  # lr ~0: init kept
    losses = [float(row.split(",")[1]) for row in (run_dir / "log.csv").read_text().splitlines()[1:]]
    assert len(losses) == 2 and all(0 < value < 100 for value in losses)


def test_a_dataset_without_val_sequences_trains_without_the_clip_validation(data_dir, tmp_path, shared_dir):
    from lase_e2v.simulate.dataset import make_dataset

    train_only = tmp_path / "train_only"
    make_dataset(train_only, 2, duration_s=0.2, size=(32, 32), seed=0, num_val=0,
                 coco_dir=shared_dir / "data" / "coco_mini", progress=False)
    run_dir = tmp_path / "run"
    train(_config(train_only, run_dir, max_steps=2, ei_training_estimate="integrate", ei_training_fraction=1.0,
                  ei_training_timesteps=[50, 300]))
    assert [step for step, _ in list_checkpoints(run_dir)] == [2]
    assert sorted(p.name for p in (train_only / "estimates" / "integrate").iterdir()) == ["seq_00000.npy",
                                                                                         "seq_00001.npy"]
    assert (run_dir / "val.csv").read_text() == "step,split,mse,ssim,lpips,flicker\n"  # nothing to score
    assert (run_dir / "pipeline" / "unet" / WEIGHTS).is_file()


def test_each_process_caches_its_share_and_the_shares_make_the_whole(tmp_path, shared_dir):
    """``prepare_estimates`` / ``prepare_latents`` with a ``share`` (what ``Processes.share`` gives each
    of N processes) compute that share's estimates and latents only; complementary shares write what
    one process writes; shares are taken of the missing sequences only, so a half-cached folder still
    splits its remaining work evenly."""
    from types import SimpleNamespace

    from lase_e2v.models.autoencoder import load_autoencoder
    from lase_e2v.simulate.dataset import make_dataset

    split = tmp_path / "split"
    make_dataset(split, 3, duration_s=0.2, size=(32, 32), seed=0, num_val=0,
                 coco_dir=shared_dir / "data" / "coco_mini", progress=False)
    whole = tmp_path / "whole"
    shutil.copytree(split, whole)
    pipeline = SimpleNamespace(autoencoder=load_autoencoder("tae"))
    offered = []

    def prepare(folder, share):
        def recorded(sequences):
            offered.append([Path(sequence["file"]).stem for sequence in sequences])
            return share(sequences)

        config = _config(folder, tmp_path / "run", use_estimate=True, ei_training_estimate="integrate",
                         cache_latents=True)
        loop.prepare_estimates(config, recorded)
        loop.prepare_latents(config, pipeline, recorded)

    def cached(folder):
        return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.npy"))}

    prepare(split, lambda sequences: sequences[:1])
    first = cached(split)
    assert {Path(name).stem for name in first} == {"seq_00000"}
    assert {Path(name).parts[0] for name in first} == {"estimates", "latents"}
    offered.clear()
    prepare(split, list)
    assert offered == [["seq_00001", "seq_00002"]] * 2  # estimates, then latents: seq_00000 is done
    prepare(whole, list)
    assert cached(split) == cached(whole)
    assert {Path(name).stem for name in cached(whole)} == {"seq_00000", "seq_00001", "seq_00002"}


def test_more_data_dirs_train_with_their_own_caches_and_val_stays_in_data_dir(tmp_path, shared_dir):
    from types import SimpleNamespace

    from lase_e2v.models.autoencoder import load_autoencoder
    from lase_e2v.simulate.dataset import make_dataset

    first, more = tmp_path / "first", tmp_path / "more"
    for folder, seed in ((first, 0), (more, 1)):
        make_dataset(folder, 3, duration_s=0.2, size=(32, 32), seed=seed, num_val=1,
                     coco_dir=shared_dir / "data" / "coco_mini", progress=False)
    config = _config(first, tmp_path / "run", more_data_dirs=[str(more)], use_estimate=True,
                     ei_training_estimate="integrate", cache_latents=True)
    loop.prepare_estimates(config)
    loop.prepare_latents(config, SimpleNamespace(autoencoder=load_autoencoder("tae")))

    def cached(folder, kind):
        return sorted(path.stem for path in (folder / kind).rglob("*.npy"))

    assert cached(first, "estimates") == ["seq_00000", "seq_00001", "seq_00002"]  # train and val
    assert cached(more, "estimates") == ["seq_00000", "seq_00001"]  # train only: its val is not used
    assert set(cached(first, "latents")) == set(cached(more, "latents")) == {"seq_00000", "seq_00001"}
    train, val = loop.make_dataset(config, "train", "tae"), loop.make_dataset(config, "val")
    assert train.folders == [first, first, more, more] and val.folders == [first]


def test_a_missing_data_folder_is_refused_before_the_run_folder_is_made(data_dir, tmp_path):
    config = _config(data_dir, tmp_path / "run", more_data_dirs=[str(tmp_path / "nowhere")])
    with pytest.raises(ConfigError, match="nowhere: no manifest.json"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_lighting_balance_on_folders_without_their_lighting_is_refused_before_the_run_folder(data_dir, tmp_path):
    old = tmp_path / "old"  # a make-dataset folder from before the lighting was recorded
    shutil.copytree(data_dir, old, ignore=shutil.ignore_patterns("latents", "estimates"))
    manifest = json.loads((old / "manifest.json").read_text())
    for record in manifest["sequences"]:
        del record["scene"]["lighting"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="seq_00000.h5 has no recorded lighting kind"):
        train(_config(old, tmp_path / "run", lighting_balance=True))
    assert not (tmp_path / "run").exists()


def test_init_from_a_mismatched_pipeline_is_refused(straight_run, data_dir, tmp_path):
    from lase_e2v.errors import CheckpointError

    config = _config(data_dir, tmp_path / "wrong", init_from=str(straight_run / "pipeline"), num_bins=3)
    with pytest.raises(CheckpointError, match="does not match"):
        train(config)


def test_estimate_conditioning_from_cached_latents_extends_a_pipeline(straight_run, data_dir, tmp_path):
    run_dir = tmp_path / "conditioned"
    config = _config(data_dir, run_dir, max_steps=2, init_from=str(straight_run / "pipeline"), use_estimate=True,
                     ei_training_estimate="integrate", cache_latents=True,
                     previous_frame_estimate_fraction=1.0, learning_rate=1e-12, min_learning_rate=0.0,
                     ema_decay=0.0)
    train(config)
    assert sorted(p.name for p in (data_dir / "latents" / "tae").iterdir()) == ["frames", "integrate"]
    source = LaSeE2VPipeline.from_pretrained(straight_run / "pipeline")
    extended = LaSeE2VPipeline.from_pretrained(run_dir / "pipeline")
    assert extended.unet.config.use_estimate and not source.unet.config.use_estimate
    in_channels = source.unet.conv_in.in_channels
    assert extended.unet.conv_in.weight[:, in_channels:].abs().max() < 1e-9  # new inputs start at zero (lr ~0)
    # so the extended model predicts what the source did, whatever the estimate
    torch.manual_seed(0)
    latents, events = torch.randn(1, 2, 32, 4, 4), torch.randn(1, 2, 16, 4, 4)
    text = source.encode_prompt(["a cat"], guidance=False)
    args = (latents, 500, events, torch.randn(1, 32, 4, 4), text.states, text.mask)
    with torch.no_grad():
        expected = source.unet(*args)
        got = extended.unet(*args, estimate_latents=torch.randn_like(latents))
    assert torch.allclose(expected, got, atol=1e-5)


def test_mask_loss_window_cuts_matching_latent_and_pixel_windows():
    torch.manual_seed(0)
    index = torch.arange(16.0).reshape(4, 4)  # latent cell ids
    latents = index.expand(1, 2, 3, 4, 4).clone()
    pixels = index.repeat_interleave(8, 0).repeat_interleave(8, 1).expand(1, 2, 1, 32, 32).clone()
    for _ in range(5):
        window, (crop,) = loop.mask_loss_window(latents, [pixels], 2, 8)
        assert window.shape == (1, 2, 3, 2, 2) and crop.shape == (1, 2, 1, 16, 16)
        expected = window[0, 0, 0].repeat_interleave(8, 0).repeat_interleave(8, 1)
        assert torch.equal(crop[0, 0, 0], expected)  # every pixel sits under its own latent cell
    whole, kept = loop.mask_loss_window(latents, [pixels], 0, 8)
    assert whole is latents and kept[0] is pixels


def test_export_writes_the_chosen_checkpoint_as_a_pipeline(straight_run, tmp_path, run_cli, cli_error):
    newest = export_checkpoint(straight_run, tmp_path / "newest")
    exported = _weights(straight_run / "pipeline")  # what the run exported at its end
    assert _weights(newest).keys() == exported.keys()
    assert all(torch.equal(value, exported[key]) for key, value in _weights(newest).items())
    code, out, _ = run_cli("export", straight_run, "-o", tmp_path / "step2", "--step", 2)
    assert code == 0 and out.strip().endswith(f"wrote {tmp_path / 'step2'}")
    step2 = _weights(tmp_path / "step2")
    ema2 = load_file(straight_run / "checkpoint-2" / "ema" / "unet" / WEIGHTS)
    assert all(torch.equal(step2[f"unet.{key}"], value) for key, value in ema2.items())
    assert any(not torch.equal(step2[key], value) for key, value in _weights(newest).items())
    raw = _weights(export_checkpoint(straight_run, tmp_path / "raw", step=4, ema=False))
    raw4 = load_file(straight_run / "checkpoint-4" / "unet" / WEIGHTS)
    assert all(torch.equal(raw[f"unet.{key}"], value) for key, value in raw4.items())
    assert LaSeE2VPipeline.from_pretrained(tmp_path / "step2").options == LaSeE2VPipeline.from_pretrained(
        straight_run / "pipeline").options
    missing = cli_error("export", straight_run, "-o", tmp_path / "x", "--step", 3)
    assert "no checkpoint-3; it has steps 2, 4" in missing
    assert "exists" in cli_error("export", straight_run, "-o", tmp_path / "step2")
    assert not (tmp_path / "x").exists()


def test_export_of_several_runs_writes_the_mean_of_their_weights(straight_run, tmp_path, run_cli, cli_error):
    other = tmp_path / "other"  # a second run of the same model, stopped at step 2
    shutil.copytree(straight_run / "checkpoint-2", other / "checkpoint-2")
    code, out, _ = run_cli("export", straight_run, other, "-o", tmp_path / "soup")
    assert code == 0 and out.strip().endswith(f"wrote {tmp_path / 'soup'}")
    soup = _weights(tmp_path / "soup")
    ema4, ema2 = (_weights(straight_run / f"checkpoint-{step}" / "ema") for step in (4, 2))
    assert soup.keys() == ema4.keys()
    assert all(torch.allclose(value, (ema4[key] + ema2[key]) / 2, atol=1e-7) for key, value in soup.items())
    assert any(not torch.equal(ema4[key], ema2[key]) for key in soup)  # so the mean is not one run's weights
    raw = _weights(export_checkpoint([straight_run, other], tmp_path / "raw", step=2, ema=False))
    assert all(torch.equal(value, _weights(straight_run / "checkpoint-2")[key]) for key, value in raw.items())
    # same shapes, different model: a v-prediction and an epsilon U-Net have no meaningful mean
    epsilon = tmp_path / "epsilon"
    shutil.copytree(straight_run / "checkpoint-4", epsilon / "checkpoint-4")
    unet_config = epsilon / "checkpoint-4" / "ema" / "unet" / "config.json"
    assert '"v_prediction"' in unet_config.read_text()
    unet_config.write_text(unet_config.read_text().replace('"v_prediction"', '"epsilon"'))
    message = cli_error("export", straight_run, epsilon, "-o", tmp_path / "mixed")
    assert f"{epsilon}: not the model of {straight_run} (unet differ)" in message
    assert "no checkpoint-3" in cli_error("export", straight_run, other, "-o", tmp_path / "x", "--step", 3)
    assert not (tmp_path / "mixed").exists() and not (tmp_path / "x").exists()


def test_a_checkpoint_state_without_its_config_is_one_error(straight_run, tmp_path, cli_error):
    assert set(json.loads((straight_run / "checkpoint-4" / STATE_FILE).read_text())) == set(STATE_KEYS)
    run = tmp_path / "run"
    shutil.copytree(straight_run / "checkpoint-4", run / "checkpoint-4")
    state = json.loads((run / "checkpoint-4" / STATE_FILE).read_text())
    del state["config"]
    (run / "checkpoint-4" / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=f"{STATE_FILE} lacks config"):
        read_state(run / "checkpoint-4")
    assert f"{STATE_FILE} lacks config" in cli_error("export", run, "-o", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pixel_loss_detail_transfer_scores_the_estimate_plus_the_decoded_move(data_dir, tmp_path, monkeypatch):
    config = _config(data_dir, tmp_path, use_estimate=True, ei_training_estimate="integrate", pixel_loss_weight=1.0,
                     pixel_loss_detail_transfer=True, mask_loss_weight=0.0)
    pipeline = loop.build_pipeline(config)
    denoiser = loop.Denoiser(pipeline.event_encoder, pipeline.unet)
    channels = pipeline.autoencoder.latent_channels
    batch = _batch_with_estimates(estimate_latents=torch.randn(2, 2, channels, 4, 4))
    decoded = []

    def flat_decoder(latents, size=None):  # every latent decodes to mid-grey: the move decodes to nothing
        decoded.append(latents)
        return torch.full((len(latents), 1, *size), 0.5) + 0 * latents.sum()

    monkeypatch.setattr(pipeline.autoencoder, "decode", flat_decoder)
    with torch.no_grad():
        transferred = loop.compute_losses(pipeline, denoiser, batch, config)
        plain = loop.compute_losses(pipeline, denoiser, batch, _config(
            data_dir, tmp_path, use_estimate=True, ei_training_estimate="integrate", pixel_loss_weight=1.0,
            mask_loss_weight=0.0))
    # the frame scored is the estimate itself (grey + estimate - grey), not the decoded grey
    expected = (batch["estimate"] - batch["frames"]).abs().mean()
    assert float(transferred["pixel_loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(plain["pixel_loss"]) == pytest.approx(float((0.5 - batch["frames"]).abs().mean()), rel=1e-5)
    assert torch.equal(decoded[1], batch["estimate_latents"].flatten(0, 1))  # the round trip of the estimate
    with pytest.raises(ConfigError, match="pixel_loss_detail_transfer needs"):
        load_config({"pixel_loss_detail_transfer": True, "pixel_loss_weight": 1.0})


def test_a_log_from_before_the_pixel_loss_column_resumes_and_plots(tmp_path):
    from lase_e2v.training.log import CsvLog, plot_losses

    path = tmp_path / "log.csv"
    path.write_text("step,loss,diffusion_loss,mask_loss,lr,elapsed_s\n10,1.5,1.4,0.1,0.0001,5\n20,1.2,1.1,0.1,0.0001,9\n")
    log = CsvLog(path, loop.LOG_COLUMNS)
    log.truncate(10)  # what resuming from checkpoint-10 does
    log.append({"step": 20, "loss": 1.0, "diffusion_loss": 0.9, "mask_loss": 0.05, "pixel_loss": 0.05,
                "lr": 1e-4, "elapsed_s": 9.0})
    rows = log.rows()
    assert [row["step"] for row in rows] == ["10", "20"]
    assert rows[0]["pixel_loss"] == "" and rows[1]["pixel_loss"] == "0.05"
    plot_losses(log, loop.LOSS_TERMS, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_training_keeps_the_text_states_of_every_caption_it_has_seen(data_dir, tmp_path):
    """A run's captions are a finite set: past the inference cache's 64 prompts none is encoded twice."""
    pipeline = loop.build_pipeline(_config(data_dir, tmp_path / "run"))
    prompts = [f"scene {i}, at night, dark" for i in range(100)]
    first = pipeline.encode_prompt(prompts, guidance=False)
    calls = []
    pipeline.text_encoder.model.register_forward_hook(lambda *args: calls.append(1))
    again = pipeline.encode_prompt(prompts, guidance=False)
    assert calls == [] and torch.equal(first.states, again.states)
    pipeline.encode_prompt(["a caption never seen"], guidance=False)
    assert calls == [1]
