"""Learned fusion of a LaSe-E2V frame with its EI estimate (our addition; the paper decodes and stops).

Why: the diffusion model decodes through a tiny autoencoder (TAEF2) that loses fine texture even of
its own input, while a per-pixel peer (PIE-Net) keeps it; the model in turn gets tone and coarse
content right where the peer does not. A fixed blend (``estimate_mix``) takes the same share of the
estimate everywhere; where the estimate is already good (slider_depth, and the synthetic scenes
whose PIE-Net SSIM is 0.6 or more) the blend gained nothing on the estimate alone. This small
network sees both frames, their difference and where events fired, and decides per pixel:

    out = clamp(x + alpha * (e - x) + 0.1 * r, 0, 1),   (alpha, r) = head(U-Net(x, e, e - x, m)),

with ``x`` the decoded frame, ``e`` the estimate and ``m = log1p(sum_bins |voxels|) / 3`` the event
magnitude of the frame's normalised voxel grid. ``alpha`` starts at ``initial_mix`` and ``r`` at 0
(zero-initialised head), so an untrained fusion is the fixed blend. Three scales (1, 1/2, 1/4) at
``channels`` width (107 k parameters at 16): about 30 ms per 240x180 frame and 1 s per 1280x720
frame on one CPU core, against about 250-500 ms and 14 s for the diffusion model's frame. Trained
on frames the frozen pipeline made from synthetic sequences (:mod:`lase_e2v.training.fusion`).

``sharpness_input`` (default off; the bundled fusion has none): a fifth, constant input channel,
the whole frame's :func:`sharpness_ratio` of estimate to decoded frame. Why: the network sees a
window of a few dozen pixels, yet whether to trust the estimate is a property of the whole frame:
on fresh synthetic sets the estimate's lead over the decoded frame correlates -0.51 per sequence
with that ratio (the model's frame being the sharper one goes with its added texture being wrong),
more than with any local input. A fresh set did not confirm the gain, so it is off in the bundled
fusion (the asset README).

``second_estimate`` (default off): the frames of a second, differently built peer ``p`` (the pipeline's
``fusion_estimate``) as two more inputs, ``p`` and ``p - x``, and a head that takes shares of all three,

    out = clamp(w_x x + w_e e + w_p p + 0.1 r, 0, 1),   (w_x, w_e, w_p) = softmax(head_1..3),

starting at ``(0.74, 0.25, 0.01)`` for ``initial_mix`` 0.25 (so again the fixed blend). Why: two
recurrent peers of different design (PIE-Net, CISTA-TC) err in different places, so per pixel one is
often right where the other is not; the EI estimate stays PIE-Net's, the second one is only seen here.
The bundled fusion takes CISTA-TC's frames (108 k parameters): on fresh synthetic sets +0.026 to
+0.028 SSIM against the same network without them, where the plain average of the two peers is far
below (the asset README, stage 12).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from lase_e2v.errors import ConfigError
from lase_e2v.models.modeling import LaseModelMixin

#: scale of the residual head: the correction beyond the blend stays small at initialisation
RESIDUAL_SCALE = 0.1
#: the second estimate's share before training, with ``second_estimate``
INITIAL_SECOND_SHARE = 0.01


def event_magnitude(voxels: torch.Tensor) -> torch.Tensor:
    """``(..., bins, H, W)`` normalised voxel grids -> ``(..., 1, H, W)`` ``log1p(sum |v|) / 3``
    (about [0, 1])."""
    return torch.log1p(voxels.abs().sum(-3, keepdim=True)) / 3


def sharpness_ratio(frames: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` decoded frames and estimates -> ``(B,)`` ``log`` of the estimate's mean
    absolute horizontal gradient over the frame's (0 when equally sharp; mirror-invariant)."""

    def sharpness(images: torch.Tensor) -> torch.Tensor:
        return (images[..., 1:] - images[..., :-1]).abs().flatten(1).mean(1)

    return torch.log((sharpness(estimate) + 1e-4) / (sharpness(frames) + 1e-4))


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1)


def _stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(_conv(in_channels, out_channels, stride), nn.SiLU(),
                         _conv(out_channels, out_channels), nn.SiLU())


class EstimateFusion(LaseModelMixin, ConfigMixin):
    """Per-pixel fusion of decoded frames with their estimates (see the module docstring).

    Args:
        channels (`int`, defaults to 16): width at full resolution (x2 at 1/2, x4 at 1/4).
        initial_mix (`float`, defaults to 0.25): the share of the estimate before training.
        sharpness_input (`bool`, defaults to False): also take the frame's :func:`sharpness_ratio`.
        second_estimate (`bool`, defaults to False): also take a second peer's frame (module docstring).
    """

    @register_to_config
    def __init__(self, channels: int = 16, initial_mix: float = 0.25, sharpness_input: bool = False,
                 second_estimate: bool = False) -> None:
        super().__init__()
        largest = 1 - (INITIAL_SECOND_SHARE if second_estimate else 0)  # the x share must stay > 0
        if not 0 < initial_mix < largest:
            raise ConfigError(f"initial_mix must be in (0, {largest:g}), got {initial_mix}")
        inputs = 4 + sharpness_input + 2 * second_estimate
        self.encode = nn.ModuleList([_stage(inputs, channels, 1),
                                     _stage(channels, 2 * channels, 2),
                                     _stage(2 * channels, 4 * channels, 2)])
        self.decode = nn.ModuleList([nn.Sequential(_conv(6 * channels, 2 * channels), nn.SiLU()),
                                     nn.Sequential(_conv(3 * channels, channels), nn.SiLU())])
        if second_estimate:  # softmax logits of the shares of x, e, p, then r
            shares = (1 - initial_mix - INITIAL_SECOND_SHARE, initial_mix, INITIAL_SECOND_SHARE)
            bias = [math.log(share) for share in shares] + [0.0]
        else:  # sigmoid logit of the estimate's share, then r
            bias = [math.log(initial_mix / (1 - initial_mix)), 0.0]
        self.head = nn.Conv2d(channels, len(bias), 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor(bias))

    def forward(self, frames: torch.Tensor, estimate: torch.Tensor, magnitude: torch.Tensor,
                sharpness: torch.Tensor | None = None, second: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 1, H, W)`` frames and estimates in [0, 1] and event magnitudes
        (:func:`event_magnitude`) -> ``(B, 1, H, W)`` fused frames in [0, 1]. ``sharpness``
        (``(B,)``, used with ``sharpness_input``): the whole frames' :func:`sharpness_ratio` when
        these are crops; by default computed from ``frames`` and ``estimate``. ``second``
        (``(B, 1, H, W)``, required with ``second_estimate``): the second peer's frames."""
        if self.config.second_estimate and second is None:
            raise ConfigError("this fusion network takes a second estimate (second_estimate=True)")
        height, width = frames.shape[-2:]
        parts = [frames, estimate, estimate - frames, magnitude]
        if self.config.sharpness_input:
            ratio = sharpness_ratio(frames, estimate) if sharpness is None else sharpness
            parts.append(ratio.view(-1, 1, 1, 1).expand_as(frames))
        if self.config.second_estimate:
            parts += [second, second - frames]
        inputs = torch.cat(parts, 1)
        # pad to a multiple of 4 so that the two stride-2 stages and the upsampling line up
        inputs = F.pad(inputs, (0, -width % 4, 0, -height % 4), mode="replicate")
        skips = []
        features = inputs
        for stage in self.encode:
            features = stage(features)
            skips.append(features)
        for block, skip in zip(self.decode, reversed(skips[:-1])):
            features = block(torch.cat([F.interpolate(features, size=skip.shape[-2:]), skip], 1))
        out = self.head(features)[..., :height, :width]
        residual = RESIDUAL_SCALE * out[:, -1:]
        if self.config.second_estimate:
            shares = torch.softmax(out[:, :3], 1)
            blend = shares[:, :1] * frames + shares[:, 1:2] * estimate + shares[:, 2:3] * second
        else:
            blend = frames + torch.sigmoid(out[:, :1]) * (estimate - frames)
        return (blend + residual).clamp(0, 1)
