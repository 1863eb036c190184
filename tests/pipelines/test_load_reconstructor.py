"""load_reconstructor: method names, where default weights come from, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.events.streams import EventStream
from lase_e2v.models.baselines import load_baseline_checkpoint
from lase_e2v.pipelines import baselines
from lase_e2v.pipelines.baselines import load_reconstructor
from lase_e2v.pipelines.integrator import IntegratorPipeline


def some_events() -> EventStream:
    rng = np.random.default_rng(0)
    n = 400
    return EventStream(
        rng.integers(0, 16, n),
        rng.integers(0, 12, n),
        np.sort(rng.integers(0, 9000, n)),
        rng.choice([-1, 1], n),
        (12, 16),
    )


def test_methods_and_their_input_normalization():
    firenet, plus = load_reconstructor("firenet"), load_reconstructor("firenet_plus")
    assert (firenet.name, firenet.normalize) == ("firenet", True)
    assert (plus.name, plus.normalize) == ("firenet_plus", False)
    assert isinstance(load_reconstructor("integrate"), IntegratorPipeline)


@pytest.mark.parametrize(
    "method, checkpoint, message",
    [
        ("e2vid", None, "pass its checkpoint path"),
        ("e2vid_plus", None, "pass its checkpoint path"),
        ("integrate", "x.pth", "takes no checkpoint"),
        ("spade", None, "unknown method 'spade'"),
    ],
)
def test_bad_requests_raise(method, checkpoint, message):
    with pytest.raises(ConfigError, match=message):
        load_reconstructor(method, checkpoint=checkpoint)


def test_bundled_weights_reproduce_the_shared_files(monkeypatch):
    events = some_events()
    from_shared = load_reconstructor("firenet").reconstruct(events)
    monkeypatch.setattr(baselines, "weight_folders", list)
    assert baselines.default_checkpoint("firenet") == baselines.bundled_weights("firenet")
    assert np.array_equal(load_reconstructor("firenet").reconstruct(events), from_shared)


def test_weights_dir_environment_variable_wins(monkeypatch, tmp_path, shared_dir):
    state = load_baseline_checkpoint(shared_dir / "weights" / "baselines" / "firenet.pth").state_dict()
    state["pred.conv2d.bias"] = torch.tensor([0.25])  # recognisable
    torch.save(state, tmp_path / "firenet_plus_state_dict.pth")
    monkeypatch.setenv("LASE_WEIGHTS_DIR", str(tmp_path))
    pipeline = load_reconstructor("firenet_plus")
    assert pipeline.model.pred.conv2d.bias.item() == 0.25


@pytest.mark.parametrize("method", ["pienet_lite", "pienet"])
def test_pienet_bundled_weights_reproduce_the_shared_files(monkeypatch, method):
    events = some_events()
    shared = load_reconstructor(method)
    assert (shared.name, shared.normalize) == (method, False)  # PIE-Net takes the raw voxel grid
    from_shared = [shared.reconstruct(events) for _ in range(2)]  # second step uses the fed-back frame
    monkeypatch.setattr(baselines, "weight_folders", list)
    assert baselines.default_checkpoint(method) == baselines.bundled_weights(method)
    bundled = load_reconstructor(method)
    assert all(np.array_equal(bundled.reconstruct(events), frame) for frame in from_shared)
    assert not np.array_equal(*from_shared)
