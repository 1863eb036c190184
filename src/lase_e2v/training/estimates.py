"""Cached peer reconstructions of a synthetic dataset, for EI-consistent training.

At inference, event-based noise initialisation (EI) starts sampling from a noised latent of a
peer's estimate (e.g. FireNet+), not of the true frame; a denoiser trained only on noised true
frames takes the estimate's errors for signal and keeps them. With ``ei_training_fraction > 0``
(:mod:`.loop`) some clips are noised from the estimate instead, and the target is the one that
brings the prediction back to the true frame. This module computes those estimates once per
sequence, exactly as inference does (the peer run from the sequence start over the windows
between consecutive frames), and stores them as ``<data_dir>/estimates/<method>/<seq>.npy``,
``(num_frames, H, W)`` uint8; frame 0, which has no window before it, is mid-grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lase_e2v.atomic import atomic_path
from lase_e2v.events.formats import open_events
from lase_e2v.events.windows import FrameWindows

ESTIMATES_FOLDER = "estimates"


def estimate_path(data_dir: str | Path, method: str, sequence_file: str) -> Path:
    """Where the cached estimates of one sequence file live."""
    return Path(data_dir) / ESTIMATES_FOLDER / method / f"{Path(sequence_file).stem}.npy"


def missing_estimates(data_dir: str | Path, method: str, sequences: list[dict]) -> list[dict]:
    """The manifest entries of ``sequences`` whose estimate file is not cached yet."""
    return [s for s in sequences if not estimate_path(data_dir, method, s["file"]).is_file()]


def compute_estimates(reconstructor, path: Path, frame_t_us: list[int]) -> np.ndarray:
    """``(len(frame_t_us), H, W)`` uint8: the reconstructor's frame at every frame time (grey first)."""
    output = reconstructor(open_events(path), FrameWindows(tuple(frame_t_us)))
    grey = np.full((1, *output.frames.shape[1:]), 0.5, dtype=np.float32)
    frames = np.concatenate([grey, output.frames])
    return np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)


def cache_estimates(data_dir: str | Path, method: str, sequences: list[dict], device: str = "cpu") -> None:
    """Compute the missing estimate files of ``sequences`` (manifest entries), atomically, with a progress bar."""
    from lase_e2v.pipelines.baselines import load_reconstructor

    missing = missing_estimates(data_dir, method, sequences)
    if not missing:
        return
    reconstructor = load_reconstructor(method, device=device)
    for sequence in tqdm(missing, desc=f"{method} estimates", unit="seq"):
        frames = compute_estimates(reconstructor, Path(data_dir) / sequence["file"], sequence["frame_t_us"])
        with atomic_path(estimate_path(data_dir, method, sequence["file"])) as tmp:
            np.save(tmp, frames)
