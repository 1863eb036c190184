"""Frozen image autoencoders: frames in [0, 1] <-> diffusion latents at 1/8 resolution.

LaSe-E2V denoises in the latent space of a frozen image autoencoder. Two backends share one
interface (:class:`ImageAutoencoder`):

* :class:`TinyAutoencoder` (default, name ``"tae"``): TAEF2, the tiny distilled stand-in for the
  FLUX.2 VAE (madebyollin/taesd, MIT). RGB [0, 1] <-> 32-channel latents, latent scale factor 1,
  the decoder starts with the soft clamp ``3 * tanh(x / 3)``. Its fp16 weights ship inside the
  package (``lase_e2v/assets/tae``), so a fresh install needs no download.
* :class:`StableDiffusionAutoencoder`: diffusers' ``AutoencoderKL`` from a local folder the user
  gives (latents = posterior mean * ``scaling_factor`` from its config; images in [-1, 1] inside).

Event cameras are monochrome: a 1-channel frame is encoded as 3 equal RGB channels and the
decoded RGB is averaged back to 1 channel. Sizes not divisible by 8 are padded (edge replicate)
before encoding; pass ``size=(H, W)`` to :meth:`decode` to crop the padding away again.

Speed: TAEF2 is a stack of 64-channel 3x3 convs, most of them at full and half resolution, so it
costs about 90% of LaSe-E2V's time on a CPU. It runs in channels-last layout (oneDNN's native NHWC:
24% less time than NCHW on one AVX-512 core, same values up to float rounding,
``benchmarks/lase.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.models.modeling import LaseModelMixin

#: where the bundled TAEF2 weights live (config.json + diffusion_pytorch_model.safetensors)
TAE_ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "tae"

SCALE_FACTOR = 8


@runtime_checkable
class ImageAutoencoder(Protocol):
    """What the pipeline and training need from an autoencoder."""

    latent_channels: int
    scale_factor: int
    #: how :meth:`LaSeE2VPipeline.save_pretrained` refers to it: ``"tae"``, a folder, or ``None`` (save weights)
    source: str | None

    def encode(self, frames: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor: ...


def pad_to_multiple(
    frames: torch.Tensor, multiple: int = SCALE_FACTOR, mode: str = "replicate"
) -> torch.Tensor:
    """Pad ``(..., H, W)`` at the bottom/right up to multiples of ``multiple`` (no-op if already)."""
    height, width = frames.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return frames
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    padded = F.pad(flat, (0, pad_w, 0, pad_h), mode=mode)
    return padded.reshape(*lead, *padded.shape[-3:])


def latent_size(size: tuple[int, int], scale_factor: int = SCALE_FACTOR) -> tuple[int, int]:
    """Latent ``(h, w)`` of a frame of ``size = (H, W)``: ``ceil(H / 8), ceil(W / 8)``."""
    return -(-size[0] // scale_factor), -(-size[1] // scale_factor)


def _to_rgb(frames: torch.Tensor) -> torch.Tensor:
    if frames.ndim != 4 or frames.shape[1] not in (1, 3):
        raise ConfigError(f"frames must be (B, 1 or 3, H, W), got {tuple(frames.shape)}")
    return frames.expand(-1, 3, -1, -1) if frames.shape[1] == 1 else frames


def _to_gray(rgb: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    gray = rgb.mean(dim=1, keepdim=True).clamp(0, 1)
    return gray if size is None else gray[..., : size[0], : size[1]]


# -- TAEF2 ----------------------------------------------------------------------------------------
def _conv(channels_in: int, channels_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, 3, padding=1, **kwargs)


class _SoftClamp(nn.Module):
    """``3 * tanh(x / 3)``: keeps decoder input latents within about +-3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class _TinyBlock(nn.Module):
    """Three 3x3 convs with ReLUs plus identity skip; mid-blocks first add a global-context branch.

    Sub-module names (``conv.{0,2,4}``, ``pool.{0,1,3}``) follow the released checkpoint's keys.
    """

    def __init__(self, channels: int, with_pool: bool) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv(channels, channels),
            nn.ReLU(),
            _conv(channels, channels),
            nn.ReLU(),
            _conv(channels, channels),
        )
        hidden = channels * 4
        self.pool = (
            nn.Sequential(
                nn.Conv2d(channels, hidden, 1, bias=False),
                nn.GroupNorm(4, hidden),
                nn.ReLU(),
                nn.Conv2d(hidden, channels, 1, bias=False),
            )
            if with_pool
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return F.relu(self.conv(x) + x)


def _tiny_encoder(width: int, latent_channels: int) -> nn.Sequential:
    """Indices 0..14 as in ``taef2_encoder.pth``: three stride-2 stages, mid-blocks at the lowest."""
    layers: list[nn.Module] = [_conv(3, width), _TinyBlock(width, False)]
    for stage in range(3):
        layers.append(_conv(width, width, stride=2, bias=False))
        layers += [_TinyBlock(width, with_pool=stage == 2) for _ in range(3)]
    layers.append(_conv(width, latent_channels))
    return nn.Sequential(*layers)


def _tiny_decoder(width: int, latent_channels: int) -> nn.Sequential:
    """Indices 0..19 as in ``taef2_decoder.pth``: soft clamp, three nearest-x2 stages, RGB conv."""
    layers: list[nn.Module] = [_SoftClamp(), _conv(latent_channels, width), nn.ReLU()]
    for stage in range(3):
        layers += [_TinyBlock(width, with_pool=stage == 0) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), _conv(width, width, bias=False)]
    layers += [_TinyBlock(width, False), _conv(width, 3)]
    return nn.Sequential(*layers)


class TinyAutoencoder(LaseModelMixin, ConfigMixin):
    """TAEF2 tiny autoencoder in plain torch (scale factor 8, latent scaling 1).

    Args:
        latent_channels (`int`, defaults to 32): latent channels (TAEF2: 32, the FLUX.2 VAE's).
        width (`int`, defaults to 64): channels of every conv (64 in the released weights; smaller
            widths give cheap random autoencoders for tests).

    Load the pretrained weights with :func:`load_autoencoder` (``"tae"``) or
    ``TinyAutoencoder.from_pretrained(TAE_ASSET_DIR)``.
    """

    scale_factor = SCALE_FACTOR

    @register_to_config
    def __init__(self, latent_channels: int = 32, width: int = 64) -> None:
        super().__init__()
        self.encoder = _tiny_encoder(width, latent_channels)
        self.decoder = _tiny_decoder(width, latent_channels)
        self.source: str | None = None

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, 1|3, H, W)`` in [0, 1] -> latents ``(B, 32, ceil(H/8), ceil(W/8))``."""
        rgb = pad_to_multiple(_to_rgb(frames).to(self.dtype))
        return self.encoder(rgb.contiguous(memory_format=torch.channels_last))

    def decode(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Latents -> ``(B, 1, H, W)`` in [0, 1]; ``size`` crops the encoder's padding."""
        latents = latents.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return _to_gray(self.decoder(latents), size)


# -- Stable Diffusion AutoencoderKL ---------------------------------------------------------------
class StableDiffusionAutoencoder(nn.Module):
    """Diffusers ``AutoencoderKL`` behind :class:`ImageAutoencoder` (deterministic: posterior mean).

    Latents are ``mean * scaling_factor`` (and ``+ shift_factor`` undone on decode when the config
    has one), so the diffusion model sees roughly unit-variance latents as in Stable Diffusion.
    """

    scale_factor = SCALE_FACTOR

    def __init__(self, vae: AutoencoderKL, source: str | None = None) -> None:
        super().__init__()
        self.vae = vae
        self.source = source
        self.scaling_factor = float(vae.config.scaling_factor)
        self.shift_factor = float(getattr(vae.config, "shift_factor", None) or 0.0)
        downsample = 2 ** (len(vae.config.block_out_channels) - 1)
        if downsample != SCALE_FACTOR:
            raise CheckpointError(
                f"{source}: autoencoder downsamples by {downsample}, expected {SCALE_FACTOR}"
            )

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.dtype

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        rgb = pad_to_multiple(_to_rgb(frames).to(self.vae.dtype)) * 2 - 1
        mean = self.vae.encode(rgb).latent_dist.mean
        return (mean - self.shift_factor) * self.scaling_factor

    def decode(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        latents = latents.to(self.vae.dtype) / self.scaling_factor + self.shift_factor
        rgb = self.vae.decode(latents).sample
        return _to_gray((rgb + 1) / 2, size)


def load_autoencoder(name_or_path: str | Path = "tae") -> TinyAutoencoder | StableDiffusionAutoencoder:
    """Frozen autoencoder (eval mode, no gradients): ``"tae"`` (bundled TAEF2) or a local folder.

    A folder holding a diffusers ``AutoencoderKL`` (``config.json`` + weights, e.g. Stable
    Diffusion's ``vae/`` subfolder) or a saved :class:`TinyAutoencoder` is accepted; nothing is
    downloaded.
    """
    if str(name_or_path) == "tae":
        model, source = TinyAutoencoder.from_pretrained(TAE_ASSET_DIR), "tae"
    else:
        path = Path(name_or_path)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise CheckpointError(
                f"{path}: not an autoencoder folder (no config.json); use 'tae' or a local folder"
            )
        class_name = TinyAutoencoder.load_config(path).get("_class_name")
        source = str(path.resolve())
        if class_name == TinyAutoencoder.__name__:
            model = TinyAutoencoder.from_pretrained(path)
        elif class_name == AutoencoderKL.__name__:
            model = StableDiffusionAutoencoder(
                AutoencoderKL.from_pretrained(path, local_files_only=True), source
            )
        else:
            raise CheckpointError(
                f"{path}: autoencoder class {class_name!r} not supported; expected AutoencoderKL"
            )
    model.source = source
    return model.eval().requires_grad_(False)
