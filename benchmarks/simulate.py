"""Event simulator and scene renderer speed on one core, against the per-pixel Python loop.

Workloads (frames precomputed, only simulation timed):

* ``loop check 32x32``: a small textured frame under random log-intensity changes, simulated by
  :class:`~lase_e2v.simulate.esim.EventSimulator` and by the naive per-pixel loop
  (:func:`lase_e2v.simulate.reference.simulate_naive`); both must give the same events.
* ``scene 240x180``: a coco_mini scene rendered at <= 1 px per step (the make-dataset regime:
  few events per frame, per-pixel work dominates), ideal sensor and noisy sensor.
* ``dense 240x180``: large log changes per frame (~5 events per pixel per frame: per-event
  work dominates, the peak rate).
* ``render 240x180``: scene rendering (warping + compositing) frames/s.

v2e (the peer) is not run: it installs torchvision, which this project must not install.

    python benchmarks/simulate.py [--out benchmarks/results/simulate.json]

Target: >= 20 M events/s in the dense regime.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from _common import SHARED_DATA, best_seconds

from lase_e2v.atomic import atomic_path
from lase_e2v.simulate.esim import EventSimulator, SimulatorConfig
from lase_e2v.simulate.reference import simulate_naive
from lase_e2v.simulate.scenes import load_photos, random_scene

COCO = SHARED_DATA / "coco_mini"
NOISY = SimulatorConfig(refractory_us=100, cutoff_hz=200, leak_rate_hz=0.2, shot_noise_rate_hz=1.0, hot_pixel_fraction=1e-4)


def random_log_frames(rng: np.random.Generator, size: tuple[int, int], count: int, log_std: float) -> np.ndarray:
    """A smooth-ish texture whose log intensity takes a random walk of ``log_std`` per frame per pixel."""
    base = np.clip(rng.random(size) * 0.8 + 0.1, 0, 1)
    steps = rng.normal(0, log_std, (count,) + size)
    steps[0] = 0
    return base * np.exp(np.cumsum(steps, axis=0))


def row(what: str, impl: str, frames: int, events: int, seconds: float) -> dict:
    return {"what": what, "impl": impl, "frames": frames, "events": events, "seconds": seconds,
            "events_per_s": events / seconds, "frames_per_s": frames / seconds}


def bench_loop_check(repeat: int) -> list[dict]:
    rng = np.random.default_rng(0)
    frames = random_log_frames(rng, (32, 32), 40, 0.3)
    t_us = np.arange(40) * 1000
    config = SimulatorConfig(refractory_us=300)
    simulate = lambda: EventSimulator(config, seed=0).simulate(frames, t_us)
    fast = simulate()
    thresholds = EventSimulator(config, seed=0)
    thresholds.step(frames[0], 0)
    naive_call = lambda: simulate_naive(frames, t_us, thresholds.thresholds_on, thresholds.thresholds_off, 300.0)
    naive = naive_call()
    same = all(np.array_equal(getattr(fast, k), getattr(naive, k)) for k in "xytp")
    rows = [
        row("loop check 32x32", "per-pixel Python loop (naive)", 39, len(naive), best_seconds(naive_call, 1)),
        row("loop check 32x32", "EventSimulator", 39, len(fast), best_seconds(simulate, repeat)),
    ]
    rows[1]["identical_to_naive"] = same
    return rows


def bench_scene(repeat: int) -> list[dict]:
    photos = load_photos(COCO)
    scene = random_scene(np.random.default_rng(0), photos[7], photos, (180, 240), duration_s=1.0)
    count = scene.substeps(0.0, 0.5, max_step_px=1.0)
    t_s = np.linspace(0.0, 0.5, count + 1)
    radiance = np.concatenate([scene.render(chunk)[0] for chunk in np.array_split(t_s, max(1, len(t_s) // 16))])
    rows = []
    render_seconds = best_seconds(lambda: [scene.render(c) for c in np.array_split(t_s, max(1, len(t_s) // 16))], repeat)
    rows.append(row("render 240x180", "composite (torch grid_sample, 1 thread)", len(t_s), 0, render_seconds))
    for name, config in (("ideal", SimulatorConfig()), ("noisy", NOISY)):
        simulate = lambda config=config: EventSimulator(config, seed=0).simulate(radiance, t_s * 1e6)
        events = len(simulate())
        rows.append(row(f"scene 240x180 ({len(t_s)} renders)", f"EventSimulator {name}", len(t_s), events,
                        best_seconds(simulate, repeat)))
    return rows


def bench_dense(repeat: int) -> list[dict]:
    frames = random_log_frames(np.random.default_rng(1), (180, 240), 30, 1.2)
    t_us = np.arange(30) * 1000
    simulate = lambda: EventSimulator(SimulatorConfig(), seed=0).simulate(frames, t_us)
    events = len(simulate())
    return [row("dense 240x180", "EventSimulator ideal", 29, events, best_seconds(simulate, repeat))]


def print_table(rows: list[dict]) -> None:
    naive = {r["what"]: r["events_per_s"] for r in rows if "naive" in r["impl"]}
    print(f"{'what':34s} {'implementation':40s} {'events':>10s} {'M ev/s':>8s} {'frames/s':>9s} {'vs naive':>9s}")
    for r in rows:
        ratio = f"{r['events_per_s'] / naive[r['what']]:.0f}x" if r["what"] in naive and "naive" not in r["impl"] else ""
        print(f"{r['what']:34s} {r['impl']:40s} {r['events']:>10,d} {r['events_per_s'] / 1e6:>8.2f} "
              f"{r['frames_per_s']:>9.0f} {ratio:>9s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "simulate.json")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = bench_loop_check(args.repeat) + bench_scene(args.repeat) + bench_dense(args.repeat)
    print_table(rows)
    with atomic_path(args.out) as temporary:
        temporary.write_text(json.dumps(
            {"rows": rows, "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
             "numpy": np.__version__, "torch": torch.__version__,
             "peer": "v2e not run: it requires torchvision, which this project does not install"},
            indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
