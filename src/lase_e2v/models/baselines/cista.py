"""CISTA-TC (Liu, Alexandru and Dragotti, "Convolutional ISTA Network with Temporal Consistency
Constraints for Video Reconstruction from Event Cameras", ICASSP 2022), as evaluated in the authors'
EVREAL fork (CISTA-EVREAL).

A learned ISTA solver for the sparse code of the frame, unrolled ``depth`` times with one shared block,
at half resolution::

    voxel -> We ┐
    previous image -> Wi ┘ cat -> W0 (stride 2) = x1 -> P0 = z0
    z <- softshrink(z + P(x1 - D(z)) + a * alpha * (z_prev - z), Lambda)   (depth times, from z = z0)
         with the temporal attention a = sigmoid(c_prev(z_prev) * c_cur(z))
    z -> conv + ReLU -> ConvLSTM -> bilinear x2 + conv -> conv -> sigmoid -> image (B, 1, H, W)

The recurrent state is the previous image (full resolution), the final sparse code ``z_prev`` and the
ConvLSTM's ``(h, c)``. Every convolution pads by reflection, as upstream. The checkpoint stores the
shared block and ``alpha`` once per iteration (``lista_blocks.{k}``, ``alpha.{k}``, tied tensors);
here they are one module and one parameter (:mod:`lase_e2v.models.baselines.checkpoints` checks
that the copies agree), so the saved weights hold each tensor once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from lase_e2v.models.baselines.firenet import check_voxel_normalization
from lase_e2v.models.baselines.layers import ConvLSTM
from lase_e2v.models.modeling import LaseModelMixin

#: previous image, previous final sparse code, ConvLSTM (h, c)
CistaState = tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]


class ReflectConv(nn.Module):
    """A 3x3 convolution padded by reflection (every convolution of CISTA-TC); ``conv2d`` as in the
    checkpoints."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv2d = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(x)


class IstaBlock(nn.Module):
    """One ISTA iteration's learned operators: ``D`` (code -> features), ``P`` (features -> code) and
    the per-channel soft threshold ``Lambda``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.D = ReflectConv(2 * channels, channels)
        self.P = ReflectConv(channels, 2 * channels)
        self.Lambda = nn.Parameter(torch.zeros(1, 2 * channels, 1, 1))


class DecoderLSTM(nn.Module):
    """Conv + ReLU then a reflection-padded ConvLSTM (``Dg``: ``conv``, ``recurrent_block``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ReflectConv(in_channels, out_channels)
        self.recurrent_block = ConvLSTM(out_channels, out_channels, kernel_size=3, padding_mode="reflect")

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        state = self.recurrent_block(F.relu(self.conv(x)), state)
        return state[0], state


def softshrink(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``relu(x - threshold) - relu(-x - threshold)``, per channel: the authors' soft threshold. Their
    learned thresholds are partly negative (92 of 128 channels), where this is not ``sign(x) * max(|x|
    - threshold, 0)``; the weights were trained with this form."""
    return F.relu(x - threshold) - F.relu(-x - threshold)


class CistaTC(LaseModelMixin, ConfigMixin):
    """CISTA-TC reconstructor.

    Args:
        num_bins (`int`, *optional*, defaults to 5): voxel-grid bins (input channels).
        base_channels (`int`, *optional*, defaults to 64): feature channels at half resolution (the
            sparse code has twice as many).
        depth (`int`, *optional*, defaults to 5): unrolled ISTA iterations (one shared block).
        voxel_normalization (`str`, *optional*, defaults to ``"nonzero"``): the input the weights were
            trained on (CISTA-EVREAL normalises non-zero voxels, like FireNet).
    """

    #: H and W multiple the pipeline pads to: EVREAL pads CISTA's input to a multiple of 8 (the
    #: network itself needs an even size for its stride-2 / x2 pair)
    input_multiple = 8

    @register_to_config
    def __init__(self, num_bins: int = 5, base_channels: int = 64, depth: int = 5,
                 voxel_normalization: str = "nonzero") -> None:
        super().__init__()
        check_voxel_normalization(voxel_normalization)
        half = base_channels // 2
        self.We = ReflectConv(num_bins, half)
        self.Wi = ReflectConv(1, half)
        self.W0 = ReflectConv(2 * half, base_channels, stride=2)
        self.P0 = ReflectConv(base_channels, 2 * base_channels)
        self.ista_block = IstaBlock(base_channels)
        self.alpha = nn.Parameter(torch.zeros(1, 2 * base_channels, 1, 1))
        self.one_conv_for_prev = ReflectConv(2 * base_channels, 1)
        self.one_conv_for_cur = ReflectConv(2 * base_channels, 1)
        self.Dg = DecoderLSTM(2 * base_channels, base_channels)
        self.upsamp_conv = ReflectConv(base_channels, base_channels)
        self.final_conv = ReflectConv(base_channels, 1)

    def forward(self, voxel: torch.Tensor, state: CistaState | None = None) -> tuple[torch.Tensor, CistaState]:
        """One step: ``voxel`` ``(B, num_bins, H, W)`` (H, W even) and the previous state (``None`` at
        the start). Returns ``(image, state)``: the image ``(B, 1, H, W)`` in [0, 1] and the next state."""
        if state is None:
            state = (voxel.new_zeros(voxel.shape[0], 1, *voxel.shape[2:]), None, None)
        previous_image, previous_code, lstm_state = state
        x1 = self.W0(torch.cat([self.We(voxel), self.Wi(previous_image)], dim=1))
        z = self.P0(x1)
        if previous_code is None:
            previous_code = torch.zeros_like(z)
        block = self.ista_block
        previous_map = self.one_conv_for_prev(previous_code)
        for _ in range(self.config.depth):
            attention = torch.sigmoid(previous_map * self.one_conv_for_cur(z))
            temporal = attention * (previous_code - z) * self.alpha
            z = softshrink(z + block.P(x1 - block.D(z)) + temporal, block.Lambda)
        features, lstm_state = self.Dg(z, lstm_state)
        upsampled = F.interpolate(features, scale_factor=2, mode="bilinear", align_corners=False)
        image = torch.sigmoid(self.final_conv(self.upsamp_conv(upsampled)))
        return image, (image, z, lstm_state)
