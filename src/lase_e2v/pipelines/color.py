"""Colour reconstruction around any gray method: E2VID's approach for colour event cameras.

E2VID (Rebecq et al., TPAMI 2019, Sec. "Color event cameras"; rpg_e2vid ``--color``,
``image_reconstructor.py`` and ``utils/inference_utils.py`` ``merge_channels_into_color_image`` /
``upsample_color_image``) reconstructs a Color-DAVIS346 recording in three steps, followed here:

1. split every window's events by Bayer site (:func:`~lase_e2v.events.color.split_events`) and
   reconstruct each of the four sites at quarter resolution with the gray method, each with its own
   recurrent state (four instances of the method);
2. upsample the four images to full resolution and combine them into RGB, the two greens averaged
   (:func:`~lase_e2v.events.color.demosaic`; E2VID resizes x2 and shifts by one pixel, here each
   site is interpolated from the true positions of its pixels);
3. with ``luminance="full"`` (as E2VID does), also reconstruct the full-resolution window, all
   sites together, with a fifth instance, and take that image as the brightness of the result.
   E2VID puts it in the L channel of OpenCV's 8-bit CIELAB; here each pixel's RGB is scaled so that
   its BT.601 luma equals it (``rgb * Y_full / Y(rgb)``), which keeps the pixel's chromaticity as
   LAB keeps a* and b*, in linear intensity (the methods' outputs) and without 8-bit rounding.

The default, ``luminance="sites"``, skips step 3: on simulated colour sequences (``benchmarks/color.py``)
the four sites alone gave better MSE, SSIM and colour than with the full-resolution luminance, which
gave a better LPIPS (the full-resolution gray reconstruction of events under a Bayer filter is
sharper but carries the filter's checkerboard), at half the cost.

The wrapper keeps the pipeline contract (:class:`~lase_e2v.pipelines.output.ReconstructionPipeline`):
``num_bins`` of the gray method, ``iter_frames(windows, caption)`` (the caption reaches every
instance), ``reset()`` of every instance; frames are ``(H, W, 3)`` RGB in [0, 1], each paired with
the full-resolution window. Windows reach the instances in step, so a method that reads ahead (LaSe-E2V
reads a clip of windows before its first frame) holds at most that many windows per instance.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lase_e2v.errors import ConfigError
from lase_e2v.events.color import check_pattern, demosaic, split_events, to_luma
from lase_e2v.events.windows import Window
from lase_e2v.pipelines.output import ReconstructedFrame, ReconstructionPipeline
from lase_e2v.pipelines.registry import get_method, load_method

#: how the full-resolution brightness is made (module docstring, step 3)
LUMINANCE_MODES = ("full", "sites")
#: luma below which a pixel's colour is too dark to scale (it keeps its demosaiced value)
_DARK = 1e-4


def replace_luminance(rgb: np.ndarray, luminance: np.ndarray) -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` with each pixel scaled to the BT.601 luma ``luminance`` ``(H, W)``, keeping
    its chromaticity; clipped to [0, 1]. Pixels of (near) zero luma take ``luminance`` as gray."""
    luma = to_luma(rgb)
    dark = luma < _DARK
    gain = np.where(dark, 0.0, luminance / np.maximum(luma, _DARK))
    result = rgb * gain[..., None] + np.where(dark, luminance, 0.0)[..., None]
    return np.clip(result, 0.0, 1.0).astype(np.float32)


class _WindowSplitter:
    """Hands each branch (a site, or the full window) its part of every window, pulling the next
    window from ``windows`` only when a branch has consumed all it was given."""

    def __init__(self, windows: Iterable[Window], with_full: bool) -> None:
        self._windows = iter(windows)
        self._with_full = with_full
        self._queues: list[deque[Window]] = [deque() for _ in range(5 if with_full else 4)]
        self.originals: deque[Window] = deque()

    def _advance(self) -> bool:
        window = next(self._windows, None)
        if window is None:
            return False
        self.originals.append(window)
        parts = [Window(window.index, window.t_start_us, window.t_end_us, events)
                 for events in split_events(window.events)]
        for queue, part in zip(self._queues, parts + [window] if self._with_full else parts):
            queue.append(part)
        return True

    def branch(self, index: int) -> Iterator[Window]:
        queue = self._queues[index]
        while queue or self._advance():
            yield queue.popleft()


class ColorReconstructionPipeline(ReconstructionPipeline):
    """E2VID's colour reconstruction (module docstring) with instances of one gray method.

    Args:
        site_pipelines: four instances of the gray method, one per Bayer site (distinct objects:
            each carries its own state).
        pattern: the Bayer pattern (:data:`~lase_e2v.events.color.BAYER_PATTERNS`).
        full_pipeline: a fifth instance for the full-resolution luminance, or ``None`` (``"sites"``).
    """

    def __init__(
        self,
        site_pipelines: list[ReconstructionPipeline],
        pattern: str = "RGGB",
        full_pipeline: ReconstructionPipeline | None = None,
    ) -> None:
        branches = [*site_pipelines, *([full_pipeline] if full_pipeline is not None else [])]
        if len(site_pipelines) != 4:
            raise ConfigError(f"colour reconstruction needs 4 site pipelines, got {len(site_pipelines)}")
        if len({id(branch) for branch in branches}) != len(branches):
            raise ConfigError("colour reconstruction needs a separate pipeline per Bayer site (each keeps its own "
                              "state): give a method name or a factory, not one pipeline object")
        self.site_pipelines = list(site_pipelines)
        self.full_pipeline = full_pipeline
        self.pattern = check_pattern(pattern)
        self.name = site_pipelines[0].name

    @classmethod
    def from_factory(
        cls, factory: Callable[[], ReconstructionPipeline], pattern: str = "RGGB", luminance: str = "sites"
    ) -> ColorReconstructionPipeline:
        """Build the instances with ``factory`` (four, five with ``luminance="full"``)."""
        if luminance not in LUMINANCE_MODES:
            raise ConfigError(f"luminance '{luminance}' unknown; use one of {', '.join(LUMINANCE_MODES)}")
        return cls([factory() for _ in range(4)], pattern, factory() if luminance == "full" else None)

    @property
    def branches(self) -> list[ReconstructionPipeline]:
        return [*self.site_pipelines, *([self.full_pipeline] if self.full_pipeline is not None else [])]

    @property
    def num_bins(self) -> int | None:
        return self.site_pipelines[0].num_bins

    def reset(self) -> None:
        for branch in self.branches:
            branch.reset()

    def merge(self, site_images: list[np.ndarray], full_image: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
        """Steps 2-3: the four sites' images (and the full-resolution one) -> RGB ``(H, W, 3)`` in [0, 1]."""
        rgb = np.clip(demosaic(site_images, self.pattern, size), 0.0, 1.0)
        return rgb if full_image is None else replace_luminance(rgb, np.clip(full_image, 0.0, 1.0))

    def iter_frames(
        self, windows: Iterable[Window], caption: str | None = None, progress: bool = False
    ) -> Iterator[ReconstructedFrame]:
        """One RGB frame per window; ``caption`` goes to every instance."""
        windows = tqdm(windows, desc=f"{self.name} (colour)", unit="frame", disable=not progress)
        splitter = _WindowSplitter(windows, self.full_pipeline is not None)
        streams = [branch.iter_frames(splitter.branch(k), caption=caption)
                   for k, branch in enumerate(self.branches)]
        for items in zip(*streams):
            window = splitter.originals.popleft()
            full = items[4].image if len(items) == 5 else None
            image = self.merge([item.image for item in items[:4]], full, window.events.sensor_size)
            yield ReconstructedFrame(window, image)


def load_color_method(
    name: str,
    pattern: str,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    luminance: str = "sites",
    **options: Any,
) -> ColorReconstructionPipeline:
    """The registered method ``name`` (:func:`~lase_e2v.pipelines.registry.load_method`) in colour."""
    get_method(name).check_options(options)  # before building anything
    return ColorReconstructionPipeline.from_factory(lambda: load_method(name, checkpoint, device, **options),
                                                    pattern, luminance)
