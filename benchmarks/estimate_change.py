"""How much the bundled LaSe-E2V changes its EI estimate, on real recordings and synthetic sequences.

Why: on synthetic sequences the model adds to its estimate (PIE-Net, ``sampling.json``) and on
slider_depth it does not; this measures, without needing ground-truth frames, whether it even
tries on a real sensor. Per recording: the mean per-pixel difference between the default's frames
and the estimate's alone, raw and with each frame's mean difference removed ("structure": what is
left when the global tone, which events do not measure, is set aside), over the frames after the
first quarter (at most 10 skipped, the recurrent estimate's start). Real: slider_depth (between its
APS frames) and the two DVXplorer recordings (40 ms windows) from ../shared; synthetic: the first
``--num`` val sequences of a ``make-dataset`` folder (between their frames). A diagnosis, not a
quality score: a larger change is only better where it points toward the truth.

    python benchmarks/estimate_change.py [--data data_synth] [--num 4]
        [--out benchmarks/results/estimate_change.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import SHARED_DATA, write_results

from lase_e2v.api import reconstruct
from lase_e2v.evaluation.datasets import synthetic_split
from lase_e2v.pipelines.lase import LASE_TINY_DIR, SAMPLING_FILE

REAL = {
    "slider_depth (DAVIS240C)": (SHARED_DATA / "ecd_slider_depth", "frames"),
    "dvxplorer a": (SHARED_DATA / "aedat4" / "dvxplorer_320x240_a.aedat4", "ms:40"),
    "dvxplorer b": (SHARED_DATA / "aedat4" / "dvxplorer_320x240_b.aedat4", "ms:40"),
}


def frame_change(frames: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Mean |frames - estimate| raw and with each frame's mean difference removed, after the start."""
    skip = min(len(frames) // 4, 10)
    difference = (frames.astype(np.float64) - estimate)[skip:]
    structure = difference - difference.mean(axis=tuple(range(1, difference.ndim)), keepdims=True)
    return {"frames": int(len(frames) - skip), "change": float(np.abs(difference).mean()),
            "structure_change": float(np.abs(structure).mean()),
            "mean_lase": float(frames[skip:].mean()), "mean_estimate": float(estimate[skip:].mean())}


def measure(path: Path, window: str, estimate: str) -> dict[str, float]:
    lase = reconstruct(path, "lase", window=window).frames
    alone = reconstruct(path, estimate, window=window).frames
    return frame_change(lase, alone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a make-dataset folder (its val split; default: real ones only)")
    parser.add_argument("--num", type=int, default=4, help="how many of its val sequences")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "estimate_change.json")
    args = parser.parse_args()
    estimate = json.loads((LASE_TINY_DIR / SAMPLING_FILE).read_text())["estimate"]
    recordings = [(name, "real", path, window) for name, (path, window) in REAL.items()]
    recordings += [(f"synthetic {spec.name} ({spec.group})", "synthetic", spec.path, "frames")
                   for spec in (synthetic_split(args.data, "val")[: args.num] if args.data else [])]
    print(f"LaSe-E2V (bundled default) against its estimate alone ({estimate})")
    print(f"{'recording':40s} {'frames':>6s} {'change':>8s} {'structure':>9s} {'mean lase':>9s} {'mean est.':>9s}")
    rows = {}
    for name, kind, path, window in recordings:  # one line each as it is measured (about 10-60 s)
        row = rows[name] = {"kind": kind, **measure(path, window, estimate)}
        print(f"{name:40s} {row['frames']:6d} {row['change']:8.4f} {row['structure_change']:9.4f} "
              f"{row['mean_lase']:9.3f} {row['mean_estimate']:9.3f}", flush=True)
    write_results(args.out, {"estimate": estimate, "synthetic_data": args.data and str(args.data), "rows": rows})


if __name__ == "__main__":
    main()
