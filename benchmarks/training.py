"""Training throughput with and without the latent cache, in one run, on one core.

Makes a small synthetic dataset (DAVIS size, calibrated simulator), caches a peer's estimates, then
times the same optimizer steps (estimate conditioning on, EI-noised clips, mask loss) twice: encoding
the clip's frames, previous frame and estimates with the frozen autoencoder every step (before), and
reading them from the latent cache (:mod:`lase_e2v.training.latents`, after). The one-off cost of
building the cache is reported too.

    python benchmarks/training.py [--crop 128] [--batch-size 2] [--steps 20] [--preset tiny]
        [--out benchmarks/results/training.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from _common import SHARED_DATA, write_results

from lase_e2v.simulate.dataset import make_dataset
from lase_e2v.training import load_config, loop
from lase_e2v.training.latents import autoencoder_key


def steps_per_second(config, steps: int) -> float:
    """Optimizer steps/s of the training loop's own step (data loading included), after one warm-up step."""
    torch.manual_seed(config.seed)
    pipeline = loop.build_pipeline(config)
    denoiser = loop.Denoiser(pipeline.event_encoder, pipeline.unet).train()
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=config.learning_rate)
    dataset = loop.make_dataset(config, "train", autoencoder_key(pipeline.autoencoder) if config.cache_latents else None)
    loader = iter(torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True,
                                              generator=torch.Generator().manual_seed(0)))

    def step() -> None:
        losses = loop.compute_losses(pipeline, denoiser, next(loader), config)
        losses["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--estimate", default="pienet_lite")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "training.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as workdir:
        data = Path(workdir) / "data"
        make_dataset(data, 4, duration_s=1.0, seed=0, coco_dir=SHARED_DATA / "coco_mini", progress=False,
                     val_fraction=0.25)
        base = {"data_dir": str(data), "run_dir": str(Path(workdir) / "run"), "model_preset": args.preset,
                "crop": [args.crop, args.crop], "batch_size": args.batch_size, "clip_frames": 4,
                "prediction_type": "v_prediction", "use_estimate": True, "ei_training_estimate": args.estimate,
                "ei_training_fraction": 0.5, "low_noise_fraction": 0.5, "mask_loss_weight": 0.1}
        config = load_config(base)
        pipeline = loop.build_pipeline(config)
        loop.prepare_caches(config, pipeline)  # peer estimates: needed by both
        start = time.perf_counter()
        loop.prepare_caches(load_config(base, cache_latents=True, latent_flips=["none"]), pipeline)
        cache_seconds = time.perf_counter() - start
        sequences = len(json.loads((data / "manifest.json").read_text())["sequences"]) - 1
        before = steps_per_second(config, args.steps)
        after = steps_per_second(load_config(base, cache_latents=True, latent_flips=["none"]), args.steps)
    rows = [("encode every step (before)", before), ("latent cache (after)", after)]
    print(f"| training step ({args.preset}, crop {args.crop}, batch {args.batch_size}, 1 core) | steps/s |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.2f} |")
    print(f"speed-up {after / before:.2f}x; building the cache took {cache_seconds / sequences:.1f} s per "
          f"1 s train sequence (180x240, 31 frames)")
    report = {"preset": args.preset, "crop": args.crop, "batch_size": args.batch_size, "steps": args.steps,
              "steps_per_s_before": before, "steps_per_s_after": after, "speedup": after / before,
              "cache_seconds_per_sequence_s": cache_seconds / sequences, "threads": 1}
    write_results(args.out, report)


if __name__ == "__main__":
    main()
