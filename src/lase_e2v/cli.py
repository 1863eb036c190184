"""``lase-e2v`` command line: thin wrappers over the Python API.

Every command ends with one line saying what it produced. Errors the user can fix (bad input,
bad options) print one ``error:`` line to stderr and exit with status 2; Ctrl-C exits with 130
and leaves no partial output (all writers are atomic). Outputs are checked before any work: their
type, that their folder can be written, and that they do not exist yet unless ``--overwrite`` is
given. Library warnings and log messages stay off the terminal unless ``--verbose`` is given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import typer

from lase_e2v.atomic import check_output
from lase_e2v.errors import ConfigError, LaseError
from lase_e2v.events.color import BAYER_PATTERNS, check_pattern
from lase_e2v.heap import retain_freed_memory
from lase_e2v.pipelines.registry import DEFAULT_BENCHMARK_METHODS, DEFAULT_LIVE_METHOD, iter_methods, method_names

app = typer.Typer(
    name="lase-e2v",
    help="Event-camera streams to video: read any format, simulate, reconstruct (LaSe-E2V and peers), train, evaluate.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DTYPE_HELP = ("precision of the networks: float32 (exact), bfloat16 (GPUs; CPUs with AVX512-BF16/AMX: "
              "1.4-2x faster), float16 (GPUs), auto (bfloat16 where native, else float32); default "
              "float32 (lase: its sampling.json, auto for the bundled one); not for integrate")
#: click's usage error (unknown option, missing argument, bad value), as the installed Typer raises it
UsageError = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")
METHOD_HELP = f"{' | '.join(method_names())} (`lase-e2v methods` describes them)"
CAPTION_HELP = ("the text LaSe-E2V gets: stored (the recording's caption), auto (generated from a first "
                "FireNet+ reconstruction by --captioner) or empty")
CAPTIONER_HELP = "local image-captioning model folder for --caption auto (BLIP-style transformers snapshot, or an image tagger)"
#: loggers of the libraries underneath, quieted unless --verbose
LIBRARY_LOGGERS = ("diffusers", "transformers", "accelerate", "torch", "h5py", "PIL", "matplotlib")
#: environment variables that set the log level of diffusers / transformers when they load
VERBOSITY_VARIABLES = ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY")


@app.callback()
def global_options(
    verbose: bool = typer.Option(False, "--verbose", help="show library warnings and log messages"),
) -> None:
    """Options of every command (``lase-e2v --verbose reconstruct ...``). Every command keeps freed
    tensors in the heap (:mod:`lase_e2v.heap`; ``LASE_MALLOC=system`` to leave malloc alone)."""
    if not verbose:
        quiet_libraries()
    retain_freed_memory()


def quiet_libraries() -> None:
    """Keep library warnings and log messages off the terminal (``main`` restores the state after the
    command). ``showwarning`` is replaced too, because libraries may add their own warning filters."""
    warnings.simplefilter("ignore")
    warnings.showwarning = lambda *args, **kwargs: None
    for variable in VERBOSITY_VARIABLES:  # read when those libraries load
        os.environ.setdefault(variable, "error")
    for name in ("", *LIBRARY_LOGGERS):
        logging.getLogger(name).setLevel(logging.ERROR)


#: options several commands share, declared once (typer builds each command's own click option from them)
OVERWRITE_OPTION = typer.Option(
    False, "--overwrite", help="replace the output if it exists (else an existing output is an error)")
TOPIC_OPTION = typer.Option(
    None, help="event topic of a ROS bag (default: the first dvs_msgs/EventArray topic)")
DEVICE_OPTION = typer.Option("cpu", help="torch device: cpu, cuda, cuda:1, mps")
EVENT_FORMAT_OPTION = typer.Option(
    None, "--format",
    help="force the input format (text, hdf5, evreal, aedat4, evt2, evt3, rosbag); default: detect")
CHECKPOINT_OPTION = typer.Option(None, help="model weights (default: the bundled ones)")
PROMPT_OPTION = typer.Option(
    None, help="text describing the scene (LaSe-E2V; edits the result); default: the recording's caption")
STEPS_OPTION = typer.Option(None, help="sampler steps (LaSe-E2V)")
SEED_OPTION = typer.Option(None, help="random seed (LaSe-E2V)")
METHOD_OPTION = typer.Option("lase", help=METHOD_HELP)
SAMPLES_OPTION = typer.Option(None, help="noise draws averaged per clip (LaSe-E2V; 1 is fastest)")
ATTENTION_WINDOW_OPTION = typer.Option(
    None, help=("LaSe-E2V: attend within tiles of at most this many pixels a side (default 384: "
                "DAVIS frames whole, time linear in pixels on HD sensors); 0: the whole frame"))
NOISE_OPTION = typer.Option(
    None, help=("LaSe-E2V: EI noise 'independent' (a fresh draw per frame) or 'fixed' (one draw per "
                "recording: less flicker)"))
ESTIMATE_MIX_OPTION = typer.Option(
    None, help=("LaSe-E2V: share (0-1) by which each frame moves toward its peer estimate while the events "
                "look like a real camera's (bundled default 0.25; 0 = the model's frames alone)"))
FUSION_OPTION = typer.Option(
    None, "--fusion/--no-fusion",
    help=("LaSe-E2V: pass frames and their estimates through the checkpoint's learned fusion network "
          "(on in the bundled sampling; --no-fusion: the model's frames, then --estimate-mix if set)"))
FLIPS_OPTION = typer.Option(
    None, help=("LaSe-E2V: comma-separated mirror flips the noise draws are spread over (none, h, v, hv; "
                "e.g. none,h); 'none' = no flip ensemble"))
DATA_OPTION = typer.Option(..., help="a sequence (file/folder) or a dataset root")
DATASET_OPTION = typer.Option(
    None, help=("benchmark definition when --data is a root: ecd, mvsec, hqf, hsergb, bsergb (or "
                "ecd/slider_depth,...), or synthetic (synthetic/train) for a make-dataset folder: its val "
                "(train) sequences"))
EVAL_CAPTION_OPTION = typer.Option(
    "stored", help=("comma-separated caption sources, one row each for text-conditioned methods: stored, "
                    "empty, other (another sequence's caption), auto (one row per --captioner)"))
EVAL_CAPTIONER_OPTION = typer.Option(
    None, metavar="<path>",
    help="local captioner folder for --caption auto; repeat it to compare captioners (BLIP vs a tagger)")
DINO_OPTION = typer.Option(None, help="local DINO / ViT model folder: adds VBench's subject consistency")
CLIP_OPTION = typer.Option(None, help="local CLIP model folder: adds VBench's background consistency")
EVAL_CONFIG_OPTION = typer.Option(
    "std", "--eval-config",
    help=("protocol: std (EVREAL's; colour frames scored on their luma, our convention), std_rgb "
          "(colour scored in RGB) or an eval JSON file"))


def lase_options(prompt: str | None, steps: int | None, guidance: float | None, seed: int | None,
                 samples: int | None = None, attention_window: int | None = None,
                 noise: str | None = None, estimate_mix: float | None = None,
                 flips: str | None = None, fusion: bool | None = None) -> dict:
    """The LaSe-E2V sampling options the user set (unset ones keep the checkpoint's defaults);
    ``attention_window`` 0 means the whole frame (``None`` in :class:`SamplingOptions`); ``flips``
    comma-separated, as :class:`SamplingOptions` takes them."""
    options = {"prompt": prompt, "num_inference_steps": steps, "guidance_scale": guidance, "seed": seed,
               "num_samples": samples, "noise": noise, "estimate_mix": estimate_mix,
               "flips": flips, "fusion": fusion}
    chosen = {key: value for key, value in options.items() if value is not None}
    if attention_window is not None:
        chosen["attention_window"] = attention_window or None
    return chosen


def done(message: str) -> None:
    typer.secho(message, fg=typer.colors.GREEN)


@app.command()
def info(
    path: Path = typer.Argument(..., help="event file or folder"),
    event_format: Optional[str] = EVENT_FORMAT_OPTION,
    topic: Optional[str] = TOPIC_OPTION,
) -> None:
    """Format, resolution, event count, duration, rate and APS frames of a recording."""
    from lase_e2v.events.formats import describe

    for key, value in describe(path, format=event_format, topic=topic).items():
        typer.echo(f"{key:>14}: {value}")


@app.command()
def convert(
    source: Path = typer.Argument(..., help="input event file or folder"),
    destination: Path = typer.Argument(..., help="output: .txt, .h5 or a folder (EVREAL npy layout)"),
    event_format: Optional[str] = EVENT_FORMAT_OPTION,
    to: Optional[str] = typer.Option(None, "--to", help="force the output format (text, hdf5, evreal); default: from the extension"),
    topic: Optional[str] = TOPIC_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Convert between formats losslessly (events and APS frames)."""
    from lase_e2v.events.formats import convert as convert_events
    from lase_e2v.events.formats import output_format

    output_format(destination, to)
    check_output(destination, overwrite)
    count = convert_events(source, destination, format=to, source_format=event_format, topic=topic)
    done(f"wrote {count:,} events to {destination}")


@app.command()
def reconstruct(
    source: Path = typer.Argument(..., help="event file or folder"),
    output: Path = typer.Option(..., "-o", "--output", help="output: .mp4, .h5 or a folder of PNGs"),
    method: str = METHOD_OPTION,
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    prompt: Optional[str] = PROMPT_OPTION,
    caption: str = typer.Option("stored", help=CAPTION_HELP),
    captioner: Optional[Path] = typer.Option(None, help=CAPTIONER_HELP),
    window: str = typer.Option("auto", help="frames | events:N | ms:T (auto: frames if the file has APS, else ms:40)"),
    fps: Optional[float] = typer.Option(None, help="video frame rate (default: real time)"),
    steps: Optional[int] = STEPS_OPTION,
    guidance: Optional[float] = typer.Option(None, help="classifier-free guidance scale (LaSe-E2V)"),
    samples: Optional[int] = SAMPLES_OPTION,
    attention_window: Optional[int] = ATTENTION_WINDOW_OPTION,
    noise: Optional[str] = NOISE_OPTION,
    estimate_mix: Optional[float] = ESTIMATE_MIX_OPTION,
    fusion: Optional[bool] = FUSION_OPTION,
    flips: Optional[str] = FLIPS_OPTION,
    seed: Optional[int] = SEED_OPTION,
    device: str = DEVICE_OPTION,
    dtype: Optional[str] = typer.Option(None, help=DTYPE_HELP),
    event_format: Optional[str] = EVENT_FORMAT_OPTION,
    topic: Optional[str] = TOPIC_OPTION,
    color: Optional[bool] = typer.Option(None, "--color/--no-color",
                                         help="colour camera (Bayer filter): RGB frames; default: as the file says"),
    bayer: Optional[str] = typer.Option(None, help=f"Bayer pattern of a colour camera: {', '.join(BAYER_PATTERNS)} "
                                                   "(default: the file's, else RGGB)"),
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Reconstruct video frames from events (in colour for a colour camera), writing each as it is made
    (memory does not grow with the recording); the method and caption go into the output's metadata."""
    from lase_e2v.api import reconstruct as run_reconstruction
    from lase_e2v.pipelines.writers import frames_output_kind

    frames_output_kind(output)
    check_output(output, overwrite)
    if bayer is not None:
        check_pattern(bayer)
    result = run_reconstruction(source, method, window, checkpoint, device, event_format, progress=True,
                                topic=topic, color=color, bayer=bayer, caption=caption, captioner=captioner,
                                output=output, fps=fps,
                                **lase_options(prompt, steps, guidance, seed, samples, attention_window,
                                               noise, estimate_mix, flips, fusion),
                                **({"dtype": dtype} if dtype else {}))
    kind = ", colour" if result.color else ""
    generated = f"; caption: {result.caption!r}" if caption == "auto" else ""
    done(f"wrote {result.num_frames} frames ({method}{kind}) to {output}{generated}")


LIVE_SOURCE_HELP = "HOST:PORT (a DV network stream), camera or camera:SERIAL, or a recording to replay in real time"


@app.command()
def live(
    source: str = typer.Argument(..., help=LIVE_SOURCE_HELP),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="written as frames come: .mp4, .h5 or a folder of PNGs"),
    method: str = typer.Option(DEFAULT_LIVE_METHOD, help=METHOD_HELP),
    window: str = typer.Option("ms:40", help="ms:T or events:N"),
    show: bool = typer.Option(False, help="show the frames in a window (needs a display)"),
    fps: Optional[float] = typer.Option(None, help="video frame rate (default: real time for ms:T)"),
    speed: float = typer.Option(1.0, help="replay speed of a recording source (x real time)"),
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    prompt: Optional[str] = PROMPT_OPTION,
    steps: Optional[int] = STEPS_OPTION,
    samples: Optional[int] = SAMPLES_OPTION,
    attention_window: Optional[int] = ATTENTION_WINDOW_OPTION,
    noise: Optional[str] = NOISE_OPTION,
    estimate_mix: Optional[float] = ESTIMATE_MIX_OPTION,
    fusion: Optional[bool] = FUSION_OPTION,
    flips: Optional[str] = FLIPS_OPTION,
    seed: Optional[int] = SEED_OPTION,
    device: str = DEVICE_OPTION,
    topic: Optional[str] = TOPIC_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Reconstruct a live event stream as it arrives; Ctrl-C stops and keeps what was written (twice aborts)."""
    import signal
    import threading

    from lase_e2v.api import live as run_live
    from lase_e2v.pipelines.writers import frames_output_kind

    if output is not None:
        frames_output_kind(output)
        check_output(output, overwrite)
    stop = threading.Event()

    def first_ctrl_c(signum, frame) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts as usual

    previous = signal.signal(signal.SIGINT, first_ctrl_c)
    try:
        report = run_live(source, output, method, window, checkpoint, device, show, fps, speed, topic, stop,
                          progress=True,
                          **lase_options(prompt, steps, None, seed, samples, attention_window, noise,
                                         estimate_mix, flips, fusion))
    finally:
        signal.signal(signal.SIGINT, previous)
    ending = "stopped by Ctrl-C" if report.stopped else "stream ended"
    where = f" to {output}" if output is not None else ""
    done(f"{ending}: wrote {report.num_frames} frames ({method}){where}; {report.summary()}")


@app.command()
def serve(
    source: Path = typer.Argument(..., help="event file or folder to replay"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(7777, help="TCP port"),
    speed: float = typer.Option(1.0, help="replay speed (x real time)"),
    event_format: Optional[str] = EVENT_FORMAT_OPTION,
    topic: Optional[str] = TOPIC_OPTION,
) -> None:
    """Replay a recording as a DV network stream (for `live` or DV tools), from when a client connects."""
    from lase_e2v.events.live import serve as start_server

    server = start_server(source, host, port, speed, format=event_format, topic=topic)
    typer.echo(f"serving {source} on {host}:{port}; the replay starts when a client connects", err=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()
        done(f"stopped serving {source}")
        return
    done(f"sent {source} to {host}:{port}")


@app.command()
def simulate(
    source: Path = typer.Argument(..., help="video file or folder of images"),
    output: Path = typer.Option(..., "-o", "--output", help="output events file (.h5, .txt or folder)"),
    fps: Optional[float] = typer.Option(None, help="frame rate of an image folder (video files carry theirs)"),
    threshold: float = typer.Option(0.2, help="mean contrast threshold C (log intensity)"),
    threshold_sigma: float = typer.Option(0.03, help="per-pixel std of the thresholds"),
    seed: int = typer.Option(0, help="random seed"),
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Simulate events from a video (ESIM/v2e-style model)."""
    from lase_e2v.events.formats import output_format
    from lase_e2v.simulate import simulate_video

    output_format(output)
    check_output(output, overwrite)
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
    coco_dir: Optional[Path] = typer.Option(None, help="photos + captions.json (default: $LASE_SHARED/data/coco_mini)"),
    photometry: str = typer.Option("linear", help="photo values as linear intensity like APS frames (linear) "
                                                  "or as encoded (srgb)"),
    color: bool = typer.Option(False, "--color", help="a colour camera: RGB frames, events under a Bayer filter"),
    bayer: str = typer.Option("RGGB", help=f"Bayer pattern with --color: {', '.join(BAYER_PATTERNS)}"),
    realistic: bool = typer.Option(False, "--realistic", help="redraw a sequence until its event statistics "
                                                              "lie in the range of real recordings"),
    num_val: Optional[int] = typer.Option(None, help="how many sequences are val (default: a tenth); the "
                                                     "held-out photos stay the same"),
    keep_lighting: bool = typer.Option(False, "--keep-lighting", help="with --realistic: redraws keep the "
                                       "scene's tone and lighting (the generator's mix of dark and bright scenes)"),
) -> None:
    """Make synthetic captioned training sequences (HDF5 + manifest, split by source photo)."""
    from lase_e2v.simulate.dataset import make_dataset as make

    check_output(output, overwrite=True)  # writable; an existing non-empty folder is refused by make
    manifest = make(output, num_sequences, duration_s=duration, size=(height, width), seed=seed, coco_dir=coco_dir,
                    photometry=photometry, color_filter=check_pattern(bayer) if color else None,
                    realistic=realistic, num_val=num_val, keep_lighting=keep_lighting)
    done(f"wrote {num_sequences} sequences to {output} (manifest {manifest}){_realism_summary(manifest)}")


def _realism_summary(manifest: Path) -> str:
    """``; realistic: R redrawn, O out of range`` for a ``--realistic`` dataset, else nothing."""
    records = json.loads(manifest.read_text())["sequences"]
    if "realism" not in records[0]:
        return ""
    redrawn = sum(r["realism"]["draws"] > 1 for r in records)
    outside = sum(not r["realism"]["in_real_range"] for r in records)
    return f"; realistic: {redrawn} redrawn, {outside} still out of range"


@app.command()
def preview(
    sequence: Path = typer.Argument(..., help="a synthetic sequence (.h5) from make-dataset"),
    output: Path = typer.Option(..., "-o", "--output", help="PNG path"),
    frame: int = typer.Option(10, help="frame index"),
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """PNG of a frame next to its event image and caption."""
    from lase_e2v.simulate.preview import save_preview

    if output.suffix.lower() != ".png":
        raise ConfigError(f"{output}: the preview is a PNG; name it *.png")
    check_output(output, overwrite)
    save_preview(sequence, output, frame_index=frame)
    done(f"wrote {output}")


@app.command()
def train(
    config: Path = typer.Option(..., "--config", help="training config (JSON)"),
    resume: bool = typer.Option(True, help="continue from the newest checkpoint in the run folder"),
    max_steps: Optional[int] = typer.Option(None, help="override the config's max_steps (e.g. to train a finished run longer)"),
) -> None:
    """Train LaSe-E2V (runs on CPU, one GPU, or many via `accelerate launch`)."""
    from lase_e2v.processes import Processes
    from lase_e2v.training import load_config
    from lase_e2v.training import train as run_training

    overrides = {"max_steps": max_steps} if max_steps is not None else {}
    run_dir = run_training(load_config(config, **overrides), resume=resume)
    if Processes.current().is_main:  # several processes (torchrun, accelerate launch): one line
        done(f"training finished; checkpoints in {run_dir}")


@app.command("train-fusion")
def train_fusion(
    data: list[Path] = typer.Argument(..., help="make-dataset folders whose sequences the model never trained on"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for the pipeline with its fusion network"),
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    steps: int = typer.Option(1500, help="training steps (batches of 8 random 96x96 crops)"),
    seed: int = typer.Option(0, help="random seed of the fusion's initialisation and crops"),
    channels: int = typer.Option(16, help="the fusion network's width (channels of its first scale)"),
    ssim_weight: float = typer.Option(1.0, help="weight of (1 - SSIM) in the loss, next to L1's 1"),
    lpips_weight: float = typer.Option(1.0, help="weight of LPIPS in the loss (0: no LPIPS)"),
    sharpness_input: bool = typer.Option(False, help="also feed the fusion the whole frame's sharpness "
                                         "ratio of estimate to frame (lase_e2v.models.fusion)"),
    second_estimate: Optional[str] = typer.Option(None, help="a second peer whose frames the fusion also takes "
                                                  "(a method name, e.g. cista_tc; saved as fusion_estimate)"),
    device: str = DEVICE_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Train the learned fusion of LaSe-E2V frames with their estimates for a checkpoint (runs the
    pipeline over every sequence first; several processes with torchrun share that part)."""
    from lase_e2v.processes import Processes
    from lase_e2v.training.fusion import FusionConfig, run_fusion_training

    check_output(output, overwrite)  # the data folders and the checkpoint: checked by run_fusion_training first
    config = FusionConfig(max_steps=steps, seed=seed, channels=channels, ssim_weight=ssim_weight,
                          lpips_weight=lpips_weight, sharpness_input=sharpness_input,
                          second_estimate=second_estimate)
    written = run_fusion_training(data, output, checkpoint, config, device)
    if Processes.current().is_main:
        done(f"wrote {written} (sampling: fusion on)")


@app.command("export")
def export(
    run_dirs: list[Path] = typer.Argument(..., help="a training run folder (checkpoint-<step>/ inside); several "
                                          "runs of one model: the mean of their weights (a model soup)"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for the saved pipeline"),
    step: Optional[int] = typer.Option(None, help="the checkpoint's step (default: the newest), in every run"),
    raw: bool = typer.Option(False, "--raw", help="the raw weights instead of the EMA"),
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Save a checkpoint of a run, or the average of several runs, as a pipeline (`--checkpoint` of
    reconstruct / evaluate reads it)."""
    from lase_e2v.training.export import export_checkpoint

    check_output(output, overwrite)
    export_checkpoint(run_dirs, output, step=step, ema=False if raw else None)
    done(f"wrote {output}")


@app.command()
def evaluate(
    method: str = typer.Option("lase", help=f"{METHOD_HELP}, or a method JSON file"),
    data: Path = DATA_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
    output: Path = typer.Option(Path("outputs/evaluate"), "-o", "--output"),
    checkpoint: Optional[Path] = typer.Option(None),
    caption: str = EVAL_CAPTION_OPTION,
    captioner: Optional[list[Path]] = EVAL_CAPTIONER_OPTION,
    dino: Optional[Path] = DINO_OPTION,
    clip: Optional[Path] = CLIP_OPTION,
    device: str = DEVICE_OPTION,
    eval_config: str = EVAL_CONFIG_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Evaluate one method on one sequence or dataset (EVREAL protocol: MSE, SSIM, LPIPS, temporal);
    scales out over processes like `benchmark`."""
    from lase_e2v.evaluation import evaluate as run_evaluate
    from lase_e2v.evaluation.consistency import ConsistencyModels
    from lase_e2v.processes import Processes

    check_output(output, overwrite)
    checkpoints = {method: checkpoint} if checkpoint else None
    factories = evaluation_rows([method], caption, captioner, data, dataset, checkpoints, device)
    summary = run_evaluate(factories, data, output, dataset=dataset, device=device, eval_config=eval_config,
                           consistency=ConsistencyModels(dino, clip))
    if Processes.current().is_main:  # one report, printed once (several processes: see `benchmark`)
        typer.echo(summary)
        done(f"results in {output}")


@app.command()
def benchmark(
    data: Path = DATA_OPTION,
    methods: str = typer.Option(",".join(DEFAULT_BENCHMARK_METHODS),
                                help=f"comma-separated: {', '.join(method_names())} or method JSON files"),
    dataset: Optional[str] = DATASET_OPTION,
    output: Path = typer.Option(Path("outputs/benchmark"), "-o", "--output"),
    caption: str = EVAL_CAPTION_OPTION,
    captioner: Optional[list[Path]] = EVAL_CAPTIONER_OPTION,
    dino: Optional[Path] = DINO_OPTION,
    clip: Optional[Path] = CLIP_OPTION,
    device: str = DEVICE_OPTION,
    eval_config: str = EVAL_CONFIG_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Compare methods x datasets: tables, plots, side-by-side videos and an HTML report.

    Scales out over processes: `torchrun --nproc_per_node N -m lase_e2v.cli benchmark ...` or
    `accelerate launch -m lase_e2v.cli benchmark ...` split the sequences and write one report."""
    from lase_e2v.evaluation import benchmark as run_benchmark
    from lase_e2v.evaluation.consistency import ConsistencyModels
    from lase_e2v.processes import Processes

    names = [m.strip() for m in methods.split(",") if m.strip()]
    if not names:
        raise ConfigError("--methods is empty")
    check_output(output, overwrite)
    factories = evaluation_rows(names, caption, captioner, data, dataset, None, device)
    report = run_benchmark(factories, data, output, dataset=dataset, device=device, eval_config=eval_config,
                           consistency=ConsistencyModels(dino, clip))
    if Processes.current().is_main:
        done(f"report: {report}")


def evaluation_rows(methods: list[str], caption: str, captioners: list[Path] | None, data: Path,
                    dataset: str | None, checkpoints: dict | None, device: str) -> dict:
    """The rows of ``evaluate`` / ``benchmark``: each method, once per ``--caption`` source if it reads text."""
    from lase_e2v.evaluation.captions import caption_factories, parse_caption_sources
    from lase_e2v.evaluation.datasets import resolve_data

    sources = parse_caption_sources(caption)
    sequences = resolve_data(data, dataset) if "other" in sources else []
    return caption_factories(methods, sources, captioners or [], sequences, checkpoints, device)


@app.command()
def demo(
    output: Path = typer.Option(Path("outputs/demo"), "-o", "--output", help="output folder"),
    method: str = METHOD_OPTION,
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    prompt: Optional[str] = PROMPT_OPTION,
    steps: Optional[int] = STEPS_OPTION,
    seed: Optional[int] = SEED_OPTION,
    device: str = DEVICE_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Reconstruct the bundled real clip (ECD slider_depth, 1.2 s) and write a side-by-side mp4 and a PNG grid."""
    from lase_e2v.demo import demo_outputs, run_demo

    for path in demo_outputs(output, method):
        check_output(path, overwrite)

    result = run_demo(output, method=method, device=device, checkpoint=checkpoint,
                      **lase_options(prompt, steps, None, seed))
    typer.echo(f"{result.num_frames} frames, against the APS frames: MSE {result.mse:.4f}, SSIM {result.ssim:.3f}")
    done(f"wrote {result.video}\nwrote {result.grid}")


@app.command()
def methods() -> None:
    """The reconstruction methods: name, display name, where the weights come from, summary."""
    for spec in iter_methods():
        typer.echo(f"{spec.name:<13} {spec.display_name:<13} {spec.weights:<11} {spec.summary}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: map errors to one line and exit codes (0 ok, 2 bad input, 130 Ctrl-C).

    Typer runs in non-standalone mode so that its usage errors (unknown option, missing argument,
    bad value) reach us and become the same one ``error:`` line as our own errors
    (:class:`LaseError`, unreadable files) instead of a framed usage box; Typer turns Ctrl-C into
    exit code 130.
    """
    try:
        with warnings.catch_warnings(), restored_logging():
            code = app(args=argv, standalone_mode=False, prog_name="lase-e2v")
    except UsageError as problem:
        if problem.format_message():  # no message: --help was shown for a bare command
            command = problem.ctx.command_path if problem.ctx is not None else "lase-e2v"
            typer.echo(f"error: {one_line(problem.format_message())} (see {command} --help)",
                       err=True)
        return problem.exit_code
    except KeyboardInterrupt:
        code = 130
    except (LaseError, OSError) as problem:
        typer.echo(f"error: {one_line(str(problem))}", err=True)
        return 2
    if code == 130:
        typer.echo("interrupted; no partial output was kept", err=True)
    return code if isinstance(code, int) else 0


def one_line(message: str) -> str:
    """``message`` with every non-printable character (newline, terminal escape...) escaped, so an
    error stays one readable line whatever input it quotes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


@contextlib.contextmanager
def restored_logging() -> Iterator[None]:
    """Put the loggers and variables :func:`quiet_libraries` touches back as they were (``main`` may
    run many times in one process, as in the tests)."""
    loggers = [logging.getLogger(name) for name in ("", *LIBRARY_LOGGERS)]
    levels = [logger.level for logger in loggers]
    variables = {name: os.environ.get(name) for name in VERBOSITY_VARIABLES}
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


if __name__ == "__main__":
    sys.exit(main())
