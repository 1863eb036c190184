"""Captioners from local folders: a BLIP sentence captioner and a RAM-style tagger, both tiny random
models the fixtures build and save (tests/conftest.py), loaded offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lase_e2v.errors import CheckpointError
from lase_e2v.models.captioner import ImageTagger, SentenceCaptioner, load_captioner


def frames(count: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((24, 30)).astype(np.float32) for _ in range(count)]


def test_blip_captions_as_its_own_processor_and_greedy_generate_do(tiny_blip):
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    captioner = load_captioner(tiny_blip)
    assert isinstance(captioner, SentenceCaptioner) and captioner.source == str(tiny_blip.resolve())
    images = frames()
    captions = captioner(images)

    model = BlipForConditionalGeneration.from_pretrained(tiny_blip, local_files_only=True).eval()
    processor = BlipProcessor.from_pretrained(tiny_blip, local_files_only=True)
    expected = []
    for image in images:
        rgb = Image.fromarray(np.round(image * 255).astype(np.uint8)).convert("RGB")
        with torch.no_grad():
            tokens = model.generate(**processor(images=rgb, return_tensors="pt"), max_new_tokens=30, do_sample=False)
        expected.append(processor.decode(tokens[0], skip_special_tokens=True).strip())
    assert captions == expected
    words = set((tiny_blip / "vocab.txt").read_text().split()[6:])  # after the special tokens
    assert all(caption and set(caption.split()) <= words for caption in captions)
    assert captioner(images) == captions  # greedy: deterministic


def test_tagger_keeps_the_labels_above_the_threshold_best_first(tiny_tagger):
    from transformers import AutoImageProcessor, ViTForImageClassification

    from lase_e2v.models.local_vision import to_rgb_images

    tagger = load_captioner(tiny_tagger)
    assert isinstance(tagger, ImageTagger)
    images = frames(1)
    model = ViTForImageClassification.from_pretrained(tiny_tagger, local_files_only=True).eval()

    inputs = AutoImageProcessor.from_pretrained(tiny_tagger, local_files_only=True)(
        images=to_rgb_images(images), return_tensors="pt")
    with torch.no_grad():
        scores = torch.sigmoid(model(**inputs).logits)[0]
    order = torch.argsort(scores, descending=True).tolist()
    labels = model.config.id2label
    above = [labels[i] for i in order if scores[i] >= 0.5]
    assert above, "the tiny tagger should pass the threshold for some labels"
    assert tagger(images) == [", ".join(above)]
    tagger.threshold = 1.1  # nothing passes: the best label alone
    assert tagger(images) == [labels[order[0]]]


def test_a_folder_without_a_model_or_with_another_kind_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no captioner here"):
        load_captioner(tmp_path)
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=10)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="neither an image-to-text captioner"):
        load_captioner(tmp_path)
