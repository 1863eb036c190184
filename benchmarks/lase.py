"""Milliseconds per frame of LaSe-E2V against sampler steps and samples on CPU, next to FireNet in the same run.

Both reconstruct the same real windows of ECD slider_depth (240x180, 10 ms each) through their full
streaming path (voxel grids, networks, decoding). LaSe-E2V uses random weights of the chosen preset
(the cost does not depend on the values), the bundled TAEF2 autoencoder, MiniLM text, DDIM,
guidance 1 and EI off (``ei_strength=1``) so every step runs; clips of ``--clip-length`` frames;
``--samples`` M noise draws averaged per clip (``num_samples``, one batched U-Net pass per step).
``--memory`` adds a run over the whole recording (1 step, a tiny random autoencoder) that reports
Python-traced memory and RSS after a third of the frames and at the end.

    python benchmarks/lase.py [--steps 1 2 4 8 20] [--samples 1 4] [--frames 8] [--memory]
        [--out benchmarks/results/lase.json]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import time
import tracemalloc
from pathlib import Path

import psutil
import torch

from lase_e2v.atomic import atomic_path
from lase_e2v.events.formats import open_events
from lase_e2v.events.windows import TimeWindows, Window
from lase_e2v.models.autoencoder import TinyAutoencoder
from lase_e2v.pipelines.lase import LaSeE2VPipeline, SamplingOptions
from lase_e2v.pipelines.output import ReconstructionPipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
SLIDER_DEPTH = REPO_ROOT.parent / "shared" / "data" / "ecd_slider_depth"
WINDOW_US = 10_000


def read_windows(data: Path, count: int | None) -> list[Window]:
    windows = TimeWindows(WINDOW_US).iter_windows(open_events(data).iter_chunks())
    return list(itertools.islice(windows, count))


def ms_per_frame(pipeline: ReconstructionPipeline, windows: list[Window]) -> float:
    pipeline.reset()
    start = time.perf_counter()
    frames = sum(1 for _ in pipeline.iter_frames(iter(windows)))
    return 1000 * (time.perf_counter() - start) / frames


def firenet_or_note() -> tuple[ReconstructionPipeline | None, str]:
    try:
        from lase_e2v.pipelines import load_reconstructor

        return load_reconstructor("firenet"), ""
    except (ImportError, AttributeError) as error:
        return None, f"FireNet not available ({error})"


def memory_run(data: Path) -> dict:
    """Whole recording with a tiny random model: memory after 1/3 of the frames and at the end."""
    torch.manual_seed(0)
    pipeline = LaSeE2VPipeline.from_preset(
        "tiny",
        TinyAutoencoder(latent_channels=4, width=8).requires_grad_(False),
        None,
        options=SamplingOptions(num_inference_steps=1, clip_length=4),
    )
    reader = open_events(data)
    total = sum(1 for _ in TimeWindows(WINDOW_US).iter_windows(reader.iter_chunks()))
    process = psutil.Process(os.getpid())
    marks = {}
    tracemalloc.start()
    windows = TimeWindows(WINDOW_US).iter_windows(reader.iter_chunks(chunk_events=100_000))
    for count, _ in enumerate(pipeline.iter_frames(windows), start=1):
        if count in (total // 3, total):
            gc.collect()
            marks[count] = {
                "traced_bytes": tracemalloc.get_traced_memory()[0],
                "rss_bytes": process.memory_info().rss,
            }
    tracemalloc.stop()
    third, end = marks[total // 3], marks[total]
    return {
        "frames": total,
        "at_one_third": third,
        "at_end": end,
        "traced_growth_bytes": end["traced_bytes"] - third["traced_bytes"],
        "rss_growth_bytes": end["rss_bytes"] - third["rss_bytes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 20])
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 4], help="num_samples values")
    parser.add_argument("--frames", type=int, default=8, help="windows reconstructed per measurement")
    parser.add_argument("--clip-length", type=int, default=4)
    parser.add_argument("--preset", default="tiny", choices=["tiny", "base"])
    parser.add_argument("--data", type=Path, default=SLIDER_DEPTH)
    parser.add_argument("--memory", action="store_true", help="also measure memory over the whole recording")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "lase.json")
    args = parser.parse_args()

    windows = read_windows(args.data, args.frames)
    torch.manual_seed(0)
    lase = LaSeE2VPipeline.from_preset(args.preset)
    firenet, note = firenet_or_note()
    firenet_ms = ms_per_frame(firenet, windows) if firenet is not None else None
    rows = []
    print(f"{'steps':>5} {'samples':>7} {'LaSe-E2V ms/frame':>18} {'FireNet ms/frame':>17} {'ratio':>7}")
    for steps, samples in itertools.product(args.steps, args.samples):
        lase.options = SamplingOptions(
            num_inference_steps=steps, ei_strength=1.0, clip_length=args.clip_length, num_samples=samples
        )
        lase_ms = ms_per_frame(lase, windows)
        ratio = lase_ms / firenet_ms if firenet_ms else None
        rows.append(
            {"steps": steps, "samples": samples, "lase_ms_per_frame": lase_ms, "firenet_ms_per_frame": firenet_ms, "ratio": ratio}
        )
        firenet_text = f"{firenet_ms:17.1f}" if firenet_ms else f"{'-':>17}"
        ratio_text = f"{ratio:6.1f}x" if ratio else f"{'-':>7}"
        print(f"{steps:5d} {samples:7d} {lase_ms:18.1f} {firenet_text} {ratio_text}")
    if note:
        print(note)
    result = {
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "sensor": "240x180 (ECD slider_depth)",
        "window_us": WINDOW_US,
        "frames": len(windows),
        "preset": args.preset,
        "clip_length": args.clip_length,
        "unet_parameters": sum(p.numel() for p in lase.unet.parameters()),
        "event_encoder_parameters": sum(p.numel() for p in lase.event_encoder.parameters()),
        "rows": rows,
        "note": note,
    }
    if args.memory:
        result["memory"] = memory_run(args.data)
        memory = result["memory"]
        print(
            f"memory over {memory['frames']} frames: traced growth {memory['traced_growth_bytes']} B, "
            f"RSS growth {memory['rss_growth_bytes'] / 1e6:.1f} MB (1/3 -> end)"
        )
    with atomic_path(args.out) as temporary:
        temporary.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
