"""LaSe-E2V ablations at one training budget: full vs no events / text / previous frame / ESA / mask loss /
EI / estimate conditioning / previous frame from the estimate.

Every ``configs/train/ablation_*.json`` is trained for ``--steps`` optimizer steps (same data, seed
and schedule, so only its switch differs), then its EMA model is scored two ways: on the first
``--sequences`` held-out validation sequences, whole, as ``lase-e2v benchmark`` samples them (clips
chained on the model's own output, EI from the peer's estimate:
:func:`lase_e2v.training.validation.validate_sequences`, EVREAL's MSE / SSIM / LPIPS and flicker),
and, as before, on held-out clips given their true previous frame (``clip_ssim``:
:func:`~lase_e2v.training.validation.validate_synthetic`), which scores the denoiser rather than
what a user gets. ``no_ei`` is a sampling switch: configs whose training settings are identical share
one trained model. Each metric is also printed as a ratio to ``full`` (the peer in the same run).
Runs resume, so an interrupted ablation continues where it stopped.

Two rows put ``full`` in context on the same sequences: the peer whose estimate it starts from, alone
(``estimate_<peer>``), and, with ``--fusion-data``, ``full`` with a learned fusion
(:mod:`lase_e2v.training.fusion`, the ``train-fusion`` recipe) trained on its frames of those
folders' sequences, as the bundled checkpoint samples (its last stage). The folders should be new to
the model (fresh ``make-dataset --seed``s); their frames are cached under ``<runs>/full_fusion.cache``
so an interrupted collection resumes. With ``--second-estimate PEER`` (the bundled fusion's
``cista_tc``) that collection also caches the second peer's frames and a third row,
``full_fusion_<PEER>``, trains a fusion that also takes them, on the same frames: the two fusion
rows then differ only in that input. These rows have no training loss or clip score.

    python benchmarks/ablations.py --data data_synth --steps 300 [--sequences 4] [--runs runs/ablations]
        [--fusion-data FRESH...] [--second-estimate PEER] [--out benchmarks/results/ablations.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from lase_e2v.atomic import atomic_path
from lase_e2v.evaluation.datasets import SequenceSpec, synthetic_split
from lase_e2v.pipelines.lase import LaSeE2VPipeline, with_sampling
from lase_e2v.pipelines.registry import load_method
from lase_e2v.processes import Processes
from lase_e2v.training import TrainingConfig, load_config, train
from lase_e2v.training.clips import SyntheticClipDataset
from lase_e2v.training.fusion import FusionConfig, collect, fused_pipeline, fusion_sequences, train_fusion
from lase_e2v.training.log import CsvLog
from lase_e2v.training.loop import LOG_COLUMNS
from lase_e2v.training.validation import score_sequences, validate_sequences, validate_synthetic

REPO = Path(__file__).resolve().parents[1]
#: settings that only change sampling, not the trained model
SAMPLING_ONLY = ("ei_strength", "val_inference_steps", "val_guidance_scale", "val_sampling", "val_sequences",
                 "run_dir")


def training_key(config) -> str:
    values = dataclasses.asdict(config)
    return json.dumps({k: v for k, v in values.items() if k not in SAMPLING_ONLY}, sort_keys=True)


def run(config_paths: list[Path], data_dir: Path, steps: int, runs_dir: Path,
        num_sequences: int, fusion_data: list[Path], second_estimate: str | None = None) -> list[dict]:
    trained: dict[str, Path] = {}
    rows = []
    sequences = synthetic_split(data_dir, "val")[:num_sequences]
    fusion_paths = fusion_sequences(fusion_data) if fusion_data else []  # a bad folder stops before training
    for path in config_paths:
        name = path.stem.removeprefix("ablation_")
        config = load_config(path, data_dir=str(data_dir), max_steps=steps, run_dir=str(runs_dir / name),
                             checkpoint_every=max(1, steps // 2), validate_every=0,
                             warmup_steps=min(load_config(path).warmup_steps, steps // 10))
        key = training_key(config)
        if key not in trained:
            trained[key] = train(config)
        run_dir = trained[key]
        pipeline = LaSeE2VPipeline.from_pretrained(run_dir / "pipeline")
        dataset = SyntheticClipDataset(config.data_dir, split="val", clip_frames=config.clip_frames,
                                       num_bins=config.num_bins, crop=tuple(config.crop), augment=False,
                                       seed=config.seed)
        clips = validate_synthetic(pipeline, dataset, config, runs_dir / f"{name}.png")
        scores = validate_sequences(pipeline, sequences, config)
        last = CsvLog(run_dir / "log.csv", LOG_COLUMNS).rows()[-1]
        rows.append({"name": name, "steps": steps, "final_loss": float(last["loss"]), **scores,
                     "clip_ssim": clips["ssim"]})
        if name == "full":
            rows += context_rows(pipeline, config, sequences, fusion_paths, runs_dir / "full_fusion.cache",
                                 second_estimate)
    return rows


def context_rows(pipeline: LaSeE2VPipeline, config: TrainingConfig, sequences: list[SequenceSpec],
                 fusion_paths: list[Path], cache_dir: Path, second_estimate: str | None = None) -> list[dict]:
    """The rows next to ``full`` (module docstring): its peer alone and, given the sequences to train
    one on, ``full`` with a learned fusion, and with one that also takes ``second_estimate``'s frames."""
    rows = []
    if config.estimate_method:
        peer = load_method(config.estimate_method)
        rows.append({"name": f"estimate_{config.estimate_method}", "steps": None, "final_loss": None,
                     **score_sequences(peer, sequences, config.num_bins), "clip_ssim": None})
    if fusion_paths:
        base = with_sampling(pipeline, **config.sequence_sampling, fusion=False, estimate_mix=0.0,
                             fusion_estimate=second_estimate)
        cache_dir.mkdir(parents=True, exist_ok=True)
        files = collect(base, fusion_paths, cache_dir, Processes.current())
        seconds = [None] if second_estimate is None else [None, second_estimate]
        for second in seconds:
            fusion = train_fusion(files, FusionConfig(second_estimate=second))
            fused = fused_pipeline(base if second else with_sampling(base, fusion_estimate=None), fusion)
            rows.append({"name": "full_fusion" + (f"_{second}" if second else ""), "steps": config.max_steps,
                         "final_loss": None, **validate_sequences(fused, sequences, config), "clip_ssim": None})
    return rows


def markdown(rows: list[dict]) -> str:
    full = next((row for row in rows if row["name"] == "full"), None)
    lines = ["| variant | final loss | MSE | SSIM | LPIPS | flicker | SSIM / full | LPIPS / full "
             "| clip SSIM |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ratios = [row[m] / full[m] if full and full[m] else float("nan") for m in ("ssim", "lpips")]
        cells = [row["final_loss"], row["mse"], row["ssim"], row["lpips"], row["flicker"], *ratios,
                 row["clip_ssim"]]
        digits = [3, 4, 3, 3, 3, 3, 3, 3]
        lines.append(f"| {row['name']} | " + " | ".join("-" if value is None else f"{value:.{n}f}"
                                                        for value, n in zip(cells, digits)) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a make-dataset folder")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per variant")
    parser.add_argument("--sequences", type=int, default=4, help="whole val sequences scored per variant")
    parser.add_argument("--runs", type=Path, default=Path("runs/ablations"), help="where the runs go")
    parser.add_argument("--configs", nargs="*", type=Path,
                        default=sorted((REPO / "configs" / "train").glob("ablation_*.json")))
    parser.add_argument("--fusion-data", nargs="*", type=Path, default=[],
                        help="make-dataset folders new to the model: add a row of full with a learned fusion")
    parser.add_argument("--second-estimate", help="with --fusion-data, a peer whose frames a second fused row "
                        "also takes (the bundled fusion's: cista_tc)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ablations.json")
    args = parser.parse_args()
    configs = sorted(args.configs, key=lambda p: (p.stem != "ablation_full", p.stem))  # full first
    rows = run(configs, args.data, args.steps, args.runs, args.sequences, args.fusion_data, args.second_estimate)
    print(markdown(rows))
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps({"steps": args.steps, "data": str(args.data), "sequences": args.sequences,
                                   "fusion_data": list(map(str, args.fusion_data)),
                                   "second_estimate": args.second_estimate, "rows": rows},
                                  indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
