"""End-to-end latency per frame of live reconstruction over a DV network stream, FireNet and LaSe-E2V.

A dv-processing ``NetworkWriter`` (``lase_e2v.events.live.serve``, a child process) replays the
bundled slider_depth clip (1.2 s, 240x180) on 127.0.0.1 in 1 ms packets; ``run_live`` reads it with
``DvSource`` and reconstructs 40 ms windows, writing an mp4 as it goes. Per method, in the same run:

* ``offline``: milliseconds per frame of the same method on the same windows read from the file
  (the compute alone, the naive bound on latency);
* ``real_time``: the replay at 1x; a method slower than 25 frames/s falls behind and its latency
  grows with the recording (``max``: where it ended); ``first`` is the first frame's, before any
  backlog: for LaSe-E2V the wait for the other windows of its clip plus one clip's compute;
* ``keeping_up`` (methods within 20x of real time): the replay slowed to the window rate the method
  sustains offline with 200 % headroom (other processes share these 2 cores), so no backlog builds
  up. Not run for slower methods: at 1/50 speed a LaSe-E2V clip's wait for its windows stretches
  as much, which says nothing about real use.

Two latencies per frame: ``latency`` from the arrival in this process of the packet that completes
the window to the frame written (what lase-e2v adds: waiting while earlier frames are made, for the
rest of a LaSe-E2V clip, reconstruction, writing), and ``end_to_end`` from the moment the window
ended at the (replayed) sensor, on the server's clock, to the frame written (adds packetising, the
network and waiting for the next event). frames/s: frames over the time from the first window's
completion to the last frame.

    OMP_NUM_THREADS=1 python benchmarks/live.py [--methods firenet lase] [--out benchmarks/results/live.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lase_e2v.atomic import atomic_path
from lase_e2v.demo import DEMO_CLIP
from lase_e2v.events.formats import open_events
from lase_e2v.events.live import DvSource, serve
from lase_e2v.events.windows import TimeWindows
from lase_e2v.pipelines.live import run_live
from lase_e2v.pipelines.registry import load_method, method_names

WINDOW_US = 40_000
HEADROOM = 3.0
MIN_KEEP_UP_SPEED = 0.05


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def offline_ms_per_frame(method: str) -> float:
    pipeline = load_method(method)
    pipeline.reset()
    windows = list(TimeWindows(WINDOW_US).iter_windows(open_events(DEMO_CLIP).iter_chunks()))
    start = time.perf_counter()
    count = sum(1 for _ in pipeline.iter_frames(iter(windows)))
    return 1000 * (time.perf_counter() - start) / count


def stats(values: np.ndarray) -> dict:
    median, p95 = np.percentile(values, [50, 95])
    return {"first": float(values[0]), "median": float(median), "p95": float(p95), "max": float(values.max())}


def live_run(method: str, speed: float, workdir: Path) -> dict:
    pipeline = load_method(method)  # loaded before connecting: the replay starts with the connection
    t_first = int(next(open_events(DEMO_CLIP).iter_chunks(chunk_events=1)).t[0])
    port = free_port()
    server = serve(DEMO_CLIP, port=port, speed=speed)
    try:
        source = DvSource.network("127.0.0.1", port)
        report = run_live(source, pipeline, TimeWindows(WINDOW_US), output=workdir / f"{method}_{speed:g}.mp4")
    finally:
        server.stop()
    records = list(report.records)
    latency = np.array([r.latency_ms for r in records])
    sensor_s = np.array([server.started_s + (r.t_end_us - t_first) / 1e6 / speed for r in records])
    end_to_end = 1000 * (np.array([r.out_s for r in records]) - sensor_s)
    return {
        "speed": speed,
        "frames": report.num_frames,
        "frames_per_second": report.frames_per_second,
        "latency_ms": stats(latency),
        "end_to_end_ms": stats(end_to_end),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["firenet", "lase"], choices=method_names())
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "live.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for method in args.methods:
            offline_ms = offline_ms_per_frame(method)
            keep_up_speed = min(1.0, WINDOW_US / 1000 / (HEADROOM * offline_ms))
            runs = {"real_time": live_run(method, 1.0, Path(workdir))}
            if MIN_KEEP_UP_SPEED <= keep_up_speed < 1.0:
                runs["keeping_up"] = live_run(method, keep_up_speed, Path(workdir))
            results.append({"method": method, "offline_ms_per_frame": offline_ms, **runs})

    print(f"{'method':8s} {'run':11s} {'speed':>6s} {'frames/s':>9s} {'offline ms':>11s} "
          f"{'latency ms first/median/p95/max':>32s} {'end-to-end ms first/median/p95/max':>35s}")
    for result in results:
        for run in ("real_time", "keeping_up"):
            if run not in result:
                continue
            row = result[run]
            latency = "/".join(f"{row['latency_ms'][k]:.0f}" for k in ("first", "median", "p95", "max"))
            end_to_end = "/".join(f"{row['end_to_end_ms'][k]:.0f}" for k in ("first", "median", "p95", "max"))
            print(f"{result['method']:8s} {run:11s} {row['speed']:>6.3f} {row['frames_per_second']:>9.1f} "
                  f"{result['offline_ms_per_frame']:>11.0f} {latency:>32s} {end_to_end:>35s}")
    with atomic_path(args.out) as temporary:
        temporary.write_text(json.dumps({
            "results": results,
            "window_ms": WINDOW_US / 1000,
            "clip": "bundled slider_depth clip (1.2 s, 240x180)",
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
            "torch": torch.__version__,
        }, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
