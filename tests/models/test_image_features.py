"""Image embeddings of local CLIP / DINO folders (tiny random models the fixtures save), as VBench uses them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lase_e2v.errors import CheckpointError
from lase_e2v.models.image_features import load_image_features
from lase_e2v.models.local_vision import to_rgb_images


def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.random((20, 28)).astype(np.float32) for _ in range(3)]


def processed(folder, images):
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(folder, local_files_only=True)(
        images=to_rgb_images(images), return_tensors="pt")["pixel_values"]


def test_clip_gives_its_projected_image_embedding(tiny_clip):
    from transformers import CLIPModel

    features = load_image_features(tiny_clip)(frames())
    model = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    with torch.no_grad():
        pooled = model.vision_model(pixel_values=processed(tiny_clip, frames())).pooler_output
        expected = torch.nn.functional.normalize(model.visual_projection(pooled), dim=-1)
    assert features.shape == (3, 8)  # projection_dim
    assert torch.allclose(features, expected, atol=1e-6)


def test_dino_gives_the_normalised_class_token(tiny_dino):
    from transformers import ViTModel

    features = load_image_features(tiny_dino)(frames())
    model = ViTModel.from_pretrained(tiny_dino, local_files_only=True).eval()
    with torch.no_grad():
        token = model(pixel_values=processed(tiny_dino, frames())).last_hidden_state[:, 0]
    assert features.shape == (3, 16)
    assert torch.allclose(features, torch.nn.functional.normalize(token, dim=-1), atol=1e-6)
    assert torch.allclose(features.norm(dim=-1), torch.ones(3))


def test_folders_without_a_vision_model_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no CLIP model here"):
        load_image_features(tmp_path, what="CLIP model")
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=10)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="must be a vision model"):
        load_image_features(tmp_path, what="DINO model")
