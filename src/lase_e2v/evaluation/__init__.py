"""Evaluation: EVREAL's protocol, metrics (MSE, SSIM, LPIPS), temporal consistency, benchmark reports.

* :mod:`.protocol` — :func:`evaluate_method`: one pipeline on one recording, EVREAL's protocol;
* :mod:`.benchmark` — :func:`run_benchmark` over methods x sequences, and :func:`evaluate` /
  :func:`benchmark`, what the CLI calls (method names, data path, dataset name);
* :mod:`.layout` — the file names of a benchmark folder; :mod:`.report`, :mod:`.tables` —
  Markdown/CSV/HTML, plot and videos;
* :mod:`.metrics`, :mod:`.lpips`, :mod:`.temporal`, :mod:`.consistency` (VBench's, from local
  DINO / CLIP) — the scores; :mod:`.datasets` — packaged benchmark definitions (``configs/``);
* :mod:`.captions` — one benchmark row per caption source (stored, empty, other, auto).
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
from lase_e2v.evaluation.benchmark import BenchmarkResult, benchmark, evaluate, run_benchmark
from lase_e2v.evaluation.consistency import ConsistencyModels, FeatureConsistency
from lase_e2v.evaluation.protocol import SequenceResult, evaluate_method
from lase_e2v.evaluation.temporal import TemporalMetrics, flicker, temporal_error

__all__ = [
    "BenchmarkResult",
    "ConsistencyModels",
    "EvalConfig",
    "FeatureConsistency",
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
