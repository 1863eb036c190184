"""PIE-Net and PIE-Net-Lite (Qu et al., "PIE-Net: Probabilistic Intensity-Event Modeling", 2024).

A recurrent U-Net that also sees its own previous output, and predicts the change of intensity
probabilistically::

    voxel (B, bins, H, W)       -> event_conv -+-> sum -> encoders 0..n-1 -> decoders n-1..0 -> pred (3 maps)
    previous image (B, 1, H, W) -> frame_conv -+
    (the global means of both branches drive a FiLM in every encoder; the previous variance gates the skips)

    encoder i = ConvLSTM (gates from a fused MBConv over [x, h], GroupNorm on h and c)
                -> refine blocks -> FiLM -> skip, then max-pool by pool_sizes[i]
    decoder i = bilinear x pool_sizes[i] upsampling, concat with the (gated) skip, conv blocks

The three output maps, each through a ReLU, are the expected exponentiated log-intensity change
``E[exp z]``, its variance ``Var[exp z]`` and a refined previous frame ``f0``; a further conv block
predicts the offset ``k >= 0`` of the log mapping ``log(f1 + k) = log(f0 + k) + z``. Hence::

    image    = clamp((f0 + k) · E[exp z] − k, 0, 1)
    variance = (f0 + k)² · Var[exp z]

The image is fed back as the next step's frame input (zeros at the start) and the variance gates
the next step's skips (no gating at the first step). Every conv block is conv → GroupNorm(1 group)
→ SiLU, with an identity skip when its input and output channels agree.

Configurations of the official weights (MIT, © 2024 Vincent Qu, package ``event-pienet`` 1.1.3):
PIE-Net-Lite ``channels (12, 16, 24)``, ``pool_sizes (2, 2)``, one refine block per encoder;
PIE-Net ``channels (8, 16, 24, 32)``, ``pool_sizes (2, 2, 5)``, one refine block per encoder (the
weights hold them although the package's own model drops them; they were trained with them, see
:mod:`lase_e2v.models.baselines.checkpoints`).
The input is the raw voxel grid (E2VID convention, polarity ±1, not normalised).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from lase_e2v.errors import ConfigError
from lase_e2v.models.baselines.firenet import check_voxel_normalization
from lase_e2v.models.modeling import LaseModelMixin

#: squeeze ratio of the squeeze-and-excitation inside the ConvLSTM gates
SQUEEZE_RATIO = 8

LSTMState = tuple[torch.Tensor, torch.Tensor]


class PIENetState(NamedTuple):
    """What one step hands to the next.

    ``frame``: the image just produced ``(B, 1, H, W)`` in [0, 1]; ``variance``: its per-pixel
    variance ``(B, 1, H, W)``; ``encoder_states``: one ConvLSTM ``(h, c)`` per encoder.
    """

    frame: torch.Tensor
    variance: torch.Tensor
    encoder_states: tuple[LSTMState, ...]


class ConvBlock(nn.Module):
    """Conv (same padding) → GroupNorm(1) → optional SiLU, plus the input when channels agree."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, activation: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.GroupNorm(1, out_channels)
        self.activation = activation
        self.residual = in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(x))
        if self.activation:
            out = F.silu(out)
        return out + x if self.residual else out


class SqueezeExcitation(nn.Module):
    """Channel attention: ``x · σ(expand(relu(reduce(mean_hw x))))`` with bias-free 1x1 convs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = max(1, channels // SQUEEZE_RATIO)
        self.reduce = nn.Conv2d(channels, squeezed, 1, bias=False)
        self.expand = nn.Conv2d(squeezed, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.expand(F.relu(self.reduce(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(weights)


class FusedMBConv(nn.Module):
    """Fused inverted bottleneck: 3x3 expand (+SiLU) → squeeze-excitation → 1x1 project (no activation)."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int) -> None:
        super().__init__()
        expanded = in_channels * expansion
        self.expand = ConvBlock(in_channels, expanded, 3)
        self.excite = SqueezeExcitation(expanded)
        self.project = ConvBlock(expanded, out_channels, 1, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.excite(self.expand(x)))


class NormalizedConvLSTM(nn.Module):
    """ConvLSTM whose gates come from a :class:`FusedMBConv` over ``[x, h]``, with GroupNorm(4) on c and h.

    Gate order input, forget, output, cell: ``c' = GN(σf·c + σi·tanh g)``, ``h' = GN(σo·tanh c')``.
    """

    def __init__(self, input_size: int, hidden_size: int, expansion: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.gates = FusedMBConv(input_size + hidden_size, 4 * hidden_size, expansion)
        self.hidden_norm = nn.GroupNorm(4, hidden_size)
        self.cell_norm = nn.GroupNorm(4, hidden_size)

    def forward(self, x: torch.Tensor, state: LSTMState | None) -> LSTMState:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size, *x.shape[2:])
            state = (zeros, zeros)
        hidden, cell = state
        in_gate, forget_gate, out_gate, cell_gate = self.gates(torch.cat([x, hidden], dim=1)).chunk(4, dim=1)
        cell = self.cell_norm(
            torch.sigmoid(forget_gate) * cell + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
        )
        hidden = self.hidden_norm(torch.sigmoid(out_gate) * torch.tanh(cell))
        return hidden, cell


class RecurrentEncoder(nn.Module):
    """ConvLSTM → refine blocks → FiLM from the stem descriptors; returns the pooled output and the skip."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        descriptor_channels: int,
        pool_size: int,
        num_refine_blocks: int,
        lstm_expansion: int,
    ) -> None:
        super().__init__()
        self.lstm = NormalizedConvLSTM(in_channels, out_channels, lstm_expansion)
        self.refine = nn.Sequential(
            *(ConvBlock(out_channels, out_channels) for _ in range(num_refine_blocks))
        )
        self.film = nn.Conv2d(descriptor_channels, 2 * out_channels, 1)
        self.pool_size = pool_size

    def forward(
        self, x: torch.Tensor, state: LSTMState | None, descriptors: torch.Tensor
    ) -> tuple[torch.Tensor, LSTMState, torch.Tensor]:
        state = self.lstm(x, state)
        scale, shift = self.film(descriptors).chunk(2, dim=1)
        skip = self.refine(state[0]) * (1.0 + scale) + shift
        return F.max_pool2d(skip, self.pool_size), state, skip


class VarianceGatedDecoder(nn.Module):
    """Upsample, gate the skip by ``σ(1x1 conv of the previous variance)``, fuse ``[skip, x]`` by conv blocks.

    The upsampled map is zero-padded (centred) to the skip's size when pooling dropped border pixels.
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int, num_fuse_blocks: int) -> None:
        super().__init__()
        self.variance_gate = nn.Conv2d(1, in_channels, 1)
        self.fuse = nn.Sequential(
            ConvBlock(2 * in_channels, out_channels),
            *(ConvBlock(out_channels, out_channels) for _ in range(num_fuse_blocks - 1)),
        )
        self.scale = scale

    def forward(self, x: torch.Tensor, skip: torch.Tensor, variance: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=True)
        missing_h, missing_w = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        if missing_h or missing_w:
            x = F.pad(
                x, (missing_w // 2, missing_w - missing_w // 2, missing_h // 2, missing_h - missing_h // 2)
            )
        if variance is not None:
            variance = F.interpolate(variance, size=skip.shape[2:], mode="bilinear", align_corners=True)
            skip = skip * torch.sigmoid(self.variance_gate(variance))
        return self.fuse(torch.cat([skip, x], dim=1))


class PIENetStem(nn.Module):
    """Event and frame branches, summed; their global means are the FiLM descriptors ``(B, 2·C, 1, 1)``."""

    def __init__(self, num_bins: int, channels: int) -> None:
        super().__init__()
        self.event_conv = ConvBlock(num_bins, channels)
        self.frame_conv = ConvBlock(1, channels)

    def forward(self, voxel: torch.Tensor, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        events, frames = self.event_conv(voxel), self.frame_conv(frame)
        descriptors = torch.cat(
            [events.mean(dim=(2, 3), keepdim=True), frames.mean(dim=(2, 3), keepdim=True)], dim=1
        )
        return events + frames, descriptors


class PIENet(LaseModelMixin, ConfigMixin):
    """PIE-Net / PIE-Net-Lite reconstructor (defaults: PIE-Net-Lite).

    Args:
        num_bins (`int`, *optional*, defaults to 5): voxel-grid bins (event input channels).
        channels (`tuple[int, ...]`, *optional*, defaults to `(12, 16, 24)`): stem channels, then the
            channels of each encoder (one encoder per further entry).
        pool_sizes (`tuple[int, ...]`, *optional*, defaults to `(2, 2)`): max-pool factor after each
            encoder (and upsampling factor of the matching decoder); not readable from the weights.
        num_refine_blocks (`int`, *optional*, defaults to 1): conv blocks after each ConvLSTM.
        num_fuse_blocks (`int`, *optional*, defaults to 1): conv blocks of each decoder (>= 1).
        lstm_expansion (`int`, *optional*, defaults to 2): expansion of the ConvLSTM gates' MBConv.
        voxel_normalization (`str`, *optional*, defaults to ``"none"``): the input the weights expect;
            ``"none"`` (raw voxel grid) for the official weights. Read by the reconstruction pipeline.
    """

    @register_to_config
    def __init__(
        self,
        num_bins: int = 5,
        channels: tuple[int, ...] = (12, 16, 24),
        pool_sizes: tuple[int, ...] = (2, 2),
        num_refine_blocks: int = 1,
        num_fuse_blocks: int = 1,
        lstm_expansion: int = 2,
        voxel_normalization: str = "none",
    ) -> None:
        super().__init__()
        check_voxel_normalization(voxel_normalization)
        if len(channels) < 2 or len(pool_sizes) != len(channels) - 1:
            raise ConfigError(
                f"PIENet needs one pool size per encoder: channels {tuple(channels)} and pool_sizes "
                f"{tuple(pool_sizes)} (expected {max(len(channels) - 1, 1)} pool sizes)"
            )
        if num_fuse_blocks < 1:
            raise ConfigError(f"num_fuse_blocks must be >= 1, got {num_fuse_blocks}")
        levels = range(len(pool_sizes))
        self.stem = PIENetStem(num_bins, channels[0])
        self.encoders = nn.ModuleList(
            RecurrentEncoder(
                channels[i],
                channels[i + 1],
                2 * channels[0],
                pool_sizes[i],
                num_refine_blocks,
                lstm_expansion,
            )
            for i in levels
        )
        self.decoders = nn.ModuleList(
            VarianceGatedDecoder(channels[i + 1], channels[i], pool_sizes[i], num_fuse_blocks)
            for i in reversed(levels)
        )
        self.pred = nn.Conv2d(channels[0], 3, 1)
        self.offset = ConvBlock(3, 1)

    @property
    def input_multiple(self) -> int:
        """H and W multiples that every pooling divides exactly (the pipeline pads to it)."""
        return math.prod(self.config.pool_sizes)

    def forward(
        self, voxel: torch.Tensor, state: PIENetState | None = None
    ) -> tuple[torch.Tensor, PIENetState]:
        """One step: ``voxel`` ``(B, num_bins, H, W)`` and the previous state (``None`` at the start).

        Returns ``(image, state)``: ``image`` ``(B, 1, H, W)`` in [0, 1] and the :class:`PIENetState`
        for the next step (``state.variance`` is this image's per-pixel variance).
        """
        # 1. stem on events and the previous image
        if state is None:
            frame, variance, encoder_states = voxel.new_zeros(voxel.shape[0], 1, *voxel.shape[2:]), None, None
        else:
            frame, variance, encoder_states = state
        x, descriptors = self.stem(voxel, frame)
        # 2. recurrent encoders
        skips, new_states = [], []
        for encoder, encoder_state in zip(self.encoders, encoder_states or (None,) * len(self.encoders)):
            x, encoder_state, skip = encoder(x, encoder_state, descriptors)
            skips.append(skip)
            new_states.append(encoder_state)
        # 3. decoders with variance-gated skips
        for decoder, skip in zip(self.decoders, reversed(skips)):
            x = decoder(x, skip, variance)
        # 4. probabilistic intensity mapping
        latents = self.pred(x)
        offset = F.relu(self.offset(latents))
        mean_exp_change, var_exp_change, previous = F.relu(latents).chunk(3, dim=1)
        scale = previous + offset
        image = (scale * mean_exp_change - offset).clamp(0.0, 1.0)
        return image, PIENetState(image, scale**2 * var_exp_change, tuple(new_states))
