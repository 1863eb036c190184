"""Milliseconds per frame of LaSe-E2V on CPU (or ``--device cuda``), next to FireNet in the same run.

Both reconstruct the same real windows of ECD slider_depth (240x180, 10 ms each) through their full
streaming path (voxel grids, networks, decoding).

1. The default: :func:`load_lase_pipeline` as shipped (bundled checkpoint and its ``sampling.json``:
   EI from PIE-Net at 0.1 of 10 DDIM steps, 4 samples averaged, ``dtype="auto"``), once per
   ``--dtypes`` value (``auto`` is the shipped default: the autoencoder and the U-Net in bfloat16
   where the device computes it natively, the PIE-Net estimate in float32; ``float32`` exact everywhere;
   ``bfloat16`` autocast everywhere, the peer too), and once per ``--flips`` set (the flip ensemble,
   e.g. ``none,h``: one more autoencoder pass per flip). Runs are interleaved with FireNet's and
   repeated ``--repeat`` times; the table shows medians, frames/s and the ratio to FireNet.
2. Sampler cost: random weights of the chosen preset (the cost does not depend on the values), the
   bundled TAEF2 autoencoder, MiniLM text, DDIM, guidance 1 and EI off (``ei_strength=1``) so every
   step runs; clips of ``--clip-length`` frames; ``--samples`` M noise draws averaged per clip.

``--memory`` adds a run over the whole recording (1 step, a tiny random autoencoder) that reports
Python-traced memory and RSS after a third of the frames and at the end. Use one thread for the CPU
numbers (``OMP_NUM_THREADS=1``; the script also calls ``torch.set_num_threads(--threads)``). Like
every ``lase-e2v`` command, it keeps freed tensors in the heap (:func:`lase_e2v.heap.retain_freed_memory`;
``LASE_MALLOC=system`` leaves glibc's thresholds alone; the report's ``heap_retained`` says which).

    OMP_NUM_THREADS=1 python benchmarks/lase.py [--dtypes auto float32 bfloat16] [--flips none none,h]
        [--repeat 3] [--steps 1 2 4 8 20] [--samples 1 4] [--frames 8] [--device cpu] [--memory]
        [--out benchmarks/results/lase.json]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import time
import tracemalloc
from pathlib import Path

import statistics

import psutil
import torch
from _common import write_results

from lase_e2v.events.formats import open_events
from lase_e2v.events.windows import TimeWindows, Window
from lase_e2v.heap import retain_freed_memory
from lase_e2v.models.autoencoder import TinyAutoencoder
from lase_e2v.pipelines.lase import LaSeE2VPipeline, load_lase_pipeline, with_sampling
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.pipelines.sampling_options import SamplingOptions

REPO_ROOT = Path(__file__).resolve().parents[1]
SLIDER_DEPTH = REPO_ROOT.parent / "shared" / "data" / "ecd_slider_depth"
WINDOW_US = 10_000


def read_windows(data: Path, count: int | None) -> list[Window]:
    windows = TimeWindows(WINDOW_US).iter_windows(open_events(data).iter_chunks())
    return list(itertools.islice(windows, count))


def ms_per_frame(pipeline: ReconstructionPipeline, windows: list[Window]) -> tuple[float, float]:
    """Wall-clock and process CPU milliseconds per frame (CPU time is what other jobs disturb least)."""
    pipeline.reset()
    start, start_cpu = time.perf_counter(), time.process_time()
    frames = sum(1 for _ in pipeline.iter_frames(iter(windows)))  # frames arrive on the CPU: synchronised
    return 1000 * (time.perf_counter() - start) / frames, 1000 * (time.process_time() - start_cpu) / frames


def firenet_or_note(device: str) -> tuple[ReconstructionPipeline | None, str]:
    try:
        from lase_e2v.pipelines import load_reconstructor

        return load_reconstructor("firenet", device=device), ""
    except (ImportError, AttributeError) as error:
        return None, f"FireNet not available ({error})"


def default_rows(
    dtypes: list[str], flip_sets: list[str], windows: list[Window], firenet: ReconstructionPipeline,
    device: str, repeat: int,
) -> list[dict]:
    """The shipped default per dtype and flip set (comma-separated), each run followed by a FireNet
    run (medians of ``repeat``)."""
    rows = []
    print(f"{'default':<8}{'dtype':>9} {'flips':>11} {'ms/frame':>9} {'frames/s':>9} {'FireNet ms':>11}"
          f" {'ratio':>6} {'CPU ms':>7} {'FireNet CPU ms':>15} {'CPU ratio':>10}")
    for dtype, flips in itertools.product(dtypes, flip_sets):
        lase = load_lase_pipeline(device=device, dtype=dtype, flips=tuple(flips.split(",")))
        ms_per_frame(lase, windows[: lase.options.clip_length])  # warm-up: first-call allocations
        runs = [(ms_per_frame(lase, windows), ms_per_frame(firenet, windows)) for _ in range(repeat)]
        lase_ms, lase_cpu_ms = (statistics.median(run[0][k] for run in runs) for k in (0, 1))
        firenet_ms, firenet_cpu_ms = (statistics.median(run[1][k] for run in runs) for k in (0, 1))
        row = {
            "dtype": dtype,
            "flips": flips,
            "lase_ms_per_frame": lase_ms,
            "frames_per_second": 1000 / lase_ms,
            "firenet_ms_per_frame": firenet_ms,
            "ratio": lase_ms / firenet_ms,
            "lase_cpu_ms_per_frame": lase_cpu_ms,
            "firenet_cpu_ms_per_frame": firenet_cpu_ms,
            "cpu_ratio": lase_cpu_ms / firenet_cpu_ms,
            "runs_wall_and_cpu_ms": runs,
        }
        rows.append(row)
        print(
            f"{'':<8}{dtype:>9} {flips:>11} {lase_ms:9.1f} {row['frames_per_second']:9.2f} {firenet_ms:11.1f} "
            f"{row['ratio']:5.1f}x {lase_cpu_ms:7.1f} {firenet_cpu_ms:15.1f} {row['cpu_ratio']:9.1f}x"
        )
    return rows


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
    parser.add_argument("--dtypes", nargs="*", default=["auto", "float32", "bfloat16"],
                        help="dtypes of the default pipeline to time (none: skip it)")
    parser.add_argument("--flips", nargs="+", default=["none"],
                        help="flip ensembles of the default pipeline to time, each comma-separated (none,h)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the default pipeline (median)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    parser.add_argument("--steps", type=int, nargs="*", default=[1, 2, 4, 8, 20])
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 4], help="num_samples values")
    parser.add_argument("--frames", type=int, default=8, help="windows reconstructed per measurement")
    parser.add_argument("--clip-length", type=int, default=4)
    parser.add_argument("--preset", default="tiny", choices=["tiny", "base"])
    parser.add_argument("--data", type=Path, default=SLIDER_DEPTH)
    parser.add_argument("--memory", action="store_true", help="also measure memory over the whole recording")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "lase.json")
    args = parser.parse_args()

    heap_retained = retain_freed_memory()
    torch.set_num_threads(args.threads)
    windows = read_windows(args.data, args.frames)
    firenet, note = firenet_or_note(args.device)
    defaults = []
    if firenet is not None and args.dtypes:
        defaults = default_rows(args.dtypes, args.flips, windows, firenet, args.device, args.repeat)
    torch.manual_seed(0)
    lase = LaSeE2VPipeline.from_preset(args.preset).to(args.device)
    firenet_ms = ms_per_frame(firenet, windows)[0] if firenet is not None else None
    rows = []
    print(f"{'steps':>5} {'samples':>7} {'LaSe-E2V ms/frame':>18} {'FireNet ms/frame':>17} {'ratio':>7}")
    for steps, samples in itertools.product(args.steps, args.samples):
        sampled = with_sampling(
            lase, num_inference_steps=steps, ei_strength=1.0, clip_length=args.clip_length, num_samples=samples
        )
        lase_ms = ms_per_frame(sampled, windows)[0]
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
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "heap_retained": heap_retained,
        "load_average_1min": os.getloadavg()[0],  # other processes on the machine skew the numbers
        "default": defaults,
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
    write_results(args.out, result)


if __name__ == "__main__":
    main()
