"""LaSe-E2V: language-guided, semantic-aware event-to-video reconstruction by latent video diffusion.

After Chen et al., "LaSe-E2V: Towards Language-guided Semantic-Aware Event-to-Video Reconstruction",
NeurIPS 2024 (no official code). A clip of N windows is reconstructed at once by denoising N
latents with :class:`~lase_e2v.models.video_unet.VideoUNet`, conditioned on the windows' event
features, the previous frame's latent ``z_0`` and a caption; long recordings are reconstructed
clip after clip, the last frame of one clip conditioning the next (:meth:`LaSeE2VPipeline.iter_frames`,
bounded memory).

Event-based noise initialisation (EI, SDEdit-style). With strength ``s`` in (0, 1) and ``K``
sampler steps, sampling skips the first ``K - round(s*K)`` steps (at least one step is run) and
starts at the first remaining timestep ``t`` from

    z_T' = sqrt(alpha_bar_t) * E(estimate) + sqrt(1 - alpha_bar_t) * eps,   eps ~ N(0, I)

(the scheduler's ``add_noise``), where ``E(estimate)`` is the latent of an event-based estimate of
each frame. ``s = 1`` starts from pure noise (EI off). Estimate sources: ``"previous"`` (default;
every frame of a clip starts from the previous reconstructed frame) or any per-window reconstructor,
e.g. the integrator or FireNet (a :class:`ReconstructionPipeline`, fed the same windows in lockstep)
or a callable ``window -> (H, W) image in [0, 1]``.

Choices where the paper is silent:

* First clip (no previous frame): ``z_0 = E(estimate of its first frame)``; with the ``"previous"``
  source that estimate is a mid-grey (0.5) frame.
* Between clips ``z_0`` is the last frame's *denoised latent* (not decoded and re-encoded), which
  saves one encoder pass per clip.
* Classifier-free guidance on text only: ``eps = eps_uncond + w * (eps_text - eps_uncond)`` with the
  empty prompt as unconditional branch; ``w = 1`` (the default) runs the conditional pass alone.
* Noise schedule (training and sampling): Stable Diffusion's scaled-linear betas (0.00085..0.012,
  1000 steps) with ``"trailing"`` timestep spacing, so few-step sampling starts at t = 999.
* Sample averaging (``num_samples`` M, default 1): M noise draws per clip are denoised as one batch
  and their final latents averaged before decoding, an estimate of the posterior mean
  ``E[z | events, estimate]``. One sample's noise leaves random detail that no pixel metric
  rewards; on the held-out synthetic sets M = 4 raised SSIM by 0.02 and lowered LPIPS by 0.01-0.015
  at EI 0.1 (the bundled checkpoint's README). The clip chains on the averaged latent.
* EI noise over time (``noise``, our addition; the paper draws fresh noise per clip): with
  ``"fixed"`` each sample's noise is drawn once per recording and reused at every frame, so what
  the noise leaves in a pixel is the same from frame to frame instead of flickering; with
  ``"independent"`` (default) every frame of every clip gets a fresh draw.
* Detail transfer (``detail_transfer`` d, default 0): a tiny autoencoder loses fine texture even of
  its own input (ECD slider_depth: PIE-Net-Lite's frames lose 0.013 SSIM through TAEF2 and back),
  so the decoded frame gets back ``d`` times what the autoencoder loses of the estimate,
  ``D(z) + d * (estimate - D(E(estimate)))``. With ``z = E(estimate)`` and ``d = 1`` that is the
  estimate itself; the denoiser's change of ``z`` is kept on top.
* Learned fusion (``fusion``, our addition; default off, on in the bundled checkpoint's sampling): a
  small network trained on the frozen pipeline's frames decides per pixel how much of the estimate
  to take and what to correct (:mod:`lase_e2v.models.fusion`), gated like the estimate mix. A fusion
  trained with ``second_estimate`` also sees a second peer's frames (``fusion_estimate``, e.g.
  CISTA-TC), run on the same windows; the EI estimate stays the one peer's.
* Estimate mix (``estimate_mix`` w, default 0; :mod:`lase_e2v.pipelines.estimate_mix`): the decoded
  frame moves a share w toward the estimate, at all scales or only in the band finer than
  ``estimate_mix_sigma`` pixels, while the recording's event statistics so far lie in the range of
  real cameras (``estimate_mix_gate``).
* Flip ensemble (``flips``, our addition; default ``("none",)``): the ``num_samples`` draws are
  spread equally over mirror flips of the clip's inputs (voxel grids, estimates, previous frame;
  :mod:`lase_e2v.flips`), each flipped back in pixels before the frames are averaged. A mirrored
  event stream is an equally valid input, and the denoiser is not mirror-symmetric, so its errors on
  the flipped inputs differ and partly cancel, at no extra U-Net cost; each flip costs one pass of
  the autoencoder over the clip's estimates and frames (TAEF2 at 240x180: 0.12 s to encode, 0.15 s
  to decode a frame on one core). A flipped latent is not the latent of the flipped frame, so the
  samples are averaged in pixels, and clips chain on the averaged last *frame*, encoded once per
  flip, instead of on a latent.
* Voxel grids: 5 bins by default (the encoder's ``num_bins``), E2VID convention, non-zero voxels
  normalised to zero mean / unit std per window.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import diffusers
import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from tqdm import tqdm

from lase_e2v import __version__
from lase_e2v.atomic import atomic_path
from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.events.representations import events_to_voxel_grid
from lase_e2v.events.windows import Window
from lase_e2v.flips import flip_images
from lase_e2v.models.autoencoder import ImageAutoencoder, TinyAutoencoder, latent_size, load_autoencoder
from lase_e2v.models.event_encoder import EventEncoder
from lase_e2v.models.fusion import EstimateFusion, event_magnitude
from lase_e2v.models.text_encoder import TextEmbeddings, TextEncoder, load_text_encoder
from lase_e2v.models.video_unet import VideoUNet
from lase_e2v.pipelines.estimate_mix import RangeGate, mix_estimate
from lase_e2v.pipelines.output import ReconstructedFrame, ReconstructionPipeline
from lase_e2v.pipelines.precision import autocast
from lase_e2v.pipelines.sampling_options import EstimateSource, SamplingOptions

PIPELINE_FILE = "pipeline.json"


def default_scheduler(prediction_type: str = "epsilon") -> DDIMScheduler:
    """The noise schedule training and sampling share (see the module docstring)."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        timestep_spacing="trailing",
        prediction_type=prediction_type,
    )


@dataclass
class ClipOutput:
    """``frames``: ``(B, N, 1, H, W)`` in [0, 1]; ``latents``: ``(B, N, C, h, w)`` denoised latents,
    ``None`` from a flip ensemble (its samples' latents are of differently mirrored frames)."""

    frames: torch.Tensor
    latents: torch.Tensor | None


class _EstimateFeeder:
    """Runs an estimate source window by window, in step with the clips being reconstructed."""

    def __init__(self, source: EstimateSource) -> None:
        self.source = source
        self.reset()

    def reset(self) -> None:
        self._pending: deque[Window] = deque()
        self._frames: Iterator[ReconstructedFrame] | None = None
        if isinstance(self.source, ReconstructionPipeline):
            self.source.reset()

    def _drain(self) -> Iterator[Window]:
        while self._pending:
            yield self._pending.popleft()

    def __call__(self, window: Window) -> np.ndarray | None:
        """The estimate ``(H, W)`` in [0, 1] for ``window``, or ``None`` for the ``"previous"`` source."""
        if isinstance(self.source, str):
            return None
        if not isinstance(self.source, ReconstructionPipeline):
            return np.asarray(self.source(window), dtype=np.float32)
        self._pending.append(window)
        if self._frames is None:
            self._frames = self.source.iter_frames(self._drain())
        try:
            return next(self._frames).image
        except StopIteration:
            raise ConfigError(
                f"estimate source {type(self.source).__name__} must yield one frame per window, without look-ahead"
            ) from None


class LaSeE2VPipeline(ReconstructionPipeline):
    """Latent video diffusion from events (+ optional caption) to frames.

    Args:
        autoencoder: frozen :class:`~lase_e2v.models.autoencoder.ImageAutoencoder` (TAEF2 by default).
        text_encoder: frozen :class:`~lase_e2v.models.text_encoder.TextEncoder`, or ``None`` for a U-Net
            built with ``use_text=False``.
        event_encoder: :class:`~lase_e2v.models.event_encoder.EventEncoder` (trained with the U-Net).
        unet: :class:`~lase_e2v.models.video_unet.VideoUNet`.
        scheduler: a diffusers scheduler whose config is the noise schedule (:func:`default_scheduler`);
            samplers are built from its config.
        options: :class:`SamplingOptions` used by :meth:`iter_frames` / ``__call__``.
        fusion: optional trained :class:`~lase_e2v.models.fusion.EstimateFusion` (used when
            ``options.fusion``), saved in ``fusion/``.

    Use it on a recording like every reconstructor: ``pipeline(reader, windowing, prompt="...")``.
    """

    name = "lase-e2v"

    def __init__(
        self,
        autoencoder: ImageAutoencoder,
        text_encoder: TextEncoder | None,
        event_encoder: EventEncoder,
        unet: VideoUNet,
        scheduler: SchedulerMixin | None = None,
        options: SamplingOptions | None = None,
        fusion: EstimateFusion | None = None,
    ) -> None:
        self.autoencoder = autoencoder
        self.text_encoder = text_encoder
        self.event_encoder = event_encoder
        self.unet = unet
        self.scheduler = (
            scheduler if scheduler is not None else default_scheduler(unet.config.prediction_type)
        )
        self.options = options or SamplingOptions()
        self.fusion = fusion
        self._check_components()
        self.check_options()
        self._samplers: dict[str, SchedulerMixin] = {}
        self.reset()

    def _check_components(self) -> None:
        unet_config = self.unet.config
        if self.autoencoder.latent_channels != unet_config.latent_channels:
            raise CheckpointError(
                f"autoencoder has {self.autoencoder.latent_channels} latent channels, the U-Net expects "
                f"{unet_config.latent_channels}"
            )
        if self.event_encoder.config.out_channels != unet_config.event_channels:
            raise CheckpointError(
                f"event encoder gives {self.event_encoder.config.out_channels} channels, the U-Net expects "
                f"{unet_config.event_channels}"
            )
        if unet_config.use_text:
            if self.text_encoder is None:
                raise CheckpointError("the U-Net uses text (use_text=True) but no text encoder was given")
            if self.text_encoder.hidden_size != unet_config.text_dim:
                raise CheckpointError(
                    f"text encoder width {self.text_encoder.hidden_size} != the U-Net's text_dim {unet_config.text_dim}"
                )
        if self.scheduler.config.prediction_type != unet_config.prediction_type:
            raise CheckpointError(
                f"scheduler predicts {self.scheduler.config.prediction_type}, the U-Net {unet_config.prediction_type}"
            )

    def check_options(self, options: SamplingOptions | None = None) -> None:
        """Options (default: :attr:`options`) that need a component this pipeline lacks, found before any
        frame is made."""
        options = options or self.options
        if options.fusion and self.fusion is None:
            raise CheckpointError("fusion is on but this checkpoint has no fusion network (fusion/); "
                                  "set fusion to false or train one with `lase-e2v train-fusion`")
        fuses = options.fusion and options.estimate != "previous"  # without an estimate nothing is fused
        if fuses and self.fusion.config.second_estimate and options.fusion_estimate is None:
            raise ConfigError("this checkpoint's fusion network also takes a second peer's frames: set "
                              "fusion_estimate (its sampling.json names the peer it was trained with)")

    # -- construction, devices, saving -------------------------------------------------------------
    @classmethod
    def from_preset(
        cls,
        preset: str = "tiny",
        autoencoder: ImageAutoencoder | str = "tae",
        text_encoder: TextEncoder | str | None = "minilm",
        num_bins: int = 5,
        unet_options: dict | None = None,
        event_encoder_options: dict | None = None,
        options: SamplingOptions | None = None,
    ) -> LaSeE2VPipeline:
        """A randomly initialised pipeline of a named size (``tiny``, ``base``) around frozen encoders.

        Widths that must agree (latent channels, event channels, text width) are taken from the
        given components; ``unet_options`` / ``event_encoder_options`` override preset values
        (e.g. ``{"use_esa": False}``). ``text_encoder=None`` builds a text-free U-Net. The new
        modules are in eval mode, as :meth:`from_pretrained` leaves them (training switches them to
        ``train()`` itself), so a saved and reloaded pipeline samples exactly the same frames.
        """
        if isinstance(autoencoder, str):
            autoencoder = load_autoencoder(autoencoder)
        if isinstance(text_encoder, str):
            text_encoder = load_text_encoder(text_encoder)
        event_encoder = EventEncoder.from_preset(preset, num_bins=num_bins, **(event_encoder_options or {}))
        event_encoder.eval()
        unet_values = {
            "latent_channels": autoencoder.latent_channels,
            "event_channels": event_encoder.config.out_channels,
            "use_text": text_encoder is not None,
        }
        if text_encoder is not None:
            unet_values["text_dim"] = text_encoder.hidden_size
        unet = VideoUNet.from_preset(preset, **{**unet_values, **(unet_options or {})}).eval()
        return cls(autoencoder, text_encoder, event_encoder, unet, options=options)

    @property
    def components(self) -> dict[str, torch.nn.Module | None]:
        return {
            "autoencoder": self.autoencoder,
            "text_encoder": self.text_encoder,
            "event_encoder": self.event_encoder,
            "unet": self.unet,
            "fusion": self.fusion,
        }

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def to(self, device: torch.device | str) -> LaSeE2VPipeline:
        for module in self.components.values():
            if module is not None:
                module.to(device)
        self.reset()
        return self

    def save_pretrained(self, directory: str | Path, sampling: dict | None = None) -> None:
        """Write ``pipeline.json`` + ``unet/``, ``event_encoder/``, ``scheduler/`` (config.json + safetensors),
        ``fusion/`` when the pipeline has a fusion network, and ``sampling``, when given, as the
        recommended sampling :func:`load_lase_pipeline` applies (``sampling.json``: it can name a
        peer as the estimate, which ``pipeline.json`` cannot hold).

        The frozen encoders are *referenced* when they came from a name or folder (their ``source``:
        ``"tae"``, ``"minilm"`` or an absolute path, recorded in ``pipeline.json``); otherwise their
        weights are saved too, in ``autoencoder/`` / ``text_encoder/``.
        """
        with atomic_path(directory) as folder:
            folder.mkdir()
            self.unet.save_pretrained(folder / "unet")
            self.event_encoder.save_pretrained(folder / "event_encoder")
            self.scheduler.save_pretrained(folder / "scheduler")
            if self.fusion is not None:
                self.fusion.save_pretrained(folder / "fusion")
            index = {
                "_class_name": type(self).__name__,
                "_lase_version": __version__,
                "autoencoder": self._save_frozen(self.autoencoder, folder / "autoencoder"),
                "text_encoder": self._save_frozen(self.text_encoder, folder / "text_encoder"),
                "fusion": {"subfolder": "fusion"} if self.fusion is not None else None,
                "options": self.options.to_json_dict(),
            }
            (folder / PIPELINE_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
            if sampling is not None:
                (folder / SAMPLING_FILE).write_text(json.dumps(sampling) + "\n")

    @staticmethod
    def _save_frozen(module, folder: Path) -> dict | None:
        if module is None:
            return None
        if module.source is not None:
            return {"source": module.source}
        if isinstance(module, TextEncoder):
            module.model.save_pretrained(folder)
            module.tokenizer.save_pretrained(folder)
        elif isinstance(module, TinyAutoencoder):
            module.save_pretrained(folder)
        else:  # StableDiffusionAutoencoder
            module.vae.save_pretrained(folder)
        return {"subfolder": folder.name}

    @classmethod
    def from_pretrained(cls, directory: str | Path, **option_overrides) -> LaSeE2VPipeline:
        """Load a folder written by :meth:`save_pretrained` (local files only), on the CPU.

        ``option_overrides`` replace saved :class:`SamplingOptions` fields (e.g. ``prompt=``).
        """
        folder = Path(directory)
        try:
            index = json.loads((folder / PIPELINE_FILE).read_text())
        except (OSError, ValueError) as error:
            raise CheckpointError(
                f"{folder}: not a saved LaSe-E2V pipeline ({PIPELINE_FILE} unreadable)"
            ) from error
        if index.get("_class_name") != cls.__name__:
            raise CheckpointError(f"{folder}: holds a {index.get('_class_name')!r}, expected {cls.__name__}")
        scheduler_config = DDIMScheduler.load_config(folder / "scheduler")
        scheduler_class = getattr(diffusers, scheduler_config["_class_name"], DDIMScheduler)
        return cls(
            autoencoder=cls._load_frozen(index["autoencoder"], folder, load_autoencoder),
            text_encoder=cls._load_frozen(index["text_encoder"], folder, load_text_encoder),
            event_encoder=EventEncoder.from_pretrained(folder / "event_encoder"),
            unet=VideoUNet.from_pretrained(folder / "unet"),
            scheduler=scheduler_class.from_config(scheduler_config),
            options=SamplingOptions(**{**index.get("options", {}), **option_overrides}),
            fusion=(EstimateFusion.from_pretrained(folder / index["fusion"]["subfolder"])
                    if index.get("fusion") else None),
        )

    @staticmethod
    def _load_frozen(reference: dict | None, folder: Path, loader: Callable):
        if reference is None:
            return None
        if "source" in reference:
            return loader(reference["source"])
        module = loader(folder / reference["subfolder"])
        module.source = None  # saved weights: save them again rather than point into this folder
        return module

    # -- the steps of one clip --------------------------------------------------------------------
    def check_inputs(self, voxels: torch.Tensor, previous_frame, estimate, guidance_scale: float) -> None:
        bins = self.event_encoder.config.num_bins
        if voxels.ndim != 5 or voxels.shape[2] != bins:
            raise ConfigError(f"voxels must be (B, N, {bins}, H, W), got {tuple(voxels.shape)}")
        batch, frames, _, height, width = voxels.shape
        if previous_frame is not None and tuple(previous_frame.shape) != (batch, 1, height, width):
            raise ConfigError(
                f"previous_frame must be {(batch, 1, height, width)}, got {tuple(previous_frame.shape)}"
            )
        if estimate is not None and tuple(estimate.shape) != (batch, frames, 1, height, width):
            raise ConfigError(
                f"estimate must be {(batch, frames, 1, height, width)}, got {tuple(estimate.shape)}"
            )
        if guidance_scale != 1 and not self.unet.config.use_text:
            raise ConfigError("guidance_scale != 1 needs a U-Net that uses text (use_text=True)")

    def encode_prompt(self, prompts: list[str], guidance: bool) -> TextEmbeddings | None:
        """Token states for ``prompts``; with ``guidance`` the empty-prompt batch comes first."""
        if not self.unet.config.use_text:
            return None
        return self.text_encoder(([""] * len(prompts) if guidance else []) + prompts).to(self.device)

    def encode_events(self, voxels: torch.Tensor, attention_window: int | None = None) -> torch.Tensor:
        """``(B, N, bins, H, W)`` -> event features ``(B, N, C_e, h, w)`` (window in latent pixels)."""
        return self.event_encoder(voxels.to(self.device), attention_window=attention_window)

    def latent_window(self, attention_window: int | None) -> int | None:
        """:attr:`SamplingOptions.attention_window` (pixels) in latent pixels, as the networks take it."""
        if attention_window is None:
            return None
        return max(1, attention_window // self.autoencoder.scale_factor)

    def _frame_batches(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Split ``(B*N, ...)`` into the batches the frozen autoencoder runs on.

        On a CPU one image at a time: every activation of a batch of 4 at 240x180 is 45 MB, above
        glibc's largest mmap threshold (32 MB), so each of its ~40 convs gets fresh pages from the
        kernel; one image at a time reuses heap memory and stays in cache (13% less time here, and
        peak memory does not grow with the clip length). Accelerators take the whole batch.
        """
        return images.split(1) if self.device.type == "cpu" else (images,)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, N, 1, H, W)`` in [0, 1] -> latents ``(B, N, C, h, w)``."""
        batches = self._frame_batches(frames.flatten(0, 1).to(self.device))
        latents = torch.cat([self.autoencoder.encode(batch) for batch in batches])
        return latents.float().unflatten(0, frames.shape[:2])

    def fuse(self, frames: torch.Tensor, estimate: torch.Tensor, voxels: torch.Tensor,
             second: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, N, 1, H, W)`` decoded frames and estimates (and ``second``, the second peer's frames
        for a fusion that takes them), ``(B, N, bins, H, W)`` voxels -> the fusion network's frames,
        in float32 whatever the autocast (the network is small and its output is the final frame),
        one frame at a time (its full-resolution features of a 1280x720 frame take about 0.3 GB)."""
        inputs = (frames.flatten(0, 1).float(), estimate.flatten(0, 1).to(self.device).float(),
                  event_magnitude(voxels.flatten(0, 1).to(self.device).float()))
        seconds = second.flatten(0, 1).to(self.device).float() if second is not None else None
        with torch.autocast(self.device.type, enabled=False):
            fused = torch.cat([self.fusion(*(part[i : i + 1] for part in inputs),
                                           second=None if seconds is None else seconds[i : i + 1])
                               for i in range(len(inputs[0]))])
        return fused.unflatten(0, frames.shape[:2])

    def decode_latents(self, latents: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``(B, N, C, h, w)`` -> frames ``(B, N, 1, H, W)`` in [0, 1]."""
        batches = self._frame_batches(latents.flatten(0, 1))
        frames = torch.cat([self.autoencoder.decode(batch, size=size) for batch in batches])
        return frames.float().clamp(0, 1).unflatten(0, latents.shape[:2])

    def sampler(self, name: str) -> SchedulerMixin:
        """A DDIM or DPM-Solver++ sampler on the pipeline's noise schedule (cached per name)."""
        if name not in self._samplers:
            if name == "ddim":
                self._samplers[name] = DDIMScheduler.from_config(self.scheduler.config)
            else:
                self._samplers[name] = DPMSolverMultistepScheduler.from_config(
                    self.scheduler.config, algorithm_type="dpmsolver++", solver_order=2
                )
        return self._samplers[name]

    def prepare_timesteps(
        self, sampler: SchedulerMixin, num_inference_steps: int, ei_strength: float
    ) -> torch.Tensor:
        """The sampler's timesteps, without the first ``K - round(s*K)`` when EI is on."""
        sampler.set_timesteps(num_inference_steps, device=self.device)
        if ei_strength >= 1:
            return sampler.timesteps
        if ei_strength == 0:
            return sampler.timesteps[:0]
        kept = min(max(round(num_inference_steps * ei_strength), 1), num_inference_steps)
        start = (num_inference_steps - kept) * sampler.order
        if hasattr(sampler, "set_begin_index"):
            sampler.set_begin_index(start)
        return sampler.timesteps[start:]

    def prepare_latents(
        self,
        sampler: SchedulerMixin,
        first_timestep: torch.Tensor,
        estimate_latents: torch.Tensor,
        ei_strength: float,
        generator: torch.Generator | None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """EI: ``sqrt(alpha_bar_t) E(estimate) + sqrt(1 - alpha_bar_t) eps``; pure noise when ``s = 1``.

        ``eps`` is ``noise`` broadcast to the latents' shape if given, else a fresh draw."""
        if noise is None:
            noise = randn_tensor(
                estimate_latents.shape, generator=generator, device=self.device, dtype=torch.float32
            )
        else:
            try:
                noise = noise.to(self.device, torch.float32).expand(estimate_latents.shape)
            except RuntimeError as error:
                raise ConfigError(f"noise {tuple(noise.shape)} does not broadcast to the latents "
                                  f"{tuple(estimate_latents.shape)}") from error
        if ei_strength >= 1:
            return noise * sampler.init_noise_sigma
        timesteps = first_timestep.reshape(1).expand(estimate_latents.shape[0])
        return sampler.add_noise(estimate_latents, noise, timesteps)

    def predict(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        event_features: torch.Tensor,
        previous_latent: torch.Tensor,
        text: TextEmbeddings | None,
        guidance_scale: float,
        estimate_latents: torch.Tensor | None = None,
        attention_window: int | None = None,
    ) -> torch.Tensor:
        """The U-Net's prediction with classifier-free guidance on the text (one batched pass);
        ``estimate_latents`` reach a U-Net built with ``use_estimate`` only; ``attention_window`` in
        latent pixels (:meth:`latent_window`)."""
        guided = guidance_scale != 1
        repeat = 2 if guided else 1
        prediction = self.unet(
            latents.repeat(repeat, 1, 1, 1, 1),
            timestep,
            event_features.repeat(repeat, 1, 1, 1, 1),
            previous_latent.repeat(repeat, 1, 1, 1) if self.unet.config.use_previous_frame else None,
            text.states if text is not None else None,
            text.mask if text is not None else None,
            estimate_latents.repeat(repeat, 1, 1, 1, 1) if self.unet.config.use_estimate else None,
            attention_window=attention_window,
        ).float()
        if not guided:
            return prediction
        unconditional, conditional = prediction.chunk(2)
        return unconditional + guidance_scale * (conditional - unconditional)

    @torch.no_grad()
    def generate_clip(
        self,
        voxels: torch.Tensor,
        previous_frame: torch.Tensor | None = None,
        estimate: torch.Tensor | None = None,
        previous_latent: torch.Tensor | None = None,
        prompt: str | list[str] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        ei_strength: float | None = None,
        num_samples: int | None = None,
        sampler: str | None = None,
        estimate_mix: float | None = None,
        fusion: bool | None = None,
        flips: tuple[str, ...] | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        progress: bool = False,
        second_estimate: torch.Tensor | None = None,
    ) -> ClipOutput:
        """Reconstruct one clip of N frames (the method, step by step).

        Args:
            voxels (`torch.Tensor`): ``(B, N, bins, H, W)`` normalised voxel grids, one per frame.
            previous_frame (`torch.Tensor`, *optional*): ``(B, 1, H, W)`` in [0, 1], the frame before the clip.
            estimate (`torch.Tensor`, *optional*): ``(B, N, 1, H, W)`` event-based estimates for EI;
                ``None`` uses the previous frame for every frame (mid-grey if there is none).
            previous_latent (`torch.Tensor`, *optional*): ``(B, C, h, w)``, used instead of encoding
                ``previous_frame`` (how clips are chained).
            prompt, num_inference_steps, guidance_scale, ei_strength, num_samples, sampler,
                estimate_mix, fusion, flips: override :attr:`options`. With flips other than ``("none",)``
                the previous frame must come as ``previous_frame`` (not ``previous_latent``) and
                the output has no latents.
            generator (`torch.Generator`, *optional*): noise source, for reproducible results.
            noise (`torch.Tensor`, *optional*): the EI noise, broadcast to ``(B*M, N, C, h, w)``
                (samples of a clip item consecutive), instead of a fresh draw from ``generator``.
            second_estimate (`torch.Tensor`, *optional*): ``(B, N, 1, H, W)`` a second peer's frames,
                for a fusion network that takes them (``fusion_estimate``).
        """
        overrides = {
            "prompt": prompt if isinstance(prompt, str) else None,
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
            "ei_strength": ei_strength,
            "num_samples": num_samples,
            "sampler": sampler,
            "estimate_mix": estimate_mix,
            "fusion": fusion,
            "flips": flips,
        }
        options = replace(
            self.options, **{key: value for key, value in overrides.items() if value is not None}
        )
        self.check_options(options)
        batch, frames, _, height, width = voxels.shape
        prompts = prompt if isinstance(prompt, list) else [options.prompt] * batch
        if len(prompts) != batch:
            raise ConfigError(f"{len(prompts)} prompts for a batch of {batch} clips")
        if options.flips != ("none",):
            return self._generate_flipped(voxels, previous_frame, estimate, previous_latent, prompts, options,
                                          generator, noise, progress, second_estimate)
        samples = options.num_samples
        with autocast(self.device, options.dtype):
            # 1. Check inputs
            self.check_inputs(voxels, previous_frame, estimate, options.guidance_scale)
            # 2. Encode the text (empty prompt first for guidance), once per sample
            text = self.encode_prompt([p for p in prompts for _ in range(samples)],
                                      guidance=options.guidance_scale != 1)
            # 3. Encode the events
            window = self.latent_window(options.attention_window)
            event_features = self.encode_events(voxels, window)
            # 4. Previous latent z_0 and EI estimate latents (each frame encoded once)
            if estimate is not None:
                estimate_latents = self.encode_frames(estimate)
            if previous_latent is None and previous_frame is None and estimate is not None:
                previous_latent = estimate_latents[:, 0]
            if previous_latent is None:
                if previous_frame is None:
                    previous_frame = torch.full((batch, 1, height, width), 0.5)
                previous_latent = self.encode_frames(previous_frame[:, None])[:, 0]
            if estimate is None:
                estimate_latents = previous_latent[:, None].expand(-1, frames, -1, -1, -1)
            # 5. Timesteps and initial latents (EI)
            scheduler = self.sampler(options.sampler)
            timesteps = self.prepare_timesteps(scheduler, options.num_inference_steps, options.ei_strength)
            sample_estimates = estimate_latents.repeat_interleave(samples, 0)
            latents = (self.prepare_latents(scheduler, timesteps[0], sample_estimates, options.ei_strength,
                                            generator, noise)
                       if len(timesteps) else sample_estimates)
            event_features = event_features.repeat_interleave(samples, 0)
            sample_previous = previous_latent.repeat_interleave(samples, 0)
            # 6. Denoising loop
            for timestep in tqdm(timesteps, desc="denoising", leave=False, disable=not progress):
                model_input = scheduler.scale_model_input(latents, timestep)
                prediction = self.predict(
                    model_input, timestep, event_features, sample_previous, text, options.guidance_scale,
                    sample_estimates, window,
                )
                latents = scheduler.step(prediction, timestep, latents, generator=generator).prev_sample
            latents = latents.unflatten(0, (batch, samples)).mean(1)
            # 7. Decode (put back the estimate's detail the autoencoder loses; fuse or mix in the estimate)
            frames_out = self.decode_latents(latents, (height, width))
            if options.detail_transfer > 0 and estimate is not None:
                lost = estimate.to(frames_out) - self.decode_latents(estimate_latents, (height, width))
                frames_out = (frames_out + options.detail_transfer * lost).clamp(0, 1)
            if options.fusion and estimate is not None:
                frames_out = self.fuse(frames_out, estimate, voxels, second_estimate)
            if options.estimate_mix > 0 and estimate is not None:
                frames_out = mix_estimate(frames_out, estimate, options.estimate_mix, options.estimate_mix_sigma)
        return ClipOutput(frames_out, latents)

    def _generate_flipped(
        self, voxels: torch.Tensor, previous_frame: torch.Tensor | None, estimate: torch.Tensor | None,
        previous_latent: torch.Tensor | None, prompts: list[str], options: SamplingOptions,
        generator: torch.Generator | None, noise: torch.Tensor | None, progress: bool,
        second_estimate: torch.Tensor | None = None,
    ) -> ClipOutput:
        """The flip ensemble: every flip's inputs as one batch of ``B * len(flips)`` clips with
        ``num_samples / len(flips)`` draws each, flipped back and averaged in pixels."""
        self.check_inputs(voxels, previous_frame, estimate, options.guidance_scale)
        if previous_latent is not None:
            raise ConfigError("a flip ensemble chains on the previous frame in pixels: pass previous_frame, "
                              "not previous_latent")
        flips = options.flips

        def stacked(images: torch.Tensor | None) -> torch.Tensor | None:
            return None if images is None else torch.cat([flip_images(images, name) for name in flips])

        clip = self.generate_clip(
            stacked(voxels), stacked(previous_frame), stacked(estimate), prompt=prompts * len(flips),
            num_inference_steps=options.num_inference_steps, guidance_scale=options.guidance_scale,
            ei_strength=options.ei_strength, num_samples=options.num_samples // len(flips),
            sampler=options.sampler, estimate_mix=options.estimate_mix, fusion=options.fusion, flips=("none",),
            generator=generator, noise=noise, progress=progress, second_estimate=stacked(second_estimate),
        )
        parts = clip.frames.chunk(len(flips))
        frames = torch.stack([flip_images(part, name) for part, name in zip(parts, flips)]).mean(0)
        return ClipOutput(frames, None)

    # -- streaming over a recording ---------------------------------------------------------------
    @property
    def num_bins(self) -> int:
        """Voxel-grid bins per window: the event encoder's input channels."""
        return self.event_encoder.config.num_bins

    def reset(self) -> None:
        """Forget the previous frame, restart the noise generator and the estimate source."""
        self._previous_latent: torch.Tensor | None = None
        self._previous_frame: torch.Tensor | None = None  # how a flip ensemble chains its clips
        self._noise: torch.Tensor | None = None  # options.noise "fixed": the recording's draw
        seed = self.options.seed
        self._generator = torch.Generator("cpu").manual_seed(seed) if seed is not None else None
        self._estimates = _EstimateFeeder(self.options.estimate)
        second = self.options.fusion_estimate
        self._second_estimates = _EstimateFeeder(second) if second is not None and self.options.fusion else None
        self._range_gate = RangeGate()

    def voxelize(self, windows: list[Window]) -> torch.Tensor:
        """Windows -> ``(1, N, bins, H, W)`` normalised voxel grids."""
        bins = self.event_encoder.config.num_bins
        grids = [events_to_voxel_grid(window.events, bins, normalize=True) for window in windows]
        return torch.from_numpy(np.stack(grids))[None]

    def _reconstruct_clip(
        self, windows: list[Window], estimates: list[np.ndarray | None], prompt: str
    ) -> torch.Tensor:
        voxels = self.voxelize(windows)
        estimate = None
        if estimates[0] is not None:
            estimate = torch.from_numpy(np.stack(estimates))[None, :, None]
        second = None
        if self._second_estimates is not None:  # every window, fused or not: a recurrent peer keeps its state
            second = torch.from_numpy(np.stack([self._second_estimates(w) for w in windows]))[None, :, None]
        noise = None
        if self.options.noise == "fixed":
            if self._noise is None:
                height, width = latent_size(voxels.shape[-2:], self.autoencoder.scale_factor)
                shape = (self.options.num_samples, 1, self.autoencoder.latent_channels, height, width)
                self._noise = randn_tensor(shape, generator=self._generator, device=self.device,
                                           dtype=torch.float32)
            noise = self._noise
        mix, fusion = self.options.estimate_mix, self.options.fusion
        if (mix > 0 or fusion) and self.options.estimate_mix_gate and not self._range_gate.update(windows):
            mix, fusion = 0.0, False
        clip = self.generate_clip(
            voxels, previous_frame=self._previous_frame, estimate=estimate,
            previous_latent=self._previous_latent, generator=self._generator, noise=noise, prompt=prompt,
            estimate_mix=mix, fusion=fusion, second_estimate=second,
        )
        if clip.latents is None:
            self._previous_frame = clip.frames[:, -1]
        else:
            self._previous_latent = clip.latents[:, -1]
        return clip.frames[0, :, 0].cpu()

    def iter_frames(
        self, windows: Iterable[Window], caption: str | None = None, progress: bool = False
    ) -> Iterator[ReconstructedFrame]:
        """Clips of ``options.clip_length`` windows, each conditioned on the previous clip's last frame.

        The text is ``options.prompt``, else ``caption`` (the recording's own), else none. Holds one
        clip's windows and voxels plus one latent, so memory does not grow with the recording; a
        shorter last clip reconstructs the remaining windows.
        """
        prompt = self.options.prompt or caption or ""
        clip_windows: list[Window] = []
        clip_estimates: list[np.ndarray | None] = []
        for window in tqdm(windows, desc=self.name, unit="frame", disable=not progress):
            clip_windows.append(window)
            clip_estimates.append(self._estimates(window))
            if len(clip_windows) == self.options.clip_length:
                frames = self._reconstruct_clip(clip_windows, clip_estimates, prompt)
                yield from (ReconstructedFrame(w, f.numpy()) for w, f in zip(clip_windows, frames))
                clip_windows, clip_estimates = [], []
        if clip_windows:
            frames = self._reconstruct_clip(clip_windows, clip_estimates, prompt)
            yield from (ReconstructedFrame(w, f.numpy()) for w, f in zip(clip_windows, frames))

    def __call__(self, events, windowing, progress: bool = False, **options):
        """Reconstruct a recording; keyword ``options`` (e.g. ``prompt=``, ``estimate="pienet"``) apply
        to this call only: a :func:`with_sampling` copy samples it, so this pipeline's options stay."""
        if options:
            return with_sampling(self, **options)(events, windowing, progress)
        return super().__call__(events, windowing, progress)


#: the bundled tiny checkpoint (event encoder + U-Net; TAEF2 and MiniLM referenced by name), see its README
LASE_TINY_DIR = Path(__file__).resolve().parents[1] / "assets" / "lase_tiny"
#: optional file next to ``pipeline.json``: recommended sampling options, where ``estimate`` may name a peer
SAMPLING_FILE = "sampling.json"


def load_lase_pipeline(checkpoint: str | Path | None = None, device: str = "cpu", **options) -> LaSeE2VPipeline:
    """The bundled tiny LaSe-E2V (``checkpoint=None``) or a saved pipeline folder, on ``device``.

    Sampling options, later ones winning: the folder's ``pipeline.json``, its ``sampling.json`` if
    present (the bundled checkpoint's: EI from PIE-Net at strength 0.1, 4 samples averaged, see its
    README), then ``options`` (``prompt``, ``num_inference_steps``, ``guidance_scale``, ``ei_strength``,
    ``num_samples``, ``seed``...); ``estimate`` may name a peer (:func:`with_sampling`).
    """
    folder = Path(checkpoint) if checkpoint is not None else LASE_TINY_DIR
    if not (folder / PIPELINE_FILE).is_file():
        raise CheckpointError(f"{folder}: not a saved LaSe-E2V pipeline (no {PIPELINE_FILE})")
    recommended = recommended_sampling(folder)
    return with_sampling(LaSeE2VPipeline.from_pretrained(folder).to(device), **{**recommended, **options})


def recommended_sampling(folder: Path) -> dict:
    """The saved pipeline ``folder``'s ``sampling.json`` (``{}`` without one)."""
    if not (folder / SAMPLING_FILE).is_file():
        return {}
    try:
        return json.loads((folder / SAMPLING_FILE).read_text())
    except ValueError as error:
        raise CheckpointError(f"{folder / SAMPLING_FILE}: not valid JSON ({error})") from error


def with_sampling(pipeline: LaSeE2VPipeline, **options) -> LaSeE2VPipeline:
    """A copy of ``pipeline`` sharing its modules, sampling with ``options`` over its own, freshly reset.

    Why a copy: the loader and training's validation both need the same weights under other
    sampling settings, and the caller's pipeline keeps its own. ``estimate`` may name a peer
    reconstructor (``"integrate"``, ``"firenet_plus"``... see
    :func:`lase_e2v.pipelines.baselines.load_reconstructor`), built here and run on the same windows as
    the EI estimate, on the pipeline's device and in its ``dtype`` (the integrator always in float64;
    float32 when ``dtype="auto"``, which runs the autoencoder and the U-Net in bfloat16 where that is
    native); so may ``fusion_estimate``, the second peer a fusion network may take.
    """
    named = {key: options[key] for key in ("estimate", "fusion_estimate")
             if isinstance(options.get(key), str) and options[key] != "previous"}
    placeholders = {"estimate": "previous", "fusion_estimate": None}
    view = copy.copy(pipeline)
    view.options = replace(pipeline.options, **{**options, **{key: placeholders[key] for key in named}})
    if named:
        from lase_e2v.pipelines.baselines import load_reconstructor

        # the integrator is numpy float64; under "auto" the recurrent peer stays float32: its rounding
        # accumulates over the recording (PIE-Net-Lite in bfloat16: -0.002 SSIM on slider_depth)
        dtype = view.options.dtype
        peers = {key: load_reconstructor(name, device=str(pipeline.device),
                                         **({} if name == "integrate" else
                                            {"dtype": "float32" if dtype == "auto" else dtype}))
                 for key, name in named.items()}
        view.options = replace(view.options, **peers)
    view.check_options()
    view.reset()  # the estimate feeder picks up the peer
    return view
