"""VBench's subject / background consistency: the formula on known features, a frozen video, the
protocol's records, and the CLI columns next to the temporal scores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lase_e2v.evaluation.consistency import ConsistencyModels, FeatureConsistency
from lase_e2v.evaluation.protocol import evaluate_method
from lase_e2v.models.image_features import load_image_features


class AngleFeatures:
    """2-D unit features at the angle ``image.mean() * pi``: cosines are known in closed form."""

    def __call__(self, images):
        angles = [float(np.mean(image)) * math.pi for image in images]
        return torch.tensor([[math.cos(a), math.sin(a)] for a in angles])


def test_vbench_formula_on_known_features():
    metric = FeatureConsistency("subject_consistency", AngleFeatures())
    means = [0.0, 0.25, 0.75]  # angles 0, pi/4, 3pi/4
    scores = [metric.update(np.full((4, 4), m, np.float32), None) for m in means]
    assert math.isnan(scores[0])
    assert scores[1] == pytest.approx((math.cos(math.pi / 4) + math.cos(math.pi / 4)) / 2)
    # to the previous frame: pi/2 apart (cos 0); to the first: 3pi/4 apart (negative, clipped to 0)
    assert scores[2] == pytest.approx(0.0, abs=1e-7)
    assert metric.mean() == pytest.approx(np.mean(scores[1:]))
    metric.reset()
    assert math.isnan(metric.update(np.full((4, 4), 0.5, np.float32), None))  # a new sequence starts over


def test_a_frozen_video_is_perfectly_consistent_and_a_changing_one_less(synthetic_sequence, synthetic_frames,
                                                                        tiny_dino, fakes):
    features = load_image_features(tiny_dino)
    frozen = evaluate_method(fakes["constant"]((32, 32), 0.5), synthetic_sequence,
                             metrics=[FeatureConsistency("subject_consistency", features)])
    assert frozen.means["subject_consistency"] == pytest.approx(1.0, abs=1e-6)
    assert frozen.records[0]["subject_consistency"] is None  # the first scored frame has no predecessor
    moving = evaluate_method(fakes["aps"](synthetic_frames), synthetic_sequence,
                             metrics=[FeatureConsistency("subject_consistency", features)])
    assert moving.means["subject_consistency"] < 1.0 - 1e-4


def test_models_load_only_when_given(tiny_dino, tiny_clip):
    assert ConsistencyModels().metrics() == []
    names = [m.name for m in ConsistencyModels(tiny_dino, tiny_clip).metrics()]
    assert names == ["subject_consistency", "background_consistency"]


def test_cli_reports_them_with_the_temporal_scores(run_cli, cli_error, tmp_path, synthetic_sequence, tiny_dino,
                                                   tiny_clip):
    out = tmp_path / "evaluation"
    code, stdout, _ = run_cli("evaluate", "--method", "integrate", "--data", synthetic_sequence, "-o", out,
                              "--dino", tiny_dino, "--clip", tiny_clip)
    assert code == 0
    scores = json.loads((out / "aggregate.json").read_text())["scores"]["Integrator"]["custom"]
    assert 0 < scores["subject_consistency"] <= 1 and 0 < scores["background_consistency"] <= 1
    temporal = stdout[stdout.index("### Temporal consistency"):]
    assert "subject cons. ↑" in temporal and "background cons. ↑" in temporal
    assert "no CLIP model (--clip) here" in cli_error("evaluate", "--method", "integrate", "--data",
                                                      synthetic_sequence, "-o", tmp_path / "x", "--clip", tmp_path)
    assert not (tmp_path / "x").exists()
