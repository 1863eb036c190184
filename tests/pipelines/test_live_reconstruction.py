"""Live reconstruction: frame for frame the offline result of the same method and windows (from a
replayed file and from a DV network stream), a dropped connection or a stop keeps what was
written, and bad options fail before any work."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lase_e2v.api import reconstruct
from lase_e2v.demo import DEMO_CLIP
from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.hdf5 import write_hdf5
from lase_e2v.events.live import LiveSource, ReplaySource, serve
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import CountWindows, FrameWindows, TimeWindows
from lase_e2v.pipelines.registry import DEFAULT_LIVE_METHOD, load_method, method_names
from lase_e2v.pipelines.live import FrameViewer, check_live_output, run_live


def png_folder(path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(path.glob("frame_*.png"))]


@pytest.fixture(scope="module")
def offline_integrate():
    return reconstruct(DEMO_CLIP, "integrate", "ms:40")


def test_replayed_stream_equals_offline(offline_integrate, tmp_path):
    frames, records = [], []
    report = run_live(ReplaySource(open_events(DEMO_CLIP), speed=8.0), load_method("integrate"), TimeWindows(40_000),
                      output=tmp_path / "frames", on_frame=lambda window, image, record: frames.append(image))
    np.testing.assert_array_equal(np.stack(frames), offline_integrate.frames)
    stamps = [int(line.split()[1]) for line in (tmp_path / "frames" / "timestamps.txt").read_text().splitlines()]
    assert stamps == offline_integrate.timestamps_us.tolist()
    assert len(png_folder(tmp_path / "frames")) == report.num_frames == 29 and not report.stopped
    latencies = report.latencies_ms
    assert len(latencies) == 29 and np.all(latencies > 0) and np.all(latencies < 5_000)
    assert [r.t_end_us for r in report.records] == offline_integrate.timestamps_us.tolist()
    assert "latency median" in report.summary() and report.frames_per_second > 0


def test_stop_keeps_what_was_written(tmp_path):
    import imageio.v2 as imageio

    stop = threading.Event()

    def stop_after_five(window, image, record):
        if window.index == 4:
            stop.set()

    report = run_live(ReplaySource(open_events(DEMO_CLIP), speed=4.0), load_method("integrate"), TimeWindows(40_000),
                      output=tmp_path / "live.mp4", stop=stop, on_frame=stop_after_five)
    assert report.stopped and 5 <= report.num_frames <= 7  # the windows under way when stopped are finished
    with imageio.get_reader(tmp_path / "live.mp4") as video:
        assert video.count_frames() == report.num_frames
    assert [p.name for p in tmp_path.iterdir()] == ["live.mp4"]


def test_a_stream_without_events_leaves_nothing(tmp_path):
    class Silent(LiveSource):
        name = "silent"
        sensor_size = (4, 4)

        def _iter_raw(self, stop):
            return iter(())

    with pytest.raises(EventDataError, match="silent: the stream ended before the first window"):
        run_live(Silent(), load_method("integrate"), TimeWindows(40_000), output=tmp_path / "live.mp4")
    assert list(tmp_path.iterdir()) == []


def test_latency_counts_from_the_packet_that_completes_each_window(tmp_path):
    """Packets arrived 100 s, 99 s and 98 s ago: a window is complete with the first packet holding an
    event at or after its end, the last window with the end of the stream (now)."""

    class Arrived(LiveSource):
        name = "arrived"
        sensor_size = (2, 2)

        def _iter_raw(self, stop):
            now = time.perf_counter()
            t = [10_000, 30_000, 45_000, 50_000, 90_000]
            packets = [(30_000, now - 100), (50_000, now - 99), (90_000, now - 98)]
            yield EventStream([0] * 5, [0] * 5, t, [1] * 5, (2, 2)), packets

    report = run_live(Arrived(), load_method("integrate"), TimeWindows(40_000, t_start_us=0), tmp_path / "f.h5")
    latencies_s = report.latencies_ms / 1000
    assert [r.t_end_us for r in report.records] == [40_000, 80_000, 120_000]
    assert 99 <= latencies_s[0] < 100 and 98 <= latencies_s[1] < 99 and latencies_s[2] < 1


def test_a_replayed_recording_passes_its_caption_like_the_offline_path(tmp_path):
    """LaSe-E2V (bundled, 1 step, 1 sample) on a captioned recording: the live frames are the offline
    ones, which use the caption as the prompt (without it they differ)."""
    rng = np.random.default_rng(0)
    n, size = 3000, (32, 40)
    events = EventStream(rng.integers(0, size[1], n), rng.integers(0, size[0], n),
                         np.sort(rng.integers(0, 50_000, n)), rng.choice([-1, 1], n), size)
    path = tmp_path / "captioned.h5"
    write_hdf5(path, events, attrs={"caption": "a red car on a street at night"})
    windows = TimeWindows(10_000, t_start_us=0)
    pipeline = load_method("lase", num_inference_steps=1, num_samples=1)
    offline = pipeline(open_events(path), windows).frames
    source = ReplaySource(open_events(path), speed=50.0)
    assert source.caption == "a red car on a street at night"
    live = []
    run_live(source, pipeline, windows, tmp_path / "live.h5",
             on_frame=lambda window, image, record: live.append(image))
    np.testing.assert_array_equal(np.stack(live), offline)
    pipeline.reset()
    captionless = [f.image for f in pipeline.iter_frames(windows.iter_windows(open_events(path).iter_chunks()))]
    assert not np.array_equal(np.stack(captionless), offline)


def test_options_are_checked_first(tmp_path):
    with pytest.raises(ConfigError, match="nothing to do"):
        check_live_output(None, show=False)
    with pytest.raises(ConfigError, match="unknown output type '.gif'"):
        check_live_output(tmp_path / "out.gif", show=False)
    with pytest.raises(ConfigError, match="--show needs a display"):  # the test machines are headless
        check_live_output(tmp_path / "out.mp4", show=True)
    with pytest.raises(ConfigError, match="ms:T or events:N"):
        run_live(ReplaySource(open_events(DEMO_CLIP)), load_method("integrate"), FrameWindows((0, 1)), tmp_path / "o.mp4")
    assert list(tmp_path.iterdir()) == []


def test_viewer_shows_the_newest_frame():
    """The window update on matplotlib's headless backend: the image drawn is the last frame given."""
    viewer = FrameViewer("test")
    first, second = np.zeros((3, 4), np.float32), np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    viewer.show(first)
    viewer.show(second)
    np.testing.assert_array_equal(viewer._image.get_array(), second)
    viewer.close()


def test_count_windows_live(tmp_path):
    import h5py

    offline = reconstruct(DEMO_CLIP, "integrate", "events:20000")
    report = run_live(ReplaySource(open_events(DEMO_CLIP), speed=8.0), load_method("integrate"), CountWindows(20_000),
                      output=tmp_path / "frames.h5")
    assert [r.t_end_us for r in report.records] == offline.timestamps_us.tolist()
    with h5py.File(tmp_path / "frames.h5") as written:
        images = [written["images"][name][()] for name in sorted(written["images"])]
    expected = (np.clip(offline.frames, 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(np.stack(images), expected)


# -- over a DV network stream, through the command line ----------------------------------------


def test_live_network_stream_equals_offline_frame_for_frame(run_cli, tmp_path, free_port):
    """A NetworkWriter on 127.0.0.1 replays the slider_depth clip; `live` with FireNet writes the PNGs
    `reconstruct` writes from the file with the same method and windows, byte for byte."""
    code, _, _ = run_cli("reconstruct", DEMO_CLIP, "-o", tmp_path / "offline", "--method", "firenet",
                     "--window", "ms:40")
    assert code == 0
    port = free_port
    server = serve(DEMO_CLIP, port=port, speed=1.0)
    try:
        code, out, err = run_cli("live", f"127.0.0.1:{port}", "-o", tmp_path / "live", "--method", "firenet",
                             "--window", "ms:40")
    finally:
        server.stop()
    assert code == 0, err
    assert "stream ended: wrote 29 frames (firenet)" in out and "latency median" in out
    assert png_folder(tmp_path / "live") == png_folder(tmp_path / "offline") and len(png_folder(tmp_path / "live")) == 29
    assert (tmp_path / "live" / "timestamps.txt").read_text() == (tmp_path / "offline" / "timestamps.txt").read_text()


def test_dropped_connection_ends_cleanly_and_keeps_the_frames(run_cli, tmp_path, free_port):
    offline = reconstruct(DEMO_CLIP, "integrate", "ms:40")
    port = free_port
    server = serve(DEMO_CLIP, port=port, speed=0.5)

    def drop_midway() -> None:
        while server.started_s is None:
            time.sleep(0.01)
        time.sleep(1.0)  # 0.5 s of the 1.2 s clip at half speed
        server.stop()

    dropper = threading.Thread(target=drop_midway)
    dropper.start()
    code, out, err = run_cli("live", f"127.0.0.1:{port}", "-o", tmp_path / "live", "--method", "integrate")
    dropper.join()
    assert code == 0, err
    kept = png_folder(tmp_path / "live")
    assert 5 <= len(kept) <= 20 and f"wrote {len(kept)} frames" in out
    from PIL import Image

    for index in range(len(kept) - 1):  # the last window was cut short by the drop
        image = np.asarray(Image.open(tmp_path / "live" / f"frame_{index:06d}.png"))
        np.testing.assert_array_equal(image, (np.clip(offline.frames[index], 0, 1) * 255 + 0.5).astype(np.uint8))


def test_live_cli_errors(cli_error, tmp_path, free_port):
    line = cli_error("live", f"127.0.0.1:{free_port}", "-o", tmp_path / "o.mp4")
    assert "cannot connect" in line
    assert "ms:T or events:N" in cli_error("live", DEMO_CLIP, "-o", tmp_path / "o.mp4", "--window", "frames")
    assert "unknown output type" in cli_error("live", DEMO_CLIP, "-o", tmp_path / "o.gif")
    assert "nothing to do" in cli_error("live", DEMO_CLIP)
    assert "needs a display" in cli_error("live", DEMO_CLIP, "--show")
    line = cli_error("live", DEMO_CLIP, "-o", tmp_path / "o.mp4", "--method", "firenet2")
    assert "unknown method 'firenet2'" in line and ", ".join(method_names()) in line
    assert list(tmp_path.iterdir()) == []


def test_live_help_lists_the_registered_methods(run_cli):
    code, out, _ = run_cli("live", "--help")
    flat = " ".join(out.split())
    assert code == 0 and all(name in flat for name in method_names())
    assert f"default: {DEFAULT_LIVE_METHOD}" in flat


def test_live_overwrite_replaces_an_existing_output(run_cli, tmp_path):
    """(An existing output without --overwrite is refused before any work: tests/test_cli_checks.py.)"""
    import h5py

    existing = tmp_path / "live.h5"
    existing.write_bytes(b"old")
    code, out, err = run_cli("live", DEMO_CLIP, "-o", existing, "--method", "integrate", "--speed", "8",
                             "--overwrite")
    assert code == 0 and "wrote 29 frames (integrate)" in out, err
    with h5py.File(existing) as written:
        assert written.attrs["num_imgs"] == 29
