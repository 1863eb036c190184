"""FireNet: GRU known answers, both official key namings, save/load round trip."""

from __future__ import annotations

import math

import pytest
import torch

from lase_e2v.models.baselines import FireNet, load_baseline_checkpoint, model_from_state_dict
from lase_e2v.models.baselines.layers import ConvGRU, ConvLSTM

# the legacy -> refactored renaming, written out independently of the package (shared README)
LEGACY_TO_REFACTORED = {
    "net.head.conv.conv2d.": "head.conv2d.",
    "net.head.recurrent_block.": "G1.",
    "net.resblocks.0.conv.": "R1.",
    "net.resblocks.0.recurrent_block.": "G2.",
    "net.resblocks.1.": "R2.",
    "net.pred.conv2d.": "pred.conv2d.",
}


def _zero_gates(module: torch.nn.Module, biases: dict[str, float]) -> None:
    for name, child in module.named_children():
        torch.nn.init.zeros_(child.weight)
        torch.nn.init.constant_(child.bias, biases[name])


def test_conv_gru_known_answer():
    gru = ConvGRU(1, 1, kernel_size=1)
    _zero_gates(gru, {"reset_gate": 0.0, "update_gate": 0.0, "out_gate": 1.0})
    x = torch.zeros(1, 1, 2, 2)
    h1 = gru(x, None)  # u = 0.5, candidate = tanh(1): h1 = 0 * 0.5 + tanh(1) * 0.5
    assert torch.allclose(h1, torch.full_like(x, 0.5 * math.tanh(1.0)))
    h2 = gru(x, h1)
    assert torch.allclose(h2, 0.5 * h1 + 0.5 * math.tanh(1.0))


def test_conv_lstm_known_answer():
    lstm = ConvLSTM(1, 1, kernel_size=1)
    torch.nn.init.zeros_(lstm.Gates.weight)
    with torch.no_grad():
        lstm.Gates.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0]))  # input, forget, output, cell
    h, c = lstm(torch.zeros(1, 1, 1, 1), None)
    expected_c = 0.5 * math.tanh(1.0)  # forget * 0 + input(0.5) * tanh(1)
    assert c.item() == pytest.approx(expected_c)
    assert h.item() == pytest.approx(0.5 * math.tanh(expected_c))


def test_legacy_and_refactored_names_give_identical_outputs(shared_dir):
    path = shared_dir / "weights" / "baselines" / "firenet.pth"
    legacy = load_baseline_checkpoint(path)
    raw = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    renamed = {}
    for key, value in raw.items():
        prefix = next(p for p in LEGACY_TO_REFACTORED if key.startswith(p))
        renamed[LEGACY_TO_REFACTORED[prefix] + key[len(prefix) :]] = value
    refactored = model_from_state_dict(renamed, arch="firenet")
    torch.manual_seed(0)
    state_a = state_b = None
    for _ in range(3):
        voxel = torch.randn(1, 5, 20, 24)
        out_a, state_a = legacy(voxel, state_a)
        out_b, state_b = refactored(voxel, state_b)
        assert torch.equal(out_a, out_b)
    assert legacy.config.voxel_normalization == "nonzero"


def test_parameter_count_and_shapes():
    model = FireNet()
    assert sum(p.numel() for p in model.parameters()) == 37_777  # the official checkpoints' count
    image, (h1, h2) = model(torch.zeros(2, 5, 7, 9))
    assert image.shape == (2, 1, 7, 9) and h1.shape == h2.shape == (2, 16, 7, 9)


def test_save_pretrained_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = FireNet(num_bins=3, base_num_channels=4, voxel_normalization="none").eval()
    model.save_pretrained(tmp_path / "fn")
    loaded = FireNet.from_pretrained(tmp_path / "fn").eval()
    assert loaded.config.voxel_normalization == "none" and loaded.config.num_bins == 3
    voxel = torch.randn(1, 3, 8, 8)
    assert torch.equal(model(voxel)[0], loaded(voxel)[0])
