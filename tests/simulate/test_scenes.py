"""Photos, splits and random scenes from coco_mini."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.simulate.motion import max_displacement
from lase_e2v.simulate.motion import CONSTANT
from lase_e2v.simulate.scenes import (
    Lighting,
    caption_with_words,
    load_photos,
    random_lighting,
    random_scene,
    scene_words,
    soft_mask,
    split_photos,
)


@pytest.fixture(scope="module")
def photos(shared_dir):
    return load_photos(shared_dir / "data" / "coco_mini")


def test_photos_have_stripped_captions(photos, shared_dir):
    raw = json.loads((shared_dir / "data" / "coco_mini" / "captions.json").read_text())
    assert len(photos) == len(raw) == 124
    assert all(len(p.captions) == 5 for p in photos)
    assert all(c == c.strip() and "\n" not in c for p in photos for c in p.captions)
    first = next(p for p in photos if p.coco_id == 790)
    assert first.captions[3] == "Four persons sitting on dining table for cake and drinks."


def test_gray_photo_is_bt601_luma(photos):
    image = photos[0].load_gray()
    assert image.dtype == np.float32 and image.ndim == 2
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_split_by_photo_is_disjoint_stable_and_sized(photos):
    split = split_photos(photos, 0.1)
    train, val = ({p.coco_id for p in split[name]} for name in ("train", "val"))
    assert not train & val and len(train | val) == 124
    assert len(val) == 13  # ceil(12.4)
    again = split_photos(list(reversed(photos)), 0.1)
    assert {p.coco_id for p in again["val"]} == val
    with pytest.raises(ConfigError, match="val_fraction"):
        split_photos(photos, 1.0)


def test_soft_mask_is_soft_and_fills_its_box():
    mask = soft_mask(np.random.default_rng(0), (40, 30))
    assert mask.shape == (40, 30) and mask.dtype == np.float32
    assert mask.max() == pytest.approx(1.0, abs=1e-3) and mask.min() == 0.0
    assert np.any((mask > 0.05) & (mask < 0.95))  # a soft edge


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_scene_keeps_the_view_inside_the_photo(photos, seed):
    rng = np.random.default_rng(seed)
    scene = random_scene(rng, photos[seed], photos, (45, 60), duration_s=1.0)
    t = np.linspace(0, 1.0, 201)
    inverse = scene.background.motion.inverse_affine(t)
    view = np.array([[0, 0], [59, 0], [0, 44], [59, 44]], dtype=float)
    corners = np.einsum("nij,pj->npi", inverse[:, :, :2], view) + inverse[:, None, :, 2]
    height, width = scene.background.image.shape
    assert corners[..., 0].min() >= 0 and corners[..., 0].max() <= width - 1
    assert corners[..., 1].min() >= 0 and corners[..., 1].max() <= height - 1
    radiance, target = scene.render(t[:3])
    assert radiance.shape == target.shape == (3, 45, 60)
    assert target.min() >= 0 and target.max() <= 1 and radiance.min() >= 0
    assert scene.info["background_id"] == photos[seed].coco_id
    assert photos[seed].coco_id not in scene.info["object_ids"]


def test_substeps_bound_the_motion_per_render(photos):
    scene = random_scene(np.random.default_rng(5), photos[10], photos, (45, 60), duration_s=1.0)
    for start in (0.0, 0.4):
        count = scene.substeps(start, start + 1 / 30, max_step_px=0.5)
        render_t = np.linspace(start, start + 1 / 30, count + 1)
        assert max_displacement(scene.tracked_points(), render_t).max() <= 0.5 * 1.05


def test_dark_and_bright_targets_keep_part_of_the_exposure():
    reflectance = np.full((1, 4, 4), 0.5, dtype=np.float32)
    t = np.zeros(1)
    dark = Lighting("dark", 0.1, CONSTANT, display_gain=0.1**0.35)
    np.testing.assert_allclose(dark.target(reflectance, t), 0.5 * 0.1**0.35, rtol=1e-6)
    np.testing.assert_allclose(dark.radiance(reflectance, t), 0.05, rtol=1e-6)
    kinds = {}
    rng = np.random.default_rng(0)
    for _ in range(200):
        lighting = random_lighting(rng, (8, 8))
        kinds.setdefault(lighting.kind, []).append(lighting.display_gain)
        expected = lighting.gain**0.35 if lighting.kind in ("dark", "bright") else 1.0
        assert lighting.display_gain == pytest.approx(expected)
    assert max(kinds["dark"]) < 1 < min(kinds["bright"]) and set(kinds["normal"]) == {1.0}


@pytest.mark.parametrize(
    ("kind", "speed", "words"),
    [("normal", 100.0, ()), ("dark", 100.0, ("at night", "dark")), ("bright", 250.0, ("bright daylight", "fast motion")),
     ("hdr", 30.0, ("high dynamic range", "slow motion")), ("normal", 50.0, ("slow motion",))],
)
def test_scene_words_name_lighting_and_speed(kind, speed, words):
    assert scene_words({"lighting": {"kind": kind}, "camera_max_speed_px_s": speed}) == words


def test_caption_with_words():
    assert caption_with_words("A cat on a sofa.", ("at night", "dark")) == "A cat on a sofa, at night, dark"
    assert caption_with_words("A cat on a sofa.", ()) == "A cat on a sofa."
    assert caption_with_words("", ("bright daylight",)) == "bright daylight"
