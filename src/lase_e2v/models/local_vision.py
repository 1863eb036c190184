"""transformers vision models from local folders, fed with our grey frames.

The captioner (:mod:`.captioner`) and the feature extractors of the consistency scores
(:mod:`.image_features`) load big pretrained networks (BLIP, CLIP, DINO) that the package never
downloads: the user passes a folder saved with ``save_pretrained`` (a Hugging Face snapshot). The
folder's own ``config.json`` says what the model is, and its own processor prepares the images
(resize, crop, normalise), so a checkpoint is used exactly as its authors preprocess. transformers
picks its PIL image processors when torchvision is missing, so this works on the plain CPU install.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lase_e2v.errors import CheckpointError


def load_local_config(path: str | Path, what: str) -> Any:
    """The transformers config of the model folder ``path``; a :class:`CheckpointError` naming
    ``what`` (e.g. ``"captioner"``) when there is no model there or it cannot be read."""
    from transformers import AutoConfig
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: no {what} here (config.json missing); pass a local model folder")
    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"{folder}: cannot read the {what}'s config ({error})") from error


def load_local(loader: Any, path: str | Path, what: str) -> Any:
    """``loader.from_pretrained(path, local_files_only=True)`` (a model or processor class), with
    loading errors as one :class:`CheckpointError` line naming ``what``."""
    try:
        return loader.from_pretrained(Path(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: cannot load the {what} ({error})") from error


class FrozenVisionModel:
    """A transformers vision model in eval mode without gradients, with the processor of its folder.

    ``source`` is the folder it came from; :meth:`inputs` prepares frames as the processor does.
    """

    def __init__(self, model: Any, processor: Any, source: str) -> None:
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        self.source = source

    def inputs(self, images: Sequence[np.ndarray]) -> Any:
        """The processor's tensors for ``images`` (see :func:`to_rgb_images`), on the model's device."""
        return self.processor(images=to_rgb_images(images), return_tensors="pt").to(self.model.device)


def to_rgb_images(images: Sequence[np.ndarray]) -> list:
    """``(H, W)`` grey or ``(H, W, 3)`` colour images in [0, 1] -> PIL RGB images; grey becomes three
    equal channels, the input of image models trained on colour photos (as EVREAL feeds grey frames
    to LPIPS)."""
    from PIL import Image

    pictures = []
    for image in images:
        array = np.asarray(image, dtype=np.float32)
        if array.ndim != 2 and array.shape[2:] != (3,):
            raise ValueError(f"expected (H, W) or (H, W, 3) images, got shape {array.shape}")
        pixels = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        pictures.append(Image.fromarray(pixels).convert("RGB"))
    return pictures
