"""Captions of reconstructed frames from a local image-to-text or tagging model (``--caption auto``).

The LaSe-E2V paper describes each scene with an off-the-shelf captioner (BLIP sentences, RAM tags);
so does ``--captioner PATH`` here. The folder's ``config.json`` says which kind it is, through
transformers' own task mappings:

* **sentences** (:class:`SentenceCaptioner`): an image-to-text model (``AutoModelForImageTextToText``:
  BLIP, e.g. a ``Salesforce/blip-image-captioning-base`` snapshot, BLIP-2, GIT, vision-encoder-decoder)
  with its processor; greedy decoding (deterministic) of at most ``max_new_tokens`` tokens, under the
  checkpoint's own generation settings otherwise;
* **tags** (:class:`ImageTagger`, RAM-style): an image classifier (``AutoModelForImageClassification``)
  whose labels are words; the labels whose sigmoid score reaches ``threshold`` (multi-label, as RAM),
  most confident first, at most ``max_tags`` and at least the best one, joined by ``", "``.
  transformers has no RAM model itself; any multi-label tagger saved in this form works.

Both take ``(H, W)`` grey (or ``(H, W, 3)``) frames in [0, 1] and return one string per frame.
Nothing downloads: the folder is read with ``local_files_only``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lase_e2v.errors import CheckpointError
from lase_e2v.models.local_vision import FrozenVisionModel, load_local, load_local_config

#: longest generated caption, in tokens (BLIP's captions are about 10-20)
MAX_NEW_TOKENS = 30


class SentenceCaptioner(FrozenVisionModel):
    """An image-to-text model and its processor: ``captioner(images) -> one sentence per image``."""

    def __init__(self, model: Any, processor: Any, source: str, max_new_tokens: int = MAX_NEW_TOKENS) -> None:
        super().__init__(model, processor, source)
        self.max_new_tokens = max_new_tokens

    @torch.no_grad()
    def __call__(self, images: Sequence[np.ndarray]) -> list[str]:
        tokens = self.model.generate(**self.inputs(images), max_new_tokens=self.max_new_tokens, do_sample=False,
                                     num_beams=1)
        return [text.strip() for text in self.processor.batch_decode(tokens, skip_special_tokens=True)]


class ImageTagger(FrozenVisionModel):
    """A multi-label image classifier whose labels are words: ``tagger(images) -> "tag, tag, ..."``."""

    def __init__(
        self, model: Any, processor: Any, source: str, threshold: float = 0.5, max_tags: int = 10
    ) -> None:
        super().__init__(model, processor, source)
        self.threshold = threshold
        self.max_tags = max_tags

    @torch.no_grad()
    def __call__(self, images: Sequence[np.ndarray]) -> list[str]:
        scores = torch.sigmoid(self.model(**self.inputs(images)).logits.float()).cpu()
        labels = self.model.config.id2label
        captions = []
        for row in scores:
            order = torch.argsort(row, descending=True)[: self.max_tags].tolist()
            kept = [i for i in order if row[i] >= self.threshold] or order[:1]
            captions.append(", ".join(str(labels[i]) for i in kept))
        return captions


Captioner = SentenceCaptioner | ImageTagger


def load_captioner(path: str | Path, device: str = "cpu") -> Captioner:
    """The captioner saved in the folder ``path`` (see the module docstring for the two kinds).

    A folder without a model, or with a model of another kind, raises a :class:`CheckpointError`
    naming the kinds that work.
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification, AutoModelForImageTextToText, AutoProcessor
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING,
    )

    config = load_local_config(path, "captioner")
    source = str(Path(path).resolve())
    if type(config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
        model = load_local(AutoModelForImageTextToText, path, "captioner")
        return SentenceCaptioner(model.to(device), load_local(AutoProcessor, path, "captioner's processor"), source)
    if type(config) in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING:
        model = load_local(AutoModelForImageClassification, path, "tagger")
        return ImageTagger(model.to(device), load_local(AutoImageProcessor, path, "tagger's image processor"), source)
    raise CheckpointError(
        f"{path}: a {config.model_type} model is neither an image-to-text captioner (BLIP, BLIP-2, GIT, "
        "vision-encoder-decoder) nor an image tagger (an image classifier with word labels)"
    )
