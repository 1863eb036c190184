"""CISTA-TC: the official file loads strictly (tied copies kept once), the module computes the
published update (checked against a functional re-statement on the file's own tensors), any sensor
size, slider_depth. (The bundled copy is checked with the other peers' in test_load_reconstructor.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lase_e2v.errors import CheckpointError
from lase_e2v.evaluation.protocol import evaluate_method
from lase_e2v.events.streams import EventStream
from lase_e2v.models.baselines import CistaTC, load_baseline_checkpoint, model_from_state_dict
from lase_e2v.pipelines.baselines import load_reconstructor


@pytest.fixture(scope="module")
def official(shared_dir) -> dict[str, torch.Tensor]:
    path = shared_dir / "weights" / "baselines" / "cista_tc.pth"
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def conv(x: torch.Tensor, state: dict, name: str, stride: int = 1) -> torch.Tensor:
    """A 3x3 convolution of the file's ``name`` with reflection padding, as upstream."""
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), state[f"{name}.weight"], state[f"{name}.bias"], stride)


def reference_step(state: dict, voxel: torch.Tensor, memory: tuple | None) -> tuple[torch.Tensor, tuple]:
    """CISTA-TC's step written from the paper's update with the file's per-iteration tensors
    (``lista_blocks.k``, ``alpha.k``), independent of the module and of the key renaming."""
    image, code, hidden, cell = memory or (torch.zeros_like(voxel[:, :1]), None, None, None)
    x1 = conv(torch.cat([conv(voxel, state, "We.conv2d"), conv(image, state, "Wi.conv2d")], 1), state, "W0.conv2d", 2)
    z = conv(x1, state, "P0.conv2d")
    code = torch.zeros_like(z) if code is None else code
    previous_map = conv(code, state, "one_conv_for_prev.conv2d")
    for k in range(5):
        attention = torch.sigmoid(previous_map * conv(z, state, "one_conv_for_cur.conv2d"))
        residual = conv(x1 - conv(z, state, f"lista_blocks.{k}.D.conv2d"), state, f"lista_blocks.{k}.P.conv2d")
        update = z + residual + attention * (code - z) * state[f"alpha.{k}"]
        threshold = state[f"lista_blocks.{k}.Lambda"]  # learned, some < 0: the authors' form, not sign * max
        z = torch.relu(update - threshold) - torch.relu(-update - threshold)
    features = F.relu(conv(z, state, "Dg.conv.conv2d"))
    hidden = torch.zeros_like(features) if hidden is None else hidden
    cell = torch.zeros_like(features) if cell is None else cell
    gates = conv(torch.cat([features, hidden], 1), state, "Dg.recurrent_block.Gates").chunk(4, 1)
    cell = torch.sigmoid(gates[1]) * cell + torch.sigmoid(gates[0]) * torch.tanh(gates[3])
    hidden = torch.sigmoid(gates[2]) * torch.tanh(cell)
    up = F.interpolate(hidden, scale_factor=2, mode="bilinear", align_corners=False)
    image = torch.sigmoid(conv(conv(up, state, "upsamp_conv.conv2d"), state, "final_conv.conv2d"))
    return image, (image, z, hidden, cell)


def test_official_weights_load_with_the_tied_copies_kept_once(official, shared_dir):
    model = load_baseline_checkpoint(shared_dir / "weights" / "baselines" / "cista_tc.pth")
    assert isinstance(model, CistaTC) and len(official) == 50
    assert dict(model.config) == {"num_bins": 5, "base_channels": 64, "depth": 5, "voxel_normalization": "nonzero"}
    assert sum(t.numel() for t in model.parameters()) == 669_251  # the file's unique elements
    assert torch.equal(model.ista_block.P.conv2d.weight, official["lista_blocks.4.P.conv2d.weight"])
    assert torch.equal(model.alpha, official["alpha.3"])


def test_three_steps_match_the_update_written_from_the_paper(official, shared_dir):
    model = load_baseline_checkpoint(shared_dir / "weights" / "baselines" / "cista_tc.pth")
    torch.manual_seed(0)
    state, memory = None, None
    with torch.no_grad():
        for _ in range(3):
            voxel = torch.randn(1, 5, 24, 32)
            image, state = model(voxel, state)
            expected, memory = reference_step(official, voxel, memory)
            assert torch.allclose(image, expected, atol=1e-5)
    assert expected.std() > 0.01  # the check compares images, not constants


def test_iteration_copies_that_differ_are_refused(official):
    untied = dict(official)
    untied["lista_blocks.2.D.conv2d.bias"] = official["lista_blocks.2.D.conv2d.bias"] + 1
    with pytest.raises(CheckpointError, match="lista_blocks.2.D.conv2d.bias is not a copy of lista_blocks.0"):
        model_from_state_dict(untied)


def test_any_sensor_size_is_padded_and_cropped_back():
    rng = np.random.default_rng(0)
    events = EventStream(rng.integers(0, 29, 400), rng.integers(0, 13, 400), np.sort(rng.integers(0, 10_000, 400)),
                         rng.choice([-1, 1], 400), (13, 29))
    pipeline = load_reconstructor("cista_tc")
    assert pipeline.normalize is True
    image = pipeline.reconstruct(events)
    assert image.shape == (13, 29) and 0.0 < image.min() and image.max() < 1.0


def test_on_slider_depth_evreal_protocol(slider_depth_dir):
    """The official weights on the one real sequence with frames (a regression pin; correctness is the
    test above). Its frames are brighter than the APS frames, hence the MSE."""
    result = evaluate_method(load_reconstructor("cista_tc"), slider_depth_dir, cut=(1.0, 2.5), metrics=("mse", "ssim"))
    assert len(result.records) == 39
    assert result.means["ssim"] == pytest.approx(0.5446, abs=1e-4)
    assert result.means["mse"] == pytest.approx(0.0813, abs=1e-4)
