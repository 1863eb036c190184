"""Frames to events: an ESIM / v2e style DVS simulator, vectorized over pixels.

Model (per pixel, all pixels at once with numpy):

1. Log intensity with v2e's lin-log curve (Delbruck et al., "v2e", CVPRW 2021): with the frame in
   digital numbers ``I`` (0..255 for a [0, 1] frame), ``L = log(I)`` above ``linear_threshold_dn``
   and the straight line through the origin that meets it there below, so black has a finite log
   and dark pixels are less sensitive (as in a real photoreceptor).
2. Optional photoreceptor low-pass (v2e): a first-order filter whose cut-off grows with intensity,
   ``f = cutoff_hz * (I + 20) / 275``, so dark pixels lag.
3. Each pixel remembers the log level of its last event (``reference``). Between two samples the
   log intensity is assumed linear in time (ESIM); every crossing of ``reference + k C+`` (ON) or
   ``reference - k C-`` (OFF) is an event, timestamped where the line crosses the level. The
   reference advances by the crossings, never to the sample itself, so no change is ever lost.
4. Per-pixel thresholds ``C+ ~ N(threshold_on, sigma)``, ``C- ~ N(threshold_off, sigma)``,
   clipped below at ``threshold_min`` (fixed-pattern mismatch, drawn once per simulator).
5. Refractory period: an event closer than ``refractory_us`` to the pixel's previous emitted event
   is dropped. Choice (the references differ): the reference still advances by the dropped
   crossing, so a blocked event is lost, not delayed (the pixel resets to the level reached).
6. Optional noise, added on top of the signal and never touching the reference, so the signal
   events are identical with noise on or off: leak events (the reference drifts down at a
   per-pixel ``leak_rate_hz``, which gives slow ON events, as in v2e), shot noise (random ON/OFF
   events, Poisson, ``shot_noise_rate_hz`` in the dark falling to a quarter of it at white, as
   v2e's intensity factor) and hot pixels (a fixed ``hot_pixel_fraction`` of pixels firing ON at
   ``hot_pixel_rate_hz``). Leak is signal-like (it moves the reference); refractory applies to
   every event, noise included.

Timestamps are microseconds; an event's time is the floor of its interpolated time, which keeps
the order and makes ``t_next - t_prev >= refractory_us`` hold exactly after rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.events.color import to_luma
from lase_e2v.events.streams import EventStream, Frames, concatenate



def lin_log(intensity_dn: np.ndarray, linear_threshold_dn: float = 20.0) -> np.ndarray:
    """v2e's lin-log: ``log(I)`` above the threshold, ``I * log(thr) / thr`` below (continuous at ``thr``).

    ``intensity_dn`` is in digital numbers (255 = the white of a [0, 1] frame); float64 out. The
    logarithm itself is evaluated in float32 (3x faster here; its 1e-7 error is far below any
    contrast threshold), the rest in float64.
    """
    intensity_dn = np.asarray(intensity_dn, dtype=np.float64)
    log = np.log(np.maximum(intensity_dn, linear_threshold_dn).astype(np.float32)).astype(np.float64)
    dark = intensity_dn < linear_threshold_dn
    if dark.any():
        log[dark] = intensity_dn[dark] * (np.log(linear_threshold_dn) / linear_threshold_dn)
    return log


@dataclass(frozen=True)
class SimulatorConfig:
    """DVS model parameters (defaults: an ideal, noise-free sensor with ESIM's usual thresholds).

    Attributes:
        threshold_on, threshold_off: mean contrast thresholds C+ / C- in log units (default 0.2).
        threshold_sigma: std of the per-pixel thresholds (default 0.03; 0 makes them exact).
        threshold_min: lower clip of the drawn thresholds (default 0.01).
        refractory_us: minimum time between two events of one pixel (default 0: none).
        linear_threshold_dn: knee of the lin-log curve in digital numbers (default 20, as v2e).
        cutoff_hz: photoreceptor low-pass cut-off at white; 0 disables it (default).
        leak_rate_hz: mean rate of leak (ON) events per pixel (default 0).
        leak_jitter: relative std of the per-pixel leak rate (default 0.1, as v2e).
        shot_noise_rate_hz: shot noise events per pixel per second in the dark (default 0).
        hot_pixel_fraction: fraction of pixels that are hot (default 0).
        hot_pixel_rate_hz: ON event rate of a hot pixel (default 500).
    """

    threshold_on: float = 0.2
    threshold_off: float = 0.2
    threshold_sigma: float = 0.03
    threshold_min: float = 0.01
    refractory_us: float = 0.0
    linear_threshold_dn: float = 20.0
    cutoff_hz: float = 0.0
    leak_rate_hz: float = 0.0
    leak_jitter: float = 0.1
    shot_noise_rate_hz: float = 0.0
    hot_pixel_fraction: float = 0.0
    hot_pixel_rate_hz: float = 500.0

    def __post_init__(self) -> None:
        if self.threshold_min <= 0:
            raise ConfigError(f"threshold_min must be > 0, got {self.threshold_min}")
        for name in ("threshold_on", "threshold_off"):
            if getattr(self, name) < self.threshold_min:
                raise ConfigError(f"{name} must be >= threshold_min={self.threshold_min}, got {getattr(self, name)}")
        if self.linear_threshold_dn <= 1:
            raise ConfigError(f"linear_threshold_dn must be > 1, got {self.linear_threshold_dn}")
        if not 0 <= self.hot_pixel_fraction <= 1:
            raise ConfigError(f"hot_pixel_fraction must be in [0, 1], got {self.hot_pixel_fraction}")
        for name in ("threshold_sigma", "refractory_us", "cutoff_hz", "leak_rate_hz", "leak_jitter",
                     "shot_noise_rate_hz", "hot_pixel_rate_hz"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


def frame_to_dn(frame: np.ndarray) -> np.ndarray:
    """One frame (uint8 0..255, uint16, or float with 1.0 = white; gray or RGB) to float64 digital numbers.

    RGB becomes BT.601 luma. Floats above 1 are accepted as radiance brighter than the frame's
    white (HDR scenes).
    """
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        scale = 1.0
    elif frame.dtype == np.uint16:
        scale = 255.0 / 65535.0
    elif np.issubdtype(frame.dtype, np.floating):
        scale = 255.0
        if not np.all(np.isfinite(frame)) or frame.min() < 0:
            raise EventDataError("frame: float intensities must be finite and >= 0 (1.0 = white)")
    else:
        raise EventDataError(f"frame: expected uint8, uint16 or float pixels, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[-1] == 3:
        return to_luma(frame.astype(np.float64)) * scale
    if frame.ndim != 2:
        raise EventDataError(f"frame: expected (H, W) or (H, W, 3), got shape {frame.shape}")
    return frame.astype(np.float64) * scale


class EventSimulator:
    """Stateful simulator: feed frames in time order, get the events since the previous frame.

    Args:
        config (`SimulatorConfig`, *optional*): the sensor model.
        seed (`int`, *optional*, defaults to 0): all randomness (thresholds, noise) derives from it,
            through independent streams, so noise never changes the signal events.

    The first frame only initialises the per-pixel memory (no events); the thresholds are drawn
    then, from the frame's size. ``reset()`` forgets the memory but keeps the sensor (thresholds,
    hot pixels), like re-arming a camera.

    Example::

        sim = EventSimulator(SimulatorConfig(threshold_sigma=0.0), seed=0)
        events = sim.simulate(frames, t_us)      # frames (N, H, W) float [0, 1], t_us (N,)
    """

    def __init__(self, config: SimulatorConfig | None = None, seed: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self.seed = int(seed)
        sensor_seed, noise_seed = np.random.SeedSequence(self.seed).spawn(2)
        self._sensor_rng = np.random.default_rng(sensor_seed)
        self._noise_rng = np.random.default_rng(noise_seed)
        self.sensor_size: tuple[int, int] | None = None
        self.thresholds_on: np.ndarray | None = None
        self.thresholds_off: np.ndarray | None = None
        self._leak_rate_hz: np.ndarray | None = None
        self._hot_pixels: np.ndarray | None = None
        self.reset()

    # -- state --------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the per-pixel memory; the next frame re-initialises it (and emits nothing)."""
        self._log: np.ndarray | None = None  # (low-passed) log intensity at the last sample, flat
        self._reference: np.ndarray | None = None  # log level of each pixel's last crossing, flat
        self._last_event_us: np.ndarray | None = None
        self._t_us: float | None = None

    def _draw_sensor(self, sensor_size: tuple[int, int]) -> None:
        c, rng = self.config, self._sensor_rng
        self.sensor_size = sensor_size
        self.thresholds_on = np.maximum(rng.normal(c.threshold_on, c.threshold_sigma, sensor_size), c.threshold_min)
        self.thresholds_off = np.maximum(
            rng.normal(c.threshold_off, c.threshold_sigma, sensor_size), c.threshold_min
        )
        self._leak_rate_hz = np.maximum(
            c.leak_rate_hz * (1 + c.leak_jitter * rng.standard_normal(sensor_size)), 0
        ).ravel()
        num_pixels = sensor_size[0] * sensor_size[1]
        num_hot = round(c.hot_pixel_fraction * num_pixels)
        self._hot_pixels = np.sort(rng.choice(num_pixels, size=num_hot, replace=False)).astype(np.int32)

    def _initialise(self, log: np.ndarray, t_us: float) -> None:
        self._log = log
        self._reference = log.copy()
        if self.config.leak_rate_hz > 0:
            # desynchronise the leak: each pixel starts somewhere inside its ON threshold (v2e)
            self._reference -= self._sensor_rng.random(log.shape) * self.thresholds_on.ravel()
        self._last_event_us = np.full(log.size, -np.inf)
        self._t_us = t_us

    # -- one step -----------------------------------------------------------------------------
    def step(self, frame: np.ndarray, t_us: float) -> EventStream:
        """Events with ``t_prev < t <= t_us`` caused by the change from the previous frame to ``frame``.

        ``frame`` is ``(H, W)`` (or RGB ``(H, W, 3)``), uint8 or float with 1.0 = white; ``t_us`` in
        microseconds (may be fractional), strictly after the previous frame's. Events come sorted
        by timestamp; events of the same microsecond keep pixel order (stable sort).
        """
        dn = frame_to_dn(frame)
        sensor_size = (dn.shape[0], dn.shape[1])
        if self.sensor_size is None:
            self._draw_sensor(sensor_size)
        elif sensor_size != self.sensor_size:
            raise EventDataError(f"frame: size {sensor_size} differs from the simulator's {self.sensor_size}")
        t_us = float(t_us)
        dn = dn.ravel()
        log = lin_log(dn, self.config.linear_threshold_dn)
        if self._log is None:
            self._initialise(log, t_us)
            return EventStream.empty(sensor_size)
        if not t_us > self._t_us:
            raise EventDataError(f"frame timestamps must increase: {t_us} us after {self._t_us} us")
        t0, dt_us = self._t_us, t_us - self._t_us
        c = self.config

        # 1. photoreceptor low-pass (v2e): intensity-dependent first-order filter
        if c.cutoff_hz > 0:
            blend = np.minimum((dn + 20.0) * (2 * np.pi * c.cutoff_hz * dt_us * 1e-6 / 275.0), 1.0)
            log = self._log + blend * (log - self._log)
        # 2. leak moves the reference down during the interval
        reference = self._reference
        if c.leak_rate_hz > 0:
            reference = reference - self._leak_rate_hz * (dt_us * 1e-6) * self.thresholds_on.ravel()
        # 3. threshold crossings of the linear log path, then the reference follows the crossings
        x, y, times, polarity, active, level_change = self._crossings(log, reference, t0, dt_us)
        reference[active] += level_change
        self._reference, self._log, self._t_us = reference, log, t_us
        # 4. noise on top of the signal
        if c.shot_noise_rate_hz > 0 or len(self._hot_pixels):
            noise_x, noise_y, noise_times, noise_polarity = self._noise(dn, t0, dt_us)
            x, y = np.concatenate([x, noise_x]), np.concatenate([y, noise_y])
            times = np.concatenate([times, noise_times])
            polarity = np.concatenate([polarity, noise_polarity])
        # 5. integer microseconds in time order, then the refractory period
        order, times = _time_order(times, t0, dt_us)
        x, y, polarity = x[order], y[order], polarity[order]
        if c.refractory_us > 0 and len(times):
            keep = self._refractory_keep(y.astype(np.int32) * sensor_size[1] + x, times)
            x, y, times, polarity = x[keep], y[keep], times[keep], polarity[keep]
        return EventStream(x, y, times, polarity, sensor_size)

    def _crossings(
        self, log: np.ndarray, reference: np.ndarray, t0: float, dt_us: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every threshold crossing in the interval: x, y (uint16), float time (us) and polarity per
        event; the pixels that cross and the change of their reference level.

        With ``d = log - reference`` moving linearly from ``d0`` to ``d1``, crossing ``k`` (1-based)
        of an ON pixel happens at ``t0 + dt (k C+ - d0) / (d1 - d0)`` (OFF: ``-k C-``), computed as
        ``offset + k * spacing`` with both per pixel, so each event costs a multiply-add.
        Output is pixel-major with times ascending within a pixel.
        """
        c_on, c_off = self.thresholds_on.ravel(), self.thresholds_off.ravel()
        d1 = log - reference
        active = np.flatnonzero((d1 >= c_on) | (d1 <= -c_off))
        d1 = d1[active]
        on = d1 > 0
        step = np.where(on, c_on[active], -c_off[active])  # signed threshold
        counts = np.floor(d1 / step).astype(np.int64)  # >= 1
        d0 = self._log[active] - self._reference[active]
        span = d1 - d0  # d0 lies strictly inside (-C-, C+), so never 0
        spacing = dt_us * step / span
        offset = t0 - dt_us * d0 / span
        y, x = np.divmod(active, self.sensor_size[1])
        x, y, signs = x.astype(np.uint16), y.astype(np.uint16), np.where(on, 1, -1).astype(np.int8)
        if len(counts) and counts.max() > 1:
            # one repeat of the pixel's slot, then gathers (np.repeat per array is ~3x slower than take)
            slot = np.repeat(np.arange(len(active), dtype=np.int32), counts)
            first = (np.cumsum(counts) - counts).astype(np.float64)
            k = np.arange(1, len(slot) + 1, dtype=np.float64) - first.take(slot)
            times = offset.take(slot) + k * spacing.take(slot)
            x, y, signs = x.take(slot), y.take(slot), signs.take(slot)
        else:
            times = offset + spacing
        # rounding may step a hair outside the interval; keep the events inside it
        np.maximum(times, t0, out=times)
        np.minimum(times, t0 + dt_us, out=times)
        return x, y, times, signs, active, counts * step

    def _refractory_keep(self, pixels: np.ndarray, times_us: np.ndarray) -> np.ndarray:
        """Greedy per-pixel refractory filter of time-sorted events; updates the last-event memory.

        Loops over an event's rank within its pixel (a few per interval), vectorized over pixels:
        the k-th event of a pixel is kept iff it comes ``refractory_us`` or more after the pixel's
        last kept event.
        """
        n = len(pixels)
        by_pixel = np.argsort(pixels.astype(np.uint16) if self._last_event_us.size <= 65536 else pixels,
                              kind="stable")  # pixel groups, time order kept inside
        grouped = pixels[by_pixel]
        new_group = np.empty(n, dtype=bool)
        new_group[0] = True
        np.not_equal(grouped[1:], grouped[:-1], out=new_group[1:])
        group_start = np.flatnonzero(new_group)
        rank = np.arange(n) - np.repeat(group_start, np.diff(np.append(group_start, n)))
        rank_key = rank.astype(np.uint16) if rank.max() < 65536 else rank
        by_rank = by_pixel[np.argsort(rank_key, kind="stable")]
        rank_ends = np.cumsum(np.bincount(rank))
        keep = np.zeros(n, dtype=bool)
        last = self._last_event_us
        start = 0
        for end in rank_ends:  # events of one rank have distinct pixels
            index = by_rank[start:end]
            pixel, time = pixels[index], times_us[index]
            ok = time - last[pixel] >= self.config.refractory_us
            keep[index[ok]] = True
            last[pixel[ok]] = time[ok]
            start = end
        return keep

    def _noise(
        self, dn: np.ndarray, t0: float, dt_us: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Shot noise (Poisson, ON/OFF equally likely) and hot-pixel ON events, uniform in ``(t0, t0 + dt]``:
        x, y, float times, polarity.

        Shot noise is drawn by thinning: candidates at the dark rate on uniformly random pixels,
        each kept with probability ``1 - 0.75 * min(I / 255, 1)``, which costs O(events), not O(pixels).
        """
        c, rng = self.config, self._noise_rng
        dt_s = dt_us * 1e-6
        pixels, polarity = [], []
        if c.shot_noise_rate_hz > 0:
            candidates = rng.integers(0, len(dn), rng.poisson(c.shot_noise_rate_hz * dt_s * len(dn)))
            shot = candidates[rng.random(len(candidates)) < 1.0 - 0.75 * np.minimum(dn[candidates] / 255.0, 1.0)]
            pixels.append(shot)
            polarity.append(np.where(rng.random(len(shot)) < 0.5, 1, -1).astype(np.int8))
        if len(self._hot_pixels):
            hot = np.repeat(self._hot_pixels, rng.poisson(c.hot_pixel_rate_hz * dt_s, len(self._hot_pixels)))
            pixels.append(hot)
            polarity.append(np.ones(len(hot), dtype=np.int8))
        y, x = np.divmod(np.concatenate(pixels), self.sensor_size[1])
        times = t0 + (1.0 - rng.random(len(x))) * dt_us
        return x.astype(np.uint16), y.astype(np.uint16), times, np.concatenate(polarity)

    # -- whole sequences ----------------------------------------------------------------------
    def simulate(self, frames: np.ndarray | Frames, t_us: np.ndarray | None = None) -> EventStream:
        """Events of a frame sequence: ``frames`` (N, H, W[, 3]) uint8 or float [0, 1] with ``t_us`` (N,),
        or a :class:`Frames`. Continues from the simulator's state (call :meth:`reset` to start over).
        """
        if isinstance(frames, Frames):
            frames, t_us = frames.images, frames.t_us
        if t_us is None:
            raise EventDataError("frames: timestamps t_us are required with a frame array")
        t_us = np.asarray(t_us)
        if len(frames) != len(t_us):
            raise EventDataError(f"frames: {len(frames)} frames but {len(t_us)} timestamps")
        chunks = [self.step(frame, t) for frame, t in zip(frames, t_us)]
        if not chunks:
            raise EventDataError("frames: no frames given")
        return concatenate(chunks)


def _time_order(times_us: np.ndarray, t0_us: float, dt_us: float) -> tuple[np.ndarray, np.ndarray]:
    """Floor float timestamps of one interval ``[t0_us, t0_us + dt_us]`` to int64 microseconds and
    return ``(stable order, sorted int64 timestamps)``.

    Intervals shorter than 65534 us sort a uint16 offset key, which numpy radix-sorts (several
    times faster than a comparison sort); the offset from the integer ``floor(t0_us)`` is exact in
    float64 and non-negative, so truncation is the floor.
    """
    start = np.floor(t0_us)
    if dt_us < 65534:
        key = np.subtract(times_us, start, out=times_us).astype(np.uint16)
        order = np.argsort(key, kind="stable")
        return order, key[order].astype(np.int64) + int(start)
    times_us = np.floor(times_us).astype(np.int64)
    order = np.argsort(times_us, kind="stable")
    return order, times_us[order]
