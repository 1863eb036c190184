"""Live sources: the real-time replay paces chunks by their timestamps, the DV network source gets
every event a dv-processing NetworkWriter sends, and bad sources give one clear error."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lase_e2v.demo import DEMO_CLIP
from lase_e2v.errors import ConfigError, EventDataError, EventFormatError
from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.hdf5 import write_hdf5
from lase_e2v.events.live import DvSource, ReplaySource, open_live, parse_address, serve
from lase_e2v.events.streams import EventStream, concatenate


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory):
    """200 ms of events: 20 ms bursts of 3 events, so the pace of a replay is easy to check."""
    t = np.concatenate([np.array([0, 5_000, 19_999]) + 20_000 * k for k in range(10)]) + 1_000_000
    path = tmp_path_factory.mktemp("live") / "bursts.h5"
    write_hdf5(path, EventStream(t % 7, t % 5, t, np.where(t % 2, 1, -1), (5, 7)))
    return path


def test_replay_releases_packets_when_due(short_recording):
    source = ReplaySource(open_events(short_recording), speed=2.0, packet_us=20_000)
    started = time.perf_counter()
    arrivals = [(time.perf_counter() - started, chunk) for chunk in source.iter_chunks()]
    assert [len(chunk) for _, chunk in arrivals] == [3] * 10
    for k, (elapsed, chunk) in enumerate(arrivals):
        assert int(chunk.t[0]) == 1_000_000 + 20_000 * k
        assert elapsed >= (k + 1) * 0.010 - 0.002  # packet k is due when its 20 ms have passed at 2x
    assert arrivals[-1][0] < 0.5


def test_replay_stops_when_asked(short_recording):
    stop = threading.Event()
    chunks = []
    for chunk in ReplaySource(open_events(short_recording), packet_us=20_000).iter_chunks(stop):
        chunks.append(chunk)
        stop.set()
    assert len(chunks) == 1


def test_replay_bad_options(short_recording):
    with pytest.raises(ConfigError, match="speed"):
        ReplaySource(open_events(short_recording), speed=0)


@pytest.mark.parametrize(
    "text, expected",
    [("127.0.0.1:7777", ("127.0.0.1", 7777)), ("localhost:1", ("localhost", 1)), ("[::1]:7777", ("::1", 7777)),
     ("recording.h5", None), ("camera", None)],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


def test_open_live_errors(tmp_path, free_port):
    with pytest.raises(ConfigError, match="port must be"):
        open_live("127.0.0.1:70000")
    with pytest.raises(EventFormatError, match="neither HOST:PORT, camera"):
        open_live(str(tmp_path / "missing.h5"))
    with pytest.raises(EventFormatError, match=r"^'no\\nsuch\\x1b': neither HOST:PORT"):  # quoted, escaped
        open_live("no\nsuch\x1b")
    with pytest.raises(EventFormatError, match=r"127.0.0.1:\d+: cannot connect \(connect: Connection refused\)"):
        open_live(f"127.0.0.1:{free_port}")
    with pytest.raises(EventFormatError, match="finds no camera"):  # no camera on the test machines
        open_live("camera")


def test_open_live_replays_a_recording(short_recording):
    source = open_live(str(short_recording), speed=100.0)
    assert isinstance(source, ReplaySource) and source.sensor_size == (5, 7)
    assert sum(len(c) for c in source.iter_chunks()) == 30


def test_network_source_gets_every_event_even_when_slow(free_port):
    """A NetworkWriter (in a child process) replays the bundled slider_depth clip; the client is slow
    (sleeps after each chunk), yet it gets every event, in order, and its stream ends with the server's."""
    expected = open_events(DEMO_CLIP).read()
    port = free_port
    server = serve(DEMO_CLIP, port=port, speed=2.0)
    try:
        with DvSource.network("127.0.0.1", port) as source:
            assert source.sensor_size == (180, 240) and source.name == f"127.0.0.1:{port}"
            chunks = []
            for chunk in source.iter_chunks():
                chunks.append(chunk)
                time.sleep(0.05)
        assert server.wait(timeout_s=5) and server.started_s is not None
    finally:
        server.stop()
    received = concatenate(chunks)
    for column in "txyp":
        np.testing.assert_array_equal(getattr(received, column), getattr(expected, column))
    assert 1 < len(chunks) < 40  # a slow consumer gets what waited as one chunk


def test_serving_on_a_taken_port_fails_clearly(short_recording, free_port):
    port = free_port
    first = serve(short_recording, port=port)
    try:
        with pytest.raises(EventFormatError, match=f"127.0.0.1:{port}: the replay server stopped"):
            serve(short_recording, port=port)
    finally:
        first.stop()


def test_unsorted_live_events_are_refused():
    from lase_e2v.events.live import LiveSource

    class Backwards(LiveSource):
        name = "backwards"
        sensor_size = (2, 2)

        def _iter_raw(self, stop):
            yield EventStream([0], [0], [10], [1], (2, 2)), [(10, 0.0)]
            yield EventStream([0], [0], [5], [1], (2, 2)), [(5, 0.0)]

    with pytest.raises(EventDataError, match="backwards: timestamps decrease at event 1"):
        list(Backwards().iter_chunks())


def test_serve_command_replays_to_a_client_and_ends(free_port, cli_error):
    import subprocess
    import sys

    command = [sys.executable, "-m", "lase_e2v.cli", "serve", str(DEMO_CLIP), "--port", str(free_port), "--speed", "4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "the replay starts when a client connects" in process.stderr.readline()
        with DvSource.network("127.0.0.1", free_port) as source:
            count = sum(len(chunk) for chunk in source.iter_chunks())
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert count == len(open_events(DEMO_CLIP).read())
    assert process.returncode == 0 and f"sent {DEMO_CLIP} to 127.0.0.1:{free_port}" in out and "Traceback" not in err
    assert "missing.h5: no such file" in cli_error("serve", "missing.h5")
