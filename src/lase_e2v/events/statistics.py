"""Event statistics that characterise a sensor and a scene, measured in one streaming pass.

They exist to make synthetic training data look like real recordings: the same numbers are
measured on real files (any reader) and on simulator output, side by side
(``benchmarks/event_statistics.py``), and the simulator's ranges are set so the two agree.

Measured per recording (:class:`EventStatistics`, bounded memory: a few arrays of the sensor's
size, whatever the length):

* ``events_per_pixel_per_s``: events / (pixels x duration).
* ``on_share``: ON events / all events.
* ``isolated_share``: share of events with no event at any of the 8 neighbouring pixels in the
  ``isolation_window_us`` before it, the events a background-activity filter (Delbruck 2008)
  removes. Moving edges fire in neighbouring pixels within microseconds to milliseconds, so this
  is the noise share (shot noise, leak, hot pixels, isolated texture flicker) without knowing
  where the scene is static. Choice: 10 ms window, 8-neighbourhood, the pixel itself excluded.
* ``interval_histogram``: per-pixel inter-event intervals (any polarity) in log-spaced bins from
  1 us to 10 s, as shares; ``median_interval_us``.
* Per window (between APS frames when the recording has them, else fixed ``window_us`` windows):
  ``events_per_pixel_per_window`` (mean over windows), ``active_pixel_share`` (pixels with at
  least one event) and ``events_per_active_pixel`` (events / active pixels: how many threshold
  crossings a moving edge makes, which scales with contrast / threshold).

:func:`effective_contrast_threshold` estimates the contrast threshold from events and APS frames:
the net event count ``n = n_on - n_off`` of a pixel between two frames is on average ``dlog I / C``
(each threshold crossing is one event; with the pixel's reference level at a random phase the
sub-threshold remainder averages out), so ``C`` is the inverse slope of the regression of ``n`` on
``dlog I`` through the origin, ``C = sum dlogI^2 / sum n dlogI``, over the pixels that are well exposed
in both frames. Pixels are selected on the frames only, never on their event counts, so noise events
do not bias the estimate (they add zero-mean scatter to ``n``). It sees the APS response, not the
photoreceptor's, so it is an *effective* threshold: compare it between recordings measured the same
way (real vs simulated), not with a datasheet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lase_e2v.errors import EventDataError
from lase_e2v.events.color import mosaic
from lase_e2v.events.streams import EventStream, Frames

#: 8-neighbourhood offsets (dx, dy)
NEIGHBOURS = tuple((dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dx, dy) != (0, 0))
#: log10 edges of the inter-event interval histogram: 1 us .. 10 s, four bins per decade
INTERVAL_EDGES_LOG10 = np.arange(0.0, 7.01, 0.25)


@dataclass(frozen=True)
class StatisticsOptions:
    """``isolation_window_us``: neighbour look-back of ``isolated_share``; ``window_us``: window length
    for recordings without APS frames (40 ms = 25 frames/s, the reconstruct default)."""

    isolation_window_us: int = 10_000
    window_us: int = 40_000


class EventStatistics:
    """Streaming accumulator of the module's statistics for one recording.

    Args:
        sensor_size: ``(height, width)``.
        frame_t_us: APS frame timestamps; windows are the intervals between them. ``None``: fixed
            ``options.window_us`` windows from the first event.
        options: :class:`StatisticsOptions`.

    Feed time-ordered chunks with :meth:`update`, then read :meth:`result`.
    """

    def __init__(
        self,
        sensor_size: tuple[int, int],
        frame_t_us: np.ndarray | None = None,
        options: StatisticsOptions | None = None,
    ) -> None:
        self.height, self.width = (int(s) for s in sensor_size)
        self.options = options or StatisticsOptions()
        pixels = self.height * self.width
        self._last_t = np.full(pixels, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self._pixel_bits = int(pixels).bit_length()
        self._frame_t_us = None if frame_t_us is None or len(frame_t_us) < 2 else np.asarray(frame_t_us, np.int64)
        self._window_counts = np.zeros(pixels, dtype=np.int64)
        self._window_index: int | None = None
        # finished windows: how many, their events and their active pixels (sums: memory stays constant)
        self._windows = np.zeros(3, dtype=np.int64)
        self._t_first: int | None = None
        self._t_last = 0
        self.events = self.on_events = self.isolated_events = 0
        self._intervals = np.zeros(len(INTERVAL_EDGES_LOG10) + 1, dtype=np.int64)

    # -- accumulation -------------------------------------------------------------------------------
    def update(self, chunk: EventStream) -> None:
        """Add the next time-ordered chunk of the recording."""
        if len(chunk) == 0:
            return
        if chunk.sensor_size != (self.height, self.width):
            raise EventDataError(f"statistics: chunk sensor {chunk.sensor_size} != {(self.height, self.width)}")
        if self._t_first is None:
            self._t_first = int(chunk.t[0])
        elif chunk.t[0] < self._t_last:
            raise EventDataError("statistics: chunks must be time-ordered")
        pixel = chunk.y.astype(np.int64) * self.width + chunk.x
        order = np.argsort(pixel, kind="stable")  # by pixel, time order kept within a pixel
        by_pixel, by_time = pixel[order], chunk.t[order]
        self.isolated_events += self._count_isolated(chunk, pixel, by_pixel, by_time)
        self._add_intervals(by_pixel, by_time)
        self._add_windows(chunk.t, pixel)
        self.events += len(chunk)
        self.on_events += int(np.count_nonzero(chunk.p > 0))
        self._t_last = int(chunk.t[-1])

    def _count_isolated(self, chunk: EventStream, pixel, by_pixel, by_time) -> int:
        """Events whose 8 neighbours were silent for ``isolation_window_us`` (before :meth:`_add_intervals`
        updates the per-pixel last times)."""
        time_bits = 62 - self._pixel_bits
        relative = chunk.t - self._t_first
        if relative[-1] >= 1 << time_bits:
            raise EventDataError(f"statistics: recording longer than {1 << time_bits} us")
        keys = (by_pixel << time_bits) | (by_time - self._t_first)
        latest = np.full(len(chunk), np.iinfo(np.int64).min // 2, dtype=np.int64)
        x, y = chunk.x.astype(np.int64), chunk.y.astype(np.int64)
        for dx, dy in NEIGHBOURS:
            inside = (x + dx >= 0) & (x + dx < self.width) & (y + dy >= 0) & (y + dy < self.height)
            neighbour = pixel[inside] + dy * self.width + dx
            found = np.searchsorted(keys, (neighbour << time_bits) | relative[inside], side="right") - 1
            found_safe = np.maximum(found, 0)
            in_chunk = (found >= 0) & (by_pixel[found_safe] == neighbour)
            candidate = np.where(in_chunk, by_time[found_safe], self._last_t[neighbour])
            latest[inside] = np.maximum(latest[inside], candidate)
        return int(np.count_nonzero(chunk.t - latest > self.options.isolation_window_us))

    def _add_intervals(self, by_pixel: np.ndarray, by_time: np.ndarray) -> None:
        same = by_pixel[1:] == by_pixel[:-1]
        intervals = [by_time[1:][same] - by_time[:-1][same]]
        first = np.flatnonzero(np.r_[True, ~same])
        last = np.r_[first[1:] - 1, len(by_pixel) - 1]
        previous = self._last_t[by_pixel[first]]
        seen = previous >= 0
        intervals.append(by_time[first][seen] - previous[seen])
        self._last_t[by_pixel[last]] = by_time[last]
        values = np.concatenate(intervals).astype(np.float64)
        bins = np.searchsorted(INTERVAL_EDGES_LOG10, np.log10(np.maximum(values, 0.5)), side="right")
        self._intervals += np.bincount(bins, minlength=len(self._intervals))

    def _window_of(self, t: np.ndarray) -> np.ndarray:
        if self._frame_t_us is not None:
            return np.searchsorted(self._frame_t_us, t, side="right") - 1
        return (t - self._t_first) // self.options.window_us

    def _add_windows(self, t: np.ndarray, pixel: np.ndarray) -> None:
        window = self._window_of(t)
        if self._frame_t_us is not None:  # events before the first or after the last frame are in no window
            keep = (window >= 0) & (window < len(self._frame_t_us) - 1)
            window, pixel = window[keep], pixel[keep]
        if len(window) == 0:
            return
        starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
        for begin, end in zip(starts, np.r_[starts[1:], len(window)]):
            index = int(window[begin])
            if self._window_index is not None and index != self._window_index:
                self._close_window()
            self._window_index = index
            self._window_counts += np.bincount(pixel[begin:end], minlength=len(self._window_counts))

    def _close_window(self) -> None:
        self._windows += (1, int(self._window_counts.sum()), int(np.count_nonzero(self._window_counts)))
        self._window_counts[:] = 0

    # -- results ------------------------------------------------------------------------------------
    def result(self) -> dict:
        """The statistics as a JSON-ready dict (see the module docstring)."""
        num_windows, window_events, active_pixels = (int(v) for v in self._windows)
        if self._window_index is not None and self._window_counts.any():
            num_windows += 1
            window_events += int(self._window_counts.sum())
            active_pixels += int(np.count_nonzero(self._window_counts))
        pixels = self.height * self.width
        duration_s = (self._t_last - (self._t_first or 0)) / 1e6
        interval_total = max(int(self._intervals.sum()), 1)
        return {
            "sensor": f"{self.width}x{self.height}",
            "events": self.events,
            "duration_s": duration_s,
            "events_per_pixel_per_s": self.events / pixels / duration_s if duration_s > 0 else float("nan"),
            "on_share": self.on_events / self.events if self.events else float("nan"),
            "isolated_share": self.isolated_events / self.events if self.events else float("nan"),
            "windows": "frames" if self._frame_t_us is not None else f"{self.options.window_us} us",
            "num_windows": num_windows,
            "events_per_pixel_per_window": window_events / num_windows / pixels if num_windows else float("nan"),
            "active_pixel_share": active_pixels / num_windows / pixels if num_windows else float("nan"),
            "events_per_active_pixel": window_events / max(active_pixels, 1),
            "median_interval_us": _median_interval_us(self._intervals),
            "interval_histogram": {
                "log10_us_edges": INTERVAL_EDGES_LOG10.tolist(),
                "shares": (self._intervals / interval_total).tolist(),
            },
        }


def _median_interval_us(counts: np.ndarray) -> float:
    """Median of the interval histogram, interpolated linearly in log10 within its bin (the open-ended
    first and last bins give their inner edge)."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    cumulative = np.cumsum(counts) / total
    index = int(np.searchsorted(cumulative, 0.5))
    edges = INTERVAL_EDGES_LOG10
    if index == 0 or index >= len(edges):
        return float(10 ** edges[min(index, len(edges) - 1)])
    below = cumulative[index - 1]
    share = (0.5 - below) / (cumulative[index] - below)
    return float(10 ** (edges[index - 1] + share * (edges[index] - edges[index - 1])))


def measure_events(
    chunks: Iterable[EventStream],
    sensor_size: tuple[int, int],
    frames: Frames | None = None,
    options: StatisticsOptions | None = None,
    color_filter: str | None = None,
) -> dict:
    """:class:`EventStatistics` of a chunk stream, plus ``contrast_threshold`` when ``frames`` are given
    (then the chunks are consumed once and the frames' intervals are the windows).

    RGB ``frames`` (a colour camera's) need the camera's Bayer ``color_filter``: the threshold is then
    measured against the mosaic of the frames, what each pixel saw through its own filter."""
    if frames is not None and frames.images.ndim == 4:
        if color_filter is None:
            raise EventDataError("RGB frames need the camera's color_filter to measure the contrast threshold")
        frames = Frames(mosaic(frames.images, color_filter), frames.t_us)
    statistics = EventStatistics(sensor_size, frames.t_us if frames is not None else None, options)
    threshold = _ContrastThreshold(frames, sensor_size) if frames is not None and len(frames) >= 2 else None
    for chunk in chunks:
        statistics.update(chunk)
        if threshold is not None:
            threshold.update(chunk)
    result = statistics.result()
    result["contrast_threshold"] = threshold.result() if threshold is not None else None
    return result


def effective_contrast_threshold(events: EventStream, frames: Frames) -> float:
    """The effective contrast threshold (log units) of ``events`` against ``frames`` (module docstring)."""
    threshold = _ContrastThreshold(frames, events.sensor_size)
    threshold.update(events)
    return threshold.result()


class _ContrastThreshold:
    """Accumulates ``sum dlogI^2`` and ``sum n dlogI`` frame pair by frame pair (one net-count array of
    the sensor's size, so memory does not grow with the recording).

    Pixels count when both frames are within ``[16, 240]`` DN (no dark noise, no saturation);
    ``log(I + 1)`` keeps black finite.
    """

    low_dn, high_dn = 16.0, 240.0

    def __init__(self, frames: Frames, sensor_size: tuple[int, int]) -> None:
        if frames.images.shape[1:] != tuple(sensor_size):
            raise EventDataError(f"frames {frames.images.shape[1:]} do not match the sensor {tuple(sensor_size)}")
        self.frames = frames
        self.width = int(sensor_size[1])
        self.net = np.zeros(int(np.prod(sensor_size)), dtype=np.int64)
        self.interval: int | None = None
        self.squared_change = 0.0
        self.events_times_change = 0.0

    def update(self, chunk: EventStream) -> None:
        interval = np.searchsorted(self.frames.t_us, chunk.t, side="right") - 1
        keep = (interval >= 0) & (interval < len(self.frames) - 1)
        interval, pixel = interval[keep], chunk.y[keep].astype(np.int64) * self.width + chunk.x[keep]
        polarity = chunk.p[keep].astype(np.int64)
        starts = np.flatnonzero(np.r_[True, interval[1:] != interval[:-1]]) if len(interval) else []
        for begin, end in zip(starts, np.r_[starts[1:], len(interval)]):
            if self.interval is not None and int(interval[begin]) != self.interval:
                self._close()
            self.interval = int(interval[begin])
            self.net += np.bincount(pixel[begin:end], polarity[begin:end], minlength=len(self.net)).astype(np.int64)

    def _close(self) -> None:
        pair = self.frames.images[self.interval : self.interval + 2]
        dn = Frames(pair, self.frames.t_us[self.interval : self.interval + 2]).as_float().reshape(2, -1) * 255.0
        log_change = np.log(dn[1] + 1.0) - np.log(dn[0] + 1.0)
        exposed = np.all((dn >= self.low_dn) & (dn <= self.high_dn), axis=0)
        self.squared_change += float(np.square(log_change[exposed]).sum())
        self.events_times_change += float((self.net[exposed] * log_change[exposed]).sum())
        self.net[:] = 0

    def result(self) -> float:
        if self.interval is not None:
            self._close()
            self.interval = None
        if self.events_times_change <= 0:
            return float("nan")
        return self.squared_change / self.events_times_change
