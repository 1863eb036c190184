"""E2VID: the official key layout (names and shapes written out here), inferred config, outputs."""

from __future__ import annotations

import pytest
import torch

from lase_e2v.errors import CheckpointError
from lase_e2v.models.baselines import E2VID, load_baseline_checkpoint, model_from_state_dict


def official_e2vid_shapes(decoder: str = "transposed_conv2d") -> dict[str, tuple[int, ...]]:
    """rpg_e2vid / event_cnn_minimal ``E2VIDRecurrent`` keys: 5 bins, 32 channels, 3 encoders, 2 resblocks."""
    shapes = {"unetrecurrent.head.conv2d.weight": (32, 5, 5, 5), "unetrecurrent.head.conv2d.bias": (32,)}
    for i, (cin, cout) in enumerate([(32, 64), (64, 128), (128, 256)]):
        p = f"unetrecurrent.encoders.{i}."
        shapes[p + "conv.conv2d.weight"] = (cout, cin, 5, 5)
        shapes[p + "conv.conv2d.bias"] = (cout,)
        shapes[p + "recurrent_block.Gates.weight"] = (4 * cout, 2 * cout, 3, 3)
        shapes[p + "recurrent_block.Gates.bias"] = (4 * cout,)
    for i in range(2):
        for conv in ("conv1", "conv2"):
            shapes[f"unetrecurrent.resblocks.{i}.{conv}.weight"] = (256, 256, 3, 3)
            shapes[f"unetrecurrent.resblocks.{i}.{conv}.bias"] = (256,)
    for i, (cin, cout) in enumerate([(256, 128), (128, 64), (64, 32)]):
        # ConvTranspose2d weights are (in, out, k, k); Conv2d weights (out, in, k, k)
        shape = (cin, cout, 5, 5) if decoder == "transposed_conv2d" else (cout, cin, 5, 5)
        shapes[f"unetrecurrent.decoders.{i}.{decoder}.weight"] = shape
        shapes[f"unetrecurrent.decoders.{i}.{decoder}.bias"] = (cout,)
    shapes["unetrecurrent.pred.conv2d.weight"] = (1, 32, 1, 1)
    shapes["unetrecurrent.pred.conv2d.bias"] = (1,)
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=generator) * 0.05 for k, s in shapes.items()}


def test_official_layout_loads_into_default_config(tmp_path):
    state = random_state(official_e2vid_shapes())
    torch.save({"arch": "E2VIDRecurrent", "state_dict": state}, tmp_path / "E2VID_lightweight.pth.tar")
    model = load_baseline_checkpoint(tmp_path / "E2VID_lightweight.pth.tar")
    defaults = {k: v for k, v in E2VID().config.items() if not k.startswith("_")}
    assert {k: model.config[k] for k in defaults} == defaults  # inferred hyperparameters = the official ones
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key.removeprefix("unetrecurrent.")], value), key
    assert sum(v.numel() for v in state.values()) == sum(p.numel() for p in model.parameters()) == 10_710_401


def test_upsample_conv_decoders_are_detected():
    model = model_from_state_dict(random_state(official_e2vid_shapes("conv2d")), arch="e2vid_plus")
    assert model.config.use_upsample_conv is True
    assert model.config.final_activation == "none" and model.config.voxel_normalization == "none"


def test_output_range_and_state_shapes():
    model = model_from_state_dict(random_state(official_e2vid_shapes()), arch="e2vid")
    voxel = torch.randn(1, 5, 24, 40) * 3
    image, state = model(voxel)
    assert image.shape == (1, 1, 24, 40)
    assert 0.0 < image.min() and image.max() < 1.0  # sigmoid
    assert [h.shape for h, _ in state] == [(1, 64, 12, 20), (1, 128, 6, 10), (1, 256, 3, 5)]
    image_2, _ = model(voxel, state)
    assert not torch.equal(image, image_2)  # the ConvLSTM states feed back


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("unetrecurrent.pred.conv2d.bias"), "missing pred.conv2d.bias"),
        (lambda s: s.update({"unetrecurrent.extra.weight": torch.zeros(1)}), "unexpected extra.weight"),
        (
            lambda s: s.update({"unetrecurrent.pred.conv2d.bias": torch.zeros(2)}),
            "wrong shape pred.conv2d.bias",
        ),
    ],
)
def test_bad_weights_raise_one_line(edit, message):
    state = random_state(official_e2vid_shapes())
    edit(state)
    with pytest.raises(CheckpointError, match=message) as error:
        model_from_state_dict(state, arch="e2vid")
    assert "\n" not in str(error.value)
