"""Image embeddings of a local CLIP or DINO model: what VBench's consistency scores compare.

VBench (Huang et al., CVPR 2024) embeds every frame with DINO ViT-B/16 (subject consistency) and
CLIP ViT-B/32 (background consistency). From a local transformers folder (nothing downloads):

* a model with ``get_image_features`` (``CLIPModel``, e.g. an ``openai/clip-vit-base-patch32``
  snapshot; SigLIP alike): its projected image embedding, CLIP's ``encode_image``;
* any other vision backbone (``ViTModel``, e.g. ``facebook/dino-vitb16``; ``Dinov2Model``): the class
  token of its last hidden state, which is what DINO's own forward returns (after the final norm).

The folder's image processor prepares the frames (grey frames become three equal channels).
Embeddings are L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
import numpy as np
import torch

from lase_e2v.errors import CheckpointError
from lase_e2v.models.local_vision import FrozenVisionModel, load_local, load_local_config


class ImageFeatures(FrozenVisionModel):
    """A frozen vision model and its image processor: ``features(images) -> (N, D)`` unit vectors."""

    @torch.no_grad()
    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        pixels = self.inputs(images)["pixel_values"]
        if hasattr(self.model, "get_image_features"):
            output = self.model.get_image_features(pixel_values=pixels)
            features = output if isinstance(output, torch.Tensor) else output.pooler_output  # transformers 4 | 5
        else:
            features = self.model(pixel_values=pixels).last_hidden_state[:, 0]
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu()


def load_image_features(path: str | Path, device: str = "cpu", what: str = "image feature model") -> ImageFeatures:
    """The vision model saved in the folder ``path`` with its image processor; a folder without one,
    or holding a model that takes no images, raises a :class:`CheckpointError` naming ``what``."""
    from transformers import AutoImageProcessor, AutoModel

    load_local_config(path, what)
    model = load_local(AutoModel, path, what)
    takes_images = "pixel_values" in inspect.signature(model.forward).parameters
    if not (hasattr(model, "get_image_features") or takes_images):
        raise CheckpointError(f"{path}: the {what} must be a vision model (CLIP, DINO/ViT), "
                              f"not {type(model).__name__}")
    processor = load_local(AutoImageProcessor, path, f"{what}'s image processor")
    return ImageFeatures(model.to(device), processor, str(Path(path).resolve()))
