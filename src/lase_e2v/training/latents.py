"""Cached autoencoder latents of a synthetic dataset, so a training step runs only the trained modules.

The image autoencoder is frozen, so the latent of a frame never changes during training; encoding
the clip's frames, its previous frame and its peer estimates every step cost more than the tiny
denoiser itself. This module encodes every frame (and every cached peer estimate,
:mod:`.estimates`) of a sequence once, for each of the four flips the clip dataset draws, and stores
``<data_dir>/latents/<autoencoder>/<kind>/<sequence>.npy``: float16 ``(4, F, C, h, w)`` in
:data:`FLIPS` order, ``kind`` being ``frames`` or the estimate's method.

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
from lase_e2v.models.autoencoder import ImageAutoencoder
from lase_e2v.training.estimates import estimate_path

LATENTS_FOLDER = "latents"
FRAMES_KIND = "frames"
#: flip variants ``(horizontal, vertical)``; the index is ``horizontal + 2 * vertical``
FLIPS = ((False, False), (True, False), (False, True), (True, True))


def flip_index(horizontal: bool, vertical: bool) -> int:
    return int(horizontal) + 2 * int(vertical)


def autoencoder_key(autoencoder: ImageAutoencoder) -> str:
    """A folder name for the autoencoder's latents: its name (``tae``) or its folder's name."""
    if not autoencoder.source:
        raise ConfigError("latents can only be cached for an autoencoder loaded by name or from a folder")
    return Path(autoencoder.source).name


def latents_path(data_dir: str | Path, key: str, kind: str, sequence_file: str) -> Path:
    """Where the cached latents of one sequence live (``kind``: ``frames`` or an estimate method)."""
    return Path(data_dir) / LATENTS_FOLDER / key / kind / f"{Path(sequence_file).stem}.npy"


def missing_latents(data_dir: str | Path, key: str, kinds: list[str], sequences: list[dict]) -> list[tuple[str, dict]]:
    """``(kind, sequence)`` pairs whose latent file is not cached yet."""
    return [(kind, s) for kind in kinds for s in sequences
            if not latents_path(data_dir, key, kind, s["file"]).is_file()]


@torch.no_grad()
def encode_all_flips(autoencoder: ImageAutoencoder, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """``(F, H, W)`` uint8 frames -> float16 ``(4, F, C, h, w)`` latents of every :data:`FLIPS` variant."""
    frames = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    variants = []
    for horizontal, vertical in FLIPS:
        dims = [d for d, flip in ((-1, horizontal), (-2, vertical)) if flip]
        flipped = frames.flip(dims) if dims else frames
        variants.append(torch.cat([autoencoder.encode(flipped[i : i + batch_size]).float()
                                   for i in range(0, len(flipped), batch_size)]))
    return torch.stack(variants).to(torch.float16).numpy()


def cache_latents(
    data_dir: str | Path, autoencoder: ImageAutoencoder, sequences: list[dict], estimate_method: str | None = None,
    progress: bool = True,
) -> None:
    """Compute the missing latent files of ``sequences`` (manifest entries): their frames and, with
    ``estimate_method``, that peer's cached estimates (which must exist); each file written atomically."""
    key = autoencoder_key(autoencoder)
    kinds = [FRAMES_KIND] + ([estimate_method] if estimate_method else [])
    missing = missing_latents(data_dir, key, kinds, sequences)
    for kind, sequence in tqdm(missing, desc="latents", unit="seq", disable=not progress):
        if kind == FRAMES_KIND:
            images = open_events(Path(data_dir) / sequence["file"]).read_frames().images
        else:
            images = np.load(estimate_path(data_dir, kind, sequence["file"]))
        latents = encode_all_flips(autoencoder, images)
        with atomic_path(latents_path(data_dir, key, kind, sequence["file"])) as tmp:
            with open(tmp, "wb") as file:
                np.save(file, latents)
