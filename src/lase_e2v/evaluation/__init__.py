"""Evaluation: EVREAL's protocol, metrics (MSE, SSIM, LPIPS), temporal consistency, benchmark reports.

* :func:`evaluate` / :func:`benchmark` — what the CLI calls (method names, data path, dataset name);
* :func:`evaluate_method` / :func:`run_benchmark` — the same for pipeline objects and sequence specs;
* :mod:`.metrics`, :mod:`.lpips`, :mod:`.temporal` — the scores; :mod:`.datasets` — packaged
  benchmark definitions (``configs/``); :mod:`.tables`, :mod:`.report` — Markdown/CSV/HTML output.
"""

from lase_e2v.evaluation.datasets import (
    EvalConfig,
    SequenceSpec,
    available,
    load_dataset,
    load_eval_config,
    load_method_config,
    resolve_data,
)
from lase_e2v.evaluation.metrics import LpipsMetric, MseMetric, SsimMetric, mse, ssim
from lase_e2v.evaluation.protocol import (
    BenchmarkResult,
    SequenceResult,
    benchmark,
    evaluate,
    evaluate_method,
    run_benchmark,
)
from lase_e2v.evaluation.temporal import TemporalMetrics, flicker, temporal_error

__all__ = [
    "BenchmarkResult",
    "EvalConfig",
    "LpipsMetric",
    "MseMetric",
    "SequenceResult",
    "SequenceSpec",
    "SsimMetric",
    "TemporalMetrics",
    "available",
    "benchmark",
    "evaluate",
    "evaluate_method",
    "flicker",
    "load_dataset",
    "load_eval_config",
    "load_method_config",
    "mse",
    "resolve_data",
    "run_benchmark",
    "ssim",
    "temporal_error",
]
