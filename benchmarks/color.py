"""Colour reconstruction on simulated Color-DAVIS sequences: gray vs E2VID's colour approach, two ways.

``make-dataset --color`` sequences (COCO photos, RGGB, linear photometry; seed 0, made here unless
``--data`` names a folder) are reconstructed per method three ways, in the same run:

* ``gray``: the method on all events as one gray sensor (what lase-e2v did before colour support,
  ``--no-color``): the peer;
* ``sites``: the four Bayer sites at quarter resolution, demosaiced (the default);
* ``full``: the same plus a full-resolution reconstruction as luminance (E2VID's merge).

Scores over every frame after the first second (the synthetic warm-up), against the sequences'
RGB targets: EVREAL's MSE / SSIM / LPIPS on luma (how the evaluation scores colour by default) and
in RGB (``std_rgb``); ``opponent``: the correlation of the colour-opponent channels R - G and
B - (R + G) / 2 with the target's, averaged over the two (0 for gray: no colour); frames/s of the
reconstruction alone and its time relative to ``gray``.

    OMP_NUM_THREADS=1 python benchmarks/color.py [--methods integrate firenet_plus] [--sequences 6]
                                                 [--data DIR] [--out benchmarks/results/color.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lase_e2v.atomic import atomic_path
from lase_e2v.evaluation.datasets import SYNTHETIC_WARMUP_S
from lase_e2v.evaluation.metrics import build_metrics
from lase_e2v.evaluation.protocol import scored_pair
from lase_e2v.events.formats import open_events
from lase_e2v.events.windows import FrameWindows
from lase_e2v.pipelines.color import ColorReconstructionPipeline
from lase_e2v.pipelines.registry import get_method, load_method
from lase_e2v.simulate.dataset import make_dataset

from _common import SHARED_DATA

VARIANTS = ("gray", "sites", "full")


def opponent_correlation(predictions: np.ndarray, references: np.ndarray) -> float:
    """Mean over R - G and B - (R + G) / 2 of their correlation with the reference's, over all pixels."""

    def opponents(rgb):
        return np.stack([rgb[..., 0] - rgb[..., 1], rgb[..., 2] - (rgb[..., 0] + rgb[..., 1]) / 2], -1).reshape(-1, 2)

    if predictions.ndim == references.ndim - 1:
        return 0.0
    a, b = opponents(predictions), opponents(references)
    return float(np.mean([np.corrcoef(a[:, k], b[:, k])[0, 1] for k in range(2)]))


def build(method: str, variant: str):
    if variant == "gray":
        return load_method(method)
    return ColorReconstructionPipeline.from_factory(lambda: load_method(method), "RGGB", luminance=variant)


def score(method: str, variant: str, sequences: list[Path], metrics) -> dict:
    pipeline = build(method, variant)
    totals = {f"{space}_{m.name}": [] for space in ("luma", "rgb") for m in metrics}
    predictions_all, references_all = [], []
    seconds = frames_made = 0
    for path in sequences:
        reader = open_events(path)
        frames = reader.read_frames()
        started = time.perf_counter()
        output = pipeline(reader, FrameWindows(tuple(frames.t_us)))
        seconds += time.perf_counter() - started
        frames_made += len(output.frames)
        settled = (output.timestamps_us - frames.t_us[0]) / 1e6 >= SYNTHETIC_WARMUP_S
        predictions = np.clip(output.frames[settled], 0, 1)
        references = frames.as_float()[1:][settled]
        for prediction, reference in zip(predictions, references):
            for space in ("luma", "rgb"):
                pair = scored_pair(prediction, reference, space)
                for metric in metrics:
                    totals[f"{space}_{metric.name}"].append(metric.calculate(*pair))
        predictions_all.append(predictions[::5])
        references_all.append(references[::5])
    result = {name: float(np.mean(values)) for name, values in totals.items()}
    result["opponent"] = opponent_correlation(np.concatenate(predictions_all), np.concatenate(references_all))
    result["frames_per_second"] = frames_made / seconds
    result["frames_scored"] = len(totals["luma_mse"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["integrate", "firenet_plus"])
    parser.add_argument("--sequences", type=int, default=6)
    parser.add_argument("--size", type=int, nargs=2, default=(180, 240), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--data", type=Path, help="a make-dataset --color folder (default: made here, seed 0)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "color.json")
    args = parser.parse_args()
    for method in args.methods:
        get_method(method)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    metrics = build_metrics(("mse", "ssim", "lpips"))
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data
        if data is None:
            data = Path(scratch) / "color"
            make_dataset(data, args.sequences, duration_s=args.duration, size=tuple(args.size), seed=0,
                         coco_dir=SHARED_DATA / "coco_mini", color_filter="RGGB")
        manifest = json.loads((data / "manifest.json").read_text())
        sequences = [data / record["file"] for record in manifest["sequences"]]
        results: dict[str, dict[str, dict]] = {}
        print(f"{len(sequences)} colour sequences {manifest['size'][1]}x{manifest['size'][0]}, {manifest['duration_s']} s")
        header = (f"{'method':<14}{'variant':<8}{'luma MSE':>9}{'SSIM':>7}{'LPIPS':>7}{'RGB MSE':>9}{'SSIM':>7}"
                  f"{'LPIPS':>7}{'opponent':>9}{'frames/s':>9}{'x gray':>8}")
        print(header)
        for method in args.methods:
            results[method] = {}
            for variant in VARIANTS:
                row = score(method, variant, sequences, metrics)
                row["time_vs_gray"] = results[method]["gray"]["frames_per_second"] / row["frames_per_second"] \
                    if variant != "gray" else 1.0
                results[method][variant] = row
                print(f"{method:<14}{variant:<8}{row['luma_mse']:>9.4f}{row['luma_ssim']:>7.3f}{row['luma_lpips']:>7.3f}"
                      f"{row['rgb_mse']:>9.4f}{row['rgb_ssim']:>7.3f}{row['rgb_lpips']:>7.3f}{row['opponent']:>9.3f}"
                      f"{row['frames_per_second']:>9.1f}{row['time_vs_gray']:>8.2f}", flush=True)
    report = {"sequences": len(sequences), "size": manifest["size"], "duration_s": manifest["duration_s"],
              "seed": manifest["seed"], "threads": torch.get_num_threads(), "results": results}
    with atomic_path(args.out) as temporary:
        temporary.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
