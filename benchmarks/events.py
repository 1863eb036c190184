"""Event I/O and voxelization speed on one core, against naive and peer versions.

Reads: every format on slider_depth (text, and its HDF5 / EVREAL conversions) and the shared AEDAT4
and Prophesee RAW files, in events/s, next to ``np.loadtxt`` (the naive text parser), pandas'
``read_csv`` (C engine, typed columns) and evlib's loader (the peers). Voxel grids (E2VID
convention): lase-e2v numpy and torch (1 thread) next to a naive ``np.add.at`` of the same formula
and evlib's ``create_voxel_grid`` (a different convention: its values differ; timed for speed only).

    python benchmarks/events.py [--out benchmarks/results/events.json] [--voxel-events 2000000]

Targets: text parsing >= 10 M events/s, voxel grid >= 50 M events/s, on one core: the script sets
torch, arrow and polars to one thread (run it with ``OMP_NUM_THREADS=1``) and times reads in process
CPU time (best of ``--repeat``), which other jobs on a shared machine disturb far less than wall time.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # before polars is imported (by evlib)

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from _common import SHARED_DATA, best_seconds

from lase_e2v.atomic import atomic_path
from lase_e2v.events.formats import convert, open_events
from lase_e2v.events.representations import to_voxel_grid
from lase_e2v.events.streams import EventStream, concatenate



#: reads are timed in process CPU time (see the module docstring)
CPU_CLOCK = time.process_time


def bench_reads(repeat: int, workdir: Path) -> list[dict]:
    slider = SHARED_DATA / "ecd_slider_depth"
    convert(slider, workdir / "slider.h5", progress=False)
    convert(slider, workdir / "slider_evreal", progress=False)
    sources = [
        ("text (slider_depth)", slider / "events.txt"),
        ("hdf5 (slider_depth)", workdir / "slider.h5"),
        ("evreal (slider_depth)", workdir / "slider_evreal"),
        ("aedat4 (dvxplorer b)", SHARED_DATA / "aedat4" / "dvxplorer_320x240_b.aedat4"),
        ("evt2 (sample)", SHARED_DATA / "prophesee" / "evt2_sample.raw"),
        ("evt3 (sample)", SHARED_DATA / "prophesee" / "evt3_sample.raw"),
    ]
    rows = []
    for name, path in sources:
        reader = open_events(path)
        size = reader.sensor_size  # resolved once, outside the timing
        count = len(open_events(path, sensor_size=size).read())
        seconds = best_seconds(
            lambda path=path, size=size: open_events(path, sensor_size=size).read(), repeat, CPU_CLOCK
        )
        rows.append({"what": f"read {name}", "impl": "lase-e2v", "events": count, "seconds": seconds})
    # naive and peer readers
    text = slider / "events.txt"
    seconds = best_seconds(lambda: np.loadtxt(text), 1, CPU_CLOCK)
    rows.append(
        {
            "what": "read text (slider_depth)",
            "impl": "np.loadtxt (naive)",
            "events": 1_078_541,
            "seconds": seconds,
        }
    )
    import pandas as pd

    def pandas_read():
        columns = {"t": np.float64, "x": np.int32, "y": np.int32, "p": np.int8}
        return pd.read_csv(text, sep=" ", header=None, names=list(columns), dtype=columns)

    seconds = best_seconds(pandas_read, repeat, CPU_CLOCK)
    rows.append({"what": "read text (slider_depth)", "impl": "pandas read_csv (peer)",
                 "events": len(pandas_read()), "seconds": seconds})
    import evlib

    for name, path in [("text (slider_depth)", text), ("aedat4 (dvxplorer b)", sources[3][1])]:
        frame = evlib.load_events(str(path), sort=False).collect()
        seconds = best_seconds(
            lambda path=path: evlib.load_events(str(path), sort=False).collect(), repeat, CPU_CLOCK
        )
        rows.append(
            {"what": f"read {name}", "impl": "evlib (peer)", "events": len(frame), "seconds": seconds}
        )
    return rows


def _voxel_input(num_events: int) -> EventStream:
    """slider_depth repeated (shifted in time) to ``num_events`` events on its 180x240 sensor."""
    base = open_events(SHARED_DATA / "ecd_slider_depth" / "events.txt", sensor_size=(180, 240)).read()
    copies, span = [], int(base.t[-1]) + 1
    for k in range(-(-num_events // len(base))):
        copies.append(EventStream(base.x, base.y, base.t + k * span, base.p, base.sensor_size))
    return concatenate(copies)[:num_events]


def _naive_voxel_grid(x, y, t, p, num_bins, size):
    """The E2VID formula with float64 and ``np.add.at`` over (bin, y, x)."""
    voxel = np.zeros((num_bins, *size))
    tn = (num_bins - 1) * (t - t[0]) / (t[-1] - t[0])
    left = np.floor(tn).astype(np.int64)
    frac = tn - left
    xi, yi = x.astype(np.int64), y.astype(np.int64)
    np.add.at(voxel, (left, yi, xi), p * (1 - frac))
    inside = left + 1 < num_bins
    np.add.at(voxel, (left[inside] + 1, yi[inside], xi[inside]), (p * frac)[inside])
    return voxel.astype(np.float32)


def bench_voxels(num_events: int, num_bins: int, repeat: int) -> list[dict]:
    events = _voxel_input(num_events)
    x, y, t, p = events.x, events.y, events.t, events.p
    size = events.sensor_size
    tensors = [torch.from_numpy(a) for a in (x.astype(np.int32), y.astype(np.int32), t, p)]
    reference = _naive_voxel_grid(x, y, t, p, num_bins, size)
    candidates = {
        "np.add.at float64 (naive)": lambda: _naive_voxel_grid(x, y, t, p, num_bins, size),
        "lase-e2v numpy": lambda: to_voxel_grid(x, y, t, p, num_bins, size),
        "lase-e2v torch (1 thread)": lambda: to_voxel_grid(*tensors, num_bins, size),
    }
    import evlib
    import polars as pl

    frame = pl.DataFrame(
        {
            "t": pl.Series(t).cast(pl.Duration("us")),
            "x": x.astype(np.int16),
            "y": y.astype(np.int16),
            "polarity": p,
        }
    )
    candidates["evlib create_voxel_grid (peer)"] = lambda: evlib.densify_voxel_grid(
        evlib.create_voxel_grid(frame, size[0], size[1], num_bins), num_bins, size[0], size[1]
    )
    rows = []
    for impl, function in candidates.items():
        output = np.asarray(function())
        error = float(np.abs(output - reference).max()) if output.shape == reference.shape else None
        seconds = best_seconds(function, 1 if "naive" in impl else repeat)
        rows.append(
            {
                "what": f"voxel grid {num_bins} bins {size[0]}x{size[1]}",
                "impl": impl,
                "events": num_events,
                "seconds": seconds,
                "max_abs_diff_vs_naive": error,
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    naive = {row["what"]: row["events"] / row["seconds"] for row in rows if "naive" in row["impl"]}
    print(f"{'what':38s} {'implementation':32s} {'events':>10s} {'M events/s':>11s} {'vs naive':>9s}")
    for row in rows:
        rate = row["events"] / row["seconds"]
        row["events_per_s"] = rate
        ratio = f"{rate / naive[row['what']]:.1f}x" if row["what"] in naive else ""
        print(f"{row['what']:38s} {row['impl']:32s} {row['events']:>10,d} {rate / 1e6:>11.2f} {ratio:>9s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "events.json")
    parser.add_argument("--voxel-events", type=int, default=2_000_000)
    parser.add_argument("--num-bins", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    with tempfile.TemporaryDirectory() as workdir:
        rows = bench_reads(args.repeat, Path(workdir))
    rows += bench_voxels(args.voxel_events, args.num_bins, args.repeat)
    print_table(rows)
    with atomic_path(args.out) as temporary:
        temporary.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "cpu_count": os.cpu_count(),
                    "torch": torch.__version__,
                    "numpy": np.__version__,
                    "read_clock": "process_time",
                    "voxel_clock": "perf_counter",
                    "load_average_1min": os.getloadavg()[0],
                },
                indent=2,
            )
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
