"""The Python API that mirrors the command line: ``lase_e2v.reconstruct(path, ...)`` and friends.

These functions only resolve user-facing options (paths, method names, window specs) into the
library's objects; the work happens in :mod:`lase_e2v.events`, :mod:`lase_e2v.pipelines` etc.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lase_e2v.events.color import resolve_color_filter
from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.base import EventReader
from lase_e2v.events.windows import Windowing, parse_window_spec
from lase_e2v.pipelines.captions import CaptionedPipeline, build_caption_source, check_caption_source
from lase_e2v.pipelines.color import load_color_method
from lase_e2v.pipelines.output import (
    ReconstructionOutput,
    WrittenReconstruction,
    frames_for_playback_fps,
    playback_fps,
)
from lase_e2v.pipelines.registry import DEFAULT_LIVE_METHOD, load_method
from lase_e2v.pipelines.writers import check_fps, frames_output_kind, write_frame_stream

if TYPE_CHECKING:
    import threading

    from lase_e2v.pipelines.live import LiveReport

#: fallback window for recordings without APS frames: 40 ms = 25 frames per second
DEFAULT_EVENT_ONLY_WINDOW = "ms:40"


def resolve_windowing(reader: EventReader, window: str = "auto") -> Windowing:
    """``auto`` = between APS frames when the recording has them, else fixed 40 ms windows (only the
    frames' timestamps are read, not their images)."""
    frame_t_us = reader.read_frame_times() if window in ("auto", "frames") else None
    if window == "auto":
        window = "frames" if frame_t_us is not None and len(frame_t_us) >= 2 else DEFAULT_EVENT_ONLY_WINDOW
    return parse_window_spec(window, frame_t_us)


def reconstruct(
    path: str | Path,
    method: str = "lase",
    window: str = "auto",
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    event_format: str | None = None,
    progress: bool = False,
    topic: str | None = None,
    color: bool | None = None,
    bayer: str | None = None,
    caption: str = "stored",
    captioner: str | Path | None = None,
    output: str | Path | None = None,
    fps: float | None = None,
    **options: Any,
) -> ReconstructionOutput | WrittenReconstruction:
    """Reconstruct the recording at ``path`` into frames (one per window).

    Without ``output``: every frame in memory, a :class:`ReconstructionOutput` (``N x H x W`` float32,
    4.3 MB per second of 240x180 at 25 frames/s), for clips. With ``output`` (``.mp4``, ``.h5`` or a
    PNG folder, as ``lase-e2v reconstruct -o``): each frame is written as soon as it is made, so memory
    stays bounded whatever the recording's length, and the method and caption go into the output's
    metadata (:func:`~lase_e2v.pipelines.writers.read_frames_metadata`); returns a
    :class:`WrittenReconstruction`. The output is written under a temporary name and renamed when
    complete; an existing one is replaced (the command line refuses it unless ``--overwrite``).

    ``window``: ``auto`` (between APS frames if any, else 40 ms), ``frames``, ``events:N`` or ``ms:T``.
    ``topic``: the event topic of a ROS bag (default: found in the bag).
    ``color``: ``None`` reconstructs in colour when the file says it comes from a colour camera
    (:attr:`~lase_e2v.events.formats.base.EventReader.color_filter`), ``True`` always, ``False`` never;
    ``bayer``: the Bayer pattern (default: the file's, else ``RGGB``). Colour frames are ``(N, H, W, 3)``
    (E2VID's approach around the method: :mod:`lase_e2v.pipelines.color`), with one caption for the four
    Bayer sites (``auto`` captions a gray reconstruction of all the events at full resolution).
    ``method``: a name of :mod:`lase_e2v.pipelines.registry` (``lase-e2v methods`` lists them).
    ``caption``: the text a text-conditioned method gets: ``stored`` (the recording's own caption),
    ``auto`` (generated from a first reconstruction by the local ``captioner`` model folder, see
    :mod:`lase_e2v.pipelines.captions`) or ``empty``; the result's ``caption`` says which text it was.
    ``fps``: the video's frame rate (default: real time, :func:`~lase_e2v.pipelines.output.playback_fps`).
    ``options``: the method's keyword options (:meth:`~lase_e2v.pipelines.registry.MethodSpec.defaults`),
    e.g. for LaSe-E2V ``prompt`` (replaces the caption; refused with ``caption`` other than ``stored``),
    ``num_inference_steps``, ``guidance_scale``, ``seed``, ``ei_strength``, ``estimate``...
    """
    check_caption_source(caption, method, [captioner] if captioner else [], prompt=options.get("prompt"))
    if output is not None:
        frames_output_kind(output)
    check_fps(fps)
    reader = open_events(path, format=event_format, topic=topic)
    windowing = resolve_windowing(reader, window)
    pattern = resolve_color_filter(reader.color_filter, color, bayer)
    if pattern is None:
        pipeline = load_method(method, checkpoint, device, **options)
    else:  # inside the caption wrapper: one caption per recording, given to every Bayer site
        pipeline = load_color_method(method, pattern, checkpoint, device, **options)
    given: list[str | None] = []
    captioned = CaptionedPipeline(pipeline, build_caption_source(caption, captioner, device),
                                  on_caption=lambda stored, text: given.append(text))
    if output is None:
        return replace(captioned(reader, windowing, progress=progress), caption=given[-1])
    frames = captioned.iter_recording(reader, windowing, progress=progress)
    # the first frame fixes the caption, which the metadata holds; windows of N events, the video's rate
    head = list(islice(frames, max(1, frames_for_playback_fps(windowing))))
    metadata = {"method": method, "caption_source": caption, "caption": given[-1], "prompt": options.get("prompt")}
    metadata = {key: value for key, value in metadata.items() if value is not None}
    fps = fps or playback_fps(windowing, [item.window.t_end_us for item in head])
    color = head[0].image.ndim == 3
    count = write_frame_stream(output, ((item.image, item.window.t_end_us) for item in chain(head, frames)),
                               fps, metadata)
    return WrittenReconstruction(Path(output), count, given[-1], fps, color)


def live(
    source: str,
    output: str | Path | None = None,
    method: str = DEFAULT_LIVE_METHOD,
    window: str = DEFAULT_EVENT_ONLY_WINDOW,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    show: bool = False,
    fps: float | None = None,
    speed: float = 1.0,
    topic: str | None = None,
    stop: threading.Event | None = None,
    progress: bool = False,
    **options: Any,
) -> LiveReport:
    """Reconstruct a live stream as it arrives, writing (and showing) each frame at once.

    ``source``: ``HOST:PORT`` (a DV network stream), ``camera`` / ``camera:SERIAL``, or a recording
    replayed at ``speed`` x real time (``topic`` for a ROS bag); see :mod:`lase_e2v.events.live`.
    ``window``: ``ms:T`` or ``events:N``. ``method`` and ``options``: as for :func:`reconstruct`; a
    replayed recording's caption reaches the method as offline, a DV stream or camera has none. Ends
    when the stream ends or ``stop`` is set, keeping the output (an existing one is replaced: the
    command line refuses it unless ``--overwrite``); returns the
    :class:`~lase_e2v.pipelines.live.LiveReport` (latency, frames/s).
    """
    from lase_e2v.events.live import open_live
    from lase_e2v.pipelines.live import check_live_output, parse_live_window, run_live

    check_live_output(output, show)
    check_fps(fps)
    windowing = parse_live_window(window)
    pipeline = load_method(method, checkpoint, device, **options)
    with open_live(source, speed=speed, topic=topic) as stream:
        return run_live(stream, pipeline, windowing, output, fps, show, stop, progress)
