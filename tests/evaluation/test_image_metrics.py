"""MSE and SSIM against closed forms and values pinned from scikit-image 0.26.

scikit-image was installed only for a one-off scratch run; it is not a dependency.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.evaluation.metrics import (
    Metric,
    MseMetric,
    SsimMetric,
    build_metrics,
    clip_unit,
    gaussian_window_1d,
    mse,
    ssim,
)

# skimage.metrics.structural_similarity(ref, pred, gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False, data_range=1.0), skimage 0.26.0, float32 inputs
SKIMAGE_SSIM_TEXTURE = 0.6457935037349167
SKIMAGE_SSIM_SLIDER_30_31 = 0.6431532333816352
SKIMAGE_SSIM_SLIDER_30_GRAY = 0.3487729775538075
SKIMAGE_MSE_SLIDER_30_GRAY = 0.10284734002071008


def texture_pair() -> tuple[np.ndarray, np.ndarray]:
    """A smooth 48x64 pattern and a dimmed, noisy copy (the pair the pinned skimage value is for)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    reference = (0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float32)
    prediction = np.clip(0.8 * reference + 0.1 + 0.05 * rng.standard_normal(reference.shape), 0, 1).astype(
        np.float32
    )
    return prediction, reference


def slider_frame(slider_depth_dir, index: int) -> np.ndarray:
    path = slider_depth_dir / "images" / f"frame_{index:08d}.png"
    return np.asarray(Image.open(path), np.float32) / 255.0


def test_identical_images_score_perfectly():
    image = texture_pair()[1]
    assert mse(image, image) == 0.0
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_constant_images_has_the_closed_form():
    # zero variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1) everywhere
    a, b = 0.25, 0.75
    expected = (2 * a * b + 0.01**2) / (a * a + b * b + 0.01**2)
    assert ssim(np.full((20, 30), a), np.full((20, 30), b)) == pytest.approx(expected, abs=1e-12)


def test_ssim_matches_skimage_on_a_textured_pair():
    prediction, reference = texture_pair()
    assert ssim(prediction, reference) == pytest.approx(SKIMAGE_SSIM_TEXTURE, abs=1e-6)
    assert ssim(reference, prediction) == pytest.approx(SKIMAGE_SSIM_TEXTURE, abs=1e-6)


def test_ssim_and_mse_match_skimage_on_real_frames(slider_depth_dir):
    frame_30, frame_31 = slider_frame(slider_depth_dir, 30), slider_frame(slider_depth_dir, 31)
    gray = np.full_like(frame_30, 0.5)
    assert ssim(frame_31, frame_30) == pytest.approx(SKIMAGE_SSIM_SLIDER_30_31, abs=1e-6)
    assert ssim(gray, frame_30) == pytest.approx(SKIMAGE_SSIM_SLIDER_30_GRAY, abs=1e-6)
    assert mse(gray, frame_30) == pytest.approx(
        SKIMAGE_MSE_SLIDER_30_GRAY, abs=1e-8
    )  # skimage sums in float32


def test_gaussian_window_is_skimages_11_taps():
    window = gaussian_window_1d()
    assert len(window) == 11
    assert window.sum() == pytest.approx(1.0)
    assert window[5] / window[4] == pytest.approx(math.exp(0.5 / 1.5**2))


def test_clip_unit_clips_and_does_not_modify_input():
    image = np.array([[-0.5, 0.25, 1.5]])
    clipped = clip_unit(image)
    np.testing.assert_array_equal(clipped, [[0.0, 0.25, 1.0]])
    assert clipped.dtype == np.float32
    assert image[0, 0] == -0.5


def test_mse_known_value():
    assert mse(np.zeros((2, 2)), np.full((2, 2), 0.5)) == pytest.approx(0.25)


def test_bad_pairs_raise():
    with pytest.raises(EventDataError, match="one shape"):
        mse(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(EventDataError, match="at least 11x11"):
        ssim(np.zeros((8, 40)), np.zeros((8, 40)))


def test_metric_objects_keep_per_frame_values_and_drop_non_finite():
    metric = MseMetric()
    assert math.isnan(metric.mean())
    metric.update(np.zeros((2, 2)), np.ones((2, 2)))
    metric.update(np.zeros((2, 2)), np.zeros((2, 2)))
    metric.update(np.full((2, 2), np.nan), np.zeros((2, 2)))
    assert metric.values == [1.0, 0.0]
    assert metric.mean() == 0.5
    metric.reset()
    assert metric.values == []
    assert SsimMetric.lower_is_better is False and Metric.lower_is_better is True


def test_build_metrics_rejects_unknown_names():
    assert [m.name for m in build_metrics(("mse", "ssim"))] == ["mse", "ssim"]
    with pytest.raises(ConfigError, match="psnr"):
        build_metrics(("mse", "psnr"))
