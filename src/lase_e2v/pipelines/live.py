"""Reconstruct a live event stream as it arrives: write each frame at once, show it, time it.

:func:`run_live` chains a :class:`~lase_e2v.events.live.LiveSource`, a windowing and any
reconstruction pipeline exactly as the offline path does (``pipeline.reset()``, then
``pipeline.iter_frames(windowing.iter_windows(chunks), caption=source.caption)``), so on the same
events and windows its frames are the offline frames; only the chunks differ (what arrived between
polls). A replayed recording passes its caption as the offline path does; a DV stream or a camera
carries none (give LaSe-E2V a ``prompt``). Each frame is written to the output as soon as it
is made (mp4, PNG folder or HDF5, through :func:`~lase_e2v.pipelines.writers.write_frame_stream`, as
``reconstruct``) and shown if asked.

Latency of a frame: from the arrival in this process of the packet that completes its window (the
one holding the first event at or after the window's end; or the end of the stream) to the frame
being written and shown. It counts the time the packet waits while earlier frames are made,
waiting for the rest of a clip (LaSe-E2V reconstructs ``clip_length`` windows at once),
reconstruction, writing and display, not the sensor's or the network's delay before arrival. A
method slower than the window rate falls behind: latency then grows with time and the events wait
in the source's queue (use a faster method, longer windows or a GPU).

The run ends when the stream ends (a dropped connection included) or ``stop`` is set (the
command line sets it on the first Ctrl-C); either way the output is completed and kept.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.events.live import Arrival, LiveSource
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import CountWindows, TimeWindows, Window, Windowing, parse_window_spec
from lase_e2v.pipelines.output import ReconstructionPipeline, playback_fps
from lase_e2v.pipelines.writers import check_fps, frames_output_kind, write_frame_stream

#: at most this many per-frame records are kept for the report (memory stays bounded)
RECORDS_KEPT = 100_000
_NON_INTERACTIVE_BACKENDS = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


@dataclass
class FrameRecord:
    """One live frame: its window end (sensor time), when it was out (``time.time()``), its latency."""

    t_end_us: int
    out_s: float
    latency_ms: float


@dataclass
class LiveReport:
    """What a live run did: frames made, per-frame records (the last :data:`RECORDS_KEPT`), and
    ``wall_s`` from the first window's completion to the last frame out (frames/s is over it)."""

    num_frames: int = 0
    records: deque = field(default_factory=lambda: deque(maxlen=RECORDS_KEPT))
    wall_s: float = 0.0
    stopped: bool = False

    @property
    def latencies_ms(self) -> np.ndarray:
        return np.array([record.latency_ms for record in self.records])

    @property
    def frames_per_second(self) -> float:
        return self.num_frames / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> str:
        """``latency median X ms (p95 Y ms), Z frames/s``."""
        if not self.num_frames:
            return "no frames"
        median, p95 = np.percentile(self.latencies_ms, [50, 95])
        return f"latency median {median:.0f} ms (p95 {p95:.0f} ms), {self.frames_per_second:.1f} frames/s"


_LIVE_WINDOWS = "live input takes ms:T or events:N windows (frame windows need the APS frame times up front)"


def check_live_window(windowing: Windowing) -> Windowing:
    """Live streams have no APS frame times up front: only time or event-count windows."""
    if not isinstance(windowing, (TimeWindows, CountWindows)):
        raise ConfigError(_LIVE_WINDOWS)
    return windowing


def parse_live_window(spec: str) -> Windowing:
    """The command line's ``--window`` for live input: ``ms:T`` or ``events:N``."""
    if spec.partition(":")[0] == "frames":
        raise ConfigError(_LIVE_WINDOWS)
    return check_live_window(parse_window_spec(spec))


def check_display() -> None:
    """Refuse ``show`` where matplotlib cannot open a window (headless: its backend is ``agg``)."""
    import matplotlib.pyplot as plt

    backend = plt.get_backend().lower()
    if backend in _NON_INTERACTIVE_BACKENDS:
        raise ConfigError(f"--show needs a display: matplotlib uses its '{backend}' backend here (no windows)")


def check_live_output(output: str | Path | None, show: bool) -> None:
    """Before any work: refuse a run that neither writes nor shows, ``show`` without a display and
    an output type no writer handles (whether the output may be written or replaced is the caller's
    check, :func:`lase_e2v.atomic.check_output`, as for every command)."""
    if output is None and not show:
        raise ConfigError("nothing to do: give an output (-o) and/or --show")
    if show:
        check_display()
    if output is not None:
        frames_output_kind(output)


class FrameViewer:
    """A matplotlib window showing the newest frame (gray, 0..1), updated in place."""

    def __init__(self, title: str) -> None:
        import matplotlib.pyplot as plt

        self._plt, self._title, self._image = plt, title, None

    def show(self, image: np.ndarray) -> None:
        if self._image is None:
            figure, axes = self._plt.subplots(num=self._title)
            axes.set_axis_off()
            self._image = axes.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
            self._plt.show(block=False)
        else:
            self._image.set_data(image)
        self._image.figure.canvas.draw_idle()
        self._image.figure.canvas.flush_events()

    def close(self) -> None:
        if self._image is not None:
            self._plt.close(self._image.figure)


def run_live(
    source: LiveSource,
    pipeline: ReconstructionPipeline,
    windowing: Windowing,
    output: str | Path | None = None,
    fps: float | None = None,
    show: bool = False,
    stop: threading.Event | None = None,
    progress: bool = False,
    on_frame: Callable[[Window, np.ndarray, FrameRecord], None] | None = None,
) -> LiveReport:
    """Reconstruct ``source`` until it ends or ``stop`` is set; returns the :class:`LiveReport`.

    Args:
        output: ``.mp4``, ``.h5`` or a PNG folder, written as frames come (``None``: do not write).
        fps: video frame rate; default: real time for time windows, else 25.
        show: show each frame in a window (needs a display).
        progress: a tqdm line (stderr) with frames, frames/s and the last latency.
        on_frame: called with each window, frame and record after it is written and shown.
    """
    check_live_window(windowing)
    check_live_output(output, show)
    check_fps(fps)
    viewer = FrameViewer(f"lase-e2v live: {source.name}") if show else None
    stop = stop or threading.Event()
    report = LiveReport()
    arrivals: deque[Arrival] = deque()  # of the packets not yet known to complete a window
    ended = {"s": 0.0}  # when the stream ended: that completes the last window
    completed_at: dict[int, float] = {}

    def timed_chunks() -> Iterator[EventStream]:
        for chunk, packets in source.iter_timed_chunks(stop):
            arrivals.extend(packets)
            yield chunk
        ended["s"] = time.perf_counter()

    def timed_windows() -> Iterator[Window]:
        for window in windowing.iter_windows(timed_chunks()):
            # complete since the arrival of the first packet with an event at or after its end
            while arrivals and arrivals[0][0] < window.t_end_us:
                arrivals.popleft()
            completed_at[window.index] = arrivals[0][1] if arrivals else ended["s"]
            yield window

    bar = tqdm(desc=f"live {pipeline.name}", unit="frame", disable=not progress)

    def frames() -> Iterator[tuple[np.ndarray, int]]:
        pipeline.reset()
        for item in pipeline.iter_frames(timed_windows(), caption=source.caption):
            yield item.image, item.window.t_end_us
            # the writer asks for the next frame once this one is written
            if viewer is not None:
                viewer.show(item.image)
            now = time.perf_counter()
            completed = completed_at.pop(item.window.index)
            if not report.num_frames:
                first_completed = completed
            record = FrameRecord(item.window.t_end_us, time.time(), (now - completed) * 1e3)
            report.records.append(record)
            report.num_frames += 1
            report.wall_s = now - first_completed
            bar.update()
            bar.set_postfix_str(f"latency {record.latency_ms:.0f} ms", refresh=False)
            if on_frame is not None:
                on_frame(item.window, item.image, record)
        if not report.num_frames:  # raised inside the writer, which then keeps nothing
            ending = "stopped" if stop.is_set() else "the stream ended"
            raise EventDataError(f"{source.name}: {ending} before the first window was complete; nothing kept")

    try:
        if output is None:
            for _ in frames():
                pass
        else:
            write_frame_stream(output, frames(), fps or playback_fps(windowing))
    finally:
        bar.close()
        source.close()
        if viewer is not None:
            viewer.close()
    report.stopped = stop.is_set()
    return report
