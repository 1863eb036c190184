"""make_dataset: files, manifest, split by photo, determinism, atomicity; and the preview PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import lase_e2v.simulate.dataset as dataset_module
from lase_e2v.errors import ConfigError
from lase_e2v.events.color import mosaic
from lase_e2v.events.formats.hdf5 import Hdf5Reader
from lase_e2v.events.statistics import measure_events
from lase_e2v.events.streams import Frames
from lase_e2v.simulate.dataset import frame_times_us, make_dataset, random_simulator_config
from lase_e2v.simulate.esim import SimulatorConfig
from lase_e2v.simulate.realism import REAL_RANGE, StatisticsRange
from lase_e2v.simulate.scenes import caption_with_words, scene_words
from lase_e2v.simulate.preview import save_preview

TINY = {"num_sequences": 3, "duration_s": 0.2, "size": (24, 32), "fps": 20.0, "progress": False, "val_fraction": 0.34}


@pytest.fixture(scope="module")
def coco_dir(shared_dir):
    return shared_dir / "data" / "coco_mini"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, coco_dir):
    out = tmp_path_factory.mktemp("synthetic") / "tiny"
    return make_dataset(out, seed=3, coco_dir=coco_dir, **TINY)


def test_frame_times():
    np.testing.assert_array_equal(frame_times_us(0.1, 30.0), [0, 33333, 66667, 100000])


def test_manifest_and_files_agree(tiny, coco_dir):
    manifest = json.loads(tiny.read_text())
    raw = {r["coco_id"]: r for r in json.loads((coco_dir / "captions.json").read_text())}
    assert manifest["size"] == [24, 32] and len(manifest["sequences"]) == 3
    assert [s["split"] for s in manifest["sequences"]] == ["train", "train", "val"]
    for record in manifest["sequences"]:
        reader = Hdf5Reader(tiny.parent / record["file"])
        events, frames = reader.read(), reader.read_frames()
        assert reader.sensor_size == (24, 32)
        assert len(events) == record["num_events"] > 0
        np.testing.assert_array_equal(frames.t_us, [0, 50000, 100000, 150000, 200000])
        np.testing.assert_array_equal(frames.event_indices, record["frame_event_indices"])
        np.testing.assert_array_equal(np.searchsorted(events.t, frames.t_us), record["frame_event_indices"])
        assert frames.images.dtype == np.uint8 and frames.images.shape == (5, 24, 32)
        assert events.t[0] > 0 and events.t[-1] <= 200000
        expected = [c.strip() for c in raw[record["source_photo_id"]]["captions"]]
        assert record["photo_captions"] == expected
        assert record["scene_words"] == list(scene_words(record["scene"]))
        assert record["captions"] == [caption_with_words(c, record["scene_words"]) for c in expected]
        assert reader.attrs["caption"] == record["captions"][0]
        assert json.loads(reader.attrs["captions"]) == record["captions"]
        assert SimulatorConfig(**record["simulator"]).threshold_on == record["simulator"]["threshold_on"]


def test_split_by_source_photo(tiny):
    manifest = json.loads(tiny.read_text())
    train, val = set(manifest["photos"]["train"]), set(manifest["photos"]["val"])
    assert not train & val
    for record in manifest["sequences"]:
        allowed = train if record["split"] == "train" else val
        assert record["source_photo_id"] in allowed
        assert set(record["object_photo_ids"]) <= allowed


def test_num_val_makes_more_val_sequences_on_the_same_held_out_photos(tiny, tmp_path, coco_dir):
    """A fresh validation set: every sequence val, drawn from the photos the default split holds out."""
    default = json.loads(tiny.read_text())
    options = {**TINY, "num_sequences": 3}
    fresh = json.loads(make_dataset(tmp_path / "fresh", seed=4, coco_dir=coco_dir, num_val=3, **options).read_text())
    assert [r["split"] for r in fresh["sequences"]] == ["val"] * 3
    assert fresh["photos"] == default["photos"]
    assert {r["source_photo_id"] for r in fresh["sequences"]} <= set(default["photos"]["val"])
    mixed = json.loads(make_dataset(tmp_path / "mixed", seed=4, coco_dir=coco_dir, num_val=2, **options).read_text())
    assert [r["split"] for r in mixed["sequences"]] == ["train", "val", "val"]
    for bad in (-1, 4):
        with pytest.raises(ConfigError, match="num_val"):
            make_dataset(tmp_path / f"bad{bad}", seed=4, coco_dir=coco_dir, num_val=bad, **options)
    assert not list(tmp_path.glob("bad*"))


def test_same_seed_same_dataset(tiny, tmp_path, coco_dir):
    again = make_dataset(tmp_path / "again", seed=3, coco_dir=coco_dir, **TINY)
    for name in ("seq_00000.h5", "seq_00002.h5"):
        first, second = Hdf5Reader(tiny.parent / name), Hdf5Reader(again.parent / name)
        a, b = first.read(), second.read()
        for field in ("x", "y", "t", "p"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        np.testing.assert_array_equal(first.read_frames().images, second.read_frames().images)


def test_realistic_redraws_until_in_real_range(tiny, tmp_path, coco_dir):
    manifest = json.loads(make_dataset(tmp_path / "real", seed=3, coco_dir=coco_dir, realistic=True,
                                       max_draws=6, **TINY).read_text())
    plain = json.loads(tiny.read_text())["sequences"]
    assert manifest["realistic"] is True
    draws = [record["realism"]["draws"] for record in manifest["sequences"]]
    assert 1 in draws and max(draws) > 1  # seed 3: one sequence already in range, others redrawn
    for record, original in zip(manifest["sequences"], plain):
        realism = record["realism"]
        assert realism["in_real_range"] and REAL_RANGE.contains(realism["statistics"])
        reader = Hdf5Reader(tmp_path / "real" / record["file"])
        measured = measure_events(reader.iter_chunks(), reader.sensor_size, reader.read_frames())
        for key in ("isolated_share", "events_per_pixel_per_s", "contrast_threshold"):
            assert realism["statistics"][key] == pytest.approx(measured[key], rel=1e-9)
        assert record["source_photo_id"] == original["source_photo_id"]  # only motion and sensor redrawn
        same_draw = realism["draws"] == 1
        assert (record["simulator"] == original["simulator"]) == same_draw
        if same_draw:
            np.testing.assert_array_equal(reader.read().t, Hdf5Reader(tiny.parent / record["file"]).read().t)


def test_realistic_colour_is_measured_against_the_mosaic(tmp_path, coco_dir):
    manifest = json.loads(make_dataset(tmp_path / "rgb", seed=3, coco_dir=coco_dir, realistic=True,
                                       max_draws=3, color_filter="RGGB", **TINY).read_text())
    for record in manifest["sequences"]:
        reader = Hdf5Reader(tmp_path / "rgb" / record["file"])
        frames = reader.read_frames()
        assert frames.images.ndim == 4  # RGB targets
        seen = Frames(mosaic(frames.images, "RGGB"), frames.t_us)
        measured = measure_events(reader.iter_chunks(), reader.sensor_size, seen)
        realism = record["realism"]
        threshold = realism["statistics"]["contrast_threshold"]
        assert threshold == pytest.approx(measured["contrast_threshold"], rel=1e-9) and np.isfinite(threshold)
        assert realism["in_real_range"] == REAL_RANGE.contains(measured)


def test_realistic_keeps_the_last_draw_out_of_range(tmp_path, coco_dir, monkeypatch):
    monkeypatch.setattr(dataset_module, "REAL_RANGE", StatisticsRange(max_isolated_share=0.0,
                                                                      min_events_per_pixel_per_s=1e9))
    manifest = json.loads(make_dataset(tmp_path / "none", seed=3, coco_dir=coco_dir, realistic=True,
                                       max_draws=2, **TINY).read_text())
    assert [r["realism"]["draws"] for r in manifest["sequences"]] == [2, 2, 2]
    assert not any(r["realism"]["in_real_range"] for r in manifest["sequences"])
    with pytest.raises(ConfigError, match="max_draws"):
        make_dataset(tmp_path / "bad", seed=3, coco_dir=coco_dir, realistic=True, max_draws=0, **TINY)


def test_keep_lighting_redraws_motion_and_sensor_but_not_the_look(tiny, tmp_path, coco_dir, monkeypatch):
    monkeypatch.setattr(dataset_module, "REAL_RANGE", StatisticsRange(max_isolated_share=0.0,
                                                                      min_events_per_pixel_per_s=1e9))
    plain = json.loads(tiny.read_text())["sequences"]  # draw 1 of each sequence
    kept = json.loads(make_dataset(tmp_path / "kept", seed=3, coco_dir=coco_dir, realistic=True, max_draws=3,
                                   keep_lighting=True, **TINY).read_text())
    free = json.loads(make_dataset(tmp_path / "free", seed=3, coco_dir=coco_dir, realistic=True, max_draws=3,
                                   **TINY).read_text())
    assert kept["keep_lighting"] is True and free["keep_lighting"] is False
    for record, redrawn, original in zip(kept["sequences"], free["sequences"], plain):
        assert record["realism"]["draws"] == 3
        assert record["scene"]["lighting"] == original["scene"]["lighting"]
        assert record["scene"]["tone"] == original["scene"]["tone"]
        # everything else is draw 3's, as without keep_lighting
        assert record["simulator"] == redrawn["simulator"] != original["simulator"]
        assert record["scene"]["camera_max_speed_px_s"] == redrawn["scene"]["camera_max_speed_px_s"]
        assert record["scene"]["camera_max_speed_px_s"] != original["scene"]["camera_max_speed_px_s"]
        assert redrawn["scene"]["tone"] != original["scene"]["tone"]
    with pytest.raises(ConfigError, match="keep_lighting"):
        make_dataset(tmp_path / "bad", seed=3, coco_dir=coco_dir, keep_lighting=True, **TINY)
    assert not (tmp_path / "bad").exists()


def test_failure_leaves_nothing_behind(tmp_path, coco_dir, monkeypatch):
    calls = []
    original = dataset_module.simulate_scene

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "simulate_scene", failing)
    with pytest.raises(RuntimeError, match="boom"):
        make_dataset(tmp_path / "broken", seed=0, coco_dir=coco_dir, **TINY)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path, coco_dir, monkeypatch):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        make_dataset(tmp_path / "full", 1, coco_dir=coco_dir)
    monkeypatch.setenv("LASE_SHARED", str(tmp_path / "nowhere"))  # the default coco_mini is missing
    with pytest.raises(ConfigError, match="nowhere/data/coco_mini: no captions.json"):
        make_dataset(tmp_path / "new", 1)
    with pytest.raises(ConfigError, match="captions.json"):
        make_dataset(tmp_path / "new", 1, coco_dir=tmp_path)
    with pytest.raises(ConfigError, match="num_sequences"):
        make_dataset(tmp_path / "new", 0, coco_dir=coco_dir)
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"


def test_random_simulator_configs_stay_in_their_ranges():
    rng = np.random.default_rng(0)
    configs = [random_simulator_config(rng) for _ in range(200)]
    on = np.array([c.threshold_on for c in configs])
    assert on.min() >= 0.25 and on.max() <= 1.5 and 0.45 < np.median(on) < 0.75  # log-uniform: median ~0.61
    assert all(0.8 <= c.threshold_off / c.threshold_on <= 1.25 for c in configs)
    assert 0.3 < np.mean([c.refractory_us > 0 for c in configs]) < 0.7
    shot = np.array([c.shot_noise_rate_hz for c in configs])
    assert shot.min() >= 0.1 and shot.max() <= 2.0


def test_preview_png(tiny, tmp_path):
    png = save_preview(tiny.parent / "seq_00000.h5", tmp_path / "preview.png", frame_index=2)
    with Image.open(png) as image:
        assert image.size == (900, 400)
    with pytest.raises(ConfigError, match="frame_index"):
        save_preview(tiny.parent / "seq_00000.h5", tmp_path / "bad.png", frame_index=0)
    assert not (tmp_path / "bad.png").exists()
