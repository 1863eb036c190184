"""Training clips from a synthetic dataset (:func:`lase_e2v.simulate.dataset.make_dataset`).

A clip is ``clip_frames`` consecutive ground-truth frames, the frame just before them, the
events between each pair of frames as E2VID voxel grids, and one of the source photo's captions.

Augmentation (``augment=True``), all drawn from ``np.random.default_rng([seed, index])`` so an
item is the same every time it is read:

* random crop (centre crop without augmentation), horizontal and vertical flip;
* time reversal instead of a bare polarity flip. Negating polarities alone would mean
  ``log I -> -log I``, i.e. ``I -> 1 / I``, which no [0, 1] frame can show (and ``1 - I`` is not
  it). Playing the clip backwards is exact: the N + 1 frames are reversed (the last target
  becomes the previous frame, the previous frame the last target), every event changes
  polarity and time runs backwards,
  which for E2VID voxel grids is exactly ``voxels' = -voxels[::-1, ::-1]`` (reverse window order
  and bin order, negate), since each window's timestamps are normalised by its first and last
  event. Only C+ / C- asymmetry and the refractory period are not time-symmetric; both are
  randomised per sequence anyway.
* caption: a random one of the photo's captions (the first without augmentation) followed by the
  sequence's scene words (lighting, camera speed; manifests from before they existed have none);
  with probability ``sentence_dropout`` the words alone, so that a user's short prompt ("at night,
  dark") means what it means in a full caption.

With ``estimate_method`` set, items also carry that peer's cached reconstructions of the target
frames and of the previous frame (:mod:`.estimates`), cropped and flipped with them; a
time-reversed clip keeps each frame's forward-time estimate (still an estimate of that frame, with
a peer's kind of error).

Several folders (``more_roots``) train as one: their sequences follow the first folder's, in
order, and each keeps its own caches, so sequences made in a later session join without the
earlier ones being simulated or encoded again. They must share the frame size and the photos held
out for val, so that no train photo of one is a val photo of another.

With ``latents_key`` set, items also carry the cached autoencoder latents (:mod:`.latents`) of the
clip's frames, previous frame and estimates, so training needs no encoder pass. Flips are then
drawn among the cached variants (``latent_flips``, each equally likely) instead of by two coin
flips, and crops are aligned to the latent grid (multiples of 8 pixels) in the flipped frame, where
the latents were computed; crop offsets are drawn in the flipped frame in every case.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from lase_e2v.errors import ConfigError, EventFormatError
from lase_e2v.events.formats.base import as_microseconds
from lase_e2v.events.formats.hdf5 import Hdf5Reader
from lase_e2v.events.representations import normalize_nonzero, to_event_mask, to_voxel_grid
from lase_e2v.flips import FLIPS, check_flips
from lase_e2v.simulate.dataset import MANIFEST_NAME
from lase_e2v.simulate.scenes import LIGHTING_SHARES, caption_with_words, lighting_kind
from lase_e2v.models.autoencoder import SCALE_FACTOR
from lase_e2v.training.estimates import estimate_path, missing_estimates
from lase_e2v.training.latents import FRAMES_KIND, latent_kinds, latents_path, missing_latents


def _read_clip(path: Path, first_frame: int, last_frame: int, first_event: int, last_event: int):
    """Frames ``first_frame..last_frame`` (uint8) and events ``[first_event, last_event)`` of an
    HQF-layout file as written by :func:`lase_e2v.events.formats.hdf5.write_hdf5`."""
    try:
        with h5py.File(path, "r") as file:
            images = np.stack([file["images"][f"image{i:09d}"][()] for i in range(first_frame, last_frame + 1)])
            events = file["events"]
            x, y = events["xs"][first_event:last_event], events["ys"][first_event:last_event]
            t = as_microseconds(events["ts"][first_event:last_event])
            p = np.where(events["ps"][first_event:last_event], 1, -1).astype(np.int8)
    except (OSError, KeyError) as error:
        raise EventFormatError(f"{path}: cannot read clip frames {first_frame}..{last_frame} ({error})") from None
    return images, x, y, t, p


def estimate_agreement(frames: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Per frame, the correlation of a peer's estimate with the true frame over all pixels (0 where
    either is flat): how much of the frame's structure the estimate already has, whatever its tone."""
    truth = frames.reshape(len(frames), -1).astype(np.float64)
    guess = np.asarray(estimates).reshape(len(estimates), -1).astype(np.float64)
    truth -= truth.mean(axis=1, keepdims=True)
    guess -= guess.mean(axis=1, keepdims=True)
    scale = np.sqrt((truth * truth).sum(axis=1) * (guess * guess).sum(axis=1))
    return np.divide((truth * guess).sum(axis=1), scale, out=np.zeros(len(truth)), where=scale > 0)


def _reverse_time(frames: np.ndarray, length: int) -> np.ndarray:
    """Reverse each consecutive block of ``length`` frames (the clip, then its estimates, if any)."""
    return np.concatenate([frames[i : i + length][::-1] for i in range(0, len(frames), length)])


def load_manifest(root: str | Path) -> dict:
    """The manifest of a :func:`~lase_e2v.simulate.dataset.make_dataset` folder (one clear error without it)."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise ConfigError(f"{root}: no {MANIFEST_NAME}; expected a folder written by make-dataset")
    return json.loads(path.read_text())


def _split_sequences(folder: Path, manifest: dict, first: dict, split: str, in_range_only: bool) -> list[dict]:
    """The ``split`` sequences of ``folder`` (whose manifest is ``manifest``), after checking that it can
    train with the first folder (manifest ``first``): gray, same frame size, same held-out photos."""
    if manifest.get("color_filter"):
        raise ConfigError(f"{folder}: a colour dataset (make-dataset --color); LaSe-E2V trains on gray ones")
    held_out = manifest.get("photos", {}).get("val")
    if manifest["size"] != first["size"] or held_out != first.get("photos", {}).get("val"):
        raise ConfigError(f"{folder}: its frame size or held-out photos differ from the first folder's; "
                          "folders that train together must be made with the same --height/--width and --coco-dir")
    sequences = [s for s in manifest["sequences"] if s["split"] == split]
    if in_range_only:
        if any("realism" not in s for s in sequences):
            raise ConfigError(f"{folder}: made without --realistic, so no sequence is marked in range "
                              "(in_range_only needs make-dataset --realistic)")
        sequences = [s for s in sequences if s["realism"]["in_real_range"]]
    return sequences


class SyntheticClipDataset(Dataset):
    """Clips of a synthetic dataset folder (``manifest.json`` + ``seq_*.h5``).

    Args:
        root: the folder :func:`~lase_e2v.simulate.dataset.make_dataset` wrote.
        split (`str`, *optional*, defaults to ``"train"``): ``"train"`` or ``"val"``.
        clip_frames (`int`, *optional*, defaults to 8): N, target frames per clip.
        num_bins (`int`, *optional*, defaults to 5): B, voxel grid bins per frame interval.
        crop (`tuple[int, int]`, *optional*): ``(h, w)`` crop; ``None`` keeps the full frame.
        augment (`bool`, *optional*, defaults to ``True``): random crop, flips, time reversal, caption.
        seed (`int`, *optional*, defaults to 0): with the item index, fixes every random choice.
        normalize_voxels (`bool`, *optional*, defaults to ``True``): scale each voxel grid's non-zero
            entries to zero mean, unit std (E2VID), after cropping.
        estimate_method (`str`, *optional*): a peer (e.g. ``"firenet_plus"``) whose cached estimates
            (:func:`~lase_e2v.training.estimates.cache_estimates`) are returned as ``estimate``.
        sentence_dropout (`float`, *optional*, defaults to 0): with augmentation, probability of a
            caption made of the scene words alone (when the sequence has any).
        latents_key (`str`, *optional*): the autoencoder whose cached latents
            (:func:`~lase_e2v.training.latents.cache_latents`) items carry as ``latents``,
            ``previous_latent`` and (with ``estimate_method``) ``estimate_latents`` and
            ``previous_estimate_latent``.
        estimate_latents (`bool`, *optional*, defaults to ``True``): with ``latents_key`` and
            ``estimate_method``, also read (and require) the estimates' cached latents; ``False`` when
            training encodes altered estimates itself (``estimate_gamma_jitter``).
        latent_flips (`tuple[str, ...]`, *optional*, defaults to ``("none", "h")``): the cached flip
            variants augmentation draws from (with ``latents_key``).
        more_roots (`Sequence[str | Path]`, *optional*): further make_dataset folders whose ``split``
            sequences follow ``root``'s (see the module docstring).
        in_range_only (`bool`, *optional*, defaults to ``False``): only the sequences whose event
            statistics ``make-dataset --realistic`` found in the real sensors' range (its redraws can
            leave a few outside); folders made without ``--realistic`` are refused.

    Items are dicts: ``frames`` (N, 1, h, w) float32 in [0, 1]; ``voxels`` (N, B, h, w) float32,
    ``voxels[i]`` from the events between frame ``i - 1`` and ``i``; ``previous_frame`` (1, h, w),
    the frame before ``frames[0]``; ``event_mask`` (N, 1, h, w) float32 in {0, 1}, where the voxel
    grid is non-zero; ``caption`` (str); ``sequence`` (str, file name); with ``estimate_method``,
    ``estimate`` (N, 1, h, w) float32 in [0, 1] and ``previous_estimate`` (1, h, w); with ``latents_key``,
    ``latents`` (N, C, h/8, w/8), ``previous_latent`` (C, h/8, w/8) and, with ``estimate_method``,
    ``estimate_latents`` (N, C, h/8, w/8) and ``previous_estimate_latent`` (C, h/8, w/8), float32.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        clip_frames: int = 8,
        num_bins: int = 5,
        crop: tuple[int, int] | None = None,
        augment: bool = True,
        seed: int = 0,
        normalize_voxels: bool = True,
        estimate_method: str | None = None,
        sentence_dropout: float = 0.0,
        latents_key: str | None = None,
        estimate_latents: bool = True,
        latent_flips: tuple[str, ...] = ("none", "h"),
        more_roots: Sequence[str | Path] = (),
        in_range_only: bool = False,
    ) -> None:
        self.root = Path(root)
        if clip_frames < 1 or num_bins < 1:
            raise ConfigError(f"clip_frames and num_bins must be >= 1, got {clip_frames} and {num_bins}")
        first = load_manifest(self.root)
        self.sensor_size = (int(first["size"][0]), int(first["size"][1]))
        if crop is not None and (crop[0] > self.sensor_size[0] or crop[1] > self.sensor_size[1] or min(crop) < 1):
            raise ConfigError(f"crop {tuple(crop)} must fit the {self.sensor_size} frames")
        self.sequences, self.folders = [], []  # folders[i]: where sequences[i] and its caches live
        for folder in (self.root, *map(Path, more_roots)):
            manifest = first if folder == self.root else load_manifest(folder)
            sequences = _split_sequences(folder, manifest, first, split, in_range_only)
            self.sequences += sequences
            self.folders += [folder] * len(sequences)
        if not self.sequences:
            raise ConfigError(f"{self.root}: no sequences in split {split!r}")
        self.split, self.clip_frames, self.num_bins = split, clip_frames, num_bins
        self.crop, self.augment, self.seed, self.normalize_voxels = crop, augment, seed, normalize_voxels
        self.estimate_method, self.sentence_dropout, self.latents_key = estimate_method, sentence_dropout, latents_key
        self.latent_flips = check_flips(latent_flips, "latent flips")
        self._latent_kinds = latent_kinds(estimate_method if estimate_latents else None)
        for folder, sequences in self.by_folder().items():
            if estimate_method is not None:
                missing = missing_estimates(folder, estimate_method, sequences)
                if missing:
                    raise ConfigError(f"{folder}: no cached {estimate_method} estimates for {missing[0]['file']} "
                                      f"(and {len(missing) - 1} more); run cache_estimates first")
            if latents_key is not None:
                missing_kinds = missing_latents(folder, latents_key, self._latent_kinds, self.latent_flips, sequences)
                if missing_kinds:
                    kind, flip, sequence = missing_kinds[0]
                    raise ConfigError(f"{folder}: no cached {latents_key} latents ({kind}, flip {flip}) for "
                                      f"{sequence['file']} (and {len(missing_kinds) - 1} more); "
                                      "run cache_latents first")
        # clip = (sequence, first target frame); the frame before it must exist
        self._clips = [
            (s, start)
            for s, sequence in enumerate(self.sequences)
            for start in range(1, len(sequence["frame_t_us"]) - clip_frames + 1)
        ]
        if not self._clips:
            raise ConfigError(f"{self.root}: no sequence of split {split!r} has {clip_frames + 1} frames")

    def __len__(self) -> int:
        return len(self._clips)

    def lighting_weights(self) -> torch.Tensor:
        """One sampling weight per clip such that the clips of each lighting kind present together get
        that kind's share of :data:`~lase_e2v.simulate.scenes.LIGHTING_SHARES` (renormalized over the
        kinds present). Why: a folder of tens of sequences holds a random mix (one of ours: 13 dark of
        40 where make-dataset draws 20%), and where the events leave the brightness open the model
        learns that mix as its prior."""
        kinds = [lighting_kind(sequence) for sequence in self.sequences]
        if None in kinds:
            name = self.sequences[kinds.index(None)]["file"]
            raise ConfigError(f"lighting_balance: {name} has no recorded lighting kind "
                              "(a make-dataset folder from before it was recorded)")
        clip_kinds = [kinds[s] for s, _ in self._clips]
        counts = Counter(clip_kinds)
        total = sum(LIGHTING_SHARES[kind] for kind in counts)
        return torch.tensor([LIGHTING_SHARES[kind] / total / counts[kind] for kind in clip_kinds],
                            dtype=torch.float64)

    def good_estimate_weights(self, share: float) -> torch.Tensor:
        """One sampling weight per clip such that the third of the clips whose cached estimates agree
        best with their true frames (:func:`estimate_agreement`, the mean over the clip's target
        frames) get ``share`` of the draws together, the other two thirds the rest. Why: where the
        peer's estimate is already good the bundled model adds least (120 val sequences: -0.011 SSIM
        against PIE-Net alone on the 28 where PIE-Net's SSIM is at least 0.6, +0.06 to +0.11 on the
        rest; ``benchmarks/estimate_regime.py``), and a small share of the training clips is like that."""
        if self.estimate_method is None:
            raise ConfigError("good_estimate_share needs the cached estimates of a peer (ei_training_estimate)")
        agreement = {}
        for folder, sequences in self.by_folder().items():
            for sequence in sequences:
                frames = Hdf5Reader(folder / sequence["file"]).read_frames().images
                estimates = np.load(estimate_path(folder, self.estimate_method, sequence["file"]), mmap_mode="r")
                agreement[folder, sequence["file"]] = estimate_agreement(frames, estimates)
        clip_agreement = np.array([
            agreement[self.folders[s], self.sequences[s]["file"]][start : start + self.clip_frames].mean()
            for s, start in self._clips
        ])
        top = clip_agreement >= np.quantile(clip_agreement, 2 / 3)
        if top.all():  # every clip ties: nothing to favour
            return torch.ones(len(self), dtype=torch.float64)
        return torch.from_numpy(np.where(top, share / top.sum(), (1 - share) / (~top).sum()))

    def by_folder(self) -> dict[Path, list[dict]]:
        """The sequences grouped by the folder that holds them (and their caches), in order."""
        groups: dict[Path, list[dict]] = {}
        for folder, sequence in zip(self.folders, self.sequences, strict=True):
            groups.setdefault(folder, []).append(sequence)
        return groups

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range 0..{len(self) - 1}")
        rng = np.random.default_rng([self.seed, index])
        sequence_index, start = self._clips[index]
        sequence, folder = self.sequences[sequence_index], self.folders[sequence_index]
        count = self.clip_frames
        # 1. frames start-1 .. start+N-1 and the events between them
        event_indices = np.asarray(sequence["frame_event_indices"][start - 1 : start + count], dtype=np.int64)
        images, x, y, t, p = _read_clip(
            folder / sequence["file"], start - 1, start + count - 1, int(event_indices[0]), int(event_indices[-1])
        )
        bounds = event_indices - event_indices[0]
        voxels = np.stack([
            to_voxel_grid(x[a:b], y[a:b], t[a:b], p[a:b], self.num_bins, self.sensor_size)
            for a, b in itertools.pairwise(bounds)
        ])
        frames = images.astype(np.float32) / 255.0  # (N + 1, H, W), previous frame first
        if self.estimate_method is not None:  # carried as extra frames through the same augmentation
            estimates = np.load(estimate_path(folder, self.estimate_method, sequence["file"]), mmap_mode="r")
            frames = np.concatenate([frames, estimates[start - 1 : start + count].astype(np.float32) / 255.0])
        # 2. augmentation: time reversal, crop (offset in the flipped frame), flips
        reverse = self.augment and rng.random() < 0.5
        if reverse:
            frames, voxels = _reverse_time(frames, count + 1), -voxels[::-1, ::-1]
        crop_origin = self._crop_origin(rng)  # (top, left) in the flipped frame
        horizontal, vertical = self._draw_flips(rng)
        window = self._crop_window(crop_origin, horizontal, vertical)
        frames, voxels = frames[window], voxels[window]
        if horizontal:
            frames, voxels = frames[..., ::-1], voxels[..., ::-1]
        if vertical:
            frames, voxels = frames[..., ::-1, :], voxels[..., ::-1, :]
        frames, estimates = frames[: count + 1], frames[count + 1 :]
        # 3. mask before normalising (normalising can zero a voxel that equals the mean)
        event_mask = np.stack([to_event_mask(v) for v in voxels])[:, None]
        if self.normalize_voxels:
            voxels = np.stack([normalize_nonzero(v) for v in voxels])
        sentences, words = sequence.get("photo_captions", sequence["captions"]), sequence.get("scene_words", [])
        sentence = sentences[int(rng.integers(len(sentences)))] if self.augment else sentences[0]
        if self.augment and words and rng.random() < self.sentence_dropout:
            sentence = ""
        caption = caption_with_words(sentence, words)
        as_tensor = lambda a: torch.from_numpy(np.array(a, dtype=np.float32, order="C"))
        item = {
            "frames": as_tensor(frames[1:, None]),
            "voxels": as_tensor(voxels),
            "previous_frame": as_tensor(frames[:1]),
            "event_mask": as_tensor(event_mask),
            "caption": caption,
            "sequence": sequence["file"],
        }
        if self.estimate_method is not None:
            item["previous_estimate"] = as_tensor(estimates[:1])
            item["estimate"] = as_tensor(estimates[1:, None])
        if self.latents_key is not None:
            item.update(self._latents(folder, sequence["file"], start, reverse, crop_origin, horizontal, vertical))
        return item

    def _draw_flips(self, rng: np.random.Generator) -> tuple[bool, bool]:
        """``(horizontal, vertical)``: two coin flips, or one of the cached latent variants."""
        if not self.augment:
            return False, False
        if self.latents_key is not None:
            return FLIPS[self.latent_flips[int(rng.integers(len(self.latent_flips)))]]
        return rng.random() < 0.5, rng.random() < 0.5

    @property
    def _alignment(self) -> int:
        return SCALE_FACTOR if self.latents_key is not None else 1

    def _crop_origin(self, rng: np.random.Generator) -> tuple[int, int]:
        """``(top, left)`` of the crop in the flipped frame: random (or central) on the alignment grid."""
        (height, width), (crop_h, crop_w) = self.sensor_size, self.crop or self.sensor_size
        step = self._alignment
        if self.augment:
            return (int(rng.integers((height - crop_h) // step + 1)) * step,
                    int(rng.integers((width - crop_w) // step + 1)) * step)
        return (height - crop_h) // 2 // step * step, (width - crop_w) // 2 // step * step

    def _crop_window(self, origin: tuple[int, int], horizontal: bool, vertical: bool) -> tuple:
        """The crop in the unflipped frame whose flip is the crop at ``origin`` of the flipped frame."""
        (height, width), (crop_h, crop_w) = self.sensor_size, self.crop or self.sensor_size
        top, left = origin
        top = height - top - crop_h if vertical else top
        left = width - left - crop_w if horizontal else left
        return (..., slice(top, top + crop_h), slice(left, left + crop_w))

    def _latents(self, folder: Path, sequence_file: str, start: int, reverse: bool, origin: tuple[int, int],
                 horizontal: bool, vertical: bool) -> dict[str, torch.Tensor]:
        """Cached latents of frames ``start-1 .. start+N-1`` (and estimates), flipped, cropped, time-ordered
        like the pixel frames."""
        crop_h, crop_w = self.crop or self.sensor_size
        top, left = origin[0] // SCALE_FACTOR, origin[1] // SCALE_FACTOR
        rows = slice(top, top + -(-crop_h // SCALE_FACTOR))
        columns = slice(left, left + -(-crop_w // SCALE_FACTOR))
        out = {}
        flip = next(name for name, flips in FLIPS.items() if flips == (horizontal, vertical))
        for kind in self._latent_kinds:
            cached = np.load(latents_path(folder, self.latents_key, kind, flip, sequence_file), mmap_mode="r")
            window = np.asarray(cached[start - 1 : start + self.clip_frames, :, rows, columns], dtype=np.float32)
            if reverse:
                window = window[::-1]
            window = torch.from_numpy(np.ascontiguousarray(window))
            if kind == FRAMES_KIND:
                out["previous_latent"], out["latents"] = window[0], window[1:]
            else:
                out["previous_estimate_latent"], out["estimate_latents"] = window[0], window[1:]
        return out
