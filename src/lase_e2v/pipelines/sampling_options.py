"""How a LaSe-E2V pipeline samples: :class:`SamplingOptions`, saved with a checkpoint.

Kept apart from :mod:`lase_e2v.pipelines.lase` so that what reads or checks options (the method
registry, training configs) needs neither diffusers nor the models. The choices behind each option
are in :mod:`lase_e2v.pipelines.lase`'s module docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from lase_e2v.errors import ConfigError
from lase_e2v.events.windows import Window
from lase_e2v.flips import check_flips
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.pipelines.precision import check_dtype

SAMPLERS = ("ddim", "dpm++")
NOISE_MODES = ("independent", "fixed")

#: an EI estimate source: "previous", a reconstructor run on the same windows, or window -> image
EstimateSource = str | ReconstructionPipeline | Callable[[Window], np.ndarray]


@dataclass(frozen=True)
class SamplingOptions:
    """How :meth:`~lase_e2v.pipelines.lase.LaSeE2VPipeline.iter_frames` samples (saved with the
    pipeline, except callables).

    Args:
        prompt: caption of the scene; edit it to steer the result. ``""`` = the recording's own
            caption (the ``caption`` argument of :meth:`LaSeE2VPipeline.iter_frames`) if it has one,
            else no text.
        num_inference_steps: sampler steps K for a full schedule (EI runs about ``s*K`` of them).
        guidance_scale: classifier-free guidance weight on the text (1 = conditional pass only).
        ei_strength: EI strength ``s`` in [0, 1]; 1 starts from pure noise; 0 runs no denoising step,
            so the output is the EI estimate through the autoencoder (the reference every strength
            above 0 must beat: what the diffusion model adds to its estimate).
        estimate: EI estimate source (see :mod:`lase_e2v.pipelines.lase`).
        num_samples: noise draws per clip whose final latents are averaged (:mod:`lase_e2v.pipelines.lase`);
            costs that many U-Net passes per step.
        detail_transfer: weight ``d`` of the estimate's detail that the autoencoder loses, added back
            to the decoded frame: ``D(z) + d * (estimate - D(E(estimate)))`` (:mod:`lase_e2v.pipelines.lase`);
            0 = off. Needs an estimate source other than ``"previous"``; costs one decode per frame.
        estimate_mix: share ``w`` by which each decoded frame ``x`` moves toward its estimate ``e``,
            ``x + w * B(e - x)`` (:mod:`lase_e2v.pipelines.estimate_mix`); 0 = off. Needs an estimate
            source other than ``"previous"``.
        estimate_mix_sigma: ``None`` mixes all scales (``B`` = identity); a scale in pixels mixes only
            the finer band, ``B(d) = d - gaussian_sigma(d)``.
        estimate_mix_gate: mix (and fuse) only while the recording's event statistics so far lie in
            the range of real cameras (:class:`~lase_e2v.pipelines.estimate_mix.RangeGate`); ``False``:
            always.
        fusion: pass each decoded frame and its estimate through the checkpoint's learned fusion
            network (:mod:`lase_e2v.models.fusion`) before any ``estimate_mix``; needs a checkpoint
            that has one and an estimate source other than ``"previous"``.
        fusion_estimate: a second reconstructor run on the same windows, whose frames only the fusion
            sees (a fusion network trained with ``second_estimate``; :mod:`lase_e2v.models.fusion`);
            ``None`` for a fusion without one. Run only while ``fusion`` is on.
        flips: mirror flips (:data:`lase_e2v.flips.FLIPS`) the ``num_samples`` draws are spread over,
            equally (:mod:`lase_e2v.pipelines.lase`); ``("none",)`` = no flip ensemble. A string is a
            comma-separated list (``"none,h"``).
        sampler: ``"ddim"`` (deterministic, eta 0) or ``"dpm++"`` (DPM-Solver++ 2M).
        noise: EI noise over time (:mod:`lase_e2v.pipelines.lase`): ``"independent"`` draws for every frame,
            ``"fixed"`` one draw per sample for the whole recording (:meth:`LaSeE2VPipeline.iter_frames`).
        clip_length: N, windows reconstructed together per clip.
        attention_window: every attention over a frame's pixels (the event encoder's, the U-Net's
            spatial self- and event attention) runs within tiles of at most this many pixels a side
            (:mod:`lase_e2v.models.tiles`: their cost grows with the square of the pixels); ``None``
            attends over the whole frame. The default 384 leaves frames up to 384x384 (DAVIS240,
            DAVIS346) exactly as before and cuts 640x480 into 4 tiles, 1280x720 into 8.
        seed: seed of the noise generator (reset per recording), ``None`` for a random one.
        dtype: ``"float32"`` (exact), ``"bfloat16"`` / ``"float16"`` autocast, or ``"auto"`` (bfloat16
            where the device computes it natively, else float32; :mod:`lase_e2v.pipelines.precision`:
            bfloat16 on GPUs and CPUs with AVX512-BF16 or AMX, float16 on GPUs).
    """

    prompt: str = ""
    num_inference_steps: int = 20
    guidance_scale: float = 1.0
    ei_strength: float = 0.8
    estimate: EstimateSource = "previous"
    num_samples: int = 1
    detail_transfer: float = 0.0
    estimate_mix: float = 0.0
    estimate_mix_sigma: float | None = None
    estimate_mix_gate: bool = True
    fusion: bool = False
    fusion_estimate: ReconstructionPipeline | Callable[[Window], np.ndarray] | None = None
    flips: tuple[str, ...] = ("none",)
    sampler: str = "ddim"
    noise: str = "independent"
    clip_length: int = 4
    attention_window: int | None = 384
    seed: int | None = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.num_inference_steps < 1:
            raise ConfigError(f"num_inference_steps must be >= 1, got {self.num_inference_steps}")
        if self.guidance_scale < 1:
            raise ConfigError(f"guidance_scale must be >= 1, got {self.guidance_scale}")
        if not 0 <= self.ei_strength <= 1:
            raise ConfigError(f"ei_strength must be in [0, 1], got {self.ei_strength}")
        if isinstance(self.estimate, str) and self.estimate != "previous":
            raise ConfigError(
                f"estimate '{self.estimate}' unknown; use 'previous', a reconstructor or a callable"
            )
        if isinstance(self.fusion_estimate, str):
            raise ConfigError(f"fusion_estimate '{self.fusion_estimate}': name a peer through "
                              "load_lase_pipeline or with_sampling, or pass a reconstructor or a callable")
        if self.num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {self.num_samples}")
        if not 0 <= self.detail_transfer <= 1:
            raise ConfigError(f"detail_transfer must be in [0, 1], got {self.detail_transfer}")
        if not 0 <= self.estimate_mix <= 1:
            raise ConfigError(f"estimate_mix must be in [0, 1], got {self.estimate_mix}")
        if self.estimate_mix_sigma is not None and not self.estimate_mix_sigma > 0:
            raise ConfigError(f"estimate_mix_sigma must be > 0 pixels or None, got {self.estimate_mix_sigma}")
        # a list from JSON or a caller (or "none,h") becomes a tuple: options stay hashable and compare equal
        object.__setattr__(self, "flips", check_flips(self.flips))
        if self.num_samples % len(self.flips):
            raise ConfigError(f"num_samples ({self.num_samples}) must be a multiple of the number of "
                              f"flips ({len(self.flips)})")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler '{self.sampler}' unknown; choose from {SAMPLERS}")
        if self.noise not in NOISE_MODES:
            raise ConfigError(f"noise '{self.noise}' unknown; choose from {NOISE_MODES}")
        if self.clip_length < 1:
            raise ConfigError(f"clip_length must be >= 1, got {self.clip_length}")
        if self.attention_window is not None and self.attention_window < 8:
            raise ConfigError("attention_window must be >= 8 pixels (or None: the whole frame), "
                              f"got {self.attention_window}")
        check_dtype(self.dtype)

    def to_json_dict(self) -> dict:
        """Everything but non-string estimate sources (objects are not saved)."""
        values = asdict(self)
        if not isinstance(self.estimate, str):
            values.pop("estimate")
        if self.fusion_estimate is not None:
            values.pop("fusion_estimate")
        return values
