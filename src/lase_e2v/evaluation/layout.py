"""The benchmark folder's layout: every file name the benchmark writes and the report reads, in one place.

::

    out_dir/
      index.html, aggregate.json, scores.md, scores.csv, scores.png     (:mod:`.report`)
      results/<dataset>/<sequence>/<method>.json                         per-frame scores
      videos/<dataset>_<sequence>.mp4 (+ .png still)                     events | methods | reference
      _frames/<dataset>/<sequence>/                                      kept frames while running, removed at the end
        <method>.npy, <method>.indices.npy                               uint8 predictions and their frame indices
        _reference.npy, _events.npy, _indices.npy, _t_us.npy             the sequence's references, event signs, frames

Names pass through :func:`slug`, so any method or sequence name gives a valid file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: temporary folder of kept frames inside the benchmark folder
FRAMES_FOLDER = "_frames"
#: per-frame score files
RESULTS_FOLDER = "results"
#: side-by-side videos
VIDEOS_FOLDER = "videos"


def slug(name: str) -> str:
    """A file-name-safe version of a method/sequence name (``FireNet+`` stays, spaces become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def result_file(dataset: str, sequence: str, method: str) -> str:
    """Where a sequence result goes, relative to the benchmark folder."""
    return f"{RESULTS_FOLDER}/{slug(dataset)}/{slug(sequence)}/{slug(method)}.json"


def video_file(dataset: str, sequence: str) -> str:
    """Where a sequence's side-by-side video goes, relative to the benchmark folder."""
    return f"{VIDEOS_FOLDER}/{slug(dataset)}_{slug(sequence)}.mp4"


def frames_folder(out_dir: Path, dataset: str, sequence: str) -> Path:
    """Where a sequence's kept frames are parked while the benchmark runs."""
    return out_dir / FRAMES_FOLDER / slug(dataset) / slug(sequence)


@dataclass
class KeptSequence:
    """What :func:`load_kept_frames` reads back: the sequence's reference frames (indices, times,
    uint8 images, int8 event signs) and each method's ``(indices, uint8 predictions)``; arrays are
    memory-mapped."""

    indices: np.ndarray
    t_us: np.ndarray
    references: np.ndarray
    event_signs: np.ndarray
    predictions: dict[str, tuple[np.ndarray, np.ndarray]]


def save_kept_frames(
    folder: Path,
    method: str,
    indices: list[int],
    t_us: list[int],
    predictions: list[np.ndarray],
    references: list[np.ndarray],
    event_signs: list[np.ndarray],
) -> None:
    """Park one method's kept frames (and, once per sequence, the references) as uint8 ``.npy``."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{slug(method)}.npy", np.stack(predictions))
    np.save(folder / f"{slug(method)}.indices.npy", np.asarray(indices))
    if not (folder / "_reference.npy").exists():
        np.save(folder / "_reference.npy", np.stack(references))
        np.save(folder / "_events.npy", np.stack(event_signs))
        np.save(folder / "_indices.npy", np.asarray(indices))
        np.save(folder / "_t_us.npy", np.asarray(t_us))


def load_kept_frames(folder: Path, methods: list[str]) -> KeptSequence:
    """The frames :func:`save_kept_frames` parked for ``methods`` (methods that kept none are left out)."""
    predictions = {}
    for method in methods:
        file = folder / f"{slug(method)}.npy"
        if file.is_file():
            predictions[method] = (np.load(folder / f"{slug(method)}.indices.npy"), np.load(file, mmap_mode="r"))
    return KeptSequence(
        indices=np.load(folder / "_indices.npy"),
        t_us=np.load(folder / "_t_us.npy"),
        references=np.load(folder / "_reference.npy", mmap_mode="r"),
        event_signs=np.load(folder / "_events.npy", mmap_mode="r"),
        predictions=predictions,
    )
