"""Event representations: voxel grid (E2VID convention), count / polarity images, event mask.

Each function has one definition that works on numpy arrays and on torch tensors: the index and
weight arithmetic is written once with operators both libraries share, and only the final
scatter-add dispatches (``np.bincount`` / ``Tensor.index_add_``). Inputs are never modified.

Voxel grid (Rebecq et al., E2VID, TPAMI 2019; the convention EVREAL, FireNet and LaSe-E2V use):
timestamps are scaled to ``[0, B-1]`` by the window's first and last event,
``tn = (B - 1) * (t - t_first) / (t_last - t_first)``, and each event's polarity (+1/-1) is split
between bins ``floor(tn)`` and ``floor(tn) + 1`` with weights ``1 - (tn - floor(tn))`` and
``tn - floor(tn)``. Output shape ``(B, H, W)``, float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from lase_e2v.errors import ConfigError
from lase_e2v.events.streams import EventStream

try:  # torch is a dependency of the package, but the events layer does not need it
    import torch
except ImportError:  # pragma: no cover
    torch = None

Array = Union[np.ndarray, "torch.Tensor"]


def _is_torch(a: Array) -> bool:
    return torch is not None and isinstance(a, torch.Tensor)


def _scatter_add(flat_index: Array, weights: Array, size: int, like: Array) -> Array:
    """Sum ``weights`` into a zero vector of ``size`` at ``flat_index`` (repeated indices add up)."""
    if _is_torch(like):
        out = torch.zeros(size, dtype=torch.float32, device=like.device)
        return out.index_add_(0, flat_index.long(), weights.float())
    return np.bincount(flat_index, weights=weights, minlength=size).astype(np.float32)


def _as_float(a: Array) -> Array:
    return a.float() if _is_torch(a) else np.asarray(a, dtype=np.float32)


def _as_index(a: Array) -> Array:
    return a.long() if _is_torch(a) else np.asarray(a, dtype=np.intp)


def _floor(a: Array) -> Array:
    return torch.floor(a) if _is_torch(a) else np.floor(a)


def to_voxel_grid(
    x: Array,
    y: Array,
    t: Array,
    p: Array,
    num_bins: int,
    sensor_size: tuple[int, int],
    normalize: bool = False,
) -> Array:
    """Voxel grid ``(num_bins, H, W)`` of events with bilinear weights in time (E2VID convention).

    Args:
        x, y: pixel coordinates, ``(N,)``; t: timestamps (any unit, only differences matter), ``(N,)``;
        p: polarity in {-1, +1} (or {0, 1}: 0 is read as -1), ``(N,)``;
        num_bins: B >= 1; sensor_size: ``(H, W)``;
        normalize: scale the non-zero voxels to zero mean and unit (population) std, as E2VID and
            FireNet expect; zeros stay zero.

    Returns a numpy ``float32`` array for numpy input, a ``float32`` tensor on the input's device
    for torch input. No events gives all zeros.
    """
    if num_bins < 1:
        raise ConfigError(f"num_bins must be >= 1, got {num_bins}")
    height, width = sensor_size
    size = num_bins * height * width
    n = len(t)
    if n == 0:
        zeros = torch.zeros(size, device=t.device) if _is_torch(t) else np.zeros(size, np.float32)
        return zeros.reshape(num_bins, height, width)

    # 1. timestamps -> [0, B-1]; float64 for the subtraction keeps microsecond precision
    t_first, t_last = t[0], t[-1]
    span = float(t_last - t_first)
    scale = (num_bins - 1) / span if span > 0 else 0.0
    tn = _as_float((t - t_first) * scale) if _is_torch(t) else ((t - t_first) * scale).astype(np.float32)
    # 2. split each event between its two nearest bins
    pol = _as_float(p)
    pol = pol * 2 - 1 if (pol >= 0).all() else pol  # {0,1} -> {-1,+1}; no-op on +-1 input
    left_bin = _floor(tn)
    frac = tn - left_bin
    left_bin = _as_index(left_bin)
    pixel = _as_index(y) * width + _as_index(x)
    plane = height * width
    right_weight = pol * frac
    left_weight = pol - right_weight
    # the right neighbour of the last bin falls outside: send it to index 0 with zero weight
    right_bin = left_bin + 1
    inside = right_bin < num_bins
    right_index = (right_bin * plane + pixel) * inside
    right_weight = right_weight * inside
    voxel = _scatter_add(left_bin * plane + pixel, left_weight, size, like=t)
    voxel = voxel + _scatter_add(right_index, right_weight, size, like=t)
    voxel = voxel.reshape(num_bins, height, width)
    return normalize_nonzero(voxel) if normalize else voxel


def normalize_nonzero(voxel: Array) -> Array:
    """Non-zero entries to zero mean, unit population std (rpg E2VID ``EventPreprocessor``)."""
    mask = voxel != 0
    count = mask.sum()
    if int(count) == 0:
        return voxel
    mean = voxel.sum() / count
    std = ((voxel**2).sum() / count - mean**2) ** 0.5
    if float(std) <= 0:
        return voxel * 0
    return mask * (voxel - mean) / std


def events_to_voxel_grid(events: EventStream, num_bins: int, normalize: bool = False) -> np.ndarray:
    """:func:`to_voxel_grid` of an :class:`EventStream`."""
    return to_voxel_grid(events.x, events.y, events.t, events.p, num_bins, events.sensor_size, normalize)


def to_count_image(x: Array, y: Array, p: Array, sensor_size: tuple[int, int]) -> Array:
    """Per-pixel event counts ``(2, H, W)``: channel 0 ON events, channel 1 OFF events."""
    height, width = sensor_size
    pixel = _as_index(y) * width + _as_index(x)
    off = _as_index(_as_float(p) <= 0)
    ones = _as_float(off * 0 + 1)
    counts = _scatter_add(off * (height * width) + pixel, ones, 2 * height * width, like=x)
    return counts.reshape(2, height, width)


def to_polarity_image(x: Array, y: Array, p: Array, sensor_size: tuple[int, int]) -> Array:
    """Signed sum of polarities per pixel ``(H, W)`` (ON minus OFF counts)."""
    counts = to_count_image(x, y, p, sensor_size)
    return counts[0] - counts[1]


def to_event_mask(voxel_or_counts: Array) -> Array:
    """Binary mask ``(H, W)``: 1 where any event fired (any non-zero channel of a voxel/count grid)."""
    active = voxel_or_counts != 0
    if _is_torch(active):
        return active.any(dim=0).float()
    return active.any(axis=0).astype(np.float32)


@dataclass(frozen=True)
class VoxelGrid:
    """Transform: :class:`EventStream` -> voxel grid ``(num_bins, H, W)`` float32."""

    num_bins: int = 5
    normalize: bool = False

    def __post_init__(self) -> None:
        if self.num_bins < 1:
            raise ConfigError(f"num_bins must be >= 1, got {self.num_bins}")

    def __call__(self, events: EventStream) -> np.ndarray:
        return events_to_voxel_grid(events, self.num_bins, self.normalize)
