"""Recurrent CNN reconstruction (FireNet(+), E2VID(+), PIE-Net(-Lite), CISTA-TC): windows -> voxel
grids -> frames.

Per window (the EVREAL protocol):

1. voxel grid ``(bins, H, W)`` of the window's events (E2VID convention), normalised as the weights
   expect (``model.config.voxel_normalization``: non-zero mean/std for FireNet, E2VID and CISTA-TC,
   raw for the "+" models and PIE-Net); an empty window gives zeros;
2. zero-pad to the network's size multiple, centred (``model.input_multiple``: 1 for FireNet,
   ``2**num_encoders`` for E2VID, the product of the pool sizes for PIE-Net, 8 for CISTA-TC as in
   EVREAL), so any sensor size works, in the layout the model prefers (``model.memory_format``:
   channels-last for FireNet);
3. one network step with the recurrent state of the previous window (whatever the model returns:
   hidden states, for PIE-Net also its previous padded output image and variance, for CISTA-TC its
   previous padded image and sparse code), in float32 or under bfloat16 / float16 autocast
   (``dtype``, :mod:`lase_e2v.pipelines.precision`);
4. crop back to the sensor, optional display post-processing (off by default: metrics use raw
   outputs), clip to [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.events.representations import to_voxel_grid
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import Window
from lase_e2v.models.baselines import BaselineModel
from lase_e2v.pipelines.display import display_postprocess
from lase_e2v.pipelines.output import ReconstructedFrame, ReconstructionPipeline
from lase_e2v.pipelines.precision import autocast, check_dtype


def centered_padding(size: int, multiple: int) -> tuple[int, int]:
    """``(before, after)`` zero padding that brings ``size`` to a multiple of ``multiple``."""
    total = -size % multiple
    return total // 2, total - total // 2


class RecurrentReconstructionPipeline(ReconstructionPipeline):
    """Reconstruct with a recurrent CNN, carrying its state from window to window.

    Args:
        model: a :class:`FireNet`, :class:`E2VID`, :class:`PIENet` or :class:`CistaTC` (e.g. from
            ``load_baseline_checkpoint``).
        num_bins: voxel-grid bins; ``None`` uses the model's (anything else must equal it).
        normalize: normalise non-zero voxels to zero mean / unit std; ``None`` follows
            ``model.config.voxel_normalization`` (what the weights were trained with).
        device: torch device for the model and the voxel grids.
        postprocess: apply :func:`~lase_e2v.pipelines.display.display_postprocess` (for viewing).
        name: short name for tables; defaults to the model class name in lower case.
        dtype: ``"float32"``, or ``"bfloat16"`` / ``"float16"`` autocast for the network (the
            recurrent state is kept in whatever precision the network returns it).
    """

    def __init__(
        self,
        model: BaselineModel,
        num_bins: int | None = None,
        normalize: bool | None = None,
        device: str | torch.device = "cpu",
        postprocess: bool = False,
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        check_dtype(dtype)
        model_bins = model.config.num_bins
        if num_bins is not None and num_bins != model_bins:
            raise ConfigError(f"num_bins {num_bins} does not match the model's {model_bins} input channels")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.normalize = model.config.voxel_normalization == "nonzero" if normalize is None else normalize
        self.postprocess = postprocess
        self.name = name or type(model).__name__.lower()
        self.dtype = dtype
        self.reset()

    @property
    def num_bins(self) -> int:
        """The model's input channels."""
        return self.model.config.num_bins

    def reset(self) -> None:
        self._state = None
        self._sensor_size: tuple[int, int] | None = None

    # -- steps ---------------------------------------------------------------------------------
    def prepare_voxel(self, events: EventStream) -> torch.Tensor:
        """Voxel grid ``(1, bins, H', W')`` on the device, normalised and padded to the model's multiple."""
        # writable int64 (a copy only where needed): torch refuses to share read-only memory, and
        # readers may hand out read-only arrays (evlib's EVT decoding)
        x, y, t, p = (
            torch.from_numpy(np.require(a, dtype=np.int64, requirements="W")).to(self.device)
            for a in (events.x, events.y, events.t, events.p)
        )
        voxel = to_voxel_grid(x, y, t, p, self.num_bins, events.sensor_size, normalize=self.normalize)
        top, bottom = centered_padding(events.height, self.model.input_multiple)
        left, right = centered_padding(events.width, self.model.input_multiple)
        padded = F.pad(voxel[None], (left, right, top, bottom))
        return padded.contiguous(memory_format=getattr(self.model, "memory_format", torch.contiguous_format))

    @torch.inference_mode()
    def reconstruct(self, events: EventStream) -> np.ndarray:
        """One window's frame ``(H, W)`` float32 in [0, 1]; updates the recurrent state."""
        if self._sensor_size is not None and events.sensor_size != self._sensor_size:
            raise EventDataError(
                f"sensor size changed from {self._sensor_size} to {events.sensor_size}; call reset() between recordings"
            )
        self._sensor_size = events.sensor_size
        voxel = self.prepare_voxel(events)
        with autocast(self.device, self.dtype):
            image, self._state = self.model(voxel, self._state)
        top, _ = centered_padding(events.height, self.model.input_multiple)
        left, _ = centered_padding(events.width, self.model.input_multiple)
        image = image[0, 0, top : top + events.height, left : left + events.width]
        if self.postprocess:
            image = display_postprocess(image)
        return image.clamp(0.0, 1.0).float().cpu().numpy()

    def iter_frames(
        self, windows: Iterable[Window], caption: str | None = None, progress: bool = False
    ) -> Iterator[ReconstructedFrame]:
        """One frame per window; ``caption`` is ignored (no text input)."""
        for window in tqdm(windows, desc=self.name, unit="frame", disable=not progress):
            yield ReconstructedFrame(window, self.reconstruct(window.events))
