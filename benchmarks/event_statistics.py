"""Event statistics of real recordings next to synthetic ``make-dataset`` output (sim-to-real check).

Real: ECD slider_depth (DAVIS240C, with APS frames), the two DVXplorer AEDAT4 recordings and the
Prophesee EVT2 (Gen3, 640x480) and EVT3 (Gen4.1, 1280x720) samples from ../shared. Synthetic: every
sequence of one or more ``make-dataset`` folders, summarised by the median and the 10th..90th
percentile range over sequences. The statistics are those of :mod:`lase_e2v.events.statistics`;
the simulator's ranges (:func:`lase_e2v.simulate.dataset.random_simulator_config`) are calibrated
so that the synthetic medians fall among the real values, never on reconstruction scores.

    python benchmarks/event_statistics.py --data data_synth [--data other] [--split val]
        [--out benchmarks/results/event_statistics.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import SHARED_DATA, write_results

from lase_e2v.events.formats import open_events
from lase_e2v.events.statistics import measure_events
from lase_e2v.simulate.realism import REAL_RANGE

REAL = {
    "slider_depth (DAVIS240C)": SHARED_DATA / "ecd_slider_depth",
    "dvxplorer a": SHARED_DATA / "aedat4" / "dvxplorer_320x240_a.aedat4",
    "dvxplorer b": SHARED_DATA / "aedat4" / "dvxplorer_320x240_b.aedat4",
    "evt2 (Gen3)": SHARED_DATA / "prophesee" / "evt2_sample.raw",
    "evt3 (Gen4.1)": SHARED_DATA / "prophesee" / "evt3_sample.raw",
}
#: rows of the table: (key, label, format)
ROWS = (
    ("events_per_pixel_per_s", "events / pixel / s", "{:.2f}"),
    ("on_share", "ON share", "{:.2f}"),
    ("isolated_share", "isolated (noise) share", "{:.2f}"),
    ("events_per_pixel_per_window", "events / pixel / window", "{:.3f}"),
    ("active_pixel_share", "active pixels / window", "{:.3f}"),
    ("events_per_active_pixel", "events / active pixel / window", "{:.2f}"),
    ("median_interval_us", "median pixel interval (ms)", "{:.1f}"),
    ("contrast_threshold", "effective contrast threshold", "{:.2f}"),
)


def measure(path: Path) -> dict:
    reader = open_events(path)
    return measure_events(reader.iter_chunks(), reader.sensor_size, reader.read_frames(), color_filter=reader.color_filter)


def synthetic_sequences(folders: list[Path], split: str) -> list[Path]:
    paths = []
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text())
        paths += [folder / r["file"] for r in manifest["sequences"] if split == "all" or r["split"] == split]
    return paths


def summarise(results: list[dict]) -> dict:
    """Median and 10th / 90th percentiles over sequences, per statistic."""
    summary = {}
    for key, _, _ in ROWS:
        values = np.array([r[key] for r in results if r.get(key) is not None], dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values):
            summary[key] = {"median": float(np.median(values)), "p10": float(np.percentile(values, 10)),
                            "p90": float(np.percentile(values, 90))}
    return summary


def cell(value: float | None, key: str, template: str) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return template.format(value / 1000 if key == "median_interval_us" else value)


def table(real: dict[str, dict], synthetic: dict[str, dict]) -> str:
    """One column per real recording, then one per synthetic summary (``synthetic``: title -> summary)."""
    names = list(real)
    titles = [f"{title} median [p10, p90]" for title in synthetic]
    lines = ["| statistic | " + " | ".join(names + titles) + " |",
             "|---" * (len(names) + len(synthetic) + 1) + "|"]
    for key, label, template in ROWS:
        values = [cell(real[name].get(key), key, template) for name in names]
        for summary in synthetic.values():
            row = summary.get(key)
            values.append("-" if row is None else
                          f"{cell(row['median'], key, template)} [{cell(row['p10'], key, template)}, "
                          f"{cell(row['p90'], key, template)}]")
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True, help="make-dataset folder")
    parser.add_argument("--split", default="all", choices=("all", "train", "val"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "event_statistics.json")
    args = parser.parse_args()
    real = {name: measure(path) for name, path in REAL.items()}
    sequences = synthetic_sequences(args.data, args.split)
    per_sequence = [measure(path) for path in sequences]
    synthetic = summarise(per_sequence)
    realistic = [r for r in per_sequence if REAL_RANGE.contains(r)]
    in_range = summarise(realistic)
    print(table(real, {"synthetic": synthetic, "synthetic in REAL_RANGE": in_range}))
    print(f"synthetic: {len(per_sequence)} sequences ({args.split}) from {', '.join(map(str, args.data))}, "
          f"{len(realistic)} in REAL_RANGE")
    report = {
        "real": real,
        "synthetic": {"data": [str(d) for d in args.data], "split": args.split, "sequences": len(per_sequence),
                      "summary": synthetic, "in_real_range": len(realistic),
                      "summary_in_real_range": in_range,
                      "per_sequence": {str(p.relative_to(p.parent.parent)): r for p, r in zip(sequences, per_sequence)}},
    }
    write_results(args.out, report)


if __name__ == "__main__":
    main()
