"""Mirror flips of frames and voxel grids, by name: one definition for training and sampling.

Training draws among them as augmentation (and caches latents per flip, :mod:`lase_e2v.training.latents`);
sampling can spread its noise draws over them (``flips``, :mod:`lase_e2v.pipelines.lase`). A mirrored
event stream is as physical as the original (every event keeps its time and polarity), so each flip
is a valid input of its own.
"""

from __future__ import annotations

import torch

from lase_e2v.errors import ConfigError

#: flip variants by name: ``(horizontal, vertical)``
FLIPS = {"none": (False, False), "h": (True, False), "v": (False, True), "hv": (True, True)}


def check_flips(flips: str | list[str] | tuple[str, ...], what: str = "flips") -> tuple[str, ...]:
    """The flip variant names as a tuple, checked (at least one, all known, no repeats); ``what`` names
    them in errors. A string is a comma-separated list (``"none,h"``), as on the command line."""
    if isinstance(flips, str):
        flips = [name.strip() for name in flips.split(",")]
    unknown = [name for name in flips if name not in FLIPS]
    if not flips or unknown or len(set(flips)) != len(flips):
        raise ConfigError(f"{what} must be distinct names from {sorted(FLIPS)}, got {list(flips)}")
    return tuple(flips)


def flip_images(images: torch.Tensor, name: str) -> torch.Tensor:
    """``images`` (last two dimensions height, width) mirrored as ``name`` says; its own inverse."""
    horizontal, vertical = FLIPS[name]
    dims = [dim for dim, flipped in ((-1, horizontal), (-2, vertical)) if flipped]
    return images.flip(dims) if dims else images
