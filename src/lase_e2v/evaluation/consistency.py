"""VBench's subject and background consistency, from DINO / CLIP features of a local model folder.

VBench (Huang et al., CVPR 2024, ``subject_consistency.py`` / ``background_consistency.py``) embeds
each frame ``t`` of a video (L2-normalised features ``f_t``) and scores every frame after the first

    c_t = ( max(0, cos(f_t, f_{t-1})) + max(0, cos(f_t, f_0)) ) / 2

against the previous and the first frame; a video's score is the mean of its ``c_t`` and a set's
the mean over all its scored frames. *Subject consistency* uses DINO ViT-B/16 features,
*background consistency* CLIP ViT-B/32 (:mod:`lase_e2v.models.image_features`). Here the video is a
sequence's scored predictions in order (frames the protocol leaves out do not count), so the first
frame is the first scored one, and a dataset's score is the mean over all scored frames, as for the
other metrics. Higher is better; a frozen video scores 1, so read them next to the flow-free
temporal scores (:mod:`.temporal`), which do check the change against the reference. Differences
from VBench: frames go through the checkpoint's own image processor (VBench resizes DINO's input to
224 on the short side without the processor), and grey frames are repeated to three channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lase_e2v.evaluation.metrics import Metric
from lase_e2v.models.image_features import ImageFeatures, load_image_features


class FeatureConsistency(Metric):
    """VBench's consistency of consecutive frames in a feature space (module docstring).

    ``update(prediction, reference)`` ignores the reference (a no-reference score) and returns
    ``c_t``, NaN for the sequence's first frame; :meth:`reset` starts the next sequence.
    """

    lower_is_better = False

    def __init__(self, name: str, features: ImageFeatures) -> None:
        super().__init__()
        self.name = name
        self.features = features
        self._first = self._previous = None

    def reset(self) -> None:
        super().reset()
        self._first = self._previous = None

    def calculate(self, prediction: np.ndarray, reference: np.ndarray) -> float:
        current = self.features([prediction])[0]
        if self._first is None:
            self._first = self._previous = current
            return math.nan
        to_previous = max(0.0, float(current @ self._previous))
        to_first = max(0.0, float(current @ self._first))
        self._previous = current
        return (to_previous + to_first) / 2


@dataclass(frozen=True)
class ConsistencyModels:
    """Local model folders of the consistency scores: ``dino`` (subject), ``clip`` (background)."""

    dino: str | Path | None = None
    clip: str | Path | None = None

    def metrics(self, device: str = "cpu") -> list[Metric]:
        """A :class:`FeatureConsistency` per given model, loaded now (before any sequence is read)."""
        metrics: list[Metric] = []
        if self.dino is not None:
            features = load_image_features(self.dino, device, "DINO model (--dino)")
            metrics.append(FeatureConsistency("subject_consistency", features))
        if self.clip is not None:
            features = load_image_features(self.clip, device, "CLIP model (--clip)")
            metrics.append(FeatureConsistency("background_consistency", features))
        return metrics
