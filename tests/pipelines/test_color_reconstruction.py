"""Colour reconstruction (E2VID's approach around any method): its structure, and its frames against
the photos of simulated colour sequences (make-dataset --color)."""

from __future__ import annotations

import numpy as np
import pytest

import lase_e2v
from lase_e2v.errors import ConfigError
from lase_e2v.events.color import demosaic, split_events, to_luma
from lase_e2v.events.formats import open_events
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import FrameWindows, TimeWindows
from lase_e2v.pipelines.color import ColorReconstructionPipeline, load_color_method, replace_luminance
from lase_e2v.pipelines.registry import load_method


def random_events(sensor_size=(9, 14), n=2000, seed=0):
    rng = np.random.default_rng(seed)
    return EventStream(rng.integers(0, sensor_size[1], n), rng.integers(0, sensor_size[0], n),
                       np.sort(rng.integers(0, 40_000, n)), rng.choice([-1, 1], n), sensor_size)


def test_each_site_is_the_method_on_that_sites_events_then_demosaiced():
    events = random_events()
    windows = TimeWindows(10_000, t_start_us=0)
    colour = load_color_method("integrate", "BGGR")(events, windows)
    sites = [load_method("integrate")(site, windows).frames for site in split_events(events)]
    expected = np.stack([np.clip(demosaic([s[k] for s in sites], "BGGR", (9, 14)), 0, 1) for k in range(4)])
    assert colour.frames.shape == (4, 9, 14, 3)
    np.testing.assert_array_equal(colour.frames, expected)
    assert colour.timestamps_us.tolist() == [10_000, 20_000, 30_000, 40_000]


def test_full_luminance_takes_the_brightness_of_the_full_resolution_reconstruction():
    events = random_events()
    windows = TimeWindows(10_000, t_start_us=0)
    full = ColorReconstructionPipeline.from_factory(lambda: load_method("integrate"), "RGGB", luminance="full")
    frames = full(events, windows).frames
    gray = load_method("integrate")(events, windows).frames
    inside = (frames.max(axis=-1) < 1) & (frames.min(axis=-1) > 0)  # not clipped
    assert inside.mean() > 0.5
    np.testing.assert_allclose(to_luma(frames)[inside], gray[inside], atol=1e-5)


def test_replacing_the_luminance_keeps_the_chromaticity():
    rgb = np.array([[[0.2, 0.1, 0.05], [0.0, 0.0, 0.0]]], np.float32)
    out = replace_luminance(rgb, np.array([[0.5, 0.3]], np.float32))
    np.testing.assert_allclose(out[0, 0] / out[0, 0, 0], rgb[0, 0] / rgb[0, 0, 0], rtol=1e-6)
    assert to_luma(out[0, 0]) == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(out[0, 1], 0.3)  # black has no colour: it becomes gray


def test_one_pipeline_object_cannot_serve_four_sites():
    one = load_method("integrate")
    with pytest.raises(ConfigError, match="needs a separate pipeline per Bayer site"):
        ColorReconstructionPipeline.from_factory(lambda: one, "RGGB")
    with pytest.raises(ConfigError, match="luminance 'lab' unknown; use one of full, sites"):
        ColorReconstructionPipeline.from_factory(lambda: load_method("integrate"), "RGGB", luminance="lab")
    with pytest.raises(ConfigError, match="takes no option"):
        load_color_method("integrate", "RGGB", prompt="a cat")


def opponent_correlation(prediction: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Correlation over all pixels of the colour-opponent channels R - G and B - (R + G) / 2: 0 for a
    gray reconstruction (no colour), 1 for the reference's colours up to a gain."""

    def opponents(rgb):
        return np.stack([rgb[..., 0] - rgb[..., 1], rgb[..., 2] - (rgb[..., 0] + rgb[..., 1]) / 2], -1).reshape(-1, 2)

    a, b = opponents(prediction), opponents(reference)
    return tuple(float(np.corrcoef(a[:, k], b[:, k])[0, 1]) for k in range(2))


@pytest.mark.parametrize("sequence, least_correlation", [("seq_00000", 0.5), ("seq_00001", 0.45)])
def test_colour_events_of_photos_give_back_their_colours(color_dataset, sequence, least_correlation):
    """FireNet+ in colour on simulated Color-DAVIS events of COCO photos: the frames' colours follow
    the photos' (measured: opponent correlations 0.62 / 0.69 and 0.62 / 0.59), and their RGB error
    is below that of the same method in gray, which has the right brightness but no colour."""
    path = color_dataset / f"{sequence}.h5"
    reader = open_events(path)
    assert reader.color_filter == "RGGB"
    frames = reader.read_frames()
    assert frames.is_color and frames.images.shape == (46, 90, 120, 3)
    colour = lase_e2v.reconstruct(path, method="firenet_plus")
    gray = lase_e2v.reconstruct(path, method="firenet_plus", color=False)
    assert colour.frames.shape == (45, 90, 120, 3) and gray.frames.shape == (45, 90, 120)
    settled = slice(15, None)  # after 0.5 s, as the synthetic evaluation's warm-up
    targets = frames.as_float()[1:][settled]
    assert min(opponent_correlation(colour.frames[settled], targets)) > least_correlation
    colour_error = np.mean((colour.frames[settled] - targets) ** 2)
    gray_error = np.mean((np.repeat(gray.frames[settled][..., None], 3, -1) - targets) ** 2)
    assert colour_error < 0.95 * gray_error
