"""Packaged dataset / eval / method definitions and resolving sequences under a user-given root."""

from __future__ import annotations

import json

import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.datasets import (
    EvalConfig,
    MethodConfig,
    available,
    load_dataset,
    load_eval_config,
    load_method_config,
    resolve_data,
)

ECD_CUTS = {
    "boxes_6dof": (5.0, 20.0),
    "calibration": (5.0, 20.0),
    "dynamic_6dof": (5.0, 20.0),
    "office_zigzag": (5.0, 12.0),
    "poster_6dof": (5.0, 20.0),
    "shapes_6dof": (5.0, 20.0),
    "slider_depth": (1.0, 2.5),
}


def test_packaged_definitions_are_listed():
    assert available("datasets") == ["bsergb", "ecd", "hqf", "hsergb", "mvsec"]
    assert {"firenet", "firenet_plus", "e2vid", "pienet_lite", "pienet", "integrate", "lase"} <= set(available("methods"))
    assert "std" in available("eval")
    with pytest.raises(ConfigError):
        available("models")


def test_ecd_has_evreals_cuts():
    ecd = load_dataset("ECD")
    assert ecd.name == "ECD"
    assert {name: cut for name, (cut, _) in ecd.sequences.items()} == ECD_CUTS


def test_mvsec_and_hqf_sequences():
    mvsec = load_dataset("mvsec")
    assert len(mvsec.sequences) == 6
    assert mvsec.sequences["indoor_flying4_data"] == ((10.0, 19.8), ("indoor_flying4",))
    assert mvsec.sequences["outdoor_day2_data"][0] == (100.0, 160.0)
    hqf = load_dataset("hqf")
    assert len(hqf.sequences) == 14
    assert all(cut is None for cut, _ in hqf.sequences.values())
    assert "slow_and_fast_desk" in hqf.sequences


def test_std_eval_config():
    assert load_eval_config("std") == EvalConfig("std", 5, 1.0, 10.0, ("mse", "ssim", "lpips"))


def test_user_json_definitions(tmp_path):
    path = tmp_path / "quick.json"
    path.write_text(json.dumps({"num_bins": 5, "ts_tol_ms": 2.0, "warmup_s": 0, "metrics": ["mse"]}))
    assert load_eval_config(path) == EvalConfig("quick", 5, 2.0, 0.0, ("mse",))
    path.write_text(json.dumps({"num_bins": 5, "keep_ratio": 0.5}))
    with pytest.raises(ConfigError, match="keep_ratio"):
        load_eval_config(path)
    path.write_text(json.dumps({"window": "k_events"}))
    with pytest.raises(ConfigError, match="between_frames"):
        load_eval_config(path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sequences": {"a": {"start_time_s": 3.0}}}))
    with pytest.raises(ConfigError, match="start_time_s"):
        load_dataset(bad)
    with pytest.raises(ConfigError, match="packaged: bsergb, ecd, hqf, hsergb, mvsec"):
        load_dataset("dsec")


def test_method_configs(tmp_path):
    firenet = load_method_config("firenet")
    assert (firenet.name, firenet.method, firenet.options, firenet.checkpoint) == ("FireNet", "firenet", {}, None)
    with pytest.raises(ConfigError, match="unknown method 'my_method'; choose one of lase, firenet"):
        load_method_config("my_method")
    variant = tmp_path / "one_sample.json"  # only what differs from the registered method
    variant.write_text(json.dumps({"method": "lase", "options": {"num_samples": 1}}))
    assert load_method_config(variant) == MethodConfig("LaSe-E2V", "lase", {"num_samples": 1})
    variant.write_text(json.dumps({"method": "firenet", "options": {"num_samples": 1}}))
    with pytest.raises(ConfigError, match="'firenet' takes no option"):
        load_method_config(variant)
    variant.write_text(json.dumps({"name": "x", "options": {}}))
    with pytest.raises(ConfigError, match="needs 'method'"):
        load_method_config(variant)


def test_resolve_sequences_under_a_root(tmp_path):
    (tmp_path / "slider_depth").mkdir()  # ECD or EVREAL folder
    (tmp_path / "boxes_6dof.h5").write_bytes(b"")  # HDF5 file
    specs = resolve_data(tmp_path, "ecd/slider_depth,boxes_6dof")
    assert [(s.name, s.path.name, s.dataset, s.cut_s) for s in specs] == [
        ("slider_depth", "slider_depth", "ECD", (1.0, 2.5)),
        ("boxes_6dof", "boxes_6dof.h5", "ECD", (5.0, 20.0)),
    ]
    with pytest.raises(ConfigError, match="not found: boxes_6dof, calibration") as error:
        resolve_data(tmp_path / "slider_depth", "ecd")
    assert "dynamic_6dof" in str(error.value)
    with pytest.raises(ConfigError, match="no sequence"):
        resolve_data(tmp_path, "ecd/slider")


def test_resolve_alias_and_direct_sequence_paths(tmp_path, slider_depth_dir):
    (tmp_path / "indoor_flying1.h5").write_bytes(b"")
    [spec] = resolve_data(tmp_path, "mvsec/indoor_flying1_data")
    assert spec.path == tmp_path / "indoor_flying1.h5" and spec.cut_s == (10.0, 70.0)
    # --data is the sequence itself: evaluated with the named sequence's cut
    [spec] = resolve_data(slider_depth_dir, "ecd/slider_depth")
    assert spec.path == slider_depth_dir and spec.cut_s == (1.0, 2.5) and spec.dataset == "ECD"
    # no dataset: the whole recording, named after the folder
    [spec] = resolve_data(slider_depth_dir)
    assert (spec.name, spec.cut_s, spec.dataset) == ("ecd_slider_depth", None, None)
    with pytest.raises(ConfigError, match="no such file"):
        resolve_data(tmp_path / "nothing")


def test_resolve_a_make_dataset_folder(tmp_path):
    records = [{"file": "seq_00000.h5", "split": "train"},
               {"file": "seq_00001.h5", "split": "val", "scene": {"lighting": {"kind": "dark", "gain": 0.1}}},
               {"file": "seq_00002.h5", "split": "val"}]  # written before the lighting was recorded
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "duration_s": 3.0, "sequences": records}))
    specs = resolve_data(tmp_path, "synthetic")
    assert [(s.name, s.path, s.dataset, s.cut_s, s.group) for s in specs] == [  # the first second is warm-up
        ("seq_00001", tmp_path / "seq_00001.h5", "synthetic", (1.0, 3.0), "dark"),
        ("seq_00002", tmp_path / "seq_00002.h5", "synthetic", (1.0, 3.0), None),
    ]
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "duration_s": 0.6, "sequences": records}))
    assert resolve_data(tmp_path, "synthetic")[0].cut_s == pytest.approx((0.2, 0.6))  # a third of short ones
    assert [s.name for s in resolve_data(tmp_path, "synthetic/train")] == ["seq_00000"]
    with pytest.raises(ConfigError, match="no 'test' sequences"):
        resolve_data(tmp_path, "synthetic/test")
    with pytest.raises(ConfigError, match="make-dataset manifest not found"):
        resolve_data(tmp_path.parent, "synthetic")
