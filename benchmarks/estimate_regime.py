"""What LaSe-E2V adds to its estimate, by how good that estimate already is.

Why: on synthetic val sets the bundled model adds much to PIE-Net where PIE-Net is poor and nothing
where it is good, and slider_depth, where PIE-Net scores SSIM 0.647, is of the second kind. This
reads finished ``lase-e2v benchmark -o RUN`` folders whose methods include the model and its
estimate alone, bands their sequences by the estimate's SSIM, and reports, per dataset (synthetic
and real data are never pooled) and band, pooled over the runs, the mean scores of both and the
model's gain (means over scored frames, as the benchmark averages). No reconstruction runs here.

    lase-e2v benchmark --methods lase,pienet --data DIR --dataset synthetic -o RUN   # for each set
    python benchmarks/estimate_regime.py RUN [RUN ...] [--edges 0.45 0.6]
        [--out benchmarks/results/estimate_regime.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import write_results

SCORES = ("mse", "ssim", "lpips")


def sequence_scores(run: Path, method: str, estimate: str) -> list[dict]:
    """Per sequence of one benchmark folder: frames scored, the method's and the estimate's scores."""
    sequences = json.loads((run / "aggregate.json").read_text())["sequences"]
    for name in (method, estimate):
        if name not in sequences:
            raise ValueError(f"{run} has no method {name!r} (it has {', '.join(sequences)})")
    return [
        {"run": str(run), "dataset": dataset, "sequence": sequence, "frames": scores["num_frames"],
         "method": {k: scores[k] for k in SCORES},
         "estimate": {k: sequences[estimate][dataset][sequence][k] for k in SCORES}}
        for dataset, per_sequence in sequences[method].items()
        for sequence, scores in per_sequence.items()
    ]


def band_summary(rows: list[dict]) -> dict:
    """Frame-weighted means of the method, the estimate and their difference over ``rows``."""
    weights = np.array([row["frames"] for row in rows], dtype=np.float64)
    mean = lambda who, key: float(np.average([row[who][key] for row in rows], weights=weights))
    summary = {"sequences": len(rows), "frames": int(weights.sum())}
    for key in SCORES:
        summary[key] = {"method": mean("method", key), "estimate": mean("estimate", key)}
        summary[key]["gain"] = summary[key]["method"] - summary[key]["estimate"]
    return summary


def regime_table(rows: list[dict], edges: list[float]) -> dict[str, dict]:
    """``band_summary`` per band of the estimate's SSIM (``[low, high)``) and over all sequences."""
    bounds = [-np.inf, *edges, np.inf]
    bands = {}
    for low, high in zip(bounds[:-1], bounds[1:]):
        members = [row for row in rows if low <= row["estimate"]["ssim"] < high]
        label = f"estimate SSIM < {high}" if low == -np.inf else (
            f"estimate SSIM >= {low}" if high == np.inf else f"{low} <= estimate SSIM < {high}")
        if members:
            bands[label] = band_summary(members)
    bands["all"] = band_summary(rows)
    return bands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="lase-e2v benchmark output folders")
    parser.add_argument("--method", default="LaSe-E2V", help="the model's row name")
    parser.add_argument("--estimate", default="PIE-Net", help="its estimate's row name (the peer alone)")
    parser.add_argument("--edges", type=float, nargs="*", default=[0.45, 0.6], help="band edges on the estimate's SSIM")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "estimate_regime.json")
    args = parser.parse_args()
    for run in args.runs:
        if not (run / "aggregate.json").is_file():
            parser.exit(2, f"error: {run} is not a finished benchmark folder (no aggregate.json)\n")
    try:
        rows = [row for run in args.runs for row in sequence_scores(run, args.method, args.estimate)]
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    report = {"method": args.method, "estimate": args.estimate, "edges": sorted(args.edges),
              "runs": [str(run) for run in args.runs], "datasets": {}}
    print(f"| dataset | band | sequences | {args.estimate} MSE / SSIM / LPIPS | {args.method} | gain |")
    print("| --- | --- | ---: | --- | --- | --- |")
    for dataset in sorted({row["dataset"] for row in rows}):  # synthetic and real data are never pooled
        members = [row for row in rows if row["dataset"] == dataset]
        bands = regime_table(members, sorted(args.edges))
        for label, band in bands.items():
            cells = [" / ".join(f"{band[k][who]:+.3f}" if who == "gain" else f"{band[k][who]:.3f}" for k in SCORES)
                     for who in ("estimate", "method", "gain")]
            print(f"| {dataset} | {label} | {band['sequences']} | {' | '.join(cells)} |")
        estimate_ssim = [row["estimate"]["ssim"] for row in members]
        gains = [row["method"]["ssim"] - row["estimate"]["ssim"] for row in members]
        correlation = float(np.corrcoef(estimate_ssim, gains)[0, 1]) if len(members) > 2 else None
        report["datasets"][dataset] = {"bands": bands, "ssim_gain_correlation": correlation}
    for dataset, result in report["datasets"].items():
        if result["ssim_gain_correlation"] is not None:
            print(f"{dataset}: correlation of the estimate's SSIM and the SSIM gain over "
                  f"{result['bands']['all']['sequences']} sequences: {result['ssim_gain_correlation']:.2f}")
    write_results(args.out, {**report, "sequences": rows})


if __name__ == "__main__":
    main()
