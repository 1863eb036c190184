"""Frames per second of the peer reconstructors on CPU, per sensor size and thread count.

Each registered peer method (:mod:`lase_e2v.pipelines.registry`; LaSe-E2V has ``benchmarks/lase.py``)
reconstructs windows of synthetic events (``--events-per-pixel`` per window, 0.3 is about
slider_depth's density between APS frames) through its full pipeline step: voxel grid, network,
crop, clip. Methods without bundled weights (E2VID, E2VID+) use random weights of the official size
(the cost does not depend on the values).
Peers in the same run: FireNet against E2VID, PIE-Net-Lite against FireNet, and the vectorised
integrator against a naive per-event Python loop of the same filter (ratios are printed for the
pairs that ran).

    python benchmarks/baselines.py [--frames 10] [--methods firenet pienet_lite ...]
                                   [--out benchmarks/results/baselines.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from lase_e2v.atomic import atomic_path
from lase_e2v.events.streams import EventStream
from lase_e2v.models.baselines import ARCHITECTURES
from lase_e2v.pipelines.recurrent import RecurrentReconstructionPipeline
from lase_e2v.pipelines.registry import get_method, method_names

SENSORS = {"240x180": (180, 240), "346x260": (260, 346)}
WINDOW_US = 40_000


def synthetic_windows(sensor_size: tuple[int, int], count: int, events_per_pixel: float) -> list[EventStream]:
    rng = np.random.default_rng(0)
    n = int(events_per_pixel * sensor_size[0] * sensor_size[1])
    windows = []
    for k in range(count):
        t = np.sort(rng.integers(k * WINDOW_US, (k + 1) * WINDOW_US, n))
        x, y = rng.integers(0, sensor_size[1], n), rng.integers(0, sensor_size[0], n)
        windows.append(EventStream(x, y, t, rng.choice([-1, 1], n), sensor_size))
    return windows


class NaiveIntegrator:
    """The same high-pass filter, one Python iteration per event (the obvious implementation)."""

    def __init__(self, contrast: float = 0.1, alpha: float = 2 * math.pi) -> None:
        self.contrast, self.alpha = contrast, alpha
        self.state: np.ndarray | None = None
        self.last: np.ndarray | None = None

    def reconstruct(self, events: EventStream, t_end_us: int) -> np.ndarray:
        if self.state is None:
            self.state = np.zeros(events.sensor_size)
            self.last = np.full(events.sensor_size, int(events.t[0]))
        for x, y, t, p in zip(events.x.tolist(), events.y.tolist(), events.t.tolist(), events.p.tolist()):
            self.state[y, x] = (
                self.state[y, x] * math.exp(-self.alpha * (t - self.last[y, x]) * 1e-6) + p * self.contrast
            )
            self.last[y, x] = t
        return self.state * np.exp(-self.alpha * (t_end_us - self.last) * 1e-6)


#: what can be timed: the registry's peers and the naive integrator
METHODS = [name for name in method_names() if name != "lase"] + ["integrate_naive"]


def build(name: str):
    """The method's reconstructor; random official-size weights where none are bundled."""
    if name == "integrate_naive":
        return NaiveIntegrator()
    spec = get_method(name)
    if spec.weights == "checkpoint":
        model_class, fixed = ARCHITECTURES[name]
        return RecurrentReconstructionPipeline(model_class(**fixed).eval(), name=name)
    return spec.load()


#: printed speed ratios: name -> (faster candidate, peer)
RATIOS = {
    "firenet_over_e2vid": ("firenet", "e2vid"),
    "pienet_lite_over_firenet": ("pienet_lite", "firenet"),
    "integrate_over_naive": ("integrate", "integrate_naive"),
}


def methods(names: list[str]) -> dict[str, object]:
    torch.manual_seed(0)
    return {name: build(name) for name in names}


def frames_per_second(method, windows: list[EventStream], warmup: int) -> float:
    if hasattr(method, "reset"):
        method.reset()
    if isinstance(method, RecurrentReconstructionPipeline):
        step = method.reconstruct
    else:  # the integrators take the window end time too

        def step(window: EventStream) -> np.ndarray:
            return method.reconstruct(window, int(window.t[-1]) + 1)

    for window in windows[:warmup]:
        step(window)
    start = time.perf_counter()
    for window in windows[warmup:]:
        step(window)
    return (len(windows) - warmup) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="timed windows per method and setting")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--events-per-pixel", type=float, default=0.3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "baselines.json")
    args = parser.parse_args()

    results = []
    print(f"{'method':<16}{'sensor':>9}{'threads':>9}{'fps':>10}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for sensor_name, sensor_size in SENSORS.items():
            windows = synthetic_windows(sensor_size, args.warmup + args.frames, args.events_per_pixel)
            for name, method in methods(args.methods).items():
                # the naive loop is slow: time it on 2 windows (1 warm-up) so the run stays short
                used = windows[:3] if name == "integrate_naive" else windows
                fps = frames_per_second(method, used, 1 if name == "integrate_naive" else args.warmup)
                results.append({"method": name, "sensor": sensor_name, "threads": threads, "fps": fps})
                print(f"{name:<16}{sensor_name:>9}{threads:>9}{fps:>10.1f}")
    by_key = {(r["method"], r["sensor"], r["threads"]): r["fps"] for r in results}
    ratios = {}
    for threads in args.threads:
        for sensor_name in SENSORS:
            key = f"{sensor_name}/{threads}t"
            ratios[key] = {
                ratio: by_key[fast, sensor_name, threads] / by_key[peer, sensor_name, threads]
                for ratio, (fast, peer) in RATIOS.items()
                if fast in args.methods and peer in args.methods
            }
            print(f"{key}: " + ", ".join(f"{ratio} {value:.2f}x" for ratio, value in ratios[key].items()))
    report = {
        "events_per_pixel": args.events_per_pixel,
        "torch": torch.__version__,
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],  # other processes on the machine skew the numbers
        "results": results,
        "ratios": ratios,
    }
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
