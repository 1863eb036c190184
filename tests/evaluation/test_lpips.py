"""LPIPS in plain torch against the reference values of ../shared/weights/lpips/README.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.evaluation.convert_lpips import convert_lpips
from lase_e2v.evaluation.lpips import bundled_weights_path, load_lpips
from lase_e2v.evaluation.metrics import LpipsMetric


def seeded_noise_pair() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1
    x1 = torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1
    return x0, x1


@pytest.fixture(scope="module")
def alex():
    return load_lpips("alex")


def test_alex_matches_the_reference_values(alex):
    x0, x1 = seeded_noise_pair()
    with torch.no_grad():
        np.testing.assert_allclose(alex(x0, x1).numpy(), [0.102832, 0.125656], atol=1e-3)
        np.testing.assert_allclose(alex(x0, x1).numpy(), alex(x1, x0).numpy(), atol=1e-6)
        assert torch.all(alex(x0, x0) == 0)


def test_vgg_from_a_user_path_matches_the_reference_values(shared_dir):
    vgg = load_lpips("vgg", shared_dir / "weights" / "lpips" / "lpips_vgg.pth")
    x0, x1 = seeded_noise_pair()
    with torch.no_grad():
        np.testing.assert_allclose(vgg(x0, x1).numpy(), [0.324280, 0.364622], atol=1e-3)


def test_bundled_weights_equal_the_shared_checkpoint_bit_for_bit(shared_dir):
    bundled = load_file(str(bundled_weights_path("alex")))
    original = torch.load(
        shared_dir / "weights" / "lpips" / "lpips_alex.pth", map_location="cpu", weights_only=True
    )
    assert bundled.keys() == original.keys()
    assert all(torch.equal(bundled[k], original[k]) for k in original)
    assert (bundled_weights_path("alex").parent / "LICENSE-lpips.txt").is_file()


def test_metric_on_gray_images(alex):
    metric = LpipsMetric()
    image = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)
    assert metric.calculate(image, image) == 0.0
    # gray in [0,1] goes in as three equal channels scaled to [-1, 1]
    other = np.full_like(image, 0.5)
    expected = alex(
        torch.from_numpy(image * 2 - 1).expand(1, 3, 48, 64),
        torch.from_numpy(other * 2 - 1).expand(1, 3, 48, 64),
    )
    assert metric.calculate(image, other) == pytest.approx(float(expected[0]), abs=1e-6)


def test_wrong_weights_are_rejected(tmp_path, shared_dir):
    with pytest.raises(ConfigError, match="not bundled"):
        load_lpips("vgg")
    with pytest.raises(ConfigError, match="unknown"):
        load_lpips("squeeze")
    with pytest.raises(CheckpointError, match="not LPIPS-vgg"):
        load_lpips("vgg", bundled_weights_path("alex"))
    with pytest.raises(CheckpointError, match="not found"):
        load_lpips("alex", tmp_path / "missing.pth")


def test_conversion_copies_tensors_exactly(tmp_path, shared_dir):
    source = shared_dir / "weights" / "lpips" / "lpips_alex.pth"
    written = convert_lpips(source, tmp_path / "alex.safetensors")
    assert load_file(str(written)).keys() == load_file(str(bundled_weights_path("alex"))).keys()
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            load_file(str(written)).values(), load_file(str(bundled_weights_path("alex"))).values()
        )
    )
    broken = tmp_path / "broken.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, broken)
    with pytest.raises(CheckpointError):
        convert_lpips(broken, tmp_path / "broken.safetensors")
    assert not (tmp_path / "broken.safetensors").exists()
