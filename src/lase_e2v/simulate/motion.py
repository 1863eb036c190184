"""Smooth 2-D motion of image layers and their rendering by backward warping (numpy).

A layer (a photo, or a cut-out with an alpha mask) moves by a similarity transform over time:
its ``anchor`` (a point in layer pixels) appears at ``center(t)`` in the output, rotated by
``rotation(t)`` and scaled by ``exp(log_scale(t))``. Each of these is a :class:`SmoothSignal`, a
linear drift plus a few sinusoids, so the motion is smooth, cheap to evaluate at any time, and its
speed is bounded analytically. Rendering samples each layer bilinearly at the backward-mapped
output pixels and composites the layers back to front with their alpha.

Coordinates are pixel centres, ``x`` to the right, ``y`` down, in pixels; time in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SmoothSignal:
    """``s(t) = offset + rate * t + sum_k amplitudes[k] * sin(2 pi frequencies_hz[k] t + phases[k])``."""

    offset: float = 0.0
    rate: float = 0.0
    amplitudes: tuple[float, ...] = ()
    frequencies_hz: tuple[float, ...] = ()
    phases: tuple[float, ...] = ()

    def __call__(self, t_s: np.ndarray) -> np.ndarray:
        t_s = np.asarray(t_s, dtype=np.float64)
        value = self.offset + self.rate * t_s
        for amplitude, frequency, phase in zip(self.amplitudes, self.frequencies_hz, self.phases):
            value = value + amplitude * np.sin(2 * np.pi * frequency * t_s + phase)
        return value

    @property
    def max_speed(self) -> float:
        """Upper bound of ``|ds/dt|`` (units per second)."""
        return abs(self.rate) + sum(
            2 * np.pi * abs(a) * f for a, f in zip(self.amplitudes, self.frequencies_hz)
        )

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        max_speed: float,
        offset: float = 0.0,
        num_terms: int = 3,
        frequency_range_hz: tuple[float, float] = (0.1, 1.5),
        drift_share: float = 0.4,
    ) -> SmoothSignal:
        """A random signal whose speed never exceeds ``max_speed``: a random share (up to
        ``drift_share``) goes to a linear drift of random sign, the rest is split at random over
        ``num_terms`` sinusoids."""
        drift = drift_share * rng.uniform(0, 1)
        weights = rng.dirichlet(np.ones(num_terms)) * (1 - drift)
        frequencies = rng.uniform(*frequency_range_hz, num_terms)
        return cls(
            offset=float(offset),
            rate=float(max_speed * drift * rng.choice((-1, 1))),
            amplitudes=tuple(float(a) for a in max_speed * weights / (2 * np.pi * frequencies)),
            frequencies_hz=tuple(float(f) for f in frequencies),
            phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, num_terms)),
        )


CONSTANT = SmoothSignal()


@dataclass(frozen=True)
class LayerMotion:
    """Similarity motion of a layer: layer point ``anchor`` appears at ``(center_x(t), center_y(t))``.

    Forward map (layer -> output): ``p_out = center(t) + exp(log_scale(t)) R(rotation(t)) (p - anchor)``.
    """

    center_x: SmoothSignal
    center_y: SmoothSignal
    anchor: tuple[float, float]
    rotation: SmoothSignal = CONSTANT
    log_scale: SmoothSignal = CONSTANT

    def forward(self, points: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Layer points ``(P, 2)`` (x, y) -> output positions ``(N, P, 2)`` at times ``t_s`` (N,)."""
        t_s = np.atleast_1d(t_s)
        angle, scale = self.rotation(t_s)[:, None], np.exp(self.log_scale(t_s))[:, None]
        dx, dy = points[:, 0] - self.anchor[0], points[:, 1] - self.anchor[1]
        cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
        x = self.center_x(t_s)[:, None] + cos * dx - sin * dy
        y = self.center_y(t_s)[:, None] + sin * dx + cos * dy
        return np.stack([x, y], axis=-1)

    def inverse_affine(self, t_s: np.ndarray) -> np.ndarray:
        """``(N, 2, 3)`` matrices mapping output ``(x, y, 1)`` to layer coordinates (backward warp)."""
        t_s = np.atleast_1d(t_s)
        angle, inverse_scale = self.rotation(t_s), np.exp(-self.log_scale(t_s))
        cos, sin = np.cos(angle) * inverse_scale, np.sin(angle) * inverse_scale
        cx, cy = self.center_x(t_s), self.center_y(t_s)
        matrices = np.empty((len(t_s), 2, 3))
        matrices[:, 0, 0], matrices[:, 0, 1] = cos, sin
        matrices[:, 1, 0], matrices[:, 1, 1] = -sin, cos
        matrices[:, 0, 2] = self.anchor[0] - cos * cx - sin * cy
        matrices[:, 1, 2] = self.anchor[1] + sin * cx - cos * cy
        return matrices


def _pixel_to_normalized(size: tuple[int, int]) -> np.ndarray:
    """3x3 map of pixel coordinates to grid_sample's [-1, 1] (align_corners=True: -1 and 1 are the
    centres of the first and last pixels)."""
    height, width = size
    return np.array([[2 / max(width - 1, 1), 0, -1], [0, 2 / max(height - 1, 1), -1], [0, 0, 1]])


def warp(
    layer: torch.Tensor, matrices: np.ndarray, box: tuple[int, int, int, int], padding_mode: str
) -> torch.Tensor:
    """Backward-warp ``layer`` (1, C, h, w) with per-time pixel maps ``matrices`` (N, 2, 3)
    (output -> layer) over the output pixels of ``box = (y0, y1, x0, x1)``: ``(N, C, y1-y0, x1-x0)``.

    Bilinear, through ``torch.nn.functional.grid_sample`` (several times faster than a numpy
    gather here); ``padding_mode`` ``"zeros"`` makes the outside transparent.
    """
    y_start, y_stop, x_start, x_stop = box
    count = len(matrices)
    box_to_output = np.array([[1, 0, x_start], [0, 1, y_start], [0, 0, 1]], dtype=np.float64)
    full = np.zeros((count, 3, 3))
    full[:, :2] = matrices
    full[:, 2, 2] = 1
    theta = (
        _pixel_to_normalized(tuple(layer.shape[-2:]))
        @ full
        @ box_to_output
        @ np.linalg.inv(_pixel_to_normalized((y_stop - y_start, x_stop - x_start)))
    )[:, :2]
    theta = torch.from_numpy(theta).float()[:, :, :, None, None]
    u = torch.linspace(-1, 1, x_stop - x_start)[None, None, :]
    v = torch.linspace(-1, 1, y_stop - y_start)[None, :, None]
    # the grid by broadcasting into place: affine_grid (batched matmul) and torch.stack are ~4x slower on CPU
    grid = torch.empty(count, y_stop - y_start, x_stop - x_start, 2)
    for axis in range(2):
        grid[..., axis].copy_(theta[:, axis, 0] * u).add_(theta[:, axis, 1] * v + theta[:, axis, 2])
    return F.grid_sample(
        layer.expand(count, -1, -1, -1), grid, mode="bilinear", padding_mode=padding_mode, align_corners=True
    )


@dataclass(frozen=True, eq=False)
class Layer:
    """An image (h, w) or RGB (h, w, 3) float32 with an optional alpha (h, w) in [0, 1], moving by ``motion``.

    Outside its image a layer with an alpha is transparent; one without (the background) repeats
    its border.
    """

    image: np.ndarray
    motion: LayerMotion
    alpha: np.ndarray | None = None

    def __post_init__(self) -> None:
        image = self.image if self.image.ndim == 3 else self.image[..., None]
        channels = [*np.moveaxis(image, -1, 0)] + ([] if self.alpha is None else [self.alpha])
        object.__setattr__(self, "_tensor", torch.from_numpy(np.stack(channels).astype(np.float32))[None])

    @property
    def channels(self) -> int:
        """Colour channels of the image: 1 (gray) or 3 (RGB)."""
        return 3 if self.image.ndim == 3 else 1

    def corners(self) -> np.ndarray:
        """The layer's corners ``(4, 2)`` in its own pixels."""
        h, w = self.image.shape[:2]
        return np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64)

    def sample(self, t_s: np.ndarray, box: tuple[int, int, int, int]) -> torch.Tensor:
        """The layer seen at output pixels of ``box = (y0, y1, x0, x1)`` at each time: ``(N, C, bh, bw)``,
        the image's channels (1 or 3), then the alpha (if any)."""
        padding = "border" if self.alpha is None else "zeros"
        return warp(self._tensor, self.motion.inverse_affine(t_s), box, padding)

    def bounding_box(self, t_s: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """Output box ``(y0, y1, x0, x1)`` covering the layer at all ``t_s`` (``None`` if off-screen).

        The corners' hull bounds the layer at each time; between two given times a layer moves
        about a pixel at most, which the two-pixel margin covers.
        """
        corners = self.motion.forward(self.corners(), t_s).reshape(-1, 2)
        x_start = max(int(np.floor(corners[:, 0].min())) - 2, 0)
        x_stop = min(int(np.ceil(corners[:, 0].max())) + 3, size[1])
        y_start = max(int(np.floor(corners[:, 1].min())) - 2, 0)
        y_stop = min(int(np.ceil(corners[:, 1].max())) + 3, size[0])
        if x_start >= x_stop or y_start >= y_stop:
            return None
        return y_start, y_stop, x_start, x_stop


def composite(background: Layer, foreground: list[Layer], t_s: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Render layers back to front at times ``t_s`` (N,): ``(N, H, W)`` float32, or ``(N, H, W, 3)`` for
    RGB layers (all layers have the background's channels).

    Each foreground layer is sampled only inside its bounding box over ``t_s``. The result is
    clamped to the layers' range [0, 1]: bilinear weights can sum to one ulp above 1, and an opaque
    dark object over a bright background then composites to a tiny negative value.
    """
    channels = background.channels
    frames = background.sample(t_s, (0, size[0], 0, size[1]))[:, :channels]
    for layer in foreground:
        box = layer.bounding_box(t_s, size)
        if box is None:
            continue
        sampled = layer.sample(t_s, box)
        y0, y1, x0, x1 = box
        region = frames[:, :, y0:y1, x0:x1]
        region += sampled[:, channels:] * (sampled[:, :channels] - region)
    frames = frames.clamp_(0.0, 1.0)
    return frames[:, 0].numpy() if channels == 1 else np.ascontiguousarray(frames.permute(0, 2, 3, 1).numpy())


def max_displacement(tracked: list[tuple[LayerMotion, np.ndarray]], t_s: np.ndarray) -> np.ndarray:
    """Largest distance a tracked point moves in the output between consecutive ``t_s``: ``(N - 1,)`` px.

    ``tracked`` pairs a motion with layer points ``(P, 2)`` to follow; for a similarity transform
    the fastest point of a convex region is one of its corners, so corners suffice.
    """
    steps = np.zeros(len(t_s) - 1)
    for motion, points in tracked:
        positions = motion.forward(points, t_s)  # (N, P, 2)
        steps = np.maximum(steps, np.linalg.norm(np.diff(positions, axis=0), axis=-1).max(axis=1))
    return steps
