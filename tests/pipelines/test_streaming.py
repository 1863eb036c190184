"""Frames stream from the reconstruction to the file: memory does not grow with the number of frames.

Each test makes far more frame bytes than its memory budget (``tracemalloc``: numpy reports its
buffers) and checks that the peak stays within the budget, and what was written, frame by frame.
"""

from __future__ import annotations

import platform
import tracemalloc

import h5py
import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

import lase_e2v
from lase_e2v.errors import EventFormatError
from lase_e2v.events.formats import open_events, write_events
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import CountWindows, FrameWindows, TimeWindows
from lase_e2v.heap import malloc_trim
from lase_e2v.pipelines.output import RATE_SAMPLE_FRAMES, WrittenReconstruction, playback_fps
from lase_e2v.pipelines.writers import (
    METADATA_CACHE_BYTES,
    HeapTrimmer,
    limit_metadata_cache,
    read_frames_metadata,
    real_time_fps,
    to_uint8,
    write_frame_stream,
)

FRAME_SHAPE = (48, 64)


def peak_bytes(function) -> tuple[object, int]:
    """``function()`` and the peak of memory it allocated (Python objects and numpy buffers)."""
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def read_hdf5_frames(path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as file:
        names = sorted(file["images"])
        return (np.stack([file["images"][n][()] for n in names]),
                np.array([file["images"][n].attrs["t_us"] for n in names]))


@pytest.mark.parametrize("name", ["video.mp4", "frames.h5", "frames"])
def test_writers_hold_one_frame_at_a_time(tmp_path, name):
    count, frame_bytes = 1500, FRAME_SHAPE[0] * FRAME_SHAPE[1] * 4  # 18 MB of frames if they were kept
    made = []

    def frames():
        for k in range(count):
            made.append(k)
            yield np.full(FRAME_SHAPE, (k % 256) / 255, np.float32), 1000 * k

    out = tmp_path / name
    written, peak = peak_bytes(lambda: write_frame_stream(out, frames(), fps=25, metadata={"method": "test"}))
    assert written == count == len(made)
    assert peak < count * frame_bytes / 10
    assert read_frames_metadata(out) == {"method": "test"}
    expected = np.arange(count) % 256
    if name == "frames.h5":
        images, t_us = read_hdf5_frames(out)
        assert np.array_equal(images[:, 0, 0], expected) and np.array_equal(t_us, 1000 * np.arange(count))
    elif name == "frames":
        assert np.asarray(Image.open(out / "frame_001499.png"))[0, 0] == expected[-1]
        lines = (out / "timestamps.txt").read_text().splitlines()
        assert len(lines) == count and lines[-1] == f"{count - 1} {1000 * (count - 1)}"
    else:
        with imageio.get_reader(out) as video:
            assert video.count_frames() == count


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """48x64 sensor, 1 s of events cut into 1000 windows of 1 ms: 12 MB of float32 frames."""
    rng = np.random.default_rng(0)
    n = 8000
    events = EventStream(rng.integers(0, FRAME_SHAPE[1], n), rng.integers(0, FRAME_SHAPE[0], n),
                         np.sort(rng.integers(0, 1_000_000, n)), rng.choice([-1, 1], n), FRAME_SHAPE)
    path = tmp_path_factory.mktemp("long") / "long.h5"
    write_events(path, events)
    return path


def test_reconstruct_to_a_file_streams(long_recording, tmp_path):
    options = {"method": "integrate", "window": "ms:1"}
    lase_e2v.reconstruct(long_recording, **options, output=tmp_path / "warm.h5")  # imports, caches
    out = tmp_path / "frames.h5"
    streamed, streamed_peak = peak_bytes(lambda: lase_e2v.reconstruct(long_recording, **options, output=out))
    in_memory, in_memory_peak = peak_bytes(lambda: lase_e2v.reconstruct(long_recording, **options))
    frame_bytes = in_memory.frames[0].nbytes * len(in_memory.frames)
    assert len(in_memory.frames) == 1000 and in_memory_peak > frame_bytes  # what the budget would not hold
    assert streamed_peak < frame_bytes / 5
    assert streamed == WrittenReconstruction(out, 1000, None, 1000.0)
    images, t_us = read_hdf5_frames(out)
    assert np.array_equal(images, to_uint8(in_memory.frames))
    assert np.array_equal(t_us, in_memory.timestamps_us)
    assert read_frames_metadata(out) == {"method": "integrate", "caption_source": "stored"}


def test_an_empty_recording_writes_nothing(tmp_path):
    path = tmp_path / "empty.h5"
    write_events(path, EventStream.empty((8, 8)))
    with pytest.raises(lase_e2v.errors.EventDataError, match="no windows"):
        lase_e2v.reconstruct(path, method="integrate", window="ms:1", output=tmp_path / "out.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.h5"]


def test_playback_fps_is_known_before_the_first_frame():
    assert playback_fps(TimeWindows(40_000)) == 25.0
    assert playback_fps(FrameWindows((0, 1_000, 50_000, 100_000, 150_000))) == 20.0  # median of the frames' intervals
    assert playback_fps(CountWindows(1000)) == 25.0


def spoil_images(path, layout: str) -> None:
    """Make the APS images of a recording unreadable, keeping their timestamps (and the first image,
    whose size is the sensor's in an ECD folder)."""
    if layout == "text":
        for image in sorted((path.parent / "images").iterdir())[1:]:
            image.write_bytes(b"not a png")
    elif layout == "evreal":
        (path / "images.npy").write_bytes(b"not an npy file")
    else:  # images of different sizes do not stack
        with h5py.File(path, "a") as file:
            for k, name in enumerate(sorted(file["images"])):
                attrs = dict(file["images"][name].attrs)
                del file["images"][name]
                file["images"].create_dataset(name, data=np.zeros(k + 1, np.uint8)).attrs.update(attrs)


@pytest.mark.parametrize("layout", ["text", "evreal", "hdf5"])
def test_frame_windows_read_only_the_frame_times(synthetic_sequence, tmp_path, layout):
    """With its APS images spoilt, a recording still reconstructs between its frames."""
    frames = open_events(synthetic_sequence).read_frames()
    path = {"text": tmp_path / "ecd" / "events.txt", "evreal": tmp_path / "evreal", "hdf5": tmp_path / "rec.h5"}[layout]
    lase_e2v.convert(synthetic_sequence, path, progress=False)
    spoil_images(path, layout)
    reader = open_events(path)
    with pytest.raises((EventFormatError, ValueError, OSError)):
        reader.read_frames()
    assert np.array_equal(reader.read_frame_times(), frames.t_us)
    out = lase_e2v.reconstruct(path, method="integrate", output=tmp_path / "video.mp4")
    assert out.num_frames == len(frames.t_us) - 1 and out.fps == 100.0  # APS frames 10 ms apart


def test_the_heap_is_trimmed_at_most_once_per_interval():
    calls = []
    every_call, never = HeapTrimmer(0.0, trim=calls.append), HeapTrimmer(3600.0, trim=calls.append)
    for _ in range(3):
        every_call()
        never()
    assert calls == [0, 0, 0]
    if platform.libc_ver()[0] == "glibc":  # where the fragmentation was measured
        assert malloc_trim() is not None


def test_the_frames_file_keeps_a_small_metadata_cache(tmp_path):
    with h5py.File(tmp_path / "frames.h5", "w") as file:
        assert file.id.get_mdc_config().max_size > METADATA_CACHE_BYTES  # HDF5's default: 32 MiB
        limit_metadata_cache(file)
        assert file.id.get_mdc_config().max_size == METADATA_CACHE_BYTES


def test_a_video_of_event_count_windows_plays_at_the_rate_of_its_first_frames(long_recording, tmp_path):
    """Windows of N events have no fixed rate: the video's comes from the first frames' times, which
    for a steady event rate is the whole recording's."""
    options = {"method": "integrate", "window": "events:100"}
    in_memory = lase_e2v.reconstruct(long_recording, **options)
    out = lase_e2v.reconstruct(long_recording, **options, output=tmp_path / "video.mp4")
    assert out.num_frames == len(in_memory.frames) == 80
    assert out.fps == pytest.approx(real_time_fps(in_memory.timestamps_us[:RATE_SAMPLE_FRAMES]))
    assert out.fps == pytest.approx(in_memory.frames_per_second, rel=0.1)


@pytest.mark.parametrize("name", ["video.mp4", "frames.h5", "frames"])
def test_a_stream_stopped_midway_leaves_no_output(tmp_path, name):
    """Ctrl-C after some frames are written: no half-written output, an earlier one left as it was."""
    earlier = tmp_path / "earlier" / name
    write_frame_stream(earlier, ((np.zeros(FRAME_SHAPE, np.float32), k) for k in range(3)), fps=25)

    def stopped():
        for k in range(5):
            yield np.full(FRAME_SHAPE, 0.5, np.float32), 1000 * k
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_frame_stream(tmp_path / name, stopped(), fps=25)
    assert [p.name for p in tmp_path.iterdir()] == ["earlier"]
    before = sorted(p.name for p in earlier.parent.rglob("*"))
    with pytest.raises(KeyboardInterrupt):
        write_frame_stream(earlier, stopped(), fps=25)
    assert sorted(p.name for p in earlier.parent.rglob("*")) == before
    if name == "frames.h5":
        assert read_hdf5_frames(earlier)[0].shape[0] == 3
