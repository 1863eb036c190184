"""A quick look at a sequence: a ground-truth frame, the events before it, and the caption (PNG)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import ConfigError, EventFormatError
from lase_e2v.events.formats.hdf5 import Hdf5Reader
from lase_e2v.events.representations import polarity_image_rgb, to_polarity_image
from lase_e2v.events.streams import concatenate


def save_preview(h5_path: str | Path, png_path: str | Path, frame_index: int | None = None) -> Path:
    """Write a PNG with frame ``frame_index`` (default: the middle one) next to the events between
    the previous frame and it, titled with the file's ``caption`` attribute.

    Reads any HDF5 file with frames (the layout :func:`make_dataset` writes); events are read in
    chunks and only the window is kept.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reader = Hdf5Reader(h5_path)
    frames = reader.read_frames()
    if frames is None or len(frames) < 2:
        raise EventFormatError(f"{h5_path}: needs at least 2 frames (images/) for a preview")
    if frame_index is None:
        frame_index = len(frames) // 2
    if not 1 <= frame_index < len(frames):
        raise ConfigError(f"frame_index must be in 1..{len(frames) - 1} for {h5_path}, got {frame_index}")
    t_start, t_end = int(frames.t_us[frame_index - 1]), int(frames.t_us[frame_index])
    window = concatenate(
        [chunk.time_slice(t_start, t_end) for chunk in reader.iter_chunks()] or [reader.read()[:0]]
    )
    caption = str(reader.attrs.get("caption", ""))

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4), dpi=100)
    left.imshow(frames.as_float()[frame_index], cmap="gray", vmin=0, vmax=1)
    left.set_title(f"frame {frame_index} ({t_end / 1e6:.3f} s)", fontsize=9)
    right.imshow(polarity_image_rgb(to_polarity_image(window.x, window.y, window.p, reader.sensor_size)))
    right.set_title(f"{len(window)} events, {(t_end - t_start) / 1e3:.1f} ms (red ON, blue OFF)", fontsize=9)
    for axis in (left, right):
        axis.axis("off")
    figure.suptitle("\n".join(textwrap.wrap(caption, 90)), fontsize=10)
    figure.tight_layout()
    with atomic_path(png_path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return Path(png_path)
