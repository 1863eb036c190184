"""``lase-e2v`` command line: thin wrappers over the Python API.

Every command ends with one line saying what it produced. Errors the user can fix (bad input,
bad options) print one ``error:`` line to stderr and exit with status 2; Ctrl-C exits with 130
and leaves no partial output (all writers are atomic).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from lase_e2v.errors import ConfigError, LaseError

app = typer.Typer(
    name="lase-e2v",
    help="Event-camera streams to video: read any format, simulate, reconstruct (LaSe-E2V and peers), train, evaluate.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

FORMAT_HELP = "force the input format (text, hdf5, evreal, aedat4, evt2, evt3); default: detect"
DEVICE_HELP = "torch device: cpu, cuda, cuda:1, mps"
DTYPE_HELP = ("precision of the networks: float32 (exact), bfloat16 (GPUs; CPUs with AVX512-BF16/AMX: "
              "about 1.6x faster), float16 (GPUs); default float32")
METHOD_HELP = "lase | firenet | firenet_plus | e2vid | pienet_lite | pienet | integrate"
DATASET_HELP = ("benchmark definition when --data is a root: ecd, mvsec, hqf (or ecd/slider_depth,...), "
                "or synthetic (synthetic/train) for a make-dataset folder: its val (train) sequences")


PROMPT_HELP = "text describing the scene (LaSe-E2V; edits the result); default: the recording's caption"


def lase_options(prompt: str | None, steps: int | None, guidance: float | None, seed: int | None,
                 samples: int | None = None) -> dict:
    """The LaSe-E2V sampling options the user set (unset ones keep the checkpoint's defaults)."""
    options = {"prompt": prompt, "num_inference_steps": steps, "guidance_scale": guidance, "seed": seed,
               "num_samples": samples}
    return {key: value for key, value in options.items() if value is not None}


def done(message: str) -> None:
    typer.secho(message, fg=typer.colors.GREEN)


@app.command()
def info(
    path: Path = typer.Argument(..., help="event file or folder"),
    event_format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
) -> None:
    """Format, resolution, event count, duration, rate and APS frames of a recording."""
    from lase_e2v.events.formats import describe

    for key, value in describe(path, format=event_format).items():
        typer.echo(f"{key:>14}: {value}")


@app.command()
def convert(
    source: Path = typer.Argument(..., help="input event file or folder"),
    destination: Path = typer.Argument(..., help="output: .txt, .h5 or a folder (EVREAL npy layout)"),
    event_format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
    to: Optional[str] = typer.Option(None, "--to", help="force the output format (text, hdf5, evreal); default: from the extension"),
) -> None:
    """Convert between formats losslessly (events and APS frames)."""
    from lase_e2v.events.formats import convert as convert_events

    count = convert_events(source, destination, format=to, source_format=event_format)
    done(f"wrote {count:,} events to {destination}")


@app.command()
def reconstruct(
    source: Path = typer.Argument(..., help="event file or folder"),
    output: Path = typer.Option(..., "-o", "--output", help="output: .mp4, .h5 or a folder of PNGs"),
    method: str = typer.Option("lase", help=METHOD_HELP),
    checkpoint: Optional[Path] = typer.Option(None, help="model weights (default: the bundled ones)"),
    prompt: Optional[str] = typer.Option(None, help=PROMPT_HELP),
    window: str = typer.Option("auto", help="frames | events:N | ms:T (auto: frames if the file has APS, else ms:40)"),
    fps: Optional[float] = typer.Option(None, help="video frame rate (default: real time)"),
    steps: Optional[int] = typer.Option(None, help="sampler steps (LaSe-E2V)"),
    guidance: Optional[float] = typer.Option(None, help="classifier-free guidance scale (LaSe-E2V)"),
    samples: Optional[int] = typer.Option(None, help="noise draws averaged per clip (LaSe-E2V; 1 is fastest)"),
    seed: Optional[int] = typer.Option(None, help="random seed (LaSe-E2V)"),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    dtype: Optional[str] = typer.Option(None, help=DTYPE_HELP),
    event_format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
) -> None:
    """Reconstruct video frames from events."""
    from lase_e2v.api import reconstruct as run_reconstruction
    from lase_e2v.pipelines.writers import write_frames

    result = run_reconstruction(source, method, window, checkpoint, device, event_format, progress=True,
                                dtype=dtype, **lase_options(prompt, steps, guidance, seed, samples))
    count = write_frames(output, result.frames, result.timestamps_us, fps or result.frames_per_second)
    done(f"wrote {count} frames ({method}) to {output}")


@app.command()
def simulate(
    source: Path = typer.Argument(..., help="video file or folder of images"),
    output: Path = typer.Option(..., "-o", "--output", help="output events file (.h5, .txt or folder)"),
    fps: Optional[float] = typer.Option(None, help="frame rate of an image folder (video files carry theirs)"),
    threshold: float = typer.Option(0.2, help="mean contrast threshold C (log intensity)"),
    threshold_sigma: float = typer.Option(0.03, help="per-pixel std of the thresholds"),
    seed: int = typer.Option(0, help="random seed"),
) -> None:
    """Simulate events from a video (ESIM/v2e-style model)."""
    from lase_e2v.simulate import simulate_video

    count = simulate_video(source, output, fps=fps, threshold=threshold, threshold_sigma=threshold_sigma, seed=seed)
    done(f"wrote {count:,} events to {output}")


@app.command("make-dataset")
def make_dataset(
    output: Path = typer.Argument(..., help="output folder"),
    num_sequences: int = typer.Option(50, "-n", "--num-sequences"),
    duration: float = typer.Option(2.0, help="seconds per sequence"),
    height: int = typer.Option(180),
    width: int = typer.Option(240),
    seed: int = typer.Option(0),
    coco_dir: Optional[Path] = typer.Option(None, help="photos + captions.json (default: ../shared/data/coco_mini)"),
) -> None:
    """Make synthetic captioned training sequences (HDF5 + manifest, split by source photo)."""
    from lase_e2v.simulate.dataset import make_dataset as make

    manifest = make(output, num_sequences, duration_s=duration, size=(height, width), seed=seed, coco_dir=coco_dir)
    done(f"wrote {num_sequences} sequences to {output} (manifest {manifest})")


@app.command()
def preview(
    sequence: Path = typer.Argument(..., help="a synthetic sequence (.h5) from make-dataset"),
    output: Path = typer.Option(..., "-o", "--output", help="PNG path"),
    frame: int = typer.Option(10, help="frame index"),
) -> None:
    """PNG of a frame next to its event image and caption."""
    from lase_e2v.simulate.preview import save_preview

    save_preview(sequence, output, frame_index=frame)
    done(f"wrote {output}")


@app.command()
def train(
    config: Path = typer.Option(..., "--config", help="training config (JSON)"),
    resume: bool = typer.Option(True, help="continue from the newest checkpoint in the run folder"),
    max_steps: Optional[int] = typer.Option(None, help="override the config's max_steps (e.g. to train a finished run longer)"),
) -> None:
    """Train LaSe-E2V (runs on CPU, one GPU, or many via `accelerate launch`)."""
    from lase_e2v.training import load_config
    from lase_e2v.training import train as run_training

    overrides = {"max_steps": max_steps} if max_steps is not None else {}
    run_dir = run_training(load_config(config, **overrides), resume=resume)
    done(f"training finished; checkpoints in {run_dir}")


@app.command()
def evaluate(
    method: str = typer.Option("lase", help="method name"),
    data: Path = typer.Option(..., help="a sequence (file/folder) or a dataset root"),
    dataset: Optional[str] = typer.Option(None, help=DATASET_HELP),
    output: Path = typer.Option(Path("outputs/evaluate"), "-o", "--output"),
    checkpoint: Optional[Path] = typer.Option(None),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
) -> None:
    """Evaluate one method on one sequence or dataset (EVREAL protocol: MSE, SSIM, LPIPS, temporal)."""
    from lase_e2v.evaluation import evaluate as run_evaluate

    summary = run_evaluate(method, data, output, dataset=dataset, checkpoint=checkpoint, device=device)
    typer.echo(summary)
    done(f"results in {output}")


@app.command()
def benchmark(
    data: Path = typer.Option(..., help="a sequence (file/folder) or a dataset root"),
    methods: str = typer.Option("integrate,firenet,firenet_plus,lase", help="comma-separated method names"),
    dataset: Optional[str] = typer.Option(None, help=DATASET_HELP),
    output: Path = typer.Option(Path("outputs/benchmark"), "-o", "--output"),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
) -> None:
    """Compare methods x datasets: tables, plots, side-by-side videos and an HTML report."""
    from lase_e2v.evaluation import benchmark as run_benchmark

    names = [m.strip() for m in methods.split(",") if m.strip()]
    if not names:
        raise ConfigError("--methods is empty")
    report = run_benchmark(names, data, output, dataset=dataset, device=device)
    done(f"report: {report}")


@app.command()
def demo(
    output: Path = typer.Option(Path("outputs/demo"), "-o", "--output", help="output folder"),
    method: str = typer.Option("lase", help=METHOD_HELP),
    prompt: Optional[str] = typer.Option(None, help=PROMPT_HELP),
    steps: Optional[int] = typer.Option(None, help="sampler steps (LaSe-E2V)"),
    seed: Optional[int] = typer.Option(None, help="random seed (LaSe-E2V)"),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
) -> None:
    """Reconstruct the bundled real clip (ECD slider_depth, 1.2 s) and write a side-by-side mp4 and a PNG grid."""
    from lase_e2v.demo import run_demo

    result = run_demo(output, method=method, device=device, **lase_options(prompt, steps, None, seed))
    typer.echo(f"{result.num_frames} frames, against the APS frames: MSE {result.mse:.4f}, SSIM {result.ssim:.3f}")
    done(f"wrote {result.video}\nwrote {result.grid}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: map errors to one line and exit codes (0 ok, 2 bad input, 130 Ctrl-C).

    Typer itself reports usage errors (exit 2) and turns Ctrl-C into exit 130; our own errors
    (:class:`LaseError`, unreadable files) become one ``error:`` line here.
    """
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        if code == 130:
            typer.echo("interrupted; no partial output was kept", err=True)
        return code
    except KeyboardInterrupt:
        typer.echo("interrupted; no partial output was kept", err=True)
        return 130
    except (LaseError, OSError) as problem:
        typer.echo(f"error: {problem}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
