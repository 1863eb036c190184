"""The benchmark: methods x sequences through the protocol, written as one report folder.

:func:`run_benchmark` evaluates every method on every sequence (:func:`.protocol.evaluate_method`)
and writes, atomically, to ``out_dir`` (file names: :mod:`.layout`): per-frame scores,
``aggregate.json``, the tables, plot, side-by-side videos and ``index.html`` (:mod:`.report`). A
dataset's score is the mean over all its scored frames. :func:`evaluate` and :func:`benchmark` are what
the CLI calls: method names (:mod:`lase_e2v.pipelines.registry`) or method JSONs, a data path and a
dataset name, all checked before any work.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.consistency import ConsistencyModels
from lase_e2v.evaluation.datasets import (
    EvalConfig,
    SequenceSpec,
    load_eval_config,
    load_method_config,
    resolve_data,
)
from lase_e2v.evaluation.layout import FRAMES_FOLDER, frames_folder, result_file, save_kept_frames, video_file
from lase_e2v.evaluation.metrics import build_metrics
from lase_e2v.evaluation.protocol import CUSTOM_DATASET, SequenceResult, evaluate_method
from lase_e2v.evaluation.report import write_report, write_side_by_side
from lase_e2v.evaluation.tables import to_markdown
from lase_e2v.events.formats import open_events
from lase_e2v.pipelines.captions import CaptionedPipeline
from lase_e2v.pipelines.color import ColorReconstructionPipeline
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.pipelines.registry import load_method
from lase_e2v.processes import Processes

PipelineFactory = Callable[[], ReconstructionPipeline]


def aggregate(results: Sequence[SequenceResult],
              groups: Mapping[tuple[str, str], str] | None = None) -> dict[str, Any]:
    """Means over all scored frames per (method, dataset) and per (method, dataset, sequence).

    Returns ``{"methods", "datasets", "scores": {method: {dataset: {score: value, "num_frames",
    "frames_per_second"}}}, "sequences": {method: {dataset: {sequence: {...}}}}}``; with ``groups``
    ((dataset, sequence) -> label, :attr:`~lase_e2v.evaluation.datasets.SequenceSpec.group`) also
    ``"groups": {method: {dataset: {label: {...}}}}``, the means over each label's frames.
    """
    groups = groups or {}
    methods = list(dict.fromkeys(r.method for r in results))
    datasets = list(dict.fromkeys(r.dataset for r in results))
    scores: dict[str, dict[str, Any]] = {m: {} for m in methods}
    sequences: dict[str, dict[str, Any]] = {m: {} for m in methods}

    def summarize(group: list[SequenceResult]) -> dict[str, Any]:
        names = list(dict.fromkeys(k for r in group for k in r.means))
        summary: dict[str, Any] = {}
        for name in names:
            values = [rec[name] for r in group for rec in r.records if rec.get(name) is not None]
            summary[name] = float(np.mean(values)) if values else None
        summary["num_frames"] = sum(r.num_frames for r in group)
        windows, seconds = sum(r.num_windows for r in group), sum(r.reconstruction_s for r in group)
        summary["frames_per_second"] = windows / seconds if seconds > 0 else None
        return summary

    by_label: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for method in methods:
        for dataset in datasets:
            group = [r for r in results if r.method == method and r.dataset == dataset]
            if group:
                scores[method][dataset] = summarize(group)
                sequences[method][dataset] = {r.sequence: summarize([r]) for r in group}
            labelled: dict[str, list[SequenceResult]] = {}
            for r in group:
                if (dataset, r.sequence) in groups:
                    labelled.setdefault(groups[(dataset, r.sequence)], []).append(r)
            if labelled:
                by_label[method][dataset] = {label: summarize(members) for label, members in labelled.items()}
    summary = {"methods": methods, "datasets": datasets, "scores": scores, "sequences": sequences}
    if any(by_label.values()):
        summary["groups"] = by_label
    return summary


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` wrote: ``out_dir``, the aggregate dict, the report and the table."""

    out_dir: Path
    summary: dict[str, Any]
    html: Path
    markdown: str

    def __str__(self) -> str:
        return self.markdown


def run_benchmark(
    methods: dict[str, PipelineFactory],
    sequences: Sequence[SequenceSpec],
    out_dir: str | Path,
    eval_config: EvalConfig | None = None,
    device: str = "cpu",
    lpips_weights: str | Path | None = None,
    videos: bool = True,
    video_max_frames: int = 600,
    progress: bool = True,
    consistency: ConsistencyModels | None = None,
) -> BenchmarkResult:
    """Evaluate every method on every sequence and write results, tables, plot, videos and HTML report.

    Args:
        methods: display name -> a no-argument factory building the pipeline (called once per method
            and process, and 4 more times for colour recordings: :mod:`lase_e2v.pipelines.color`).
        sequences: from :func:`~lase_e2v.evaluation.datasets.resolve_data` or built by hand.
        out_dir: written as a whole through a temporary sibling folder, replaced only on success.
        eval_config: the protocol (default: EVREAL's ``std``).
        device: torch device; with several processes a bare ``cuda`` is each process's own GPU.
        videos: write ``videos/<dataset>_<sequence>.mp4`` (events | each method | reference) of at
            most ``video_max_frames`` scored frames.
        consistency: DINO / CLIP folders of VBench's subject / background consistency (:mod:`.consistency`).

    A colour camera's recording (:attr:`~lase_e2v.events.formats.base.EventReader.color_filter`) is
    reconstructed in colour (:class:`~lase_e2v.pipelines.color.ColorReconstructionPipeline` around each
    method, inside a caption wrapper: :func:`in_color`) and scored as ``eval_config.color_scoring``
    says (luma by default, as gray frames are scored).

    Several processes (``torchrun`` / ``accelerate launch``, :mod:`lase_e2v.processes`): each one
    evaluates its contiguous share of ``sequences`` with every method and renders their videos; the
    main process gathers the scores and files and alone writes ``out_dir``. The report is the one a
    single process writes (only the timings differ, as between any two runs), and every process
    returns the same :class:`BenchmarkResult`. An error in any process is raised in all of them.
    """
    if not methods:
        raise ConfigError("no methods to benchmark")
    if not sequences:
        raise ConfigError("no sequences to evaluate")
    config = eval_config or EvalConfig()
    out_dir = Path(out_dir)
    processes = Processes.current()
    device = processes.device(device)
    share = processes.share(sequences)
    with contextlib.ExitStack() as stack:
        if processes.is_main:
            work_dir = stack.enter_context(atomic_path(out_dir))
            work_dir.mkdir(parents=True)
        else:  # its files travel to the main process
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lase-e2v-benchmark-")))
        shares = processes.run_everywhere(lambda: _evaluate_share(
            methods, share, work_dir, config, device, lpips_weights, video_max_frames if videos else 0,
            progress and processes.is_main, f" (process 1 of {processes.count})" if processes.count > 1 else "",
            consistency))
        files = processes.gather_to_main({} if processes.is_main else _read_files(work_dir))
        for gathered in files or ():
            for name, content in gathered.items():
                (work_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (work_dir / name).write_bytes(content)

        # the order one process would give: methods as given, then sequences as given
        method_order = {name: k for k, name in enumerate(methods)}
        sequence_order = {(spec.dataset or CUSTOM_DATASET, spec.name): k for k, spec in enumerate(sequences)}
        results = sorted((r for part in shares for r in part.results),
                         key=lambda r: (method_order[r.method], sequence_order[(r.dataset, r.sequence)]))
        video_files = sorted((v for part in shares for v in part.videos), key=lambda v: sequence_order[v[0]])
        summary = aggregate(results, {(spec.dataset or CUSTOM_DATASET, spec.name): spec.group
                                      for spec in sequences if spec.group is not None})
        summary["eval_config"] = asdict(config)
        summary["sequence_files"] = {
            f"{r.dataset}/{r.sequence}/{r.method}": result_file(r.dataset, r.sequence, r.method)
            for r in results
        }
        pages = [(f"{dataset} / {name}", video) for (dataset, name), video in video_files]

        def write_summary() -> str:
            if not processes.is_main:
                return to_markdown(summary)
            (work_dir / "aggregate.json").write_text(json.dumps(summary, indent=1))
            return write_report(work_dir, summary, pages)

        markdown = processes.run_everywhere(write_summary)[processes.index]
    return BenchmarkResult(out_dir, summary, out_dir / "index.html", markdown)


@dataclass
class _Share:
    """What one process evaluated: its sequence results and its videos ``((dataset, sequence), file)``."""

    results: list[SequenceResult]
    videos: list[tuple[tuple[str, str], str]]


def _evaluate_share(
    methods: dict[str, PipelineFactory],
    sequences: Sequence[SequenceSpec],
    work_dir: Path,
    config: EvalConfig,
    device: str,
    lpips_weights: str | Path | None,
    video_max_frames: int,
    progress: bool,
    progress_note: str,
    consistency: ConsistencyModels | None,
) -> _Share:
    """Every method on ``sequences``: per-sequence result files and side-by-side videos in ``work_dir``."""
    share = _Share([], [])
    if not sequences:
        return share
    metric_objects = build_metrics(config.metrics, lpips_weights=lpips_weights, device=device)
    metric_objects += consistency.metrics(device) if consistency else []
    steps = tqdm(total=len(methods) * len(sequences), desc=f"benchmark{progress_note}", unit="seq",
                 disable=not progress)
    for method_name, factory in methods.items():
        pipelines: dict[str | None, ReconstructionPipeline] = {}  # by Bayer pattern; None: gray
        for spec in sequences:
            dataset = spec.dataset or CUSTOM_DATASET
            steps.set_postfix_str(f"{method_name} on {dataset}/{spec.name}")
            reader = open_events(spec.path)
            pattern = reader.color_filter
            if pattern not in pipelines:
                pipelines[pattern] = in_color(factory, pattern)
            result = evaluate_method(
                pipelines[pattern],
                reader,
                cut=spec.cut_s,
                num_bins=config.num_bins,
                ts_tol_ms=config.ts_tol_ms,
                warmup_s=config.warmup_s,
                metrics=metric_objects,
                keep_frames=video_max_frames,
                progress=progress,
                device=device,
                method_name=method_name,
                sequence_name=spec.name,
                dataset=dataset,
                color_scoring=config.color_scoring,
            )
            if result.kept is not None and result.kept.indices:  # parked: memory stays bounded
                kept = result.kept
                save_kept_frames(frames_folder(work_dir, dataset, spec.name), method_name, kept.indices,
                                 kept.t_us, kept.predictions, kept.references, kept.event_signs)
            result.kept = None
            path = work_dir / result_file(dataset, spec.name, method_name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result.to_json(), indent=1))
            share.results.append(result)
            steps.update()
        del pipelines
    steps.close()
    for spec in sequences:
        dataset = spec.dataset or CUSTOM_DATASET
        folder = frames_folder(work_dir, dataset, spec.name)
        if folder.is_dir():
            name = video_file(dataset, spec.name)
            write_side_by_side(folder, list(methods), work_dir / name)
            share.videos.append(((dataset, spec.name), name))
    shutil.rmtree(work_dir / FRAMES_FOLDER, ignore_errors=True)
    return share


def in_color(factory: PipelineFactory, pattern: str | None) -> ReconstructionPipeline:
    """The factory's pipeline for a recording under Bayer ``pattern`` (gray for ``None``): wrapped in
    :class:`ColorReconstructionPipeline` with three more of its instances, unless it is a colour one.

    A caption row's pipeline (:class:`CaptionedPipeline`) keeps its wrapper outside the colour one, so
    that each recording gets one caption (one automatic caption, one ``on_caption`` call) for all four
    Bayer sites."""
    first = factory()
    captioned = first if isinstance(first, CaptionedPipeline) else None
    inner = captioned.pipeline if captioned else first
    if pattern is None or isinstance(inner, ColorReconstructionPipeline):
        return first
    if captioned is None:
        return ColorReconstructionPipeline([first, *(factory() for _ in range(3))], pattern)
    sites = [inner, *(factory().pipeline for _ in range(3))]  # type: ignore[attr-defined]
    return CaptionedPipeline(ColorReconstructionPipeline(sites, pattern), captioned.source, captioned.on_caption)


def _read_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``: ``{relative path: content}``."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


# -- what the CLI calls ------------------------------------------------------------------------


def method_factories(
    methods: Sequence[str],
    checkpoints: dict[str, str | Path] | None = None,
    device: str = "cpu",
) -> dict[str, PipelineFactory]:
    """Display name -> factory for registered method names (:mod:`lase_e2v.pipelines.registry`) or
    method JSON paths (:func:`~lase_e2v.evaluation.datasets.load_method_config`). ``checkpoints`` maps
    a method to its weights. Names and options are checked here, before any work."""
    checkpoints = checkpoints or {}
    factories: dict[str, PipelineFactory] = {}
    for method in methods:
        config = load_method_config(method)
        checkpoint = checkpoints.get(method, config.checkpoint)

        def factory(config=config, checkpoint=checkpoint) -> ReconstructionPipeline:
            return load_method(config.method, checkpoint, device, **config.options)

        if config.name in factories:
            raise ConfigError(f"method '{config.name}' given twice")
        factories[config.name] = factory
    return factories


def benchmark(
    methods: Sequence[str] | dict[str, PipelineFactory],
    data: str | Path,
    out_dir: str | Path,
    dataset: str | None = None,
    device: str = "cpu",
    checkpoints: dict[str, str | Path] | None = None,
    eval_config: str | Path = "std",
    lpips_weights: str | Path | None = None,
    videos: bool = True,
    progress: bool = True,
    consistency: ConsistencyModels | None = None,
) -> Path:
    """Benchmark ``methods`` on ``data`` (a sequence, or a root with ``dataset`` = ``ecd``/``mvsec``/``hqf``,
    optionally ``ecd/slider_depth,...``); returns the path of the HTML report in ``out_dir``."""
    factories = methods if isinstance(methods, dict) else method_factories(methods, checkpoints, device)
    return evaluate(factories, data, out_dir, dataset, None, device, eval_config, lpips_weights, videos, progress,
                    consistency).html


def evaluate(
    method: str | ReconstructionPipeline | dict[str, PipelineFactory],
    data: str | Path,
    out_dir: str | Path,
    dataset: str | None = None,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    eval_config: str | Path = "std",
    lpips_weights: str | Path | None = None,
    videos: bool = True,
    progress: bool = True,
    consistency: ConsistencyModels | None = None,
) -> BenchmarkResult:
    """Evaluate one method (a name as for :func:`benchmark`, a pipeline, or ``{name: factory}``) on
    ``data``; same outputs as :func:`benchmark`. Returns the :class:`BenchmarkResult`; ``str()`` of it
    is the Markdown table.
    """
    if isinstance(method, dict):
        factories = method
    elif isinstance(method, ReconstructionPipeline):
        factories = {method.name: lambda: method}
    else:
        factories = method_factories([method], {method: checkpoint} if checkpoint else None, device)
    return run_benchmark(
        factories,
        resolve_data(data, dataset),
        out_dir,
        load_eval_config(eval_config),
        device=device,
        lpips_weights=lpips_weights,
        videos=videos,
        progress=progress,
        consistency=consistency,
    )
