"""Colour event cameras: pixels under a Bayer colour filter (Color-DAVIS346, the camera of CED), and colour to gray.

Each 2x2 cell of the sensor holds four filter *sites*, in row-major order ``(0, 0), (0, 1), (1, 0),
(1, 1)`` (row, column); a pattern names their colours in that order: ``RGGB`` = R at (0, 0), G at
(0, 1) and (1, 0), B at (1, 1). A pixel's events follow the log intensity of its own colour only.

E2VID's colour reconstruction (Rebecq et al., TPAMI 2019; rpg_e2vid ``image_reconstructor.py``,
``--color`` "for the DAVIS346color") splits the events of CED's Color-DAVIS346 this way: R =
``[0::2, 0::2]``, G = ``[0::2, 1::2]``, W (the second G) = ``[1::2, 0::2]``, B = ``[1::2, 1::2]``, i.e.
``RGGB``: :data:`DEFAULT_PATTERN`, used when a file says it is colour but not its pattern.

* :func:`split_events`: one :class:`EventStream` per site on the half-resolution sub-sensor
  (``x // 2``, ``y // 2``), what E2VID reconstructs with the gray network;
* :func:`demosaic`: the four sites' half-resolution images -> an RGB image: each site's image is
  interpolated bilinearly at every pixel from the positions of that site's pixels (E2VID resizes x2
  and shifts by a pixel instead), the two greens averaged;
* :func:`mosaic`: what the pixels see of an RGB image (the simulator's colour mode);
* :func:`resolve_color_filter`: the pattern to use for a recording, from ``--color``/``--bayer``
  and what the file says (:attr:`EventReader.color_filter`);
* :func:`to_luma`, :func:`as_gray`: RGB to ITU-R BT.601 luma (how colour becomes gray everywhere:
  the simulator's gray mode, gray scoring of colour frames).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lase_e2v.errors import ConfigError, EventFormatError, quoted
from lase_e2v.events.streams import EventStream

#: ITU-R BT.601 luma weights of R, G, B
LUMA_601 = (0.299, 0.587, 0.114)
#: the four 2x2 Bayer patterns, sites named row by row
BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
#: the pattern of a colour recording that does not state one (E2VID's split of CED)
DEFAULT_PATTERN = "RGGB"
#: ``(row, column)`` of each site in its 2x2 cell, in pattern order
SITE_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def check_pattern(pattern: str) -> str:
    """``pattern`` in upper case if it is one of :data:`BAYER_PATTERNS`, else a :class:`ConfigError`."""
    name = str(pattern).upper()
    if name not in BAYER_PATTERNS:
        raise ConfigError(f"Bayer pattern {quoted(pattern)} unknown; use one of {', '.join(BAYER_PATTERNS)}")
    return name


def stated_pattern(value: object, source: object) -> str | None:
    """A file's ``color_filter`` entry as a pattern (``None`` if empty); anything else is an
    :class:`EventFormatError` naming ``source``."""
    if not value:
        return None
    if str(value).upper() not in BAYER_PATTERNS:
        raise EventFormatError(f"{source}: color_filter {quoted(value)} is not a Bayer pattern "
                               f"({', '.join(BAYER_PATTERNS)})")
    return str(value).upper()


def site_channels(pattern: str) -> tuple[int, ...]:
    """The RGB channel (0, 1, 2) of each site, in :data:`SITE_OFFSETS` order."""
    return tuple(_CHANNEL[letter] for letter in check_pattern(pattern))


def sub_sensor_size(sensor_size: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of a site's sub-sensor: half the sensor, rounded up (for odd sizes the
    sites of the second row / column have one row / column fewer, which stays empty)."""
    return (sensor_size[0] + 1) // 2, (sensor_size[1] + 1) // 2


def split_events(events: EventStream) -> list[EventStream]:
    """The events of each site (:data:`SITE_OFFSETS` order) on its half-resolution sub-sensor.

    The pattern does not matter here: it only names the sites' colours. Time order is kept.
    """
    site = (events.y % 2).astype(np.int8) * 2 + (events.x % 2).astype(np.int8)
    size = sub_sensor_size(events.sensor_size)
    streams = []
    for index in range(4):
        chosen = site == index
        streams.append(EventStream(events.x[chosen] // 2, events.y[chosen] // 2, events.t[chosen], events.p[chosen],
                                   size))
    return streams


def _site_axis(length: int, offset: int, samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every full-resolution index along one axis: the two neighbouring samples of a site that
    sits at ``offset + 2 k`` (``k < samples``) and the weight of the second, clamped at the ends."""
    position = np.clip((np.arange(length) - offset) / 2.0, 0, samples - 1)
    first = np.floor(position).astype(np.int64)
    second = np.minimum(first + 1, samples - 1)
    return first, second, (position - first).astype(np.float32)


def upsample_site(image: np.ndarray, offset: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation of one site's ``image`` ``(h, w)`` (sample ``(i, j)`` at full-resolution
    pixel ``(2 i + dy, 2 j + dx)``) at every pixel of a ``size`` sensor: ``(H, W)`` float32.
    Linear functions of the position are reproduced exactly; beyond the outermost samples the value
    is held."""
    rows = _site_axis(size[0], offset[0], (size[0] - offset[0] + 1) // 2)
    cols = _site_axis(size[1], offset[1], (size[1] - offset[1] + 1) // 2)
    image = np.asarray(image, dtype=np.float32)
    by_row = image[rows[0]] * (1 - rows[2])[:, None] + image[rows[1]] * rows[2][:, None]
    return by_row[:, cols[0]] * (1 - cols[2]) + by_row[:, cols[1]] * cols[2]


def demosaic(site_images: Sequence[np.ndarray], pattern: str, size: tuple[int, int]) -> np.ndarray:
    """RGB ``(H, W, 3)`` float32 of a ``size`` sensor from the four sites' images (half resolution,
    :data:`SITE_OFFSETS` order): each upsampled by :func:`upsample_site`, channels averaged over their
    sites (the two greens)."""
    if len(site_images) != 4:
        raise ConfigError(f"demosaic needs the images of the 4 Bayer sites, got {len(site_images)}")
    rgb = np.zeros((*size, 3), dtype=np.float32)
    count = np.zeros(3, dtype=np.float32)
    for image, offset, channel in zip(site_images, SITE_OFFSETS, site_channels(pattern)):
        rgb[..., channel] += upsample_site(image, offset, size)
        count[channel] += 1
    return rgb / count


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """What the pixels under ``pattern`` see of ``rgb`` ``(..., H, W, 3)``: ``(..., H, W)``, each pixel
    its own site's channel."""
    rgb = np.asarray(rgb)
    out = np.empty(rgb.shape[:-1], dtype=rgb.dtype)
    for (dy, dx), channel in zip(SITE_OFFSETS, site_channels(pattern)):
        out[..., dy::2, dx::2] = rgb[..., dy::2, dx::2, channel]
    return out


def resolve_color_filter(stated: str | None, color: bool | None = None, bayer: str | None = None) -> str | None:
    """The Bayer pattern to reconstruct a recording with, or ``None`` for gray.

    Args:
        stated: what the file says (:attr:`EventReader.color_filter`), ``None`` for a gray recording.
        color: ``None`` follows the file (colour only if it says so, or if ``bayer`` is given),
            ``True`` forces colour, ``False`` gray.
        bayer: the pattern, overriding the file's (default: the file's, else :data:`DEFAULT_PATTERN`).
    """
    if bayer is not None:
        bayer = check_pattern(bayer)
        if color is False:
            raise ConfigError("a Bayer pattern was given with gray reconstruction (--no-color); drop one of them")
    if color is False:
        return None
    if color is None and stated is None and bayer is None:
        return None
    return bayer or (check_pattern(stated) if stated else DEFAULT_PATTERN)


def to_luma(image: np.ndarray) -> np.ndarray:
    """RGB ``(..., 3)`` to gray with ITU-R BT.601 luma weights."""
    return image[..., 0] * LUMA_601[0] + image[..., 1] * LUMA_601[1] + image[..., 2] * LUMA_601[2]


def as_gray(image: np.ndarray) -> np.ndarray:
    """A gray ``(H, W)`` image as it is, an RGB ``(H, W, 3)`` one as its luma (:func:`to_luma`)."""
    return to_luma(image) if image.ndim == 3 else image
