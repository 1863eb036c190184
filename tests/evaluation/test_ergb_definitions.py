"""HS-ERGB and BS-ERGB: definitions by split folder, whose every sequence is evaluated whole."""

from __future__ import annotations

import json
import shutil

import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.benchmark import evaluate
from lase_e2v.evaluation.datasets import load_dataset, resolve_data


def test_packaged_definitions_name_the_test_splits():
    hsergb, bsergb = load_dataset("hsergb"), load_dataset("BS-ERGB".replace("-", "").lower())
    assert (hsergb.name, hsergb.sequence_folders, hsergb.sequences) == ("HS-ERGB", ("close/test", "far/test"), {})
    assert (bsergb.name, bsergb.sequence_folders) == ("BS-ERGB", ("1_TEST",))
    assert "grey" in hsergb.description and "1280x720" in bsergb.description


@pytest.fixture
def hsergb_root(tmp_path, synthetic_sequence):
    """A converted HS-ERGB copy: two close and one far sequence (copies of the synthetic recording),
    a README and a hidden file that are not sequences."""
    root = tmp_path / "hsergb"
    for split, names in (("close/test", ["candle", "baloon_popping"]), ("far/test", ["lake_01"])):
        (root / split).mkdir(parents=True)
        for name in names:
            shutil.copy(synthetic_sequence, root / split / f"{name}.h5")
    (root / "close/test/README.md").write_text("notes")
    (root / "far/test/.DS_Store").write_text("")
    return root


def test_every_sequence_of_the_split_folders_whole(hsergb_root):
    specs = resolve_data(hsergb_root, "hsergb")
    assert [(s.name, s.path.relative_to(hsergb_root).as_posix(), s.cut_s) for s in specs] == [
        ("baloon_popping", "close/test/baloon_popping.h5", None),
        ("candle", "close/test/candle.h5", None),
        ("lake_01", "far/test/lake_01.h5", None),
    ]
    assert [s.name for s in resolve_data(hsergb_root, "hsergb/lake_01,candle")] == ["lake_01", "candle"]


def test_missing_or_unknown_sequences_and_folders(hsergb_root, tmp_path):
    with pytest.raises(ConfigError, match=r"HS-ERGB has no sequence\(s\) \['fountain'\]; found: baloon_popping"):
        resolve_data(hsergb_root, "hsergb/fountain")
    shutil.copy(hsergb_root / "close/test/candle.h5", hsergb_root / "far/test/candle.h5")
    with pytest.raises(ConfigError, match="sequence 'candle' found twice"):
        resolve_data(hsergb_root, "hsergb")
    with pytest.raises(ConfigError, match="BS-ERGB needs the folder 1_TEST/"):
        resolve_data(hsergb_root, "bsergb")
    (tmp_path / "empty" / "1_TEST").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no BS-ERGB sequences in 1_TEST"):
        resolve_data(tmp_path / "empty", "bsergb")


def test_a_definition_gives_sequences_or_folders_not_both(tmp_path):
    path = tmp_path / "both.json"
    path.write_text(json.dumps({"sequences": {"a": {}}, "sequence_folders": ["test"]}))
    with pytest.raises(ConfigError, match="give either 'sequences'"):
        load_dataset(path)
    path.write_text(json.dumps({"sequence_folders": "test"}))
    with pytest.raises(ConfigError, match="give either 'sequences'"):
        load_dataset(path)


def test_evaluated_under_the_dataset_name(hsergb_root, tmp_path, fakes, synthetic_frames):
    result = evaluate({"APS": lambda: fakes["aps"](synthetic_frames)}, hsergb_root, tmp_path / "out",
                      dataset="hsergb/candle,lake_01", videos=False, progress=False)
    scores = result.summary["scores"]["APS"]["HS-ERGB"]
    assert scores["num_frames"] == 8 and scores["mse"] == 0.0  # 4 scored frames each, all of them
