"""The Python API that mirrors the command line: ``lase_e2v.reconstruct(path, ...)`` and friends.

These functions only resolve user-facing options (paths, method names, window specs) into the
library's objects; the work happens in :mod:`lase_e2v.events`, :mod:`lase_e2v.pipelines` etc.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lase_e2v.errors import ConfigError
from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.base import EventReader
from lase_e2v.events.windows import Windowing, parse_window_spec
from lase_e2v.pipelines.output import ReconstructionOutput, ReconstructionPipeline

METHODS = ("lase", "firenet", "firenet_plus", "e2vid", "pienet_lite", "pienet", "integrate")
#: fallback window for recordings without APS frames: 40 ms = 25 frames per second
DEFAULT_EVENT_ONLY_WINDOW = "ms:40"


def resolve_windowing(reader: EventReader, window: str = "auto") -> Windowing:
    """``auto`` = between APS frames when the recording has them, else fixed 40 ms windows."""
    frames = reader.read_frames() if window in ("auto", "frames") else None
    if window == "auto":
        window = "frames" if frames is not None and len(frames) >= 2 else DEFAULT_EVENT_ONLY_WINDOW
    return parse_window_spec(window, frames.t_us if frames is not None else None)


def load_method(
    method: str,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    **options: Any,
) -> ReconstructionPipeline:
    """Build the reconstructor called ``method`` (one of :data:`METHODS`).

    ``dtype``: ``float32``, ``bfloat16`` or ``float16`` (:mod:`lase_e2v.pipelines.precision`);
    ``None`` keeps the method's default (float32; for ``lase`` the checkpoint's sampling options).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    if method == "lase":
        from lase_e2v.pipelines.lase import load_lase_pipeline

        return load_lase_pipeline(checkpoint, device=device, **options, **({"dtype": dtype} if dtype else {}))
    if options:
        unused = ", ".join(sorted(options))
        raise ConfigError(f"options {unused} apply to --method lase only, not '{method}'")
    from lase_e2v.pipelines import load_reconstructor

    return load_reconstructor(method, checkpoint=checkpoint, device=device, dtype=dtype or "float32")


def reconstruct(
    path: str | Path,
    method: str = "lase",
    window: str = "auto",
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    event_format: str | None = None,
    progress: bool = False,
    dtype: str | None = None,
    **options: Any,
) -> ReconstructionOutput:
    """Reconstruct the recording at ``path`` into frames (one per window).

    ``window``: ``auto`` (between APS frames if any, else 40 ms), ``frames``, ``events:N`` or ``ms:T``.
    ``device`` / ``dtype``: where and in which precision the networks run (see :func:`load_method`).
    ``options`` go to LaSe-E2V only: ``prompt`` (default: the recording's caption, if it has one,
    see :attr:`ReconstructionPipeline.scene_caption`),
    ``num_inference_steps``, ``guidance_scale``, ``seed``, ``ei_strength``, ``estimate``...
    """
    reader = open_events(path, format=event_format)
    windowing = resolve_windowing(reader, window)
    return load_method(method, checkpoint, device, dtype, **options)(reader, windowing, progress=progress)
