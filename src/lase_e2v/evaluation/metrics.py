"""Full-reference image metrics exactly as EVREAL computes them: MSE, SSIM, LPIPS.

EVREAL (Ercan et al., CVPRW 2023, ``utils/eval_metrics.py``) clips prediction and reference to
[0, 1], then scores each frame with ``skimage.metrics.mean_squared_error``,
``structural_similarity(ref, pred, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)`` and pyiqa's LPIPS (AlexNet, v0.1, gray repeated to 3 channels, [0, 1] mapped to
[-1, 1]). A sequence's score is the mean over its frames; a dataset's is the mean over all its
frames (EVREAL weights each sequence mean by its frame count, which is the same thing).

Here SSIM is re-implemented in numpy (no scikit-image or scipy dependency): an 11x11 Gaussian window
(sigma 1.5, truncated at 3.5 sigma as skimage does: radius ``int(3.5 * 1.5 + 0.5) = 5``), valid
convolution, because skimage averages the SSIM map only over pixels at least 5 from the border,
whose windows never reach its padding. Arithmetic is float64 (skimage keeps float32 input in
float32; the two agree to about 1e-6).

Colour (our convention; EVREAL's methods and benchmark datasets are gray): colour frames
``(H, W, 3)`` are scored as gray by default, on their BT.601 luma (what :func:`~lase_e2v.evaluation.protocol.evaluate_method`
does with ``color_scoring="luma"``); given two RGB images, MSE averages over the channels too, SSIM is
the mean of the channels' SSIMs (skimage's ``channel_axis``) and LPIPS takes the RGB image as it is.

Metric objects follow EVREAL's small pattern: ``calculate`` scores one pair, ``update`` stores
the score (non-finite scores are dropped, as in EVREAL), ``values`` keeps every per-frame score
and ``mean`` averages them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lase_e2v.errors import ConfigError, EventDataError

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def clip_unit(image: np.ndarray) -> np.ndarray:
    """``image`` as float32 clipped to [0, 1] (EVREAL clips both prediction and reference)."""
    return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)


def _check_pair(prediction: np.ndarray, reference: np.ndarray) -> None:
    rgb = prediction.ndim == 3 and prediction.shape[-1] == 3
    if prediction.shape != reference.shape or not (prediction.ndim == 2 or rgb):
        raise EventDataError(
            f"metrics compare two (H, W) or (H, W, 3) images of one shape, got {prediction.shape} and {reference.shape}"
        )


def mse(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Mean squared error of two ``(H, W)`` or ``(H, W, 3)`` images (values as given; callers clip to [0, 1])."""
    _check_pair(prediction, reference)
    difference = prediction.astype(np.float64) - reference.astype(np.float64)
    return float(np.mean(difference**2))


def gaussian_window_1d(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> np.ndarray:
    """Normalised 1-D Gaussian of radius ``int(truncate * sigma + 0.5)`` (scipy's ``gaussian_filter``)."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def _filter(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable valid filtering ``(H, W) -> (H - 2r, W - 2r)``: a weighted sum of shifted views per axis."""
    size = len(window)
    rows = image.shape[0] - size + 1
    image = sum(w * image[k : k + rows] for k, w in enumerate(window))
    cols = image.shape[1] - size + 1
    return sum(w * image[:, k : k + cols] for k, w in enumerate(window))


def ssim(prediction: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM of two ``(H, W)`` images, Gaussian-weighted, population covariance (EVREAL/skimage settings);
    of two ``(H, W, 3)`` images the mean over the channels.

    Both images must be at least 11x11 (the window).
    """
    _check_pair(prediction, reference)
    if prediction.ndim == 3:
        return float(np.mean([ssim(prediction[..., c], reference[..., c], data_range) for c in range(3)]))
    window = gaussian_window_1d()
    if min(prediction.shape) < len(window):
        raise EventDataError(
            f"SSIM needs images of at least {len(window)}x{len(window)} pixels, got {prediction.shape}"
        )
    x = np.asarray(prediction, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    return float(ssim_map(x, y, lambda image: _filter(image, window), data_range).mean())


def ssim_map(x, y, blur: Callable, data_range: float = 1.0):
    """The SSIM map of two images from their local moments under ``blur`` (the Gaussian window, valid
    filtering), population covariance. Arithmetic only, so ``x``, ``y`` may be numpy arrays
    (:func:`ssim`) or torch tensors (a differentiable loss: :func:`lase_e2v.training.fusion.ssim_loss`)."""
    mean_x, mean_y = blur(x), blur(y)
    var_x = blur(x * x) - mean_x**2
    var_y = blur(y * y) - mean_y**2
    cov_xy = blur(x * y) - mean_x * mean_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    return ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )


class Metric:
    """One metric over a sequence: per-frame ``values``, their ``mean`` (EVREAL's BaseMetric)."""

    #: key in result files and table columns
    name: str = "metric"
    #: True if a smaller value is better (for tables and plots)
    lower_is_better: bool = True

    def __init__(self) -> None:
        self.values: list[float] = []

    def reset(self) -> None:
        self.values = []

    def calculate(self, prediction: np.ndarray, reference: np.ndarray) -> float:
        raise NotImplementedError

    def update(self, prediction: np.ndarray, reference: np.ndarray) -> float:
        """Score one pair, keep the score if finite, and return it."""
        value = float(self.calculate(prediction, reference))
        if math.isfinite(value):
            self.values.append(value)
        return value

    def mean(self) -> float:
        """Mean of the kept scores; NaN when there are none (never a sentinel like EVREAL's -1)."""
        return float(np.mean(self.values)) if self.values else math.nan


class MseMetric(Metric):
    name = "mse"

    def calculate(self, prediction: np.ndarray, reference: np.ndarray) -> float:
        return mse(prediction, reference)


class SsimMetric(Metric):
    name = "ssim"
    lower_is_better = False

    def calculate(self, prediction: np.ndarray, reference: np.ndarray) -> float:
        return ssim(prediction, reference)


class LpipsMetric(Metric):
    """LPIPS with AlexNet (bundled) or VGG (``weights_path``); gray images go in as 3 equal channels,
    RGB images as they are."""

    name = "lpips"

    def __init__(
        self, net: str = "alex", weights_path: str | Path | None = None, device: str = "cpu"
    ) -> None:
        super().__init__()
        from lase_e2v.evaluation.lpips import load_lpips

        self.model = load_lpips(net, weights_path, device)
        self.device = device
        if net != "alex":
            self.name = f"lpips_{net}"

    @torch.no_grad()
    def calculate(self, prediction: np.ndarray, reference: np.ndarray) -> float:
        _check_pair(prediction, reference)

        def as_input(image: np.ndarray) -> torch.Tensor:
            tensor = torch.from_numpy(np.asarray(image, dtype=np.float32)).to(self.device)
            if image.ndim == 3:
                return (tensor * 2 - 1).permute(2, 0, 1)[None]
            return (tensor * 2 - 1).expand(1, 3, *image.shape)

        return float(self.model(as_input(prediction), as_input(reference))[0])


#: the metric names :func:`build_metrics` knows, in table order
METRIC_NAMES = ("mse", "ssim", "lpips")


def build_metrics(
    names: tuple[str, ...] | list[str] = METRIC_NAMES,
    lpips_net: str = "alex",
    lpips_weights: str | Path | None = None,
    device: str = "cpu",
) -> list[Metric]:
    """Fresh metric objects for ``names`` (any of :data:`METRIC_NAMES`)."""
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; known: {', '.join(METRIC_NAMES)}")
    metrics: list[Metric] = []
    for name in names:
        if name == "mse":
            metrics.append(MseMetric())
        elif name == "ssim":
            metrics.append(SsimMetric())
        else:
            metrics.append(LpipsMetric(lpips_net, lpips_weights, device))
    return metrics
