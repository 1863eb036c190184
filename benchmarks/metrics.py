"""Per-frame cost of the evaluation metrics on one thread, against naive versions of the same formulas.

SSIM (EVREAL settings): lase-e2v's separable numpy filter next to a dense 11x11 ``torch.conv2d`` in
float64 (the direct way to write it) — both give the same value. LPIPS AlexNet: lase-e2v's plain-torch
network, timed alone (the reference ``lpips`` package needs torchvision, which this project avoids).
Sizes: DAVIS240 (180x240) and DAVIS346 (260x346) frames.

    python benchmarks/metrics.py [--out benchmarks/results/metrics.json] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import best_seconds

from lase_e2v.atomic import atomic_path
from lase_e2v.evaluation.metrics import SSIM_K1, SSIM_K2, LpipsMetric, gaussian_window_1d, mse, ssim

SIZES = {"DAVIS240 180x240": (180, 240), "DAVIS346 260x346": (260, 346)}


def naive_ssim(prediction: np.ndarray, reference: np.ndarray) -> float:
    """The same SSIM with a dense 2-D Gaussian window and float64 ``conv2d``."""
    window_1d = torch.from_numpy(gaussian_window_1d())
    window = (window_1d[:, None] * window_1d[None, :])[None, None]
    x = torch.from_numpy(prediction.astype(np.float64))[None, None]
    y = torch.from_numpy(reference.astype(np.float64))[None, None]
    mean_x, mean_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mean_x**2
    var_y = F.conv2d(y * y, window) - mean_y**2
    cov_xy = F.conv2d(x * y, window) - mean_x * mean_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "metrics.json")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    lpips = LpipsMetric()
    rows = []
    for size_name, shape in SIZES.items():
        reference = rng.random(shape, dtype=np.float32)
        prediction = np.clip(reference + 0.1 * rng.standard_normal(shape, dtype=np.float32), 0, 1)
        ours, naive = ssim(prediction, reference), naive_ssim(prediction, reference)
        if abs(ours - naive) > 1e-9:
            raise SystemExit(f"SSIM versions disagree: {ours} vs {naive}")
        timings = {
            name: best_seconds(partial(function, prediction, reference), args.repeat)
            for name, function in (
                ("ssim", ssim),
                ("ssim (naive dense conv2d)", naive_ssim),
                ("mse", mse),
                ("lpips alex", lpips.calculate),
            )
        }
        for name, seconds in timings.items():
            rows.append({"size": size_name, "metric": name, "ms_per_frame": seconds * 1e3})
        rows.append(
            {
                "size": size_name,
                "metric": "ssim speed-up over naive",
                "ratio": timings["ssim (naive dense conv2d)"] / timings["ssim"],
            }
        )

    print(f"{'size':<18} {'metric':<28} {'ms/frame':>9}")
    for row in rows:
        value = f"{row['ms_per_frame']:9.2f}" if "ms_per_frame" in row else f"{row['ratio']:8.1f}x"
        print(f"{row['size']:<18} {row['metric']:<28} {value}")
    with atomic_path(args.out) as temporary:
        temporary.write_text(json.dumps({"threads": 1, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
