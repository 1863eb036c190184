"""Event streams that arrive while they are recorded, and a server that replays a file as one.

A :class:`LiveSource` yields validated :class:`~lase_e2v.events.streams.EventStream` chunks like a
reader, but each chunk is what arrived since the previous one; the iteration ends when the stream
ends (the server closes or drops the connection, the camera stops, the replay is over) or when the
caller sets ``stop``.

* :class:`DvSource` reads through ``dv-processing`` (iniVation, Apache-2.0): a DV network stream
  (``dv_processing.io.NetworkReader``, what the DV software's "Network TCP server" output and
  :func:`serve` send) or a camera dv-processing sees (``dv_processing.io.camera.open``). Timestamps
  stay as sent (cameras stamp events in host-clock Unix microseconds).
* :class:`ReplaySource` releases a recording's chunks at the pace of their timestamps, for trying a
  live setup without a camera or a network.
* :func:`serve` replays a recording as a DV network stream (``dv_processing.io.NetworkWriter``) in
  real time. It runs the writer in a child Python process that is ended by a signal: dv-processing
  2.0.4's ``NetworkWriter`` never returns from its destructor while a client is connected (its
  error callback waits for the Python lock the destructor holds), and a killed process closes its
  socket, which the client sees as the end of the stream.

:func:`open_live` turns the command line's ``SOURCE`` into one of them: ``HOST:PORT``, ``camera``,
``camera:SERIAL`` or the path of a recording.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lase_e2v.errors import ConfigError, EventFormatError, quoted
from lase_e2v.events.formats.base import ChunkValidator, EventReader
from lase_e2v.events.streams import EventStream, concatenate

#: how long :class:`DvSource` sleeps when no events are waiting (a DAVIS sends a packet every ~1-10 ms)
POLL_S = 0.005
_ADDRESS = re.compile(r"^(?P<host>[\w.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")


#: ``(time of its last event in us, time.perf_counter() when it arrived)`` of one packet
Arrival = tuple[int, float]


class LiveSource(ABC):
    """Base of live sources: ``name`` (for messages), ``sensor_size`` ``(height, width)``, ``caption``,
    ``iter_chunks``."""

    name: str

    @property
    @abstractmethod
    def sensor_size(self) -> tuple[int, int]:
        """``(height, width)`` of the sensor."""

    @property
    def caption(self) -> str | None:
        """The scene description the source carries (LaSe-E2V's default prompt), or ``None``: a DV
        stream or a camera carries none, a replayed recording its file's
        (:attr:`~lase_e2v.events.formats.base.EventReader.caption`)."""
        return None

    @abstractmethod
    def _iter_raw(self, stop: threading.Event) -> Iterator[tuple[EventStream, list[Arrival]]]:
        """Yield chunks as they arrive, each with the arrivals of the packets it joins, until the
        stream ends or ``stop`` is set."""

    def iter_timed_chunks(
        self, stop: threading.Event | None = None
    ) -> Iterator[tuple[EventStream, list[Arrival]]]:
        """Validated chunks as they arrive, each with its packets' :data:`Arrival` times (from
        which latency is measured); ends with the stream or when ``stop`` is set."""
        check = ChunkValidator(self.name)
        for chunk, arrivals in self._iter_raw(stop or threading.Event()):
            if len(chunk):
                yield check(chunk), arrivals

    def iter_chunks(self, stop: threading.Event | None = None) -> Iterator[EventStream]:
        """Validated chunks as they arrive; ends with the stream or when ``stop`` is set."""
        return (chunk for chunk, _ in self.iter_timed_chunks(stop))

    def close(self) -> None:
        """Release the connection or device (the default has none)."""

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class DvSource(LiveSource):
    """Events from a dv-processing input (a ``NetworkReader`` or a camera).

    A background thread takes every packet out of the input as soon as it arrives: dv-processing's
    ``NetworkReader`` discards what it holds once the connection closes, so packets left in it while
    the reconstruction is busy would be lost at the end of the stream. Each chunk yielded joins all
    the packets waiting, so a slow consumer gets fewer, larger chunks; the packets wait in memory
    (as much as the consumer lags). Frame, IMU and trigger packets of a camera are taken and dropped.
    When the input stops running (connection closed or dropped, camera unplugged) the iteration ends.
    """

    def __init__(self, capture, name: str) -> None:
        if not capture.isEventStreamAvailable():
            raise EventFormatError(f"{name}: the stream has no events")
        resolution = capture.getEventResolution()
        if resolution is None:
            raise EventFormatError(f"{name}: the stream does not state its sensor size")
        self._capture = capture
        self._sensor_size = (int(resolution[1]), int(resolution[0]))
        self.name = name
        others = (("isFrameStreamAvailable", "getNextFrame"), ("isImuStreamAvailable", "getNextImuBatch"),
                  ("isTriggerStreamAvailable", "getNextTriggerBatch"))
        self._dropped = [getattr(capture, get) for available, get in others if getattr(capture, available)()]

    @classmethod
    def network(cls, host: str, port: int) -> DvSource:
        """Connect to a DV network (TCP) stream, e.g. the DV software's output or :func:`serve`."""
        import dv_processing as dv

        name = f"{host}:{port}"
        try:
            capture = dv.io.NetworkReader(host, port)
        except RuntimeError as error:
            reason = str(error).split(" [")[0]
            message = f"{name}: cannot connect ({reason}); is a DV stream served there?"
            raise EventFormatError(message) from None
        return cls(capture, name)

    @classmethod
    def camera(cls, serial: str | None = None) -> DvSource:
        """Open the camera with ``serial`` (default: the first dv-processing finds)."""
        import dv_processing as dv

        found = [str(d) for d in dv.io.camera.discover()]
        if not found:
            raise EventFormatError("camera: dv-processing finds no camera (one plugged in, with USB access?)")
        try:
            capture = dv.io.camera.open(serial) if serial else dv.io.camera.open()
        except (RuntimeError, IndexError) as error:
            message = f"camera {serial or ''}: cannot open it ({error}); found: {', '.join(found)}"
            raise EventFormatError(message) from None
        return cls(capture, f"camera {capture.getCameraName()}")

    @property
    def sensor_size(self) -> tuple[int, int]:
        return self._sensor_size

    def _take_waiting(self, arrived: queue.Queue) -> bool:
        """Move every packet waiting in the input to ``arrived``; True if there was any."""
        any_events = False
        while (batch := self._capture.getNextEventBatch()) is not None:
            if len(batch):
                events = batch.numpy()
                packet = EventStream(events["x"], events["y"], events["timestamp"], events["polarity"],
                                     self._sensor_size)
                arrived.put((packet, (int(packet.t[-1]), time.perf_counter())))
                any_events = True
        for take in self._dropped:
            while take() is not None:
                pass
        return any_events

    def _pull(self, arrived: queue.Queue, halt: threading.Event) -> None:
        """The background thread: poll the input until it stops running or ``halt``; ``None`` ends."""
        try:
            while not halt.is_set():
                running = self._capture.isRunning()
                if not self._take_waiting(arrived):
                    if not running:
                        return
                    halt.wait(POLL_S)
        except RuntimeError as error:
            arrived.put(EventFormatError(f"{self.name}: the stream failed ({error})"))
        finally:
            arrived.put(None)

    def _iter_raw(self, stop: threading.Event) -> Iterator[tuple[EventStream, list[Arrival]]]:
        arrived: queue.Queue = queue.Queue()
        halt = threading.Event()
        puller = threading.Thread(target=self._pull, args=(arrived, halt), daemon=True)
        puller.start()
        try:
            ended = False
            while not ended and not stop.is_set():
                try:
                    packets = [arrived.get(timeout=0.05)]
                except queue.Empty:
                    continue
                while not arrived.empty():
                    packets.append(arrived.get())
                if isinstance(packets[-1], Exception):
                    raise packets[-1]
                ended = packets[-1] is None
                packets = [p for p in packets if p is not None]
                if packets:
                    yield concatenate([events for events, _ in packets]), [arrival for _, arrival in packets]
        finally:
            halt.set()
            puller.join()

    def close(self) -> None:
        self._capture = None


class ReplaySource(LiveSource):
    """A recording's events, each chunk released when its last timestamp is due at ``speed`` x real time.

    Chunks hold ``packet_us`` of events (as a camera sends packets), so a consumer sees what a live
    stream of that recording would give it.
    """

    def __init__(self, reader: EventReader, speed: float = 1.0, packet_us: int = 1000) -> None:
        if speed <= 0:
            raise ConfigError(f"replay speed must be > 0, got {speed}")
        if packet_us <= 0:
            raise ConfigError(f"packet duration must be > 0 us, got {packet_us}")
        self.reader, self.speed, self.packet_us = reader, speed, packet_us
        self.name = f"replay of {reader.path}"

    @property
    def sensor_size(self) -> tuple[int, int]:
        return self.reader.sensor_size

    @property
    def caption(self) -> str | None:
        return self.reader.caption

    def _iter_raw(self, stop: threading.Event) -> Iterator[tuple[EventStream, list[Arrival]]]:
        for packet, due_s in paced_packets(self.reader, self.speed, self.packet_us):
            if stop.wait(max(0.0, due_s - time.perf_counter())):
                return
            yield packet, [(int(packet.t[-1]), time.perf_counter())]


def paced_packets(
    reader: EventReader, speed: float, packet_us: int, started: float | None = None
) -> Iterator[tuple[EventStream, float]]:
    """``(packet, due time)``: the recording cut into ``packet_us`` packets, each due (on the
    ``time.perf_counter`` clock) when its span has passed at ``speed`` x real time since ``started``
    (default: when the first events are read)."""
    t_origin = None
    for chunk in reader.iter_chunks():
        if t_origin is None:
            started, t_origin = started or time.perf_counter(), int(chunk.t[0])
        first, last = ((int(t) - t_origin) // packet_us for t in (chunk.t[0], chunk.t[-1]))
        ends = np.arange(first + 1, last + 2)  # packet k holds [k, k + 1) x packet_us
        cuts = np.searchsorted(chunk.t, t_origin + ends * packet_us, side="left")
        for begin, end, packet_end in zip(np.r_[0, cuts[:-1]], cuts, ends):
            if end > begin:
                yield chunk[int(begin) : int(end)], started + packet_end * packet_us / 1e6 / speed


def parse_address(source: str) -> tuple[str, int] | None:
    """``(host, port)`` if ``source`` reads ``HOST:PORT``, else ``None``."""
    match = _ADDRESS.match(source)
    if match is None or Path(source).exists():
        return None
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ConfigError(f"{source}: port must be 1..65535")
    return match["host"].strip("[]"), port


def open_live(source: str, speed: float = 1.0, topic: str | None = None) -> LiveSource:
    """The live source a command-line ``SOURCE`` names (see the module docstring).

    ``speed`` applies to a replayed recording, ``topic`` to a replayed ROS bag.
    """
    if source == "camera" or source.startswith("camera:"):
        return DvSource.camera(source.partition(":")[2] or None)
    address = parse_address(source)
    if address is not None:
        return DvSource.network(*address)
    from lase_e2v.events.formats import open_events

    if not Path(source).exists():
        message = f"{quoted(source)}: neither HOST:PORT, camera[:SERIAL] nor an existing recording"
        raise EventFormatError(message)
    return ReplaySource(open_events(source, topic=topic), speed=speed)


# -- serving a recording -----------------------------------------------------------------------


def _event_store(packet: EventStream):
    import dv_processing as dv

    store = dv.EventStore()
    for t, x, y, p in zip(packet.t.tolist(), packet.x.tolist(), packet.y.tolist(), (packet.p > 0).tolist()):
        store.push_back(t, x, y, p)
    return store


def serve_in_this_process(path: str, format: str | None, topic: str | None, host: str, port: int,
                          speed: float, packet_us: int) -> None:
    """What :func:`serve`'s child process runs: listen, wait for a client, replay, wait until sent,
    then wait to be killed. Reports ``listening``, ``started <wall clock s>`` and ``finished`` on stdout."""
    import dv_processing as dv

    from lase_e2v.events.formats import open_events

    reader = open_events(path, format, topic=topic)
    height, width = reader.sensor_size
    stream = dv.io.Stream.EventStream(0, "events", "lase-e2v replay", (width, height))
    try:
        writer = dv.io.NetworkWriter(host, port, stream)
    except RuntimeError as error:
        print(f"error {str(error).split(' [')[0]}", flush=True)
        return
    print("listening", flush=True)
    while writer.getClientCount() == 0:
        time.sleep(0.001)
    started = time.perf_counter()
    print(f"started {time.time() - (time.perf_counter() - started):.6f}", flush=True)
    for packet, due_s in paced_packets(reader, speed, packet_us, started):
        time.sleep(max(0.0, due_s - time.perf_counter()))
        writer.writeEvents(_event_store(packet))
    while writer.getQueuedPacketCount() and writer.getClientCount():
        time.sleep(0.001)
    time.sleep(0.5)  # the client takes the last packets before the connection closes (DvSource)
    print("finished", flush=True)
    threading.Event().wait()  # ended by the parent's kill (see the module docstring)


class Server:
    """A running :func:`serve`. ``started_s``: the wall-clock time (``time.time()``) at which the
    recording's first timestamp went out, once a client connected; ``wait()`` until all is sent
    (the server then ends, and so does the client's stream); ``stop()`` ends it at once."""

    def __init__(self, process: subprocess.Popen, name: str) -> None:
        self._process, self.name = process, name
        self._lines: queue.Queue[str] = queue.Queue()
        self.started_s: float | None = None
        threading.Thread(target=self._read_lines, daemon=True).start()

    def _read_lines(self) -> None:
        for line in self._process.stdout:
            line = line.strip()
            if line.startswith("started "):
                self.started_s = float(line.split()[1])
            if line == "finished":
                self._process.kill()  # closes the connection: the client's stream ends here
            self._lines.put(line)
        self._lines.put("exited")

    def _expect(self, wanted: str, timeout_s: float | None) -> bool:
        """Wait for the child's report ``wanted`` (False after ``timeout_s``); raise if it failed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                left_s = None if deadline is None else max(0.0, deadline - time.monotonic())
                line = self._lines.get(timeout=left_s)
            except queue.Empty:
                return False
            if line == wanted:
                return True
            if line.startswith("error") or line == "exited":
                self.stop()
                reason = line.partition(" ")[2] or f"exit status {self._process.returncode}"
                raise EventFormatError(f"{self.name}: the replay server stopped ({reason})")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the whole recording was sent (True) or ``timeout_s`` passed (False)."""
        return self._expect("finished", timeout_s)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


def serve(path: str | Path, host: str = "127.0.0.1", port: int = 7777, speed: float = 1.0,
          packet_us: int = 1000, format: str | None = None, topic: str | None = None,
          timeout_s: float = 30.0) -> Server:
    """Start replaying the recording at ``path`` as a DV network stream on ``host:port``.

    The replay starts when the first client connects (so it sees the recording from its start) and
    sends ``packet_us`` packets at ``speed`` x real time. Returns once the server listens (at most
    ``timeout_s``); the caller waits for and stops the returned :class:`Server`.
    """
    from lase_e2v.events.formats import open_events

    open_events(path, format, topic=topic).sensor_size  # a bad file fails here, in the caller
    if speed <= 0 or packet_us <= 0:
        raise ConfigError(f"speed and packet duration must be > 0, got {speed} and {packet_us} us")
    arguments = json.dumps([str(path), format, topic, host, port, speed, packet_us])
    code = "import json, sys; from lase_e2v.events.live import serve_in_this_process as s; s(*json.loads(sys.argv[1]))"
    process = subprocess.Popen([sys.executable, "-c", code, arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    server = Server(process, f"{host}:{port}")
    if not server._expect("listening", timeout_s):
        server.stop()
        raise EventFormatError(f"{host}:{port}: the replay server did not start within {timeout_s} s")
    return server
