"""The benchmark: methods x sequences through the protocol, written as one report folder.

:func:`run_benchmark` evaluates every method on every sequence (:func:`.protocol.evaluate_method`)
and writes, atomically, to ``out_dir`` (file names: :mod:`.layout`): per-frame scores,
``aggregate.json``, the tables, plot, side-by-side videos and ``index.html`` (:mod:`.report`). A
dataset's score is the mean over all its scored frames. :func:`evaluate` and :func:`benchmark` are what
the CLI calls: method names (:mod:`lase_e2v.pipelines.registry`) or method JSONs, a data path and a
dataset name, all checked before any work.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
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
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.pipelines.registry import load_method

PipelineFactory = Callable[[], ReconstructionPipeline]


def aggregate(results: Sequence[SequenceResult]) -> dict[str, Any]:
    """Means over all scored frames per (method, dataset) and per (method, dataset, sequence).

    Returns ``{"methods", "datasets", "scores": {method: {dataset: {score: value, "num_frames",
    "frames_per_second"}}}, "sequences": {method: {dataset: {sequence: {...}}}}}``.
    """
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

    for method in methods:
        for dataset in datasets:
            group = [r for r in results if r.method == method and r.dataset == dataset]
            if group:
                scores[method][dataset] = summarize(group)
                sequences[method][dataset] = {r.sequence: summarize([r]) for r in group}
    return {"methods": methods, "datasets": datasets, "scores": scores, "sequences": sequences}


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
        methods: display name -> a no-argument factory building the pipeline (called once per method).
        sequences: from :func:`~lase_e2v.evaluation.datasets.resolve_data` or built by hand.
        out_dir: written as a whole through a temporary sibling folder, replaced only on success.
        eval_config: the protocol (default: EVREAL's ``std``).
        videos: write ``videos/<dataset>_<sequence>.mp4`` (events | each method | reference) of at
            most ``video_max_frames`` scored frames.
        consistency: DINO / CLIP folders of VBench's subject / background consistency (:mod:`.consistency`).
    """
    if not methods:
        raise ConfigError("no methods to benchmark")
    if not sequences:
        raise ConfigError("no sequences to evaluate")
    config = eval_config or EvalConfig()
    out_dir = Path(out_dir)
    metric_objects = build_metrics(config.metrics, lpips_weights=lpips_weights, device=device)
    metric_objects += consistency.metrics(device) if consistency else []
    results: list[SequenceResult] = []
    with atomic_path(out_dir) as temporary:
        temporary.mkdir(parents=True)
        steps = tqdm(total=len(methods) * len(sequences), desc="benchmark", unit="seq", disable=not progress)
        for method_name, factory in methods.items():
            pipeline = factory()
            for spec in sequences:
                dataset = spec.dataset or CUSTOM_DATASET
                steps.set_postfix_str(f"{method_name} on {dataset}/{spec.name}")
                result = evaluate_method(
                    pipeline,
                    spec.path,
                    cut=spec.cut_s,
                    num_bins=config.num_bins,
                    ts_tol_ms=config.ts_tol_ms,
                    warmup_s=config.warmup_s,
                    metrics=metric_objects,
                    keep_frames=video_max_frames if videos else 0,
                    progress=progress,
                    device=device,
                    method_name=method_name,
                    sequence_name=spec.name,
                    dataset=dataset,
                )
                if result.kept is not None and result.kept.indices:  # parked: memory stays bounded
                    kept = result.kept
                    save_kept_frames(frames_folder(temporary, dataset, spec.name), method_name, kept.indices,
                                     kept.t_us, kept.predictions, kept.references, kept.event_signs)
                result.kept = None
                path = temporary / result_file(dataset, spec.name, method_name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result.to_json(), indent=1))
                results.append(result)
                steps.update()
            del pipeline
        steps.close()

        summary = aggregate(results)
        summary["eval_config"] = asdict(config)
        summary["sequence_files"] = {
            f"{r.dataset}/{r.sequence}/{r.method}": result_file(r.dataset, r.sequence, r.method)
            for r in results
        }
        (temporary / "aggregate.json").write_text(json.dumps(summary, indent=1))
        video_files = []
        if videos:
            for spec in sequences:
                dataset = spec.dataset or CUSTOM_DATASET
                folder = frames_folder(temporary, dataset, spec.name)
                if folder.is_dir():
                    name = video_file(dataset, spec.name)
                    write_side_by_side(folder, list(methods), temporary / name)
                    video_files.append((f"{dataset} / {spec.name}", name))
        shutil.rmtree(temporary / FRAMES_FOLDER, ignore_errors=True)
        markdown = write_report(temporary, summary, video_files)
    return BenchmarkResult(out_dir, summary, out_dir / "index.html", markdown)


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
