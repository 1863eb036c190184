"""Checkpoint files: what loads, what is refused (with which one-line error), conversion, bundled copies."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from lase_e2v.errors import CheckpointError
from lase_e2v.models.baselines import FireNet, convert_checkpoint, load_baseline_checkpoint
from lase_e2v.pipelines.baselines import bundled_weights


@pytest.fixture(scope="module")
def weights(shared_dir):
    return shared_dir / "weights" / "baselines"


def _run(model, steps=2):
    torch.manual_seed(0)
    state, outputs = None, []
    for _ in range(steps):
        image, state = model(torch.randn(1, 5, 12, 16), state)
        outputs.append(image)
    return torch.cat(outputs)


def test_full_checkpoint_and_state_dict_file_agree(weights):
    full = load_baseline_checkpoint(weights / "firenet.pth")
    flat = load_baseline_checkpoint(weights / "firenet_state_dict.pth")
    assert torch.equal(_run(full), _run(flat))


def test_naming_decides_default_arch(weights):
    assert load_baseline_checkpoint(weights / "firenet.pth").config.voxel_normalization == "nonzero"
    plus = load_baseline_checkpoint(weights / "firenet_plus_state_dict.pth")
    assert plus.config.voxel_normalization == "none"
    assert (
        load_baseline_checkpoint(weights / "firenet.pth", arch="firenet_plus").config.voxel_normalization
        == "none"
    )


def test_pickled_checkpoint_is_refused_with_the_fix(weights):
    with pytest.raises(CheckpointError, match="firenet_plus_state_dict.pth") as error:
        load_baseline_checkpoint(weights / "firenet_plus.pth")
    assert "weights_only" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "name, arch, message",
    [
        ("cista_tc.pth", "pienet", "holds CistaTC weights, not 'pienet'"),
        ("firenet.pth", "e2vid", "holds FireNet weights, not 'e2vid'"),
        ("firenet.pth", "cista", "unknown baseline arch 'cista'"),
        ("missing.pth", None, "no such checkpoint"),
    ],
)
def test_wrong_checkpoints_raise(weights, name, arch, message):
    with pytest.raises(CheckpointError, match=message):
        load_baseline_checkpoint(weights / name, arch=arch)


def test_non_tensor_and_corrupt_files_raise(tmp_path):
    torch.save({"epoch": 3, "config": {"a": 1}}, tmp_path / "no_tensors.pth")
    with pytest.raises(CheckpointError, match="expected a state dict of tensors"):
        load_baseline_checkpoint(tmp_path / "no_tensors.pth")
    torch.save({"encoder.weight": torch.zeros(2)}, tmp_path / "other_model.pth")
    with pytest.raises(CheckpointError, match="unrecognised weights .first keys: encoder.weight."):
        load_baseline_checkpoint(tmp_path / "other_model.pth")
    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_baseline_checkpoint(tmp_path / "corrupt.pth")


def test_convert_to_safetensors_folder(weights, tmp_path):
    folder = convert_checkpoint(weights / "firenet_plus_state_dict.pth", tmp_path / "firenet_plus")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    converted = load_baseline_checkpoint(folder)
    assert isinstance(converted, FireNet) and converted.config.voxel_normalization == "none"
    original = load_baseline_checkpoint(weights / "firenet_plus_state_dict.pth")
    assert torch.equal(_run(converted), _run(original))
    with pytest.raises(CheckpointError, match="not 'e2vid'"):
        load_baseline_checkpoint(folder, arch="e2vid")


def test_bundled_weights_equal_the_official_files(weights):
    for method, file_name in (
        ("firenet", "firenet_state_dict.pth"),
        ("firenet_plus", "firenet_plus_state_dict.pth"),
    ):
        bundled = load_file(bundled_weights(method) / "diffusion_pytorch_model.safetensors")
        official = load_baseline_checkpoint(weights / file_name).state_dict()
        assert bundled.keys() == official.keys()
        assert all(torch.equal(bundled[k], official[k]) for k in official)
        assert (bundled_weights(method) / "ATTRIBUTION.md").is_file()
