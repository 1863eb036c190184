"""The evaluation protocol of EVREAL (Ercan et al., CVPRW 2023), for any :class:`ReconstructionPipeline`.

Per sequence (:func:`evaluate_method`):

1. read the APS frames; the time origin is the earlier of the first frame and the first event
   (EVREAL's converters shift both to start there), and the cut ``(start_s, end_s)`` is relative to it;
2. cut the events into windows between consecutive APS frames
   (:class:`~lase_e2v.events.windows.FrameWindows`), starting ``warmup_s`` before the cut so that
   recurrent methods have settled (EVREAL starts 10 s early) and stopping at the cut's end;
3. reconstruct every window; prediction ``i`` is compared with the APS frame at its window's end.
   As in EVREAL, the prediction's time is its window's last event (the frame time for an empty
   window); it is scored only when inside the cut and within ``ts_tol_ms`` of the frame;
4. clip prediction and frame to [0, 1], score MSE, SSIM, LPIPS (:mod:`.metrics`) and the temporal
   scores of consecutive scored frames (:mod:`.temporal`); time the reconstruction (frames/s,
   including event reading and windowing, excluding scoring).

Colour (a colour camera's recording, reconstructed by :mod:`lase_e2v.pipelines.color`) is outside
EVREAL's gray benchmarks; our convention (``color_scoring="luma"``, the default) scores an RGB
prediction or reference by its BT.601 luma, which puts colour and gray reconstructions in one table; ``"rgb"`` scores against
an RGB reference in RGB (:mod:`.metrics`), a gray prediction as gray on all three channels. Videos keep
the colour either way.

Differences from EVREAL, all below one frame per sequence: EVREAL also emits an empty-voxel
prediction for the very first APS frame and never reconstructs the last one; its windows end at the
last event *at or before* a frame instead of strictly before it.

The benchmark over methods x sequences and its outputs are :mod:`.benchmark`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.evaluation.datasets import COLOR_SCORING, default_sequence_name
from lase_e2v.evaluation.metrics import Metric, build_metrics, clip_unit
from lase_e2v.evaluation.temporal import TemporalMetrics
from lase_e2v.events.color import as_gray
from lase_e2v.events.formats.base import EventReader
from lase_e2v.events.representations import to_polarity_image
from lase_e2v.events.streams import Frames
from lase_e2v.events.windows import FrameWindows
from lase_e2v.pipelines.output import ReconstructionPipeline

#: the label of sequences evaluated without a dataset definition
CUSTOM_DATASET = "custom"


@dataclass
class KeptFrames:
    """Frames kept for videos: reference frame ``indices``, uint8 ``predictions``/``references`` ``(H, W)``
    (or RGB ``(H, W, 3)``) and ``event_signs`` (int8 ``(H, W)``, sign of the window's summed polarity)."""

    indices: list[int] = field(default_factory=list)
    t_us: list[int] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)
    references: list[np.ndarray] = field(default_factory=list)
    event_signs: list[np.ndarray] = field(default_factory=list)


@dataclass
class SequenceResult:
    """Scores of one method on one sequence.

    ``records``: one dict per scored frame (``index`` of the APS frame, ``t_us``, ``t_s`` from the
    origin, the image metrics and the temporal scores, ``None`` where a pair has no score);
    ``means``: the mean of every score over the sequence; ``frames_per_second``: reconstruction speed.
    """

    method: str
    sequence: str
    dataset: str
    path: str
    cut_s: tuple[float, float] | None
    records: list[dict[str, Any]]
    means: dict[str, float]
    num_windows: int
    reconstruction_s: float
    kept: KeptFrames | None = None

    @property
    def num_frames(self) -> int:
        return len(self.records)

    @property
    def frames_per_second(self) -> float:
        return self.num_windows / self.reconstruction_s if self.reconstruction_s > 0 else math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "dataset": self.dataset,
            "sequence": self.sequence,
            "path": self.path,
            "cut_s": list(self.cut_s) if self.cut_s else None,
            "num_frames": self.num_frames,
            "num_windows": self.num_windows,
            "reconstruction_s": self.reconstruction_s,
            "frames_per_second": _finite_or_none(self.frames_per_second),
            "means": {k: _finite_or_none(v) for k, v in self.means.items()},
            "frames": self.records,
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _open(sequence: str | Path | EventReader) -> EventReader:
    if isinstance(sequence, EventReader):
        return sequence
    from lase_e2v.events.formats import open_events

    return open_events(sequence)


def _first_event_t_us(reader: EventReader) -> int:
    chunks = reader.iter_chunks(chunk_events=1024)
    try:
        first = next(chunks)
    except StopIteration:
        raise EventDataError(f"{reader.path}: the recording has no events") from None
    finally:
        chunks.close()
    return int(first.t[0])


def _window_bounds(
    frame_t_us: np.ndarray,
    origin_us: int,
    cut_s: tuple[float, float] | None,
    warmup_s: float,
    ts_tol_ms: float,
) -> tuple[int, np.ndarray]:
    """``(index of the first bound's frame, bounds)``: frames from ``warmup_s`` before the cut to its end."""
    if cut_s is None:
        return 0, frame_t_us
    relative_s = (frame_t_us - origin_us) / 1e6
    start_s, end_s = cut_s
    first = int(np.searchsorted(relative_s, start_s - warmup_s, side="left"))
    last = int(np.searchsorted(relative_s, end_s + ts_tol_ms / 1e3, side="right"))  # exclusive
    first = max(first - 1, 0)  # the window ending at the first frame starts at the one before
    if last - first < 2:
        raise EventDataError(
            f"cut {start_s}-{end_s} s holds fewer than 2 APS frames (frames span "
            f"{relative_s[0]:.3f}-{relative_s[-1]:.3f} s from the recording start)"
        )
    return first, frame_t_us[first:last]


def scored_pair(prediction: np.ndarray, reference: np.ndarray, color_scoring: str) -> tuple[np.ndarray, np.ndarray]:
    """The two images the scores compare. ``"rgb"`` with an RGB reference: both RGB, a gray prediction
    on all three channels (it has no colour, which RGB scores count against it); otherwise both gray,
    an RGB one by its luma."""
    if color_scoring == "rgb" and reference.ndim == 3:
        return (prediction if prediction.ndim == 3 else np.repeat(prediction[..., None], 3, axis=2)), reference
    return as_gray(prediction), as_gray(reference)


def evaluate_method(
    pipeline: ReconstructionPipeline,
    sequence: str | Path | EventReader,
    cut: tuple[float, float] | None = None,
    num_bins: int = 5,
    ts_tol_ms: float = 1.0,
    warmup_s: float = 10.0,
    metrics: Sequence[str] | Sequence[Metric] = ("mse", "ssim", "lpips"),
    keep_frames: bool | int = False,
    progress: bool = False,
    device: str = "cpu",
    method_name: str | None = None,
    sequence_name: str | None = None,
    dataset: str | None = None,
    color_scoring: str = "luma",
) -> SequenceResult:
    """Score ``pipeline`` on one recording with APS frames (EVREAL protocol, see the module docstring).

    Args:
        pipeline: a :class:`ReconstructionPipeline`; it is reset first and gets the recording's caption.
            Its ``num_bins``, unless ``None`` (no voxel grids), must equal ``num_bins``: the protocol
            fixes the voxel grid, a mismatch is a :class:`ConfigError`.
        sequence: a path :func:`~lase_e2v.events.formats.open_events` reads, or an open reader.
        cut: ``(start_s, end_s)`` from the recording start; ``None`` scores every frame.
        ts_tol_ms: largest prediction-to-frame time difference that is scored (EVREAL: 1 ms).
        warmup_s: seconds reconstructed before the cut without scoring.
        metrics: names (``mse``, ``ssim``, ``lpips``) or ready metric objects (reset here).
        keep_frames: keep scored frames for videos: ``True`` all, an int at most that many.
        color_scoring: ``"luma"`` (colour frames scored by their luma, as gray) or ``"rgb"``
            (scored in RGB against an RGB reference); see the module docstring.
    """
    if color_scoring not in COLOR_SCORING:
        raise ConfigError(f"color_scoring '{color_scoring}' unknown; use one of {', '.join(COLOR_SCORING)}")
    if not isinstance(pipeline, ReconstructionPipeline):
        raise ConfigError(f"{type(pipeline).__name__} is not a ReconstructionPipeline")
    if pipeline.num_bins is not None and pipeline.num_bins != num_bins:
        raise ConfigError(
            f"pipeline '{pipeline.name}' uses {pipeline.num_bins} voxel bins; the protocol needs {num_bins}"
        )
    reader = _open(sequence)
    frames = reader.read_frames()
    if frames is None or len(frames) < 2:
        raise EventDataError(f"{reader.path}: needs at least 2 APS frames as references for evaluation")
    metric_objects = (
        build_metrics(tuple(metrics), device=device)
        if all(isinstance(m, str) for m in metrics)
        else list(metrics)
    )
    for metric in metric_objects:
        metric.reset()
    temporal = TemporalMetrics()
    keep_limit = (math.inf if keep_frames is True else int(keep_frames)) if keep_frames else 0
    kept = KeptFrames() if keep_limit else None

    # 1. time origin and the frames whose windows are reconstructed
    origin_us = min(int(frames.t_us[0]), _first_event_t_us(reader))
    first_frame, bounds = _window_bounds(frames.t_us, origin_us, cut, warmup_s, ts_tol_ms)
    windows = FrameWindows(tuple(int(t) for t in bounds)).iter_windows(reader.iter_chunks())
    windows = tqdm(
        windows,
        total=len(bounds) - 1,
        desc=sequence_name or default_sequence_name(reader.path),
        unit="frame",
        disable=not progress,
        leave=False,
    )

    # 2. reconstruct window by window, scoring each prediction against the frame at its window end
    pipeline.reset()
    reconstructed = pipeline.iter_frames(windows, caption=reader.caption)
    records: list[dict[str, Any]] = []
    num_windows, reconstruction_s = 0, 0.0
    while True:
        started = time.perf_counter()
        item = next(reconstructed, None)
        reconstruction_s += time.perf_counter() - started
        if item is None:
            break
        num_windows += 1
        index = first_frame + item.window.index + 1
        events = item.window.events
        prediction_t_us = int(events.t[-1]) if len(events) else int(item.window.t_end_us)
        relative_s = (prediction_t_us - origin_us) / 1e6
        in_cut = cut is None or cut[0] <= relative_s <= cut[1]
        in_tolerance = abs(int(frames.t_us[index]) - prediction_t_us) / 1e3 <= ts_tol_ms
        if not (in_cut and in_tolerance):
            temporal.skip()
            continue
        prediction = clip_unit(item.image)
        reference = clip_unit(
            Frames(frames.images[index][None], frames.t_us[index : index + 1]).as_float()[0]
        )
        record: dict[str, Any] = {
            "index": index,
            "t_us": int(frames.t_us[index]),
            "t_s": round((int(frames.t_us[index]) - origin_us) / 1e6, 6),
        }
        scored = scored_pair(prediction, reference, color_scoring)
        for metric in metric_objects:
            record[metric.name] = _finite_or_none(metric.update(*scored))
        scores = temporal.update(*scored, events)
        for name in TemporalMetrics.names:
            record[name] = _finite_or_none(scores.get(name, math.nan))
        records.append(record)
        if kept is not None and len(kept.indices) < keep_limit:
            kept.indices.append(index)
            kept.t_us.append(int(frames.t_us[index]))
            kept.predictions.append(np.round(prediction * 255).astype(np.uint8))
            kept.references.append(np.round(reference * 255).astype(np.uint8))
            polarity = to_polarity_image(events.x, events.y, events.p, events.sensor_size)
            kept.event_signs.append(np.sign(polarity).astype(np.int8))
    if not records:
        span = f" inside the cut {cut[0]}-{cut[1]} s" if cut else ""
        raise EventDataError(f"{reader.path}: no prediction was scored{span} (check the cut and the data)")

    means = {metric.name: metric.mean() for metric in metric_objects}
    means.update(temporal.means())
    return SequenceResult(
        method=method_name or pipeline.name,
        sequence=sequence_name or default_sequence_name(reader.path),
        dataset=dataset or CUSTOM_DATASET,
        path=str(reader.path),
        cut_s=cut,
        records=records,
        means=means,
        num_windows=num_windows,
        reconstruction_s=reconstruction_s,
        kept=kept,
    )
