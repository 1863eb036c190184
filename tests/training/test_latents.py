"""Cached latents: one encoder pass per frame and flip, cut exactly where the pixel crop is."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.events.formats import open_events
from lase_e2v.models.autoencoder import load_autoencoder
from lase_e2v.simulate.dataset import make_dataset
from lase_e2v.training.clips import SyntheticClipDataset
from lase_e2v.training.estimates import cache_estimates
from lase_e2v.flips import FLIPS
from lase_e2v.training.latents import autoencoder_key, cache_latents, latents_path

CLIP = 2


@pytest.fixture(scope="module")
def root(tmp_path_factory, shared_dir):
    out = tmp_path_factory.mktemp("latents") / "data"
    make_dataset(out, 2, duration_s=0.15, size=(28, 40), fps=20.0, seed=2, progress=False, val_fraction=0.5,
                 coco_dir=shared_dir / "data" / "coco_mini")
    return out


@pytest.fixture(scope="module")
def autoencoder():
    return load_autoencoder("tae")


@pytest.fixture(scope="module")
def cached(root, autoencoder):
    sequences = [s for s in json.loads((root / "manifest.json").read_text())["sequences"] if s["split"] == "train"]
    cache_estimates(root, "integrate", sequences)
    cache_latents(root, autoencoder, sequences, estimate_method="integrate", flips=tuple(FLIPS), progress=False)
    return sequences


def test_cached_latents_are_the_encoded_flipped_frames(root, autoencoder, cached):
    sequence = cached[0]
    images = open_events(root / sequence["file"]).read_frames().images
    frames = torch.from_numpy(images.astype(np.float32) / 255)[:, None]
    for flip, (horizontal, vertical) in FLIPS.items():
        stored = np.load(latents_path(root, "tae", "frames", flip, sequence["file"]))
        assert stored.shape == (len(images), 32, 4, 5) and stored.dtype == np.float16  # ceil(28/8), 40/8
        dims = [d for d, flipped in ((-1, horizontal), (-2, vertical)) if flipped]
        expected = autoencoder.encode(frames.flip(dims) if dims else frames)
        torch.testing.assert_close(torch.from_numpy(stored.astype(np.float32)), expected, atol=5e-3, rtol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_latents_are_cached_from_an_autoencoder_on_the_gpu(root, autoencoder, cached, tmp_path):
    """Training on a GPU caches with the pipeline's autoencoder there: the frames go to its device."""
    gpu = load_autoencoder("tae").cuda()
    sequence = cached[0]
    for name in ("manifest.json", sequence["file"]):
        (tmp_path / name).symlink_to(root / name)
    cache_latents(tmp_path, gpu, [sequence], flips=("none",), progress=False)
    on_gpu = np.load(latents_path(tmp_path, "tae", "frames", "none", sequence["file"])).astype(np.float32)
    on_cpu = np.load(latents_path(root, "tae", "frames", "none", sequence["file"])).astype(np.float32)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-2)


def _find_crop(item_frames: np.ndarray, clip_frames: np.ndarray, crop: tuple[int, int]):
    """``(flip name, reversed, top, left)`` of the 8-aligned crop of a flipped (maybe reversed) clip
    that equals ``item_frames``; None if there is none."""
    for index, (horizontal, vertical) in FLIPS.items():
        flipped = clip_frames[..., :: -1 if vertical else 1, :: -1 if horizontal else 1]
        for reverse in (False, True):
            ordered = flipped[::-1] if reverse else flipped
            for top in range(0, flipped.shape[-2] - crop[0] + 1, 8):
                for left in range(0, flipped.shape[-1] - crop[1] + 1, 8):
                    if np.array_equal(ordered[..., top : top + crop[0], left : left + crop[1]], item_frames):
                        return index, reverse, top, left
    return None


def test_items_carry_the_latents_of_their_crop(root, cached):
    crop = (16, 24)
    dataset = SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=crop, estimate_method="integrate",
                                   latents_key="tae", seed=3, latent_flips=tuple(FLIPS))
    found_flips = set()
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["latents"].shape == item["estimate_latents"].shape == (CLIP, 32, 2, 3)
        assert item["previous_latent"].shape == (32, 2, 3)
        sequence_index, start = dataset._clips[index]
        sequence = dataset.sequences[sequence_index]
        images = open_events(root / sequence["file"]).read_frames().images[start - 1 : start + CLIP]
        pixels = np.concatenate([item["previous_frame"].numpy(), item["frames"][:, 0].numpy()])
        match = _find_crop(np.round(pixels * 255).astype(np.uint8), images, crop)
        assert match is not None, f"item {index}: the pixel crop is not 8-aligned in the flipped frame"
        flip, reverse, top, left = match
        found_flips.add(flip)
        for kind, key in (("frames", "latents"), ("integrate", "estimate_latents")):
            stored = np.load(latents_path(root, "tae", kind, flip, sequence["file"]))
            window = stored[start - 1 : start + CLIP, :, top // 8 : top // 8 + 2, left // 8 : left // 8 + 3]
            window = window[::-1] if reverse else window
            expected = torch.from_numpy(window.astype(np.float32))
            assert torch.equal(item[key], expected[1:])
            previous_key = "previous_latent" if key == "latents" else "previous_estimate_latent"
            assert torch.equal(item[previous_key], expected[0])
    assert len(found_flips) > 1  # augmentation did flip


def test_flips_are_drawn_among_the_cached_variants_only(root, cached):
    crop = (16, 24)
    dataset = SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=crop, latents_key="tae", seed=1,
                                   latent_flips=("none",))
    for index in range(len(dataset)):
        sequence_index, start = dataset._clips[index]
        images = open_events(root / dataset.sequences[sequence_index]["file"]).read_frames().images
        item = dataset[index]
        pixels = np.concatenate([item["previous_frame"].numpy(), item["frames"][:, 0].numpy()])
        assert _find_crop(np.round(pixels * 255).astype(np.uint8), images[start - 1 : start + CLIP], crop)[0] == "none"


def test_autoencoder_key_and_missing_cache(root, autoencoder, cached):
    assert autoencoder_key(autoencoder) == "tae"
    with pytest.raises(ConfigError, match="no cached other latents"):
        SyntheticClipDataset(root, "train", clip_frames=CLIP, latents_key="other")
    with pytest.raises(ConfigError, match="latent flips"):
        SyntheticClipDataset(root, "train", clip_frames=CLIP, latents_key="tae", latent_flips=("x",))
