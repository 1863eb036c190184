"""``lase-e2v demo``: reconstruct the bundled real clip and show it next to its events and APS frames.

The clip is the first 1.16 s of ECD ``slider_depth`` (CC BY-NC-SA 3.0, see ``assets/demo/README.md``),
so the demo runs on a fresh install without any data. Windows are the intervals between APS frames
(the EVREAL protocol) and each reconstruction is shown with the APS frame at its window's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from lase_e2v.atomic import atomic_path
from lase_e2v.evaluation.metrics import mse, ssim
from lase_e2v.evaluation.report import caption_strip
from lase_e2v.events.formats import open_events
from lase_e2v.events.representations import polarity_image_rgb, to_polarity_image
from lase_e2v.events.windows import FrameWindows
from lase_e2v.pipelines.registry import load_method
from lase_e2v.pipelines.writers import real_time_fps, to_uint8, write_video

DEMO_CLIP = Path(str(files("lase_e2v") / "assets" / "demo" / "slider_depth_clip.h5"))
#: rows of the PNG grid (evenly spaced reconstructed frames)
GRID_ROWS = 4


@dataclass
class DemoResult:
    """Paths written and the reconstruction's mean scores against the APS frames."""

    video: Path
    grid: Path
    num_frames: int
    mse: float
    ssim: float


def demo_outputs(output_dir: str | Path, method: str) -> tuple[Path, Path]:
    """The ``(video, grid)`` paths :func:`run_demo` writes for ``method`` into ``output_dir``."""
    output_dir = Path(output_dir)
    return output_dir / f"{method}_side_by_side.mp4", output_dir / f"{method}_grid.png"


def _gray_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(image, 0.0, 1.0)[..., None], 3, axis=2)


def run_demo(
    output_dir: str | Path = "outputs/demo",
    method: str = "lase",
    device: str = "cpu",
    clip: str | Path = DEMO_CLIP,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    **options,
) -> DemoResult:
    """Reconstruct ``clip`` with ``method`` and write ``<method>_side_by_side.mp4`` (events |
    reconstruction | APS) and ``<method>_grid.png`` into ``output_dir``. ``checkpoint`` replaces the
    method's bundled weights; ``options`` are the method's (LaSe-E2V: ``prompt``, default the clip's
    caption; ``num_inference_steps``, ``seed``...)."""
    reader = open_events(clip)
    frames = reader.read_frames()
    windowing = FrameWindows(frames.t_us)
    pipeline = load_method(method, checkpoint, device, **options)
    aps = frames.as_float()
    names = ["events", method, "APS frame"]
    header = np.concatenate([caption_strip(aps.shape[2], name) for name in names], axis=1)
    tiles, errors, similarities = [], [], []
    windows = windowing.iter_windows(reader.iter_chunks())
    for item in pipeline.iter_frames(windows, caption=reader.caption, progress=progress):
        reference = aps[int(np.searchsorted(frames.t_us, item.window.t_end_us))]
        events = item.window.events
        net = to_polarity_image(events.x, events.y, events.p, events.sensor_size)
        tiles.append(np.concatenate([polarity_image_rgb(net), _gray_rgb(item.image), _gray_rgb(reference)], axis=1))
        errors.append(mse(item.image, reference))
        similarities.append(ssim(item.image, reference))

    video, grid_path = demo_outputs(output_dir, method)
    write_video(
        video,
        (np.concatenate([header, tile], axis=0) for tile in tiles),
        fps=real_time_fps(frames.t_us),
    )
    rows = np.linspace(0, len(tiles) - 1, min(GRID_ROWS, len(tiles))).round().astype(int)
    grid = np.concatenate([header] + [tiles[i] for i in rows], axis=0)
    from PIL import Image

    with atomic_path(grid_path) as temporary:
        Image.fromarray(to_uint8(grid)).save(temporary, format="png")
    return DemoResult(video, grid_path, len(tiles),
                      float(np.mean(errors)), float(np.mean(similarities)))
