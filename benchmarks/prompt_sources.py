"""What the text adds: LaSe-E2V on a make-dataset folder's validation set with each caption source.

One checkpoint, one seed and one sampling setting; only the text differs between rows
(:mod:`lase_e2v.evaluation.captions`):

* ``stored`` — each sequence's own caption (make-dataset's COCO sentence with its lighting and motion words);
* ``auto`` — generated from a first FireNet+ reconstruction by each ``--captioner`` (skipped, with a
  note in the table and the JSON, when none is given: nothing downloads);
* ``empty`` — no text;
* ``other`` — a wrong caption: the next different caption among the val sequences, in manifest order.

EVREAL protocol as ``lase-e2v evaluate --dataset synthetic`` (MSE / SSIM / LPIPS after a 1 s
warm-up, plus the temporal scores); every row is also given as its difference to ``stored``, the
peer in the same run. The JSON keeps the text each row gave each sequence.

    OMP_NUM_THREADS=1 python benchmarks/prompt_sources.py --data data_synth [--checkpoint runs/x/pipeline]
        [--method my_lase.json] [--captioner models/blip] [--out benchmarks/results/prompt_sources.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from lase_e2v.atomic import atomic_path
from lase_e2v.evaluation.benchmark import run_benchmark
from lase_e2v.evaluation.captions import caption_factories
from lase_e2v.evaluation.datasets import SYNTHETIC, load_eval_config, resolve_data

REPO = Path(__file__).resolve().parents[1]
SCORES = ("mse", "ssim", "lpips", "flicker", "temporal_error")
#: scores compared with the stored-caption row
DELTAS = ("mse", "ssim", "lpips")
NO_CAPTIONER = "auto: skipped (no --captioner given; pass a local BLIP-style folder to add it)"


def run(data: Path, method: str, checkpoint: Path | None, captioners: list[Path], device: str) -> dict:
    sequences = resolve_data(data, SYNTHETIC)
    sources = ["stored", "auto", "empty", "other"] if captioners else ["stored", "empty", "other"]
    given: dict[str, list[str | None]] = {}
    rows = caption_factories([method], sources, captioners, sequences, {method: checkpoint} if checkpoint else None,
                             device, on_caption=lambda row, stored, text: given.setdefault(row, []).append(text))
    with tempfile.TemporaryDirectory() as folder:
        result = run_benchmark(rows, sequences, Path(folder) / "report", load_eval_config("std"), device=device,
                               videos=False)
    names = [spec.name for spec in sequences]
    table = []
    for row in rows:
        scores = result.summary["scores"][row][SYNTHETIC]
        table.append({"row": row, **{k: scores.get(k) for k in (*SCORES, "num_frames", "frames_per_second")},
                      "captions": dict(zip(names, given[row]))})
    stored = table[0]
    for entry in table:
        entry["difference_to_stored"] = {k: entry[k] - stored[k] for k in DELTAS}
    return {
        "data": str(data), "method": method, "checkpoint": str(checkpoint) if checkpoint else "bundled",
        "captioners": [str(c) for c in captioners], "sequences": names, "eval": "std (synthetic: 1 s warm-up)",
        "rows": table, "notes": [] if captioners else [NO_CAPTIONER],
    }


def markdown(report: dict) -> str:
    lines = ["| caption source | MSE | SSIM | LPIPS | flicker | temporal err | MSE - stored | SSIM - stored | "
             "LPIPS - stored |", "|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        difference = row["difference_to_stored"]
        lines.append(f"| {row['row']} | {row['mse']:.4f} | {row['ssim']:.4f} | {row['lpips']:.4f} | "
                     f"{row['flicker']:.4f} | {row['temporal_error']:.4f} | {difference['mse']:+.4f} | "
                     f"{difference['ssim']:+.4f} | {difference['lpips']:+.4f} |")
    frames = report["rows"][0]["num_frames"]
    lines.append(f"\n{len(report['sequences'])} val sequences, {frames} scored frames; checkpoint {report['checkpoint']}")
    lines.extend(f"note: {note}" for note in report["notes"])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a make-dataset folder (its val split is scored)")
    parser.add_argument("--method", default="lase", help="lase or a method JSON (options such as num_samples)")
    parser.add_argument("--checkpoint", type=Path, help="a saved LaSe-E2V pipeline folder (default: bundled)")
    parser.add_argument("--captioner", type=Path, action="append", default=[],
                        help="local captioner folder for the auto row (repeat to compare captioners)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "prompt_sources.json")
    args = parser.parse_args()
    report = run(args.data, args.method, args.checkpoint, args.captioner, args.device)
    print(markdown(report))
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
