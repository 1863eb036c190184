"""Bayer colour filters: splitting events by site, demosaicing, mosaicing, choosing the pattern."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.events.color import (
    as_gray,
    check_pattern,
    demosaic,
    mosaic,
    resolve_color_filter,
    site_channels,
    split_events,
    sub_sensor_size,
    to_luma,
    upsample_site,
)
from lase_e2v.events.streams import EventStream


def test_patterns_name_the_sites_row_by_row():
    assert site_channels("RGGB") == (0, 1, 1, 2)
    assert site_channels("gbrg") == (1, 2, 0, 1)
    assert check_pattern("bggr") == "BGGR"
    with pytest.raises(ConfigError, match="Bayer pattern 'RGBW' unknown; use one of RGGB, BGGR, GRBG, GBRG"):
        check_pattern("RGBW")


def test_events_split_by_site_onto_the_half_resolution_sensor():
    #          site:   (0,0)   (0,1)   (1,0)   (1,1)   (0,0)  (1,1) on a 5x7 sensor
    x = np.array([0, 1, 2, 3, 4, 5])
    y = np.array([0, 0, 1, 1, 2, 3])
    events = EventStream(x, y, np.arange(6) * 10, [1, -1, 1, -1, 1, 1], (5, 7))
    sites = split_events(events)
    assert sub_sensor_size((5, 7)) == (3, 4) and all(s.sensor_size == (3, 4) for s in sites)
    assert [len(s) for s in sites] == [2, 1, 1, 2]
    assert sites[0].x.tolist() == [0, 2] and sites[0].y.tolist() == [0, 1] and sites[0].t.tolist() == [0, 40]
    assert (sites[1].x.tolist(), sites[1].y.tolist(), sites[1].p.tolist()) == ([0], [0], [-1])
    assert (sites[2].x.tolist(), sites[2].y.tolist()) == ([1], [0])
    assert sites[3].x.tolist() == [1, 2] and sites[3].y.tolist() == [0, 1] and sites[3].t.tolist() == [30, 50]
    assert sum(len(s) for s in split_events(events[:0])) == 0


def test_demosaic_reproduces_linear_images_between_the_samples():
    size = (10, 12)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    rgb = np.stack([0.01 * yy + 0.02 * xx, 0.5 - 0.02 * yy + 0.01 * xx, 0.1 + 0.03 * yy], axis=-1)
    raw = mosaic(rgb, "GRBG")
    assert raw[0, 0] == rgb[0, 0, 1] and raw[0, 1] == rgb[0, 1, 0] and raw[1, 0] == rgb[1, 0, 2]
    sites = [raw[dy::2, dx::2] for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
    out = demosaic(sites, "GRBG", size)
    # exact wherever every site has samples on both sides (the border holds the outermost value)
    np.testing.assert_allclose(out[1:-1, 1:-1], rgb[1:-1, 1:-1], atol=1e-6)
    constant = demosaic([np.full((5, 6), v) for v in (0.2, 0.4, 0.6, 0.8)], "RGGB", size)
    np.testing.assert_allclose(constant, np.broadcast_to([0.2, 0.5, 0.8], (*size, 3)), atol=1e-7)


def test_a_site_is_interpolated_from_its_own_pixel_positions():
    image = np.array([[0.0, 1.0], [2.0, 3.0]])  # samples at pixels (1, 0), (1, 2), (3, 0), (3, 2)
    up = upsample_site(image, (1, 0), (4, 4))
    assert up[1].tolist() == [0.0, 0.5, 1.0, 1.0] and up[2].tolist() == [1.0, 1.5, 2.0, 2.0]
    assert up[0].tolist() == up[1].tolist()  # held above the first sample row


def test_mosaic_works_on_stacks_of_frames():
    frames = np.random.default_rng(0).random((3, 4, 6, 3))
    raw = mosaic(frames, "BGGR")
    assert raw.shape == (3, 4, 6)
    assert np.array_equal(raw[:, 1::2, 1::2], frames[:, 1::2, 1::2, 0])  # R at (1, 1)
    assert np.array_equal(raw[:, ::2, ::2], frames[:, ::2, ::2, 2])


@pytest.mark.parametrize(
    "stated, color, bayer, expected",
    [
        (None, None, None, None),  # a gray file stays gray
        ("GBRG", None, None, "GBRG"),  # a colour file is colour, in its pattern
        (None, True, None, "RGGB"),  # --color on a file that does not say: E2VID's pattern
        ("GBRG", True, "bggr", "BGGR"),  # --bayer overrides the file
        (None, None, "GRBG", "GRBG"),  # --bayer alone means colour
        ("GBRG", False, None, None),  # --no-color
    ],
)
def test_the_pattern_comes_from_the_options_then_the_file(stated, color, bayer, expected):
    assert resolve_color_filter(stated, color, bayer) == expected


def test_a_pattern_with_no_color_is_refused():
    with pytest.raises(ConfigError, match=r"Bayer pattern was given with gray reconstruction \(--no-color\)"):
        resolve_color_filter(None, False, "RGGB")


def test_luma_is_bt601_and_gray_stays():
    assert to_luma(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.299)
    gray = np.full((2, 3), 0.25)
    assert as_gray(gray) is gray
    np.testing.assert_allclose(as_gray(np.full((2, 3, 3), 0.5)), np.full((2, 3), 0.5))


def test_a_file_with_a_bad_pattern_is_named(tmp_path):
    from lase_e2v.errors import EventFormatError
    from lase_e2v.events.formats import open_events
    from lase_e2v.events.formats.hdf5 import write_hdf5

    path = tmp_path / "odd.h5"
    write_hdf5(path, EventStream([0], [0], [0], [1], (4, 4)), attrs={"color_filter": "RGBW"})
    with pytest.raises(EventFormatError, match=r"odd.h5: color_filter 'RGBW' is not a Bayer pattern"):
        open_events(path).color_filter
