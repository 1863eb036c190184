"""Events from a video file or a folder of images, streamed through the simulator into any format.

Frame ``i`` is at ``i / fps`` seconds (``fps`` from the video file unless given; required for an
image folder). A video's frame rate is usually far below the ~1 pixel per sample that accurate
events need: the simulator then interpolates log intensity linearly between frames (ESIM), which
smears fast motion; v2e up-samples with a learned interpolator first (not done here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lase_e2v.errors import ConfigError, EventFormatError
from lase_e2v.events.formats import write_events
from lase_e2v.events.streams import EventStream, concatenate
from lase_e2v.simulate.esim import EventSimulator, SimulatorConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _frames(source: Path) -> tuple[Iterator[np.ndarray], float | None, int | None]:
    """Frames of a video file or an image folder (name order), its stated fps, and its frame count."""
    import imageio.v3 as iio

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EventFormatError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        return (iio.imread(f) for f in files), None, len(files)
    if not source.is_file():
        raise EventFormatError(f"{source}: no such video file or image folder")
    try:
        metadata = iio.immeta(source)
    except (OSError, ValueError) as error:
        raise EventFormatError(f"{source}: not a readable video ({error})") from None
    return iio.imiter(source), metadata.get("fps"), None


def iter_video_events(
    source: str | Path, config: SimulatorConfig | None = None, seed: int = 0, fps: float | None = None
) -> Iterator[EventStream]:
    """Yield the events of each frame interval of a video file or image folder (bounded memory)."""
    frames, stated_fps, _ = _frames(Path(source))
    fps = fps or stated_fps
    if not fps:
        raise ConfigError(f"{source}: the frame rate is unknown; pass fps")
    if fps <= 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    simulator = EventSimulator(config, seed)
    for index, frame in enumerate(frames):
        yield simulator.step(frame, round(index * 1e6 / fps))


def read_video_events(
    source: str | Path, config: SimulatorConfig | None = None, seed: int = 0, fps: float | None = None
) -> EventStream:
    """All events of a video file or image folder in memory."""
    return concatenate(list(iter_video_events(source, config, seed, fps)))


def simulate_video(
    source: str | Path,
    output: str | Path,
    fps: float | None = None,
    threshold: float | None = None,
    threshold_sigma: float | None = None,
    seed: int = 0,
    config: SimulatorConfig | None = None,
    progress: bool = True,
) -> int:
    """Simulate a video file or image folder and write the events to ``output`` (.h5, .txt or an
    EVREAL folder, by :func:`lase_e2v.events.formats.write_events`, atomically). Returns the count.

    ``threshold`` / ``threshold_sigma`` override ``config``'s C+ = C- and sigma (default config:
    :class:`SimulatorConfig`).
    """
    config = config or SimulatorConfig()
    if threshold is not None:
        config = dataclasses.replace(config, threshold_on=threshold, threshold_off=threshold)
    if threshold_sigma is not None:
        config = dataclasses.replace(config, threshold_sigma=threshold_sigma)
    _, _, total = _frames(Path(source))
    count = 0

    def counted() -> Iterator[EventStream]:
        nonlocal count
        with tqdm(total=total, unit="frame", desc="simulate", disable=not progress, leave=False) as bar:
            for chunk in iter_video_events(source, config, seed, fps):
                count += len(chunk)
                bar.update(1)
                yield chunk

    write_events(output, counted())
    return count
