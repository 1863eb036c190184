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


#: method -> its official weights file in ../shared/weights/baselines
OFFICIAL_FILES = {"firenet": "firenet_state_dict.pth", "firenet_plus": "firenet_plus_state_dict.pth",
                  "pienet_lite": "pienet_lite.pth", "pienet": "pienet.pth", "cista_tc": "cista_tc.pth"}


@pytest.mark.parametrize("method", list(OFFICIAL_FILES))
def test_bundled_weights_reproduce_the_official_files(method, shared_dir):
    events = some_events()
    official = load_reconstructor(method, checkpoint=shared_dir / "weights" / "baselines" / OFFICIAL_FILES[method])
    assert baselines.default_checkpoint(method) == baselines.bundled_weights(method)
    bundled = load_reconstructor(method)
    normalises = method in ("firenet", "cista_tc")  # the others take the raw voxel grid
    assert (bundled.name, bundled.normalize) == (method, normalises)
    # two steps: the second uses the recurrent state (and PIE-Net's fed-back frame)
    expected = [official.reconstruct(events) for _ in range(2)]
    assert all(np.array_equal(bundled.reconstruct(events), frame) for frame in expected)
    assert not np.array_equal(*expected)


def test_a_checkpoint_replaces_the_bundled_weights(tmp_path, shared_dir, monkeypatch):
    state = load_baseline_checkpoint(shared_dir / "weights" / "baselines" / "firenet.pth").state_dict()
    state["pred.conv2d.bias"] = torch.tensor([0.25])  # recognisable
    torch.save(state, tmp_path / "mine.pth")
    monkeypatch.setenv("LASE_SHARED", str(tmp_path))  # no environment variable redirects weights
    assert load_reconstructor("firenet_plus").model.pred.conv2d.bias.item() != 0.25
    assert load_reconstructor("firenet_plus", checkpoint=tmp_path / "mine.pth").model.pred.conv2d.bias.item() == 0.25
