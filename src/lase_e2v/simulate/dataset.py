"""Synthetic captioned training sequences: photos -> moving scenes -> events + frames + captions.

:func:`make_dataset` writes ``seq_00000.h5 ...`` in the HQF / event_utils layout (through
:func:`lase_e2v.events.formats.hdf5.write_hdf5`; the ground-truth frames as ``images/``, captions
and generation parameters as root attributes) and a ``manifest.json`` listing, per sequence, its
file, split, captions, source photo ids, simulator parameters and the frame timestamps / event
indices that :class:`lase_e2v.training.clips.SyntheticClipDataset` needs to cut clips. Train and
val never share a photo (neither as background nor as a cut-out). A sequence's ``captions`` are its
photo's COCO sentences (``photo_captions``) followed by the ``scene_words`` that say how it was
rendered (lighting, camera speed; :func:`~lase_e2v.simulate.scenes.scene_words`).

Each scene is rendered at an adaptive rate (enough sub-steps that no pixel moves more than
``max_step_px`` between two renders, ESIM's idea), every render is fed to the
:class:`~lase_e2v.simulate.esim.EventSimulator`, and every ``1 / fps`` seconds a target frame is kept.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import ConfigError
from lase_e2v.events.color import check_pattern, mosaic
from lase_e2v.events.formats.hdf5 import write_hdf5
from lase_e2v.events.statistics import measure_events
from lase_e2v.events.streams import EventStream, Frames
from lase_e2v.paths import default_coco_dir
from lase_e2v.simulate.esim import EventSimulator, SimulatorConfig
from lase_e2v.simulate.realism import REAL_RANGE
from lase_e2v.simulate.scenes import (
    PHOTOMETRY,
    Scene,
    caption_with_words,
    load_photos,
    random_scene,
    scene_words,
    split_photos,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def random_simulator_config(rng: np.random.Generator) -> SimulatorConfig:
    """Per-sequence sensor randomisation (so a model sees many cameras), calibrated on real recordings.

    The ranges were set so that the event statistics of ``make-dataset`` output match those of the
    real DAVIS240C, DVXplorer and Prophesee Gen4 recordings in ../shared
    (``benchmarks/event_statistics.py``: events per active pixel per frame ~1.3-1.6, isolated-event
    share 0.13-0.35, median per-pixel interval 18-56 ms), never on reconstruction scores:

    C+ log-uniform in [0.25, 1.5] (Stoffregen et al., ECCV 2020, found real cameras need thresholds
    far above ESIM's usual 0.18), C- = C+ x U(0.8, 1.25), per-pixel sigma U(0.01, 0.05); shot
    noise always, log-uniform 0.1..2 Hz per pixel (real sensors' background activity); each half
    of the time: refractory U(50, 500) us, photoreceptor cut-off U(30, 300) Hz, leak U(0.01, 0.5)
    Hz; 30%: hot pixels (1e-5..2e-4 of the sensor, 100..2000 Hz).
    """
    threshold_on = float(np.exp(rng.uniform(np.log(0.25), np.log(1.5))))
    shot_noise_rate_hz = float(np.exp(rng.uniform(np.log(0.1), np.log(2.0))))

    def maybe(low: float, high: float, probability: float = 0.5) -> float:
        return float(rng.uniform(low, high)) if rng.random() < probability else 0.0

    return SimulatorConfig(
        threshold_on=threshold_on,
        threshold_off=threshold_on * float(rng.uniform(0.8, 1.25)),
        threshold_sigma=float(rng.uniform(0.01, 0.05)),
        refractory_us=maybe(50, 500),
        cutoff_hz=maybe(30, 300),
        leak_rate_hz=maybe(0.01, 0.5),
        shot_noise_rate_hz=shot_noise_rate_hz,
        hot_pixel_fraction=maybe(1e-5, 2e-4, probability=0.3),
        hot_pixel_rate_hz=float(rng.uniform(100, 2000)),
    )


def frame_times_us(duration_s: float, fps: float) -> np.ndarray:
    """Ground-truth frame timestamps ``round(i * 1e6 / fps)``, ``i = 0 .. round(duration_s * fps)``."""
    return np.round(np.arange(round(duration_s * fps) + 1) * 1e6 / fps).astype(np.int64)


def simulate_scene(
    scene: Scene, simulator: EventSimulator, frame_t_us: np.ndarray, max_step_px: float = 1.0,
    color_filter: str | None = None,
) -> tuple[list[EventStream], Frames]:
    """Render ``scene`` between consecutive ``frame_t_us`` at an adaptive rate and simulate events.

    Returns the event chunks (one per render, time-ordered) and the target frames (uint8, RGB for a
    colour scene) at ``frame_t_us``. The first frame only initialises the simulator. A colour scene
    is seen through the Bayer filter ``color_filter`` (:func:`~lase_e2v.events.color.mosaic`): each
    pixel's events follow its own channel's radiance, as on a Color-DAVIS346.
    """

    def sensed(radiance: np.ndarray) -> np.ndarray:
        return mosaic(radiance, color_filter) if radiance.ndim == 4 else radiance

    if (scene.background.channels == 3) != (color_filter is not None):
        raise ConfigError("a colour scene needs a color_filter (Bayer pattern) and a gray one none")
    radiance, target = scene.render(frame_t_us[:1] / 1e6)
    simulator.step(sensed(radiance)[0], float(frame_t_us[0]))
    targets, chunks = [target[0]], []
    for t_start, t_end in itertools.pairwise(frame_t_us):
        count = scene.substeps(t_start / 1e6, t_end / 1e6, max_step_px)
        render_t_us = np.linspace(t_start, t_end, count + 1)[1:]  # ends exactly at the frame time
        radiance, target = scene.render(render_t_us / 1e6)
        chunks.extend(simulator.step(image, t) for image, t in zip(sensed(radiance), render_t_us))
        targets.append(target[-1])
    images = (np.stack(targets) * 255.0 + 0.5).astype(np.uint8)
    return chunks, Frames(images, frame_t_us)


def measure_realism(chunks: list[EventStream], frames: Frames, color_filter: str | None = None) -> dict:
    """``in_real_range`` (:data:`~lase_e2v.simulate.realism.REAL_RANGE`) and the ``statistics`` of one
    simulated sequence (:func:`~lase_e2v.events.statistics.measure_events`, without the interval
    histogram). A colour sequence is measured against the Bayer mosaic of its RGB frames: what each
    pixel saw, so the effective contrast threshold compares like with like."""
    statistics = measure_events(chunks, frames.images.shape[1:3], frames, color_filter=color_filter)
    statistics.pop("interval_histogram")
    return {"in_real_range": REAL_RANGE.contains(statistics), "statistics": statistics}


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Warping is many small grid_sample calls: one thread is faster and fair on a shared CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_arguments(num_sequences: int, duration_s: float, size: tuple[int, int], fps: float,
                     max_step_px: float) -> None:
    if num_sequences < 1:
        raise ConfigError(f"num_sequences must be >= 1, got {num_sequences}")
    if duration_s <= 0:
        raise ConfigError(f"duration_s must be > 0, got {duration_s}")
    if len(size) != 2 or min(size) < 8:
        raise ConfigError(f"size must be (height, width) of at least 8 pixels, got {size}")
    if not 0 < fps <= 1000:
        raise ConfigError(f"fps must be in (0, 1000], got {fps}")
    if duration_s * fps < 1:
        raise ConfigError(f"duration_s * fps must give at least 2 frames, got {duration_s} s at {fps} Hz")
    if max_step_px <= 0:
        raise ConfigError(f"max_step_px must be > 0, got {max_step_px}")


def make_dataset(
    out_dir: str | Path,
    num_sequences: int,
    duration_s: float = 2.0,
    size: tuple[int, int] = (180, 240),
    fps: float = 30.0,
    seed: int = 0,
    coco_dir: str | Path | None = None,
    progress: bool = True,
    val_fraction: float = 0.1,
    max_objects: int = 3,
    simulator: SimulatorConfig | None = None,
    max_step_px: float = 1.0,
    photometry: str = "linear",
    color_filter: str | None = None,
    realistic: bool = False,
    max_draws: int = 20,
    num_val: int | None = None,
    keep_lighting: bool = False,
) -> Path:
    """Write ``num_sequences`` synthetic captioned event sequences to the new folder ``out_dir``.

    Args:
        out_dir: folder to create (must not exist or be empty); written under a temporary name and
            renamed when complete, so an interrupted run leaves nothing behind.
        num_sequences: how many sequences; ``num_val`` of them are val (the last ones), the rest train.
        duration_s, fps: length of each sequence and its ground-truth frame rate.
        size: ``(height, width)`` of the sensor.
        seed: everything (photo order, scenes, sensors, noise) derives from it.
        coco_dir: a coco_mini folder: ``captions.json`` + ``images/`` (default:
            :func:`lase_e2v.paths.default_coco_dir`).
        progress: show a tqdm bar.
        val_fraction: share of the PHOTOS held out for val (split by photo, see
            :func:`~lase_e2v.simulate.scenes.split_photos`).
        max_objects: up to this many moving cut-outs per scene.
        simulator: one fixed sensor for all sequences; default ``None`` randomises it per
            sequence (:func:`random_simulator_config`).
        max_step_px: render sub-step bound on pixel motion (smaller = more accurate, slower).
        photometry: ``"linear"`` (photos decoded from sRGB to linear intensity, like a DAVIS's APS
            frames) or ``"srgb"`` (encoded values as intensity); see :mod:`lase_e2v.simulate.scenes`.
        color_filter: ``None`` for a gray camera, or a Bayer pattern (``"RGGB"``...) for a colour one
            (Color-DAVIS346): RGB scenes seen through that filter, RGB target frames, the pattern kept
            as the sequences' ``color_filter`` attribute and in the manifest. The same seed gives the
            same scenes as in gray.
        realistic: redraw a sequence (scene motion, objects, sensor; same background photo) until its
            event statistics lie in the range of real recordings
            (:data:`~lase_e2v.simulate.realism.REAL_RANGE`), at most ``max_draws`` times; the
            manifest then records per sequence ``realism``: the draws, whether the kept one is in
            range (the last draw is kept when none is) and its statistics. Draw 1 is the sequence
            ``realistic=False`` makes, so both agree wherever it is already realistic.
        num_val: how many sequences are val; default ``round(num_sequences * val_fraction)`` (at least
            one when ``val_fraction > 0`` and ``num_sequences > 1``). Set it to make more (or only)
            val sequences without changing which photos are held out (``val_fraction`` decides that):
            e.g. a fresh validation set on the same held-out photos under another ``seed``.
        keep_lighting: with ``realistic``, redraws keep draw 1's photo tone and lighting
            (:class:`~lase_e2v.simulate.scenes.Look`) and change only motion, objects and sensor. Dark
            scenes are noisier, so a filter that redraws the lighting too ends with fewer of them
            than the generator draws (and brighter targets); keeping the look keeps the generator's
            lighting mix among the sequences that reach the range.

    Returns the path of ``manifest.json``.
    """
    _check_arguments(num_sequences, duration_s, size, fps, max_step_px)
    if max_draws < 1:
        raise ConfigError(f"max_draws must be >= 1, got {max_draws}")
    if keep_lighting and not realistic:
        raise ConfigError("keep_lighting (--keep-lighting) needs realistic (--realistic): it is about the redraws")
    if num_val is not None and (not 0 <= num_val <= num_sequences or (num_val and val_fraction == 0)):
        raise ConfigError(f"num_val must be in [0, num_sequences] (and 0 without held-out photos), got {num_val}")
    if photometry not in PHOTOMETRY:
        raise ConfigError(f"photometry '{photometry}' unknown; choose from {PHOTOMETRY}")
    color_filter = check_pattern(color_filter) if color_filter is not None else None
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir}: already exists and is not an empty folder; choose a new one")
    size = (int(size[0]), int(size[1]))
    photos = split_photos(load_photos(coco_dir if coco_dir is not None else default_coco_dir()), val_fraction)
    if num_val is None:
        num_val = round(num_sequences * val_fraction)
        if val_fraction > 0 and num_sequences > 1:
            num_val = min(max(num_val, 1), num_sequences - 1)
    splits = ["train"] * (num_sequences - num_val) + ["val"] * num_val
    root_rng = np.random.default_rng(seed)
    photo_order = {name: root_rng.permutation(len(group)) for name, group in photos.items() if group}
    sequence_seeds = np.random.SeedSequence(seed).spawn(num_sequences)
    frame_t_us = frame_times_us(duration_s, fps)
    used = {"train": 0, "val": 0}
    records = []
    if out_dir.is_dir():
        out_dir.rmdir()  # empty: atomic_path recreates it
    with _torch_threads(1), atomic_path(out_dir, overwrite=False) as temporary:
        temporary.mkdir()
        for index in tqdm(range(num_sequences), desc="sequences", disable=not progress):
            split = splits[index]
            group = photos[split]
            background = group[int(photo_order[split][used[split] % len(group)])]
            used[split] += 1
            draws = [sequence_seeds[index], *sequence_seeds[index].spawn(max_draws - 1 if realistic else 0)]
            look = None
            for draw, draw_seed in enumerate(draws, start=1):
                rng = np.random.default_rng(draw_seed)
                scene = random_scene(rng, background, group, size, duration_s, max_objects, photometry,
                                     color=color_filter is not None, look=look)
                if keep_lighting:
                    look = scene.look
                config = simulator or random_simulator_config(rng)
                sim = EventSimulator(config, seed=int(rng.integers(2**31)))
                chunks, frames = simulate_scene(scene, sim, frame_t_us, max_step_px, color_filter)
                if not realistic:
                    break
                realism = {"draws": draw, **measure_realism(chunks, frames, color_filter)}
                if realism["in_real_range"]:
                    break
            event_t = np.concatenate([c.t for c in chunks]) if chunks else np.zeros(0, np.int64)
            event_indices = np.searchsorted(event_t, frame_t_us, side="left")
            by_id = {p.coco_id: p for p in group}
            object_captions = [list(by_id[i].captions) for i in scene.info["object_ids"]]
            words = scene_words(scene.info)
            record = {
                "file": f"seq_{index:05d}.h5",
                "split": split,
                "captions": [caption_with_words(c, words) for c in background.captions],
                "photo_captions": list(background.captions),
                "scene_words": list(words),
                "source_photo_id": background.coco_id,
                "object_photo_ids": scene.info["object_ids"],
                "object_captions": object_captions,
                "simulator": config.to_dict(),
                "simulator_seed": sim.seed,
                "scene": scene.info,
                "num_events": len(event_t),
                "frame_t_us": frame_t_us.tolist(),
                "frame_event_indices": event_indices.tolist(),
            }
            if realistic:
                record["realism"] = realism
            attrs = {
                "caption": record["captions"][0],
                "captions": record["captions"],
                "split": split,
                "source_photo_id": background.coco_id,
                "generator": json.dumps({k: record[k] for k in ("object_photo_ids", "simulator", "scene")}),
            }
            if color_filter is not None:
                attrs["color_filter"] = color_filter
            write_hdf5(temporary / record["file"], chunks or [EventStream.empty(size)],
                       Frames(frames.images, frames.t_us, event_indices), attrs)
            records.append(record)
        manifest = {
            "version": MANIFEST_VERSION,
            "size": list(size),
            "fps": fps,
            "duration_s": duration_s,
            "seed": seed,
            "val_fraction": val_fraction,
            "photometry": photometry,
            "color_filter": color_filter,
            "realistic": realistic,
            "keep_lighting": keep_lighting,
            "photos": {name: sorted(p.coco_id for p in group) for name, group in photos.items()},
            "sequences": records,
        }
        (temporary / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    return out_dir / MANIFEST_NAME
