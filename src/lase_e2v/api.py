"""The Python API that mirrors the command line: ``lase_e2v.reconstruct(path, ...)`` and friends.

These functions only resolve user-facing options (paths, method names, window specs) into the
library's objects; the work happens in :mod:`lase_e2v.events`, :mod:`lase_e2v.pipelines` etc.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.base import EventReader
from lase_e2v.events.windows import Windowing, parse_window_spec
from lase_e2v.pipelines.output import ReconstructionOutput
from lase_e2v.pipelines.registry import load_method

#: fallback window for recordings without APS frames: 40 ms = 25 frames per second
DEFAULT_EVENT_ONLY_WINDOW = "ms:40"


def resolve_windowing(reader: EventReader, window: str = "auto") -> Windowing:
    """``auto`` = between APS frames when the recording has them, else fixed 40 ms windows."""
    frames = reader.read_frames() if window in ("auto", "frames") else None
    if window == "auto":
        window = "frames" if frames is not None and len(frames) >= 2 else DEFAULT_EVENT_ONLY_WINDOW
    return parse_window_spec(window, frames.t_us if frames is not None else None)


def reconstruct(
    path: str | Path,
    method: str = "lase",
    window: str = "auto",
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    event_format: str | None = None,
    progress: bool = False,
    **options: Any,
) -> ReconstructionOutput:
    """Reconstruct the recording at ``path`` into frames (one per window).

    ``window``: ``auto`` (between APS frames if any, else 40 ms), ``frames``, ``events:N`` or ``ms:T``.
    ``method``: a name of :mod:`lase_e2v.pipelines.registry` (``lase-e2v methods`` lists them).
    ``options``: the method's keyword options (:meth:`~lase_e2v.pipelines.registry.MethodSpec.defaults`),
    e.g. for LaSe-E2V ``prompt`` (default: the recording's caption, if it has one),
    ``num_inference_steps``, ``guidance_scale``, ``seed``, ``ei_strength``, ``estimate``...
    """
    reader = open_events(path, format=event_format)
    windowing = resolve_windowing(reader, window)
    return load_method(method, checkpoint, device, **options)(reader, windowing, progress=progress)
