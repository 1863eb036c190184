"""E2VID (Rebecq et al., "High Speed and High Dynamic Range Video with an Event Camera", TPAMI 2019) and E2VID+.

A recurrent U-Net; every encoder is a strided conv followed by a ConvLSTM, and skips are summed::

    voxel (B, bins, H, W) -> head conv5x5+ReLU (C)                                    -- skip --+
      -> encoder i = conv5x5 stride 2 + ReLU, ConvLSTM  (C·2^(i+1) channels, H/2^(i+1))  -- skip -+ |
      -> residual blocks at the bottom                                                          | |
      -> decoder i = x2 up (transposed conv or bilinear+conv) of (x + encoder skip)  <----------+ |
      -> 1x1 conv pred of (x + head)  <-----------------------------------------------------------+
      -> sigmoid (E2VID) or nothing (E2VID+)

The official E2VID ("E2VID_lightweight") uses 32 base channels, 3 encoders, 2 residual blocks,
transposed-conv decoders, a sigmoid output and a normalised voxel grid; E2VID+ (Stoffregen et al.,
ECCV 2020, event_cnn_minimal) has the same graph without the sigmoid and takes the raw voxel grid.
Parameter names are those of both releases without their ``unetrecurrent.`` prefix. H and W must be
multiples of ``2**num_encoders`` (the pipeline pads).
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from lase_e2v.errors import ConfigError
from lase_e2v.models.baselines.firenet import check_voxel_normalization
from lase_e2v.models.baselines.layers import (
    ConvLayer,
    RecurrentConvLayer,
    ResidualBlock,
    TransposedConvLayer,
    UpsampleConvLayer,
    check_norm,
)
from lase_e2v.models.modeling import LaseModelMixin

FINAL_ACTIVATIONS = ("sigmoid", "none")

E2VIDState = tuple[tuple[torch.Tensor, torch.Tensor], ...]


class E2VID(LaseModelMixin, ConfigMixin):
    """E2VID / E2VID+ recurrent U-Net.

    Args:
        num_bins (`int`, *optional*, defaults to 5): voxel-grid bins (input channels).
        base_num_channels (`int`, *optional*, defaults to 32): channels of the head; doubled per encoder.
        num_encoders (`int`, *optional*, defaults to 3): recurrent encoders (and decoders).
        num_residual_blocks (`int`, *optional*, defaults to 2): residual blocks at the bottom.
        kernel_size (`int`, *optional*, defaults to 5): kernel of head, encoders and decoders.
        use_upsample_conv (`bool`, *optional*, defaults to `False`): decoders upsample bilinearly then
            convolve (``True``) or use a transposed conv (``False``, the official E2VID).
        norm (`str`, *optional*): ``None`` or ``"BN"``.
        final_activation (`str`, *optional*, defaults to ``"sigmoid"``): ``"sigmoid"`` (E2VID) or ``"none"`` (E2VID+).
        voxel_normalization (`str`, *optional*, defaults to ``"nonzero"``): ``"nonzero"`` (E2VID) or ``"none"`` (E2VID+).
    """

    @register_to_config
    def __init__(
        self,
        num_bins: int = 5,
        base_num_channels: int = 32,
        num_encoders: int = 3,
        num_residual_blocks: int = 2,
        kernel_size: int = 5,
        use_upsample_conv: bool = False,
        norm: str | None = None,
        final_activation: str = "sigmoid",
        voxel_normalization: str = "nonzero",
    ) -> None:
        super().__init__()
        check_norm(norm)
        check_voxel_normalization(voxel_normalization)
        if final_activation not in FINAL_ACTIVATIONS:
            raise ConfigError(
                f"final_activation must be one of {FINAL_ACTIVATIONS}, got {final_activation!r}"
            )
        if num_encoders < 1:
            raise ConfigError(f"num_encoders must be >= 1, got {num_encoders}")
        channels = [base_num_channels * 2**i for i in range(num_encoders + 1)]
        upsample = UpsampleConvLayer if use_upsample_conv else TransposedConvLayer

        self.head = ConvLayer(num_bins, base_num_channels, kernel_size)
        self.encoders = nn.ModuleList(
            RecurrentConvLayer(channels[i], channels[i + 1], kernel_size, stride=2, norm=norm)
            for i in range(num_encoders)
        )
        self.resblocks = nn.ModuleList(ResidualBlock(channels[-1], norm) for _ in range(num_residual_blocks))
        self.decoders = nn.ModuleList(
            upsample(channels[i + 1], channels[i], kernel_size, norm=norm)
            for i in reversed(range(num_encoders))
        )
        self.pred = ConvLayer(base_num_channels, 1, kernel_size=1, relu=False, norm=norm)

    @property
    def input_multiple(self) -> int:
        """H and W must be multiples of this (each encoder halves the size)."""
        return 2**self.config.num_encoders

    def forward(
        self, voxel: torch.Tensor, state: E2VIDState | None = None
    ) -> tuple[torch.Tensor, E2VIDState]:
        """One step: ``voxel`` ``(B, num_bins, H, W)``, H and W multiples of :attr:`input_multiple`.

        Returns ``(image, state)``: ``image`` ``(B, 1, H, W)`` (in [0, 1] with the sigmoid, raw
        otherwise) and one ConvLSTM ``(h, c)`` per encoder for the next step.
        """
        # 1. head and recurrent encoders
        x = head = self.head(voxel)
        previous = state if state is not None else (None,) * len(self.encoders)
        skips, new_state = [], []
        for encoder, encoder_state in zip(self.encoders, previous):
            x, encoder_state = encoder(x, encoder_state)
            skips.append(x)
            new_state.append(encoder_state)
        # 2. bottleneck
        for resblock in self.resblocks:
            x = resblock(x)
        # 3. decoders with summed skips, prediction
        for decoder, skip in zip(self.decoders, reversed(skips)):
            x = decoder(x + skip)
        image = self.pred(x + head)
        if self.config.final_activation == "sigmoid":
            image = torch.sigmoid(image)
        return image, tuple(new_state)
