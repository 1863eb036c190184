"""Cached autoencoder latents of a synthetic dataset, so a training step runs only the trained modules.

The image autoencoder is frozen, so the latent of a frame never changes during training; encoding
the clip's frames, its previous frame and its peer estimates every step cost more than the tiny
denoiser itself. This module encodes every frame (and every cached peer estimate,
:mod:`.estimates`) of a sequence once per flip variant (``none``, ``h``, ``v``, ``hv``, see
:data:`lase_e2v.flips.FLIPS`) and stores ``<data_dir>/latents/<autoencoder>/<kind>/<flip>/<sequence>.npy``:
float16 ``(F, C, h, w)``, ``kind`` being ``frames`` or the estimate's method. Encoding is the expensive
part (TAEF2 at 180x240 costs about as much as a training step), so only the variants a run asks for
are cached (``latent_flips``, default ``none`` and ``h``) and the clip dataset draws among those; a
flipped latent is *not* the latent of the flipped frame (TAEF2 decodes a flipped latent to SSIM 0.87
of the flipped frame, against 0.98 for the frame's own latent), so flips cannot be made afterwards.

Latents are of the whole (padded) frame, flipped before encoding (a convolutional encoder is not
flip-equivariant). A training crop aligned to the autoencoder's scale factor *in the flipped frame*
cuts the matching latent window (:class:`~lase_e2v.training.clips.SyntheticClipDataset`). Latents of
a crop taken from a whole-frame latent are what inference sees (it encodes whole frames), which the
autoencoders' global-context blocks (TAEF2's GroupNorm mid-blocks) would otherwise not reproduce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import ConfigError
from lase_e2v.events.formats import open_events
from lase_e2v.flips import check_flips, flip_images
from lase_e2v.models.autoencoder import ImageAutoencoder
from lase_e2v.training.estimates import estimate_path

LATENTS_FOLDER = "latents"
FRAMES_KIND = "frames"


def autoencoder_key(autoencoder: ImageAutoencoder) -> str:
    """A folder name for the autoencoder's latents: its name (``tae``) or its folder's name."""
    if not autoencoder.source:
        raise ConfigError("latents can only be cached for an autoencoder loaded by name or from a folder")
    return Path(autoencoder.source).name


def latent_kinds(estimate_method: str | None) -> list[str]:
    """What a sequence's latents are cached of: its frames and, with ``estimate_method``, that peer's estimates."""
    return [FRAMES_KIND] + ([estimate_method] if estimate_method else [])


def latents_path(data_dir: str | Path, key: str, kind: str, flip: str, sequence_file: str) -> Path:
    """Where the cached latents of one sequence and flip live (``kind``: ``frames`` or an estimate method)."""
    return Path(data_dir) / LATENTS_FOLDER / key / kind / flip / f"{Path(sequence_file).stem}.npy"


def missing_latents(data_dir: str | Path, key: str, kinds: list[str], flips: tuple[str, ...],
                    sequences: list[dict]) -> list[tuple[str, str, dict]]:
    """``(kind, flip, sequence)`` triples whose latent file is not cached yet."""
    return [(kind, flip, s) for kind in kinds for flip in flips for s in sequences
            if not latents_path(data_dir, key, kind, flip, s["file"]).is_file()]


@torch.no_grad()
def encode_flipped(autoencoder: ImageAutoencoder, images: np.ndarray, flip: str, batch_size: int = 8) -> np.ndarray:
    """``(F, H, W)`` uint8 frames -> float16 ``(F, C, h, w)`` latents of the frames flipped as ``flip`` says,
    encoded on the autoencoder's device (a GPU when training runs on one)."""
    device = next(autoencoder.parameters()).device
    frames = flip_images(torch.from_numpy(images.astype(np.float32) / 255.0)[:, None], flip)
    latents = [autoencoder.encode(frames[i : i + batch_size].to(device)).float().cpu()
               for i in range(0, len(frames), batch_size)]
    return torch.cat(latents).to(torch.float16).numpy()


def cache_latents(
    data_dir: str | Path, autoencoder: ImageAutoencoder, sequences: list[dict], estimate_method: str | None = None,
    flips: tuple[str, ...] = ("none", "h"), progress: bool = True,
) -> None:
    """Compute the missing latent files of ``sequences`` (manifest entries) for each of ``flips``: their
    frames and, with ``estimate_method``, that peer's cached estimates (which must exist); each file
    is written atomically, so an interrupted run resumes where it stopped."""
    key = autoencoder_key(autoencoder)
    flips = check_flips(flips, "latent flips")
    missing = missing_latents(data_dir, key, latent_kinds(estimate_method), flips, sequences)
    for kind, flip, sequence in tqdm(missing, desc="latents", unit="file", disable=not progress):
        if kind == FRAMES_KIND:
            images = open_events(Path(data_dir) / sequence["file"]).read_frames().images
        else:
            images = np.load(estimate_path(data_dir, kind, sequence["file"]))
        latents = encode_flipped(autoencoder, images, flip)
        with atomic_path(latents_path(data_dir, key, kind, flip, sequence["file"])) as tmp:
            with open(tmp, "wb") as file:
                np.save(file, latents)
