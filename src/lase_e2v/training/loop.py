"""Train LaSe-E2V: one loop, nanoGPT-style, on accelerate (CPU, one GPU, or ``accelerate launch``).

What is trained: the event encoder and the video U-Net. The image autoencoder (TAEF2) and the text
encoder stay frozen. Per optimizer step (``gradient_accumulation_steps`` micro-batches):

1. encode the clip's frames and its previous frame to latents (frozen autoencoder), or read them
   from the dataset's latent cache (``cache_latents``, :mod:`.latents`: computed once before training,
   so a step runs only the trained modules and the mask loss's decoder);
2. with probability ``previous_frame_estimate_fraction`` condition a clip on the latent of the peer's
   estimate of its previous frame instead of the true one (our choice, off by default: sampling only
   ever has an estimate or its own output there); drop the caption (-> ``""``, the CFG unconditional
   prompt) with probability ``text_dropout`` and the previous frame (-> zero latent, the U-Net's "no
   previous frame") with ``previous_frame_dropout``;
3. noise the latents at random timesteps, predict epsilon or v, diffusion loss = MSE to the target;
4. event-aware mask loss (:mod:`.losses`) on frames decoded from the predicted clean latents, for
   clips noised at ``t < mask_loss_max_timestep``, weighted by ``mask_loss_weight`` (optionally on a
   random ``mask_loss_latent_crop`` window only: decoding with gradients is the step's largest cost),
   plus, weighted by ``pixel_loss_weight`` (off by default), an L1 (``pixel_loss_norm`` "l1") or squared
   ("l2") error between those decoded frames and the true frames on every pixel: the diffusion loss weighs latent errors, the scores (MSE / SSIM /
   LPIPS) pixel ones, and the frozen decoder does not map the one onto the other evenly; the decode is
   already paid for, so the term costs nothing. With ``pixel_loss_detail_transfer`` the pixel loss
   scores the frame that sampling with ``detail_transfer`` 1 shows, the decoded frame plus what the
   autoencoder loses of the estimate (one more decode, without gradients): the model then learns
   moves on top of the estimate's own pixels instead of on its autoencoder round trip;
5. AdamW step with warm-up + cosine learning rate, gradient clipping, EMA update.

Fine-tuning for EI sampling (our choice; the paper does not say how EI relates to training).
EI with strength ``s`` only runs the sampler at ``t < s * 1000``, starting from a noised latent of
a peer's estimate, so two switches move training there:

* ``low_noise_fraction``: that share of clips draws ``t`` from ``[0, low_noise_max_timestep)``
  (the rest from all 1000), spending a small model's capacity where EI sampling runs;
* ``ei_training_fraction``: that share draws ``t`` from ``ei_training_timesteps`` and is noised
  from the latent of the peer's cached estimate of each frame (:mod:`.estimates`) instead of the
  frame's, ``x_t = sqrt(a) E(estimate) + sqrt(1 - a) eps``, with the target that brings the
  sampler's clean-latent prediction to the true frame ``z``: ``eps* = (x_t - sqrt(a) z) / sqrt(1 - a)``,
  ``v* = sqrt(a) eps* - sqrt(1 - a) z`` (the usual targets when the estimate is the frame). The
  denoiser thus learns to correct the estimate, not to keep its errors.

Estimate conditioning (``use_estimate``): the U-Net also takes the latent of the peer's cached
estimate of every frame (:mod:`lase_e2v.models.video_unet`), in every clip, as at inference.

Estimate tone jitter (``estimate_gamma_jitter`` r, our addition, off by default): each clip's
estimates (its frames' and its previous frame's) are raised to one power ``exp(u)``, ``u ~ U(-r, r)``,
and encoded in the step (``cache_latents`` then caches the frames' latents only); the target stays
the true frame. Why: a peer's global tone is often wrong (no event camera measures absolute
brightness), and a model trained on one peer's tone keeps it: on 20 fresh keep-lighting val
sequences the bundled model's per-sequence tone error (mean output minus mean truth) correlated 0.84
with PIE-Net's. Jittered, the estimate's tone stops being a reliable cue, so the model has to take
tone from what else it sees.

``init_from`` starts a new run from a saved pipeline's weights (e.g. the bundled checkpoint); a
U-Net without the estimate input extends to one with it (the new input channels start at zero).

Every ``checkpoint_every`` steps an atomic ``checkpoint-<step>/`` is written (:mod:`.checkpoint`);
``train(config, resume=True)`` continues from the newest one *exactly* (same weights as an
uninterrupted run), because the data order is a function of the step (:class:`.state.ClipSampler`)
and the RNG states are restored. At the end the (EMA) model is exported to ``run_dir/pipeline``,
loadable with :func:`~lase_e2v.pipelines.lase.load_lase_pipeline`, which samples it as validation
did (its ``sampling.json``, :func:`save_run_pipeline`).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.models.text_encoder import load_text_encoder
from lase_e2v.pipelines.lase import LaSeE2VPipeline
from lase_e2v.pipelines.sampling_options import SamplingOptions
from lase_e2v.processes import Processes, accelerate_cpu_flag, check_launch
from lase_e2v.training.checkpoint import (TRAINED_MODULES, TrainingState, list_checkpoints, load_checkpoint,
                                          save_checkpoint)
from lase_e2v.training.config import TrainingConfig, load_config
from lase_e2v.training.estimates import cache_estimates, missing_estimates
from lase_e2v.training.latents import autoencoder_key, cache_latents, latent_kinds, missing_latents
from lase_e2v.training.log import CsvLog, plot_losses
from lase_e2v.training.losses import event_mask_loss, predicted_clean_latents
from lase_e2v.training.state import ClipSampler, capture_rng_state, restore_rng_state, rng_state_file
from lase_e2v.training.validation import validate_sequences, validate_synthetic, validation_sequences

if TYPE_CHECKING:
    from lase_e2v.training.clips import SyntheticClipDataset

#: prompts whose text states a training run keeps: its captions come from a finite set (each sequence's
#: sentences, with or without its scene words, and ""), and a GPU batch (64 clips in tiny_gpu.json) would
#: otherwise re-encode most of its captions every step, one text-encoder pass each
TRAINING_TEXT_CACHE = 4096
LOSS_TERMS = ("loss", "diffusion_loss", "mask_loss", "pixel_loss")  # what compute_losses returns
LOG_COLUMNS = ["step", *LOSS_TERMS, "lr", "elapsed_s"]
VAL_COLUMNS = ["step", "split", "mse", "ssim", "lpips", "flicker"]


class Denoiser(nn.Module):
    """The trainable part as one module (what DDP wraps): voxels -> event features -> U-Net prediction."""

    def __init__(self, event_encoder: nn.Module, unet: nn.Module) -> None:
        super().__init__()
        self.event_encoder = event_encoder
        self.unet = unet

    def forward(self, noisy_latents, timesteps, voxels, previous_latent, text_states, text_mask,
                estimate_latents=None) -> torch.Tensor:
        event_features = self.event_encoder(voxels)
        return self.unet(noisy_latents, timesteps, event_features, previous_latent, text_states, text_mask,
                         estimate_latents)


def build_pipeline(config: TrainingConfig) -> LaSeE2VPipeline:
    """A randomly initialised pipeline of ``model_preset`` with the config's ablation switches."""
    unet_options = {"use_esa": config.use_esa, "use_previous_frame": config.use_previous_frame,
                    "use_estimate": config.use_estimate, "prediction_type": config.prediction_type,
                    **config.model_overrides}
    options = SamplingOptions(num_inference_steps=config.val_inference_steps, guidance_scale=config.val_guidance_scale,
                              ei_strength=config.ei_strength, clip_length=config.clip_frames)
    return LaSeE2VPipeline.from_preset(
        config.model_preset,
        autoencoder=config.autoencoder,
        text_encoder=(load_text_encoder(config.text_encoder, cache_size=TRAINING_TEXT_CACHE)
                      if config.use_text else None),
        num_bins=config.num_bins,
        unet_options=unet_options,
        options=options,
    )


def learning_rate(step: int, config: TrainingConfig) -> float:
    """1) linear warm-up, 2) constant or cosine decay to ``min_learning_rate`` at ``max_steps``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return config.learning_rate
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return config.min_learning_rate + cosine * (config.learning_rate - config.min_learning_rate)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for every parameter."""
    for ema_parameter, parameter in zip(ema.parameters(), model.parameters()):
        ema_parameter.lerp_(parameter.detach().to(ema_parameter.dtype), 1.0 - decay)


def ema_decay(config: TrainingConfig, ema_step: int) -> float:
    """diffusers' EMA warm-up: ``min(decay, (1 + n) / (10 + n))`` so early averages are not stuck at init."""
    return min(config.ema_decay, (1 + ema_step) / (10 + ema_step))


def make_dataset(config: TrainingConfig, split: str, latents_key: str | None = None):
    """The train or val clips, with the peer's estimates when training uses one (validation then samples
    with EI from them, as inference does); val never reads latents."""
    from lase_e2v.training.clips import SyntheticClipDataset

    estimate, train = config.estimate_method, split == "train"
    return SyntheticClipDataset(config.data_dir, split=split, clip_frames=config.clip_frames, num_bins=config.num_bins,
                                crop=tuple(config.crop), augment=config.augment and train, seed=config.seed,
                                estimate_method=estimate, sentence_dropout=config.caption_sentence_dropout,
                                latents_key=latents_key if train else None,
                                estimate_latents=config.latent_estimate_method is not None,
                                latent_flips=tuple(config.latent_flips),
                                **_folders(config, split))


def _folders(config: TrainingConfig, split: str) -> dict[str, Any]:
    """Where a split's sequences come from: train from ``data_dir`` and ``more_data_dirs`` (in range only
    with ``in_range_only``), val from ``data_dir`` as made."""
    if split != "train":
        return {}
    return {"more_roots": tuple(config.more_data_dirs), "in_range_only": config.in_range_only}


def clip_weights(config: TrainingConfig, dataset: SyntheticClipDataset) -> torch.Tensor | None:
    """The sampler's per-clip weights: ``lighting_balance`` times ``good_estimate_share`` (None: even)."""
    weights = None
    if config.lighting_balance:
        weights = dataset.lighting_weights()
    if config.good_estimate_share > 0:
        good = dataset.good_estimate_weights(config.good_estimate_share)
        weights = good if weights is None else weights * good
    return weights


def sample_timesteps(config: TrainingConfig, batch_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(timesteps, from_estimate)`` per clip: uniform, low-noise or EI-estimate (module docstring)."""
    timesteps = torch.randint(0, config.num_train_timesteps, (batch_size,), device=device)
    from_estimate = torch.zeros(batch_size, dtype=torch.bool, device=device)
    if config.low_noise_fraction > 0:
        low = torch.rand(batch_size, device=device) < config.low_noise_fraction
        timesteps = torch.where(low, torch.randint(0, config.low_noise_max_timestep, (batch_size,), device=device),
                                timesteps)
    if config.ei_training_fraction > 0:
        from_estimate = torch.rand(batch_size, device=device) < config.ei_training_fraction
        timesteps = torch.where(from_estimate, torch.randint(*config.ei_training_timesteps, (batch_size,), device=device),
                                timesteps)
    return timesteps, from_estimate


def corrective_target(alphas_cumprod: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor, timesteps: torch.Tensor,
                      prediction_type: str) -> torch.Tensor:
    """The epsilon / v whose clean-latent prediction from ``noisy`` at ``timesteps`` is exactly ``clean``."""
    alpha = alphas_cumprod.to(noisy.device)[timesteps].view(-1, *([1] * (noisy.dim() - 1))).float()
    epsilon = (noisy - alpha.sqrt() * clean) / (1 - alpha).sqrt()
    return epsilon if prediction_type == "epsilon" else alpha.sqrt() * epsilon - (1 - alpha).sqrt() * clean


def mask_loss_window(
    latents: torch.Tensor, pixels: list[torch.Tensor], size: int, scale_factor: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A random ``size`` x ``size`` latent window of ``latents`` ``(B, N, C, h, w)`` and the matching
    pixel window of each ``(B, n, c, H, W)`` tensor; ``size`` 0 (or the whole clip) keeps everything.

    Decoding through the frozen autoencoder with gradients costs most of a training step (TAEF2 at
    128x128: about 4x the denoiser's forward and backward), so the mask loss may look at a window:
    an unbiased sample of its pixel means, the decoder's borders aside.
    """
    height, width = latents.shape[-2:]
    if size == 0 or (size >= height and size >= width):
        return latents, pixels
    rows, columns = min(size, height), min(size, width)
    top = int(torch.randint(height - rows + 1, ()))
    left = int(torch.randint(width - columns + 1, ()))
    window = latents[..., top : top + rows, left : left + columns]
    crop = [p[..., top * scale_factor : (top + rows) * scale_factor, left * scale_factor : (left + columns) * scale_factor]
            for p in pixels]
    return window, crop


def estimated_previous_latent(pipeline: LaSeE2VPipeline, batch: dict[str, Any], previous_latent: torch.Tensor,
                              fraction: float) -> torch.Tensor:
    """``previous_latent`` with each clip's swapped, with probability ``fraction``, for the latent of the
    peer's estimate of that frame: sampling never sees a true previous frame (the first clip is
    conditioned on the estimate, later ones on the model's own output), so training on true frames only
    teaches a trust in the previous frame that sampling cannot repay."""
    device = previous_latent.device
    with torch.no_grad():
        if "previous_estimate_latent" in batch:
            estimated = batch["previous_estimate_latent"].to(device)
        else:
            estimated = pipeline.encode_frames(batch["previous_estimate"][:, None].to(device))[:, 0]
    swap = torch.rand(previous_latent.shape[0]) < fraction
    return torch.where(swap.to(device).view(-1, 1, 1, 1), estimated, previous_latent)


def jitter_estimate_tone(batch: dict[str, Any], jitter: float) -> dict[str, Any]:
    """A copy of ``batch`` whose estimates (``estimate``, ``previous_estimate``) are each clip's raised to
    one power ``exp(u)``, ``u ~ U(-jitter, jitter)``, without their cached latents (stale now), so that
    :func:`compute_losses` encodes them (module docstring: estimate tone jitter)."""
    estimate = batch["estimate"]
    powers = torch.exp((torch.rand(estimate.shape[0]) * 2 - 1) * jitter)
    jittered = {key: value for key, value in batch.items()
                if key not in ("estimate_latents", "previous_estimate_latent")}
    jittered["estimate"] = estimate.clamp(0, 1) ** powers.view(-1, 1, 1, 1, 1)
    jittered["previous_estimate"] = batch["previous_estimate"].clamp(0, 1) ** powers.view(-1, 1, 1, 1)
    return jittered


def compute_losses(
    pipeline: LaSeE2VPipeline, denoiser: nn.Module, batch: dict[str, Any], config: TrainingConfig
) -> dict[str, torch.Tensor]:
    """Diffusion + event-aware mask loss of one batch (steps 1-4 of the module docstring)."""
    device = pipeline.device
    if config.estimate_gamma_jitter > 0 and "estimate" in batch:
        batch = jitter_estimate_tone(batch, config.estimate_gamma_jitter)
    frames = batch["frames"].to(device)  # (B, N, 1, H, W) in [0, 1]
    batch_size, num_frames = frames.shape[:2]
    # 1. latents of the clip, its previous frame and its estimates (cached, else the frozen autoencoder)
    with torch.no_grad():
        if "latents" in batch:
            latents, previous_latent = batch["latents"].to(device), batch["previous_latent"].to(device)
        else:
            latents = pipeline.encode_frames(frames)  # (B, N, C, h, w)
            previous_latent = pipeline.encode_frames(batch["previous_frame"][:, None].to(device))[:, 0]
        estimate_latents = None
        if "estimate_latents" in batch:
            estimate_latents = batch["estimate_latents"].to(device)
        elif "estimate" in batch:
            estimate_latents = pipeline.encode_frames(batch["estimate"].to(device))
    # 2. previous frame from the estimate (as at sampling time), conditioning dropout
    if config.previous_frame_estimate_fraction > 0:
        previous_latent = estimated_previous_latent(pipeline, batch, previous_latent,
                                                    config.previous_frame_estimate_fraction)
    keep_previous = (torch.rand(batch_size) >= config.previous_frame_dropout).to(device, latents.dtype)
    previous_latent = previous_latent * keep_previous.view(-1, 1, 1, 1) if config.use_previous_frame else None
    captions = [c if random.random() >= config.text_dropout else "" for c in batch["caption"]]
    text = pipeline.encode_prompt(captions, guidance=False)
    voxels = batch["voxels"].to(device)
    if not config.use_events:
        voxels = torch.zeros_like(voxels)
    # 3. diffusion loss
    scheduler = pipeline.scheduler
    noise = torch.randn_like(latents)
    timesteps, from_estimate = sample_timesteps(config, batch_size, device)
    noisy_latents = scheduler.add_noise(latents, noise, timesteps)
    target = noise if config.prediction_type == "epsilon" else scheduler.get_velocity(latents, noise, timesteps)
    if bool(from_estimate.any()):  # these clips start from the estimate and aim at the true frame
        chosen = from_estimate.view(-1, 1, 1, 1, 1)
        noisy_latents = torch.where(chosen, scheduler.add_noise(estimate_latents, noise, timesteps), noisy_latents)
        corrective = corrective_target(scheduler.alphas_cumprod, noisy_latents, latents, timesteps,
                                       config.prediction_type)
        target = torch.where(chosen, corrective, target)
    prediction = denoiser(noisy_latents, timesteps, voxels, previous_latent,
                          text.states if text is not None else None, text.mask if text is not None else None,
                          estimate_latents if config.use_estimate else None).float()
    diffusion_loss = F.mse_loss(prediction, target)
    # 4. event-aware mask loss (and pixel loss) on decoded frames, low-noise clips only
    mask_loss = pixel_loss = torch.zeros((), device=device)
    low_noise = timesteps < config.mask_loss_max_timestep
    if (config.mask_loss_weight > 0 or config.pixel_loss_weight > 0) and bool(low_noise.any()):
        clean = predicted_clean_latents(scheduler.alphas_cumprod, noisy_latents[low_noise], prediction[low_noise],
                                        timesteps[low_noise], config.prediction_type)
        pixels = [frames[low_noise], batch["previous_frame"].to(device)[low_noise][:, None],
                  batch["event_mask"].to(device)[low_noise]]
        if config.pixel_loss_detail_transfer:  # the estimates' latents and pixels, in the same window
            clean = torch.cat([clean, estimate_latents[low_noise]], dim=1)
            pixels.append(batch["estimate"].to(device)[low_noise])
        clean, pixels = mask_loss_window(clean, pixels, config.mask_loss_latent_crop, pipeline.autoencoder.scale_factor)
        clean, estimate_window = clean[:, :num_frames], clean[:, num_frames:]
        target_frames, previous_frame, event_mask = pixels[:3]
        size = tuple(target_frames.shape[-2:])
        decoded = pipeline.autoencoder.decode(clean.flatten(0, 1), size=size).float().unflatten(0, (-1, num_frames))
        # means over the batch: clips above the threshold contribute zero
        share = low_noise.float().mean()
        mask_loss = event_mask_loss(decoded, target_frames, previous_frame[:, 0], event_mask) * share
        if config.pixel_loss_detail_transfer:  # what sampling with detail_transfer 1 shows
            with torch.no_grad():
                round_trip = pipeline.autoencoder.decode(estimate_window.flatten(0, 1), size=size).float()
            decoded = decoded + (pixels[3] - round_trip.unflatten(0, (-1, num_frames)))
        error = decoded - target_frames
        pixel_loss = (error.abs() if config.pixel_loss_norm == "l1" else error.square()).mean() * share
    loss = diffusion_loss + config.mask_loss_weight * mask_loss + config.pixel_loss_weight * pixel_loss
    return {"loss": loss, "diffusion_loss": diffusion_loss.detach(), "mask_loss": mask_loss.detach(),
            "pixel_loss": pixel_loss.detach()}


def has_val_split(config: TrainingConfig) -> bool:
    """Whether ``data_dir`` holds val sequences: a dataset made with ``--num-val 0`` has none, and the
    run then trains without the clip validation (``val_sequences`` still validate)."""
    from lase_e2v.training.clips import load_manifest

    return any(s["split"] == "val" for s in load_manifest(config.data_dir)["sequences"])


def prepare_estimates(config: TrainingConfig, share: Callable[[list[dict]], list[dict]] = list,
                      device: torch.device | str = "cpu") -> None:
    """Compute this process's ``share`` of the missing peer estimates (train and val), folder by folder,
    with the peer on ``device`` (the training device: on a GPU the peer's network runs there).

    The share is taken of what is missing, not of all sequences: a folder whose first half is already
    cached (a run resumed, a folder grown) still splits its remaining work evenly between processes."""
    if not config.estimate_method:
        return
    for split in ("train", "val") if has_val_split(config) else ("train",):
        for folder, sequences in _sequences(config, split).items():
            missing = missing_estimates(folder, config.estimate_method, sequences)
            cache_estimates(folder, config.estimate_method, share(missing), device=str(device))


def prepare_latents(config: TrainingConfig, pipeline: LaSeE2VPipeline,
                    share: Callable[[list[dict]], list[dict]] = list) -> None:
    """With ``cache_latents``, compute this process's ``share`` of the train sequences whose latents are
    missing. The estimates they encode must all exist: run :func:`prepare_estimates` in every process first."""
    if not config.cache_latents:
        return
    key = autoencoder_key(pipeline.autoencoder)
    flips = tuple(config.latent_flips)  # checked and normalised by TrainingConfig
    kinds = latent_kinds(config.latent_estimate_method)
    for folder, sequences in _sequences(config, "train").items():
        incomplete = {sequence["file"] for *_, sequence in missing_latents(folder, key, kinds, flips, sequences)}
        todo = [sequence for sequence in sequences if sequence["file"] in incomplete]
        cache_latents(folder, pipeline.autoencoder, share(todo), config.latent_estimate_method, flips)


def _plain_clips(config: TrainingConfig, split: str):
    """The split's clips without caches or estimates: what the folders hold, checked, before any caching."""
    from lase_e2v.training.clips import SyntheticClipDataset

    return SyntheticClipDataset(config.data_dir, split, clip_frames=config.clip_frames, **_folders(config, split))


def _sequences(config: TrainingConfig, split: str) -> dict[Path, list[dict]]:
    return _plain_clips(config, split).by_folder()


def start_from_pipeline(folder: str | Path, denoiser: Denoiser, ema: Denoiser | None) -> None:
    """Copy a saved pipeline's event encoder + U-Net weights into a new run (``init_from``)."""
    source = LaSeE2VPipeline.from_pretrained(folder)
    for module in (denoiser, ema) if ema is not None else (denoiser,):
        for name in TRAINED_MODULES:
            target = module.get_submodule(name)
            load = target.load_extended_state_dict if name == "unet" else target.load_state_dict
            try:
                load(getattr(source, name).state_dict())
            except RuntimeError as error:
                raise CheckpointError(f"init_from {folder}: its {name} does not match the config's model "
                                      f"({str(error).splitlines()[0]})") from None


def save_run_pipeline(pipeline: LaSeE2VPipeline, config: TrainingConfig, output: Path) -> None:
    """Save a run's weights as a pipeline folder with ``sampling.json``: the sampling its validation
    scored (:attr:`TrainingConfig.sequence_sampling`: steps, guidance, EI strength, the peer whose
    estimates it trained on, ``val_sampling``).

    Why: the peer is no module of the pipeline, so ``pipeline.json`` cannot name it. Without this
    file, loading the folder (``--checkpoint``, ``train-fusion``) would sample a model trained on
    PIE-Net's estimates with EI from its own previous frame, not what its validation measured, and
    ``train-fusion`` would refuse it for want of a peer.
    """
    pipeline.save_pretrained(output, sampling=config.sequence_sampling)


def export_view(pipeline: LaSeE2VPipeline, trained: Denoiser) -> LaSeE2VPipeline:
    """A shallow copy of ``pipeline`` that runs ``trained``'s (raw or EMA) event encoder and U-Net."""
    view = copy.copy(pipeline)
    view.event_encoder, view.unet = trained.event_encoder, trained.unet
    view.reset()
    return view


def train(config: str | Path | dict | TrainingConfig, resume: bool = True) -> Path:
    """Train (or continue training) LaSe-E2V as ``config`` says; returns the run folder.

    Args:
        config: a JSON file, a dict or a :class:`TrainingConfig`.
        resume: continue from the newest ``checkpoint-<step>`` in ``run_dir`` (else start over;
            a run folder that already holds checkpoints is then refused, to keep them).
    """
    config = load_config(config)
    run_dir = Path(config.run_dir)
    check_launch()
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision if torch.cuda.is_available() else "no",
        cpu=accelerate_cpu_flag(),  # several CPU processes (torchrun) join over gloo: lase_e2v.processes
    )
    checkpoints = list_checkpoints(run_dir)
    if checkpoints and not resume:
        raise ConfigError(f"{run_dir}: holds checkpoints; resume, or choose a new run_dir")
    clips = _plain_clips(config, "train")  # the data folders exist and train together, before anything is written
    if config.lighting_balance:
        clips.lighting_weights()  # and their manifests record each sequence's lighting (else ConfigError)
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(run_dir / "config.json") as tmp:
            tmp.write_text(config.to_json())
    set_seed(config.seed, device_specific=True)

    # -- model, EMA, optimizer ------------------------------------------------------------------
    pipeline = build_pipeline(config)
    denoiser = Denoiser(pipeline.event_encoder, pipeline.unet).train()
    ema = copy.deepcopy(denoiser).eval().requires_grad_(False) if config.ema_decay > 0 else None
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=config.learning_rate, betas=tuple(config.adam_betas),
                                  weight_decay=config.weight_decay)
    state = TrainingState()
    named = {"event_encoder": denoiser.event_encoder, "unet": denoiser.unet}
    ema_named = {"event_encoder": ema.event_encoder, "unet": ema.unet} if ema is not None else None
    if checkpoints:
        state, resumed_from = load_checkpoint(checkpoints[-1][1], named, ema_named, optimizer,
                                              grad_scaler=accelerator.scaler)
    elif config.init_from:
        start_from_pipeline(config.init_from, denoiser, ema)
    pipeline.to(accelerator.device)
    if ema is not None:
        ema.to(accelerator.device)
    denoiser, optimizer = accelerator.prepare(denoiser, optimizer)
    trainable_parameters = [p for p in denoiser.parameters() if p.requires_grad]

    # -- data: caches first (each process its share), then the sampler starts where the run stopped
    latents_key = autoencoder_key(pipeline.autoencoder) if config.cache_latents else None
    if config.estimate_method or config.cache_latents:
        # Building a peer draws initial weights from torch's generator. Only the main process used to
        # cache, so the others restore their state: the runs' weights stay what they were.
        processes = Processes.current()
        with torch.random.fork_rng(devices=[], enabled=not processes.is_main):
            # every process's estimates exist before any process encodes them (run_everywhere waits for all)
            processes.run_everywhere(lambda: prepare_estimates(config, processes.share, accelerator.device))
            processes.run_everywhere(lambda: prepare_latents(config, pipeline, processes.share))
    dataset = make_dataset(config, "train", latents_key)
    sampler = ClipSampler(len(dataset), config.batch_size, config.seed,
                          start_micro_step=state.step * config.gradient_accumulation_steps,
                          rank=accelerator.process_index, world_size=accelerator.num_processes,
                          weights=clip_weights(config, dataset))
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
                        persistent_workers=config.num_workers > 0)
    batches = iter(loader)
    if checkpoints:  # after the iterator drew its worker seed, exactly as at the checkpoint
        restore_rng_state(torch.load(rng_state_file(resumed_from, accelerator.process_index), weights_only=True))
    val_dataset = make_dataset(config, "val") if accelerator.is_main_process and has_val_split(config) else None

    # -- logs ----------------------------------------------------------------------------------
    log = CsvLog(run_dir / "log.csv", LOG_COLUMNS)
    val_log = CsvLog(run_dir / "val.csv", VAL_COLUMNS)
    if accelerator.is_main_process:
        log.truncate(state.step)
        val_log.truncate(state.step)
        accelerator.print(f"training {sum(p.numel() for p in trainable_parameters):,} parameters on "
                          f"{accelerator.num_processes} x {accelerator.device}, {len(dataset)} train clips, "
                          f"{config.batch_size * config.gradient_accumulation_steps * accelerator.num_processes} "
                          f"clips per step, from step {state.step} to {config.max_steps}")
        if val_dataset is None:
            accelerator.print(f"{config.data_dir}: no val sequences; training without the clip validation")

    def validate() -> None:
        """Score the EMA (else raw) weights; main process only. RNG states are put back afterwards,
        so validating does not change the training run (a resumed run need not replay it)."""
        rng_state = capture_rng_state()
        scored = export_view(pipeline, ema or accelerator.unwrap_model(denoiser))
        rows = {}
        if val_dataset is not None:
            rows["synthetic"] = validate_synthetic(scored, val_dataset, config,
                                                   run_dir / "samples" / f"step-{state.step:07d}.png")
        for split, sequences in validation_sequences(config).items():
            rows[split] = validate_sequences(scored, sequences, config)
        for split, scores in rows.items():
            val_log.append({"step": state.step, "split": split, **scores})
            accelerator.print(f"step {state.step} {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        restore_rng_state(rng_state)

    def checkpoint() -> None:
        rng_states = gather_object([capture_rng_state()])
        if accelerator.is_main_process:
            save_checkpoint(run_dir, state, {k: accelerator.unwrap_model(denoiser).get_submodule(k) for k in named},
                            ema_named, optimizer.optimizer, rng_states, config.to_json(),
                            grad_scaler=accelerator.scaler, keep=config.keep_checkpoints)
        accelerator.wait_for_everyone()

    # -- the loop ------------------------------------------------------------------------------
    started = time.perf_counter() - state.elapsed_s
    progress = tqdm(total=config.max_steps, initial=state.step, desc="training", unit="step",
                    disable=not accelerator.is_main_process)
    while state.step < config.max_steps:
        lr = learning_rate(state.step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        totals = dict.fromkeys(LOSS_TERMS, 0.0)
        for _ in range(config.gradient_accumulation_steps):
            batch = next(batches)
            with accelerator.accumulate(denoiser), accelerator.autocast():
                losses = compute_losses(pipeline, denoiser, batch, config)
                accelerator.backward(losses["loss"])
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable_parameters, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            for key in totals:
                totals[key] += losses[key].item() / config.gradient_accumulation_steps
        if not math.isfinite(totals["loss"]):
            raise FloatingPointError(f"step {state.step}: loss is {totals['loss']}; lower learning_rate")
        if ema is not None:
            update_ema(ema, accelerator.unwrap_model(denoiser), ema_decay(config, state.ema_step))
            state.ema_step += 1
        state.step += 1
        state.elapsed_s = time.perf_counter() - started
        progress.update(1)
        progress.set_postfix(loss=f"{totals['loss']:.4f}", lr=f"{lr:.2e}")

        if accelerator.is_main_process and (state.step % config.log_every == 0 or state.step == config.max_steps):
            log.append({"step": state.step, **totals, "lr": lr, "elapsed_s": state.elapsed_s})
            plot_losses(log, LOSS_TERMS, run_dir / "loss.png")
        if state.step % config.checkpoint_every == 0 or state.step == config.max_steps:
            checkpoint()
        if accelerator.is_main_process and (
            (config.validate_every and state.step % config.validate_every == 0) or state.step == config.max_steps
        ):
            validate()
    progress.close()

    # -- export --------------------------------------------------------------------------------
    if accelerator.is_main_process:
        final = ema if (ema is not None and config.export_ema) else accelerator.unwrap_model(denoiser)
        save_run_pipeline(export_view(pipeline, final), config, run_dir / "pipeline")
    accelerator.wait_for_everyone()
    return run_dir

