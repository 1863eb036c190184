"""LPIPS v0.1 (Zhang et al., CVPR 2018) in plain torch: AlexNet or VGG16 features plus linear heads.

No torchvision and no download: the AlexNet weights ship with the package as
``lase_e2v/assets/lpips/lpips_alex.safetensors`` (converted once from the official v0.1 heads and
torchvision's ImageNet backbone, BSD-2-Clause, see ``LICENSE-lpips.txt``); VGG16 weights are
loaded from a path the user gives (``.safetensors`` or a plain ``.pth`` state dict).

Computation (the reference ``lpips.LPIPS(net=..., version="0.1")`` with ``spatial=False``, as
EVREAL calls it through pyiqa): inputs in [-1, 1] RGB are shifted/scaled per channel, five ReLU
feature maps are unit-normalised over channels, their squared difference is weighted by a 1x1
convolution with non-negative weights, averaged over H and W and summed over the five taps.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import nn

from lase_e2v.errors import CheckpointError, ConfigError

#: per-channel input shift/scale of LPIPS' ``ScalingLayer`` (RGB order)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)

#: torchvision ``features`` layout: (kind, args); "C" = conv(in, out, kernel, stride, padding), "M" = maxpool
_ALEX_LAYERS = (
    ("C", (3, 64, 11, 4, 2)),
    ("R",),
    ("M", (3, 2)),
    ("C", (64, 192, 5, 1, 2)),
    ("R",),
    ("M", (3, 2)),
    ("C", (192, 384, 3, 1, 1)),
    ("R",),
    ("C", (384, 256, 3, 1, 1)),
    ("R",),
    ("C", (256, 256, 3, 1, 1)),
    ("R",),
)
_VGG_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)

#: per net: feature layers, indices of the ReLUs whose outputs are compared, channels at those taps
_NETS = {
    "alex": {"taps": (1, 4, 7, 9, 11), "channels": (64, 192, 384, 256, 256)},
    "vgg": {"taps": (3, 8, 15, 22, 29), "channels": (64, 128, 256, 512, 512)},
}


def _alex_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    for spec in _ALEX_LAYERS:
        if spec[0] == "C":
            c_in, c_out, kernel, stride, padding = spec[1]
            layers.append(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding))
        elif spec[0] == "R":
            layers.append(nn.ReLU())
        else:
            layers.append(nn.MaxPool2d(*spec[1]))
    return nn.Sequential(*layers)


def _vgg_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for item in _VGG_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU()]
            c_in = item
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """LPIPS distance; ``forward(a, b)`` takes ``(N, 3, H, W)`` in [-1, 1] and returns ``(N,)``.

    Build it with :func:`load_lpips`; the constructor makes an untrained network.
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in _NETS:
            raise ConfigError(f"LPIPS net '{net}' unknown; use one of {sorted(_NETS)}")
        self.net = net
        self.taps = _NETS[net]["taps"]
        self.features = _alex_features() if net == "alex" else _vgg_features()
        # drop layers after the last tap: they never influence the distance
        self.features = self.features[: self.taps[-1] + 1]
        for k, channels in enumerate(_NETS[net]["channels"]):
            setattr(self, f"lin{k}", nn.Conv2d(channels, 1, 1, bias=False))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        x = (x - self.shift) / self.scale
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return outputs

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ConfigError(
                f"LPIPS expects two (N, 3, H, W) tensors of one shape, got {tuple(a.shape)} "
                f"and {tuple(b.shape)}"
            )
        distance = a.new_zeros(a.shape[0])
        for k, (fa, fb) in enumerate(zip(self._taps(a), self._taps(b))):
            distance = distance + getattr(self, f"lin{k}")((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return distance


def bundled_weights_path(net: str = "alex") -> Path:
    """Path of the weights shipped in the package (only AlexNet is bundled)."""
    return Path(str(resources.files("lase_e2v") / "assets" / "lpips" / f"lpips_{net}.safetensors"))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict from ``.safetensors`` or a ``.pth`` state dict (loaded with ``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: LPIPS weights not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a plain state dict of tensors, got {type(state).__name__}")
    return state


def load_lpips(
    net: str = "alex", weights_path: str | Path | None = None, device: str | torch.device = "cpu"
) -> LPIPS:
    """LPIPS ``net`` ("alex" or "vgg") with weights from ``weights_path`` (default: the bundled AlexNet)."""
    model = LPIPS(net)
    if weights_path is None:
        if net != "alex":
            raise ConfigError(
                f"LPIPS '{net}' weights are not bundled; pass weights_path (e.g. lpips_vgg.pth)"
            )
        weights_path = bundled_weights_path(net)
    state = read_state_dict(weights_path)
    expected = set(model.state_dict())
    if set(state) != expected:
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        raise CheckpointError(
            f"{weights_path}: not LPIPS-{net} weights (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.load_state_dict(state, strict=True)
    return model.to(device)
