"""Video files and image folders through the simulator, into event files."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from lase_e2v.errors import ConfigError, EventFormatError
from lase_e2v.events.formats.hdf5 import Hdf5Reader
from lase_e2v.simulate.esim import EventSimulator, SimulatorConfig
from lase_e2v.simulate.video import read_video_events, simulate_video

EXACT = SimulatorConfig(threshold_sigma=0.0)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """6 frames 16x16 uint8: a brightening gradient."""
    ramp = np.exp(np.linspace(0, 1.2, 6))[:, None, None] * np.linspace(30, 90, 16)[None, None, :]
    return np.broadcast_to(ramp, (6, 16, 16)).round().astype(np.uint8)


def test_video_file_gives_the_events_of_its_decoded_frames(tmp_path, frames):
    path = tmp_path / "ramp.mp4"
    iio.imwrite(path, np.repeat(frames[..., None], 3, axis=-1), fps=10, codec="libx264", macro_block_size=1)
    decoded = iio.imread(path)
    expected = EventSimulator(EXACT, seed=0).simulate(decoded, np.arange(len(decoded)) * 100_000)
    events = read_video_events(path, EXACT, seed=0)  # fps 10 from the file
    assert len(events) > 0
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(getattr(events, name), getattr(expected, name))


def test_image_folder_to_hdf5_file(tmp_path, frames):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, frame in enumerate(frames):
        iio.imwrite(folder / f"{i:03d}.png", frame)
    with pytest.raises(ConfigError, match="fps"):
        read_video_events(folder)
    count = simulate_video(folder, tmp_path / "events.h5", fps=50, threshold=0.2, threshold_sigma=0.0, progress=False)
    expected = EventSimulator(EXACT, seed=0).simulate(frames, np.arange(6) * 20_000)
    written = Hdf5Reader(tmp_path / "events.h5").read()
    assert count == len(expected) == len(written) > 0
    np.testing.assert_array_equal(written.t, expected.t)
    np.testing.assert_array_equal(written.p, expected.p)
    # a larger threshold gives fewer events
    assert simulate_video(folder, tmp_path / "fewer.h5", fps=50, threshold=0.4, progress=False) < count


def test_missing_source(tmp_path):
    with pytest.raises(EventFormatError, match="no such"):
        read_video_events(tmp_path / "none.mp4", fps=30)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EventFormatError, match="no images"):
        read_video_events(tmp_path / "empty", fps=30)
