"""Prompt editing: LaSe-E2V on the same events with "at night, dark", "bright daylight" and the stored caption.

Events carry no absolute brightness; make-dataset's captions name the lighting ("..., at night,
dark", "bright daylight"), so a model trained on them can take the brightness from the text. This
script measures that with the default ``lase`` (or ``--checkpoint``), one seed and one sampling
setting, only the prompt changing: the mean intensity of the reconstructed frames and their
MSE / SSIM against the reference frames, on ECD slider_depth (EVREAL cut) and on a make-dataset
folder's validation sequences (first second unscored), and writes a side-by-side figure (the
paper's editing figure) of one slider_depth frame under each prompt.

    OMP_NUM_THREADS=1 python benchmarks/prompt_editing.py --data data_synth [--sequences 4]
        [--checkpoint runs/x/pipeline] [--figure docs/images/prompt_editing.png]
        [--out benchmarks/results/prompt_editing.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import SHARED_DATA, write_results

from lase_e2v.atomic import atomic_path
from lase_e2v.evaluation.datasets import SYNTHETIC, resolve_data
from lase_e2v.evaluation.protocol import evaluate_method
from lase_e2v.pipelines.registry import load_method

#: the prompts compared; "" = the recording's stored caption (LaSe-E2V's default prompt)
PROMPTS = {"stored caption": "", "at night, dark": "at night, dark", "bright daylight": "bright daylight"}


def score(pipeline, sequences) -> dict:
    """Frame-weighted mean intensity, MSE and SSIM of ``pipeline`` over ``sequences``."""
    records, means, kept = [], [], []
    for spec in sequences:
        result = evaluate_method(pipeline, spec.path, cut=spec.cut_s, metrics=("mse", "ssim"), keep_frames=True)
        records += result.records
        means += [float(p.mean()) / 255 for p in result.kept.predictions]
        kept.append(result.kept)
    return {"mean_intensity": float(np.mean(means)), "mse": float(np.mean([r["mse"] for r in records])),
            "ssim": float(np.mean([r["ssim"] for r in records])), "frames": len(records),
            "reference_mean_intensity": float(np.mean([r.mean() / 255 for k in kept for r in k.references])),
            "_kept": kept}


def save_figure(path: Path, rows: dict[str, dict], frame: int) -> None:
    """One slider_depth frame per prompt, next to the APS frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    reference = rows[names[0]]["_kept"][0].references[frame]
    figure, axes = plt.subplots(1, len(names) + 1, figsize=(3.2 * (len(names) + 1), 2.9))
    for axis, (title, image) in zip(axes, [("APS frame", reference)]
                                    + [(f'"{n}"' if n != "stored caption" else n, rows[n]["_kept"][0].predictions[frame])
                                       for n in names]):
        axis.imshow(image, cmap="gray", vmin=0, vmax=255)
        axis.set_title(f"{title}\nmean {image.mean() / 255:.2f}", fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    with atomic_path(path, overwrite=True) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="make-dataset folder (its val split)")
    parser.add_argument("--sequences", type=int, default=4, help="first N val sequences")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=Path(__file__).parents[1] / "docs/images/prompt_editing.png")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "prompt_editing.json")
    args = parser.parse_args()
    pipelines = {prompt: load_method("lase", args.checkpoint, prompt=text) for prompt, text in PROMPTS.items()}
    sets = {"slider_depth": resolve_data(SHARED_DATA / "ecd_slider_depth", "ecd/slider_depth"),
            "synthetic val": resolve_data(args.data, SYNTHETIC)[: args.sequences]}
    report = {}
    print("| data | prompt | mean intensity (reference) | MSE | SSIM |")
    print("|---|---|---|---|---|")
    for name, sequences in sets.items():
        rows = {prompt: score(pipeline, sequences) for prompt, pipeline in pipelines.items()}
        for prompt, row in rows.items():
            print(f"| {name} | {prompt} | {row['mean_intensity']:.3f} ({row['reference_mean_intensity']:.3f}) | "
                  f"{row['mse']:.4f} | {row['ssim']:.3f} |")
        if name == "slider_depth":
            save_figure(args.figure, rows, frame=len(rows["stored caption"]["_kept"][0].predictions) // 2)
        report[name] = {prompt: {k: v for k, v in row.items() if k != "_kept"} for prompt, row in rows.items()}
    report["checkpoint"] = str(args.checkpoint) if args.checkpoint else "bundled"
    write_results(args.out, report)
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
