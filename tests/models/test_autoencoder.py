"""TAEF2 in plain torch (bundled weights) and the AutoencoderKL wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from PIL import Image

from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.models.autoencoder import (
    TAE_ASSET_DIR,
    StableDiffusionAutoencoder,
    TinyAutoencoder,
    latent_size,
    load_autoencoder,
    pad_to_multiple,
)


@pytest.fixture(scope="module")
def tae() -> TinyAutoencoder:
    return load_autoencoder("tae")


def test_bundled_weights_are_the_released_checkpoint(shared_dir):
    bundled = TinyAutoencoder.from_pretrained(TAE_ASSET_DIR, torch_dtype=torch.float16).state_dict()
    for part in ("encoder", "decoder"):
        released = torch.load(
            shared_dir / f"weights/tae/taef2_{part}.pth", map_location="cpu", weights_only=True
        )
        assert len(released) == 79
        for key, value in released.items():
            assert torch.equal(bundled[f"{part}.{key}"], value), key


def test_bundle_ships_licence_and_loads_frozen(tae):
    assert (TAE_ASSET_DIR / "LICENSE-taesd.txt").read_text().startswith("MIT")
    assert tae.source == "tae" and not tae.training
    assert not any(p.requires_grad for p in tae.parameters())
    assert (tae.latent_channels, tae.scale_factor) == (32, 8)


def test_round_trip_on_slider_depth_frames(tae, slider_depth_dir):
    # measured over all 87 APS frames: PSNR 35.9 dB (min 34.1), SSIM 0.951
    paths = sorted((slider_depth_dir / "images").glob("*.png"))[40:42]
    frames = torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in paths]) / 255.0).float()[:, None]
    with torch.no_grad():
        latents = tae.encode(frames)
        decoded = tae.decode(latents, size=(180, 240))
    assert latents.shape == (2, 32, 23, 30)
    assert decoded.shape == (2, 1, 180, 240)
    psnr = 10 * torch.log10(1 / ((decoded - frames) ** 2).mean(dim=(1, 2, 3)))
    assert torch.all(psnr > 33.5), psnr


def test_gray_is_three_equal_channels_and_decode_averages(tae):
    gray = torch.rand(1, 1, 16, 24)
    with torch.no_grad():
        assert torch.equal(tae.encode(gray), tae.encode(gray.repeat(1, 3, 1, 1)))
        latents = tae.encode(gray)
        rgb = tae.decoder(latents)
        assert torch.allclose(tae.decode(latents), rgb.mean(dim=1, keepdim=True).clamp(0, 1))


def test_channels_last_gives_the_plain_nchw_result(tae):
    frames = torch.rand(2, 1, 40, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        latents = tae.encode(frames)
        plain_latents = tae.encoder(frames.expand(-1, 3, -1, -1).contiguous())
        decoded = tae.decode(latents)
        plain_decoded = tae.decoder(latents.contiguous()).mean(dim=1, keepdim=True).clamp(0, 1)
    assert latents.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(latents, plain_latents, atol=1e-5) and latents.abs().max() > 0.1
    assert torch.allclose(decoded, plain_decoded, atol=1e-5)


def test_sizes_not_divisible_by_8_are_padded_then_cropped(tae):
    frames = torch.rand(2, 1, 50, 70)
    with torch.no_grad():
        latents = tae.encode(frames)
        assert latents.shape[-2:] == latent_size((50, 70)) == (7, 9)
        assert tae.decode(latents, size=(50, 70)).shape == (2, 1, 50, 70)
        assert tae.decode(latents).shape == (2, 1, 56, 72)


def test_padding_and_cropping_keep_odd_sized_frames_in_place(tae, slider_depth_dir):
    """A 173x237 crop (not multiples of 8) comes back aligned: a one-pixel shift would cost PSNR."""
    path = sorted((slider_depth_dir / "images").glob("*.png"))[40]
    frame = torch.from_numpy(np.asarray(Image.open(path)) / 255.0).float()[None, None, 3:176, 2:239]
    with torch.no_grad():
        decoded = tae.decode(tae.encode(frame), size=(173, 237))
    assert decoded.shape == frame.shape

    def psnr(a, b):
        return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))

    aligned = psnr(decoded, frame)
    assert aligned > 33
    assert aligned > psnr(decoded[..., 1:, :], frame[..., :-1, :]) + 3
    assert aligned > psnr(decoded[..., :, 1:], frame[..., :, :-1]) + 3


def test_pad_to_multiple_replicates_the_edges():
    image = torch.arange(6.0).reshape(1, 1, 2, 3)
    padded = pad_to_multiple(image, 4)
    assert padded.shape == (1, 1, 4, 4)
    assert torch.equal(padded[0, 0, :2, :3], image[0, 0])
    assert torch.equal(padded[0, 0, 3], torch.tensor([3.0, 4, 5, 5]))
    assert pad_to_multiple(torch.zeros(1, 1, 8, 16)).shape == (1, 1, 8, 16)


def test_bad_frames_raise(tae):
    with pytest.raises(ConfigError, match=r"\(B, 1 or 3, H, W\)"):
        tae.encode(torch.rand(1, 2, 16, 16))
    with pytest.raises(ConfigError):
        tae.encode(torch.rand(16, 16))


def test_unknown_source_raises(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_autoencoder(tmp_path)
    (tmp_path / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    with pytest.raises(CheckpointError, match="UNet2DModel"):
        load_autoencoder(tmp_path)


def test_small_tiny_autoencoder_saves_and_loads(tmp_path):
    torch.manual_seed(0)
    model = TinyAutoencoder(latent_channels=4, width=8)
    model.save_pretrained(tmp_path)
    loaded = load_autoencoder(tmp_path)
    assert loaded.source == str(tmp_path.resolve())
    frames = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.encode(frames), model.encode(frames))


def test_stable_diffusion_autoencoder_from_a_local_folder(tmp_path):
    torch.manual_seed(0)
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        scaling_factor=0.5,
    )
    vae.save_pretrained(tmp_path)
    autoencoder = load_autoencoder(tmp_path)
    assert isinstance(autoencoder, StableDiffusionAutoencoder)
    assert (autoencoder.latent_channels, autoencoder.scaling_factor) == (4, 0.5)
    frames = torch.rand(1, 1, 20, 16)
    with torch.no_grad():
        latents = autoencoder.encode(frames)
        padded = torch.nn.functional.pad(frames, (0, 0, 0, 4), mode="replicate").repeat(1, 3, 1, 1)
        expected = vae.encode(padded * 2 - 1).latent_dist.mean * 0.5
        assert torch.allclose(latents, expected, atol=1e-6)
        decoded = autoencoder.decode(latents, size=(20, 16))
        rgb = vae.decode(latents / 0.5).sample
    assert latents.shape == (1, 4, 3, 2)
    assert torch.allclose(
        decoded, ((rgb + 1) / 2).mean(1, keepdim=True).clamp(0, 1)[..., :20, :16], atol=1e-6
    )
