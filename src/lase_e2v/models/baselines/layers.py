"""Building blocks of the rpg recurrent reconstructors (E2VID, FireNet), one definition each.

Attribute names (``conv2d``, ``transposed_conv2d``, ``norm_layer``, ``conv1``/``conv2``, ``bn1``/``bn2``,
``reset_gate``/``update_gate``/``out_gate``, ``Gates``) are those of the published checkpoints, so
their state dicts load without renaming inside a block. ``norm`` is ``None`` or ``"BN"`` (batch norm;
its convolutions then have no bias, as upstream).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lase_e2v.errors import ConfigError

NORMS = (None, "BN")


def _layout(x: torch.Tensor) -> torch.memory_format:
    """``channels_last`` if ``x`` (4D) is laid out so and not also plain contiguous, else contiguous."""
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


def check_norm(norm: str | None) -> None:
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {NORMS}, got {norm!r}")


class ConvLayer(nn.Module):
    """Conv2d (+ batch norm) (+ ReLU)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        relu: bool = True,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        self.conv2d = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=norm is None
        )
        self.norm_layer = nn.BatchNorm2d(out_channels) if norm == "BN" else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2d(x)
        if self.norm_layer is not None:
            x = self.norm_layer(x)
        return F.relu(x) if self.relu else x


class TransposedConvLayer(nn.Module):
    """Transposed conv with stride 2: exactly doubles H and W (``output_padding=1``), then ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, norm: str | None = None
    ) -> None:
        super().__init__()
        self.transposed_conv2d = nn.ConvTranspose2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=2,
            padding=kernel_size // 2,
            output_padding=1,
            bias=norm is None,
        )
        self.norm_layer = nn.BatchNorm2d(out_channels) if norm == "BN" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transposed_conv2d(x)
        if self.norm_layer is not None:
            x = self.norm_layer(x)
        return F.relu(x)


class UpsampleConvLayer(ConvLayer):
    """Bilinear x2 upsampling then conv + ReLU (no checkerboard artefacts, slower)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, norm: str | None = None
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


class ResidualBlock(nn.Module):
    """``relu(x + conv2(relu(conv1(x))))`` with 3x3 convs (+ batch norm after each)."""

    def __init__(self, channels: int, norm: str | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=norm is None)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=norm is None)
        self.bn1 = nn.BatchNorm2d(channels) if norm == "BN" else None
        self.bn2 = nn.BatchNorm2d(channels) if norm == "BN" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.bn1 is not None:
            out = self.bn1(out)
        out = self.conv2(F.relu(out))
        if self.bn2 is not None:
            out = self.bn2(out)
        return F.relu(out + x)


class ConvGRU(nn.Module):
    """Convolutional GRU: state ``h`` ``(B, hidden, H, W)``, zeros when ``None``.

    ``u = σ(W_u[x, h])``, ``r = σ(W_r[x, h])``, ``h' = h·(1-u) + tanh(W_o[x, h·r])·u``.
    """

    def __init__(self, input_size: int, hidden_size: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        padding = kernel_size // 2
        self.reset_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, padding=padding)
        self.update_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, padding=padding)
        self.out_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, padding=padding)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        if state is None:  # in x's layout, so the gates never mix channels-last and NCHW
            state = x.new_zeros(x.shape[0], self.hidden_size, *x.shape[2:]).contiguous(
                memory_format=_layout(x)
            )
        stacked = torch.cat([x, state], dim=1)
        update = torch.sigmoid(self.update_gate(stacked))
        reset = torch.sigmoid(self.reset_gate(stacked))
        candidate = torch.tanh(self.out_gate(torch.cat([x, state * reset], dim=1)))
        return state * (1 - update) + candidate * update


class ConvLSTM(nn.Module):
    """Convolutional LSTM: state ``(h, c)``, each ``(B, hidden, H, W)``, zeros when ``None``.

    One conv ``Gates`` on ``[x, h]`` gives the input, forget, output and cell gates, in that order.
    """

    def __init__(self, input_size: int, hidden_size: int, kernel_size: int = 3, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.Gates = nn.Conv2d(
            input_size + hidden_size, 4 * hidden_size, kernel_size, padding=kernel_size // 2,
            padding_mode=padding_mode,
        )

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size, *x.shape[2:])
            state = (zeros, zeros)
        hidden, cell = state
        in_gate, forget_gate, out_gate, cell_gate = self.Gates(torch.cat([x, hidden], dim=1)).chunk(4, dim=1)
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
        hidden = torch.sigmoid(out_gate) * torch.tanh(cell)
        return hidden, cell


class RecurrentConvLayer(nn.Module):
    """Strided :class:`ConvLayer` followed by a :class:`ConvLSTM` (an E2VID encoder)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, norm: str | None = None
    ) -> None:
        super().__init__()
        self.conv = ConvLayer(in_channels, out_channels, kernel_size, stride, norm=norm)
        self.recurrent_block = ConvLSTM(out_channels, out_channels, kernel_size=3)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        state = self.recurrent_block(self.conv(x), state)
        return state[0], state
