"""Frames/s and peak memory of every method at 240x180, 346x260, 640x480 and 1280x720 (CPU or GPU).

Four windows per sensor (one LaSe-E2V clip):

* 240x180: ECD slider_depth, 10 ms windows (about 3,200 events each);
* 346x260 (DAVIS346): synthetic, 0.1 uniformly random events per pixel per 10 ms window (no
  recording of that size is shared);
* 640x480: the Prophesee EVT2 sample, 10 ms windows (about 108,000 events);
* 1280x720: the Prophesee EVT3 sample, 2.2 ms windows (about 55,000 events; the sample holds 8.8 ms).

Methods: ``integrate``, ``firenet``, ``firenet_plus``, ``pienet_lite``, ``pienet``, ``cista_tc``,
``e2vid`` (random weights of the official size: its weights are not redistributable, and the cost
does not depend on the values) and ``lase`` (the shipped default, :func:`load_lase_pipeline`: EI
from PIE-Net at 0.1 of 10 steps, 4 samples averaged, the learned fusion with CISTA-TC's frames,
dtype "auto", 384-pixel attention tiles), each in ``--dtype`` if
given, else its own default (float32; LaSe-E2V: its ``sampling.json``; the integrator always
computes in float64).

Each (method, sensor) runs in its own worker process, so its peak memory (``VmHWM``,
:func:`_common.peak_rss_bytes`) is its own:
the table gives the peak RSS and the working memory, peak RSS minus the RSS after loading the model
and the windows (what reconstructing adds). The integrator's and the voxel grids' costs follow the
events per window (printed with the rows, and much higher in the Prophesee samples), the networks'
follow the pixels. Time is per frame over the four windows, in process CPU
time (what other jobs on a shared machine disturb least) and wall time, after one warm-up pass at
the two small sizes (where one-time allocations would otherwise count). Growth with pixels: the
least-squares slope of log(time) and log(working memory) against log(pixels) per method, 1 meaning
linear in pixels.

The allocator, ``--heap``: ``retain`` (what every ``lase-e2v`` command does,
:func:`lase_e2v.heap.retain_freed_memory`: freed tensors stay in glibc's heap) and ``system`` (glibc's
own thresholds: every large tensor mapped afresh), the naive peer; with both, each (method, sensor)
runs once per allocator and the rows say which (``heap``; the table marks ``system`` rows).

    OMP_NUM_THREADS=1 python benchmarks/resolution.py [--methods lase firenet ...] [--sensors 240x180 ...]
        [--dtype auto] [--device cpu] [--threads 1] [--heap retain system]
        [--out benchmarks/results/resolution.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from _common import SHARED_DATA, peak_rss_bytes, write_results

from lase_e2v.events.formats import open_events
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import TimeWindows, Window
from lase_e2v.heap import CHOICES as HEAPS
from lase_e2v.heap import retain_freed_memory
from lase_e2v.pipelines.precision import DTYPES

METHODS = ("integrate", "firenet", "firenet_plus", "pienet_lite", "pienet", "cista_tc", "e2vid", "lase")
#: sensor -> (height, width), source (a recording, or None for synthetic events), window in us
SENSORS = {
    "240x180": ((180, 240), SHARED_DATA / "ecd_slider_depth", 10_000),
    "346x260": ((260, 346), None, 10_000),
    "640x480": ((480, 640), SHARED_DATA / "prophesee" / "evt2_sample.raw", 10_000),
    "1280x720": ((720, 1280), SHARED_DATA / "prophesee" / "evt3_sample.raw", 2_200),
}
NUM_WINDOWS = 4
SYNTHETIC_EVENTS_PER_PIXEL = 0.1
#: sensors up to this many pixels get a warm-up pass before timing
WARMUP_MAX_PIXELS = 100_000


def sensor_windows(sensor: str) -> list[Window]:
    size, source, window_us = SENSORS[sensor]
    if source is not None:
        windows = TimeWindows(window_us).iter_windows(open_events(source).iter_chunks())
        return list(itertools.islice(windows, NUM_WINDOWS))
    rng = np.random.default_rng(0)
    count = int(SYNTHETIC_EVENTS_PER_PIXEL * size[0] * size[1])
    windows = []
    for index in range(NUM_WINDOWS):
        t = np.sort(rng.integers(index * window_us, (index + 1) * window_us, count))
        events = EventStream(rng.integers(0, size[1], count), rng.integers(0, size[0], count), t,
                             rng.choice([-1, 1], count), size)
        windows.append(Window(index, index * window_us, (index + 1) * window_us, events))
    return windows


def load(method: str, device: str, dtype: str | None):
    """The method's pipeline in ``dtype``, or in its own default precision for ``None``."""
    if method == "lase":
        from lase_e2v.pipelines.lase import load_lase_pipeline

        return load_lase_pipeline(device=device, **({"dtype": dtype} if dtype else {}))
    dtype = dtype or "float32"
    if method == "e2vid":
        from lase_e2v.models.baselines import E2VID
        from lase_e2v.pipelines.recurrent import RecurrentReconstructionPipeline

        torch.manual_seed(0)
        return RecurrentReconstructionPipeline(E2VID().eval(), device=device, name="e2vid", dtype=dtype)
    from lase_e2v.pipelines.baselines import load_reconstructor

    precision = {} if method == "integrate" else {"dtype": dtype}  # the integrator: numpy float64
    return load_reconstructor(method, device=device, **precision)


def worker(method: str, sensor: str, device: str, dtype: str | None, threads: int, heap: str) -> dict:
    """One (method, sensor) measurement in this process, with the allocator ``heap``: times and memory."""
    if heap == "retain" and not retain_freed_memory():
        raise SystemExit("--heap retain: the allocator could not be changed (not glibc, or MALLOC_* set)")
    torch.set_num_threads(threads)
    windows = sensor_windows(sensor)
    pipeline = load(method, device, dtype)
    size = SENSORS[sensor][0]
    rss_loaded = psutil.Process().memory_info().rss
    if size[0] * size[1] <= WARMUP_MAX_PIXELS:
        pipeline.reset()
        sum(1 for _ in pipeline.iter_frames(iter(windows)))
    pipeline.reset()
    start, start_cpu = time.perf_counter(), time.process_time()
    frames = sum(1 for _ in pipeline.iter_frames(iter(windows)))  # frames arrive on the CPU: synchronised
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    peak_rss = peak_rss_bytes()
    return {
        "method": method,
        "heap": heap,
        "sensor": sensor,
        "pixels": size[0] * size[1],
        "frames": frames,
        "events_per_window": int(np.mean([len(w.events) for w in windows])),
        "ms_per_frame": 1000 * wall_s / frames,
        "cpu_ms_per_frame": 1000 * cpu_s / frames,
        "frames_per_second": frames / wall_s,
        "cpu_frames_per_second": frames / cpu_s,
        "rss_after_load_mb": rss_loaded / 1e6,
        "peak_rss_mb": peak_rss / 1e6,
        "working_mb": (peak_rss - rss_loaded) / 1e6,
    }


def growth_exponent(rows: list[dict], key: str) -> float | None:
    """Least-squares slope of log(key) against log(pixels); ``None`` with fewer than 2 positive values."""
    points = [(math.log(r["pixels"]), math.log(r[key])) for r in rows if r[key] > 0]
    if len(points) < 2:
        return None
    x, y = np.array(points).T
    return float(np.polyfit(x, y, 1)[0])


def label(row: dict) -> str:
    """The table's name of a row's method: the naive allocator's rows marked."""
    return row["method"] + (" (system)" if row["heap"] == "system" else "")


def print_tables(rows: list[dict], sensors: list[str], growth: dict) -> None:
    methods = list(dict.fromkeys(label(r) for r in rows))
    cell = {(label(r), r["sensor"]): r for r in rows}
    header = f"{'method':<20}" + "".join(f"{s:>22}" for s in sensors)
    print("frames/s, CPU time (wall)")
    print(header + f"{'time ~ pixels^':>16}")
    for method in methods:
        values = [cell.get((method, s)) for s in sensors]
        text = "".join(
            f"{r['cpu_frames_per_second']:>13.3g} ({r['frames_per_second']:.3g})" if r else f"{'-':>22}"
            for r in values
        )
        exponent = growth[method]["time"]
        print(f"{method:<20}{text}{exponent:>16.2f}" if exponent is not None else f"{method:<20}{text}")
    print("peak RSS MB (working MB: peak minus after loading)")
    print(header + f"{'memory ~ pixels^':>18}")
    for method in methods:
        values = [cell.get((method, s)) for s in sensors]
        text = "".join(
            f"{r['peak_rss_mb']:>13.0f} ({r['working_mb']:.0f})" if r else f"{'-':>22}" for r in values
        )
        exponent = growth[method]["memory"]
        print(f"{method:<20}{text}{exponent:>18.2f}" if exponent is not None else f"{method:<20}{text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--sensors", nargs="+", choices=list(SENSORS), default=list(SENSORS))
    parser.add_argument("--dtype", choices=["auto", *DTYPES],
                        help="every method in this precision (default: each method's own)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    parser.add_argument("--heap", nargs="+", choices=HEAPS, default=["retain"],
                        help="allocators to run each measurement with (retain: the command line's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "resolution.json")
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "SENSOR", "HEAP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker[:2], args.device, args.dtype, args.threads, args.worker[2])))
        return

    rows = []
    for method, sensor, heap in itertools.product(args.methods, args.sensors, args.heap):
        command = [sys.executable, __file__, "--worker", method, sensor, heap,
                   *(["--dtype", args.dtype] if args.dtype else []),
                   "--device", args.device, "--threads", str(args.threads)]
        environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        done = subprocess.run(command, capture_output=True, text=True, env=environment)
        if done.returncode != 0:
            raise SystemExit(f"{method} at {sensor} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(f"  {label(row)} {sensor}: {row['cpu_ms_per_frame']:.0f} CPU ms/frame, "
              f"peak {row['peak_rss_mb']:.0f} MB", flush=True)
    growth = {
        name: {
            "time": growth_exponent([r for r in rows if label(r) == name], "cpu_ms_per_frame"),
            "memory": growth_exponent([r for r in rows if label(r) == name], "working_mb"),
        }
        for name in dict.fromkeys(label(r) for r in rows)
    }
    print_tables(rows, args.sensors, growth)
    report = {
        "device": args.device,
        "dtype": args.dtype or "each method's default",
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],  # other processes on the machine skew wall times
        "windows_per_sensor": NUM_WINDOWS,
        "heaps": args.heap,
        "rows": rows,
        "growth_exponents": growth,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    main()
