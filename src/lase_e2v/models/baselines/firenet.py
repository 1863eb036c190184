"""FireNet (Scheerlinck et al., "Fast Image Reconstruction with an Event Camera", WACV 2020) and FireNet+.

A light recurrent network that runs at full resolution (no down-/up-sampling)::

    voxel (B, bins, H, W) -> head conv3x3+ReLU -> ConvGRU G1 -> residual R1 -> ConvGRU G2 -> residual R2
                          -> 1x1 conv pred -> image (B, 1, H, W), no output activation

FireNet+ (Stoffregen et al., "Reducing the Sim-to-Real Gap for Event Cameras", ECCV 2020) is the same
graph retrained; it differs only in the input it expects (raw voxel grid instead of normalised), which
is recorded here as ``voxel_normalization``. Parameter names follow the refactored layout
(``head.conv2d``, ``G1``, ``R1``, ``G2``, ``R2``, ``pred.conv2d``); the legacy rpg names
(``net.head.conv.conv2d`` ...) are mapped in :mod:`lase_e2v.models.baselines.checkpoints`.
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config

from lase_e2v.errors import ConfigError
from lase_e2v.models.baselines.layers import ConvGRU, ConvLayer, ResidualBlock
from lase_e2v.models.modeling import LaseModelMixin

VOXEL_NORMALIZATIONS = ("nonzero", "none")

FireNetState = tuple[torch.Tensor, torch.Tensor]


def check_voxel_normalization(value: str) -> None:
    if value not in VOXEL_NORMALIZATIONS:
        raise ConfigError(f"voxel_normalization must be one of {VOXEL_NORMALIZATIONS}, got {value!r}")


class FireNet(LaseModelMixin, ConfigMixin):
    """FireNet / FireNet+ reconstructor.

    Args:
        num_bins (`int`, *optional*, defaults to 5): voxel-grid bins (input channels).
        base_num_channels (`int`, *optional*, defaults to 16): feature channels everywhere.
        kernel_size (`int`, *optional*, defaults to 3): kernel of the head conv and the GRU gates.
        voxel_normalization (`str`, *optional*, defaults to ``"nonzero"``): the input the weights were
            trained on: ``"nonzero"`` (non-zero voxels to zero mean, unit std; FireNet) or ``"none"``
            (raw voxel grid; FireNet+). Read by the reconstruction pipeline.
    """

    #: spatial size multiple the network needs (it is fully convolutional at full resolution)
    input_multiple = 1
    #: layout the pipeline feeds it: its 16-channel full-resolution convs run 1.2x (240x180) to 1.5x
    #: (1280x720) faster channels-last on one CPU core, with the same values (``benchmarks/resolution.py``)
    memory_format = torch.channels_last

    @register_to_config
    def __init__(
        self,
        num_bins: int = 5,
        base_num_channels: int = 16,
        kernel_size: int = 3,
        voxel_normalization: str = "nonzero",
    ) -> None:
        super().__init__()
        check_voxel_normalization(voxel_normalization)
        self.head = ConvLayer(num_bins, base_num_channels, kernel_size)
        self.G1 = ConvGRU(base_num_channels, base_num_channels, kernel_size)
        self.R1 = ResidualBlock(base_num_channels)
        self.G2 = ConvGRU(base_num_channels, base_num_channels, kernel_size)
        self.R2 = ResidualBlock(base_num_channels)
        self.pred = ConvLayer(base_num_channels, 1, kernel_size=1, relu=False)

    def forward(
        self, voxel: torch.Tensor, state: FireNetState | None = None
    ) -> tuple[torch.Tensor, FireNetState]:
        """One step: ``voxel`` ``(B, num_bins, H, W)`` and the previous state (``None`` at the start).

        Returns ``(image, state)``: the raw image ``(B, 1, H, W)`` (about [0, 1], not clipped) and the two
        GRU hidden states ``(B, C, H, W)`` to pass to the next step.
        """
        h1, h2 = state if state is not None else (None, None)
        h1 = self.G1(self.head(voxel), h1)
        h2 = self.G2(self.R1(h1), h2)
        return self.pred(self.R2(h2)), (h1, h2)
