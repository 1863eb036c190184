"""The simulator's colour mode: RGB scenes from the photos, seen through a Bayer filter."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.events.color import mosaic, to_luma
from lase_e2v.events.representations import to_polarity_image
from lase_e2v.events.streams import concatenate
from lase_e2v.simulate.dataset import frame_times_us, simulate_scene
from lase_e2v.simulate.esim import EventSimulator, SimulatorConfig, lin_log
from lase_e2v.simulate.motion import Layer, LayerMotion, SmoothSignal, composite
from lase_e2v.simulate.scenes import load_photos, random_scene, srgb_to_linear

THRESHOLD = 0.2


@pytest.fixture(scope="module")
def photos(shared_dir):
    return load_photos(shared_dir / "data" / "coco_mini")


def test_rgb_photos_are_linearised_per_channel_and_gray_is_their_luma(photos):
    from PIL import Image

    photo = photos[0]
    with Image.open(photo.path) as image:
        encoded = np.asarray(image.convert("RGB"), np.float32) / 255
    np.testing.assert_allclose(photo.load_rgb(), srgb_to_linear(encoded), atol=1e-6)
    np.testing.assert_allclose(photo.load_gray(), to_luma(photo.load_rgb()), atol=1e-6)
    np.testing.assert_allclose(photo.load_rgb("srgb"), encoded)


def test_rgb_layers_composite_like_each_channel_alone():
    rng = np.random.default_rng(0)
    background, cutout = rng.random((30, 40, 3)).astype(np.float32), rng.random((10, 12, 3)).astype(np.float32)
    alpha = rng.random((10, 12)).astype(np.float32)
    still = LayerMotion(SmoothSignal(19.5), SmoothSignal(14.5), (19.5, 14.5))
    moving = LayerMotion(SmoothSignal(10.0, rate=30.0), SmoothSignal(12.0), (5.5, 4.5))
    t_s = np.array([0.0, 0.1, 0.2])
    colour = composite(Layer(background, still), [Layer(cutout, moving, alpha)], t_s, (24, 32))
    assert colour.shape == (3, 24, 32, 3)
    for channel in range(3):
        gray = composite(Layer(background[..., channel], still), [Layer(cutout[..., channel], moving, alpha)], t_s,
                         (24, 32))
        np.testing.assert_allclose(colour[..., channel], gray, atol=1e-6)


def test_each_pixels_events_follow_its_own_colour(photos):
    """Ideal sensor (exact thresholds, no noise): a pixel's net events times the threshold equal the
    change of the log intensity of *its* channel within one threshold, which luma does not match."""
    rng = np.random.default_rng(3)
    scene = random_scene(rng, photos[5], photos, (24, 32), 0.5, max_objects=0, color=True)
    simulator = EventSimulator(SimulatorConfig(threshold_on=THRESHOLD, threshold_off=THRESHOLD, threshold_sigma=0.0))
    t_us = frame_times_us(0.5, 30)
    chunks, frames = simulate_scene(scene, simulator, t_us, color_filter="GRBG")
    assert frames.images.shape == (len(t_us), 24, 32, 3) and frames.is_color
    events = concatenate(chunks)
    net = to_polarity_image(events.x, events.y, events.p, (24, 32)) * THRESHOLD
    radiance = scene.render(np.array([t_us[0], t_us[-1]]) / 1e6)[0]

    def log_change(images):
        return lin_log(images[1] * 255.0) - lin_log(images[0] * 255.0)

    own = np.abs(net - log_change(mosaic(radiance, "GRBG")))
    assert own.max() < THRESHOLD + 1e-6
    luma = np.abs(net - log_change(to_luma(radiance)))
    assert (luma > THRESHOLD).mean() > 0.05
    np.testing.assert_allclose(frames.images[-1] / 255.0, scene.render(np.array([t_us[-1] / 1e6]))[1][0], atol=0.5 / 255 + 1e-6)


def test_a_colour_scene_needs_a_pattern(photos):
    scene = random_scene(np.random.default_rng(0), photos[0], photos, (16, 16), 0.2, max_objects=0, color=True)
    with pytest.raises(ConfigError, match="a colour scene needs a color_filter"):
        simulate_scene(scene, EventSimulator(), frame_times_us(0.2, 30))
