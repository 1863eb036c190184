"""Validation during training: held-out synthetic clips and, optionally, real slider_depth.

Synthetic: the first ``val_clips`` clips of the ``val`` split (no augmentation, so the same clips
every time) are reconstructed by :meth:`LaSeE2VPipeline.generate_clip` from their events and real
previous frame, exactly as the sampler runs at inference (EI from the peer's cached estimates when
training uses a peer, else from the previous frame), and scored
per frame with EVREAL's MSE / SSIM / LPIPS (:mod:`lase_e2v.evaluation.metrics`). A PNG grid
(rows: reference, reconstruction, per clip) is saved.

Whole recordings: :func:`lase_e2v.evaluation.protocol.evaluate_method` (EVREAL protocol, as
``lase-e2v benchmark``) on the first ``val_sequences`` val sequences and, when set, on slider_depth
(the ECD cut 1.0-2.5 s by default; its caption from the folder's ``caption.txt``), sampled the way
inference samples: clips chained on the model's own output, EI from the peer's estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lase_e2v.atomic import atomic_path
from lase_e2v.evaluation.benchmark import aggregate
from lase_e2v.evaluation.datasets import SequenceSpec, synthetic_split
from lase_e2v.evaluation.metrics import build_metrics, clip_unit
from lase_e2v.evaluation.protocol import evaluate_method
from lase_e2v.pipelines.lase import LaSeE2VPipeline, with_sampling
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.training.config import TrainingConfig

METRICS = ("mse", "ssim", "lpips")


def _save_grid(path: Path, rows: list[np.ndarray]) -> None:
    """Rows of ``(N, H, W)`` frames in [0, 1] -> one 8-bit PNG (rows stacked, frames side by side)."""
    image = np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
    with atomic_path(path) as tmp:
        Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(tmp, format="PNG")


@torch.no_grad()
def validate_synthetic(pipeline: LaSeE2VPipeline, dataset, config: TrainingConfig, sample_path: Path | None) -> dict:
    """Mean MSE / SSIM / LPIPS over the frames of the first ``val_clips`` validation clips."""
    metrics = build_metrics(METRICS, device=str(pipeline.device))
    generator = torch.Generator("cpu").manual_seed(config.seed)
    rows = []
    for index in range(min(config.val_clips, len(dataset))):
        clip = dataset[index]
        voxels = clip["voxels"][None] if config.use_events else torch.zeros_like(clip["voxels"][None])
        output = pipeline.generate_clip(
            voxels,
            previous_frame=clip["previous_frame"][None],
            estimate=clip["estimate"][None] if "estimate" in clip else None,
            prompt=[clip["caption"]] if config.use_text else None,
            num_inference_steps=config.val_inference_steps,
            guidance_scale=config.val_guidance_scale,
            ei_strength=config.ei_strength,
            generator=generator,
        )
        predicted = output.frames[0, :, 0].cpu().numpy()
        reference = clip["frames"][:, 0].numpy()
        for prediction, target in zip(predicted, reference):
            for metric in metrics:
                metric.update(clip_unit(prediction), clip_unit(target))
        if index < 4:
            rows += [reference, predicted]
    if sample_path is not None and rows:
        _save_grid(sample_path, rows)
    return {metric.name: metric.mean() for metric in metrics}


def validate_sequences(
    pipeline: LaSeE2VPipeline, sequences: Sequence[SequenceSpec], config: TrainingConfig
) -> dict:
    """Frame-weighted MSE / SSIM / LPIPS and flicker over whole recordings, sampled as at inference.

    Why: clips conditioned on their true previous frame (:func:`validate_synthetic`) score the
    denoiser, not what a user gets: sampling chains clips on the model's own output and starts from
    the estimate, and the two orders of checkpoints have disagreed. This runs the EVREAL protocol of
    ``lase-e2v benchmark`` (:func:`~lase_e2v.evaluation.protocol.evaluate_method`) with
    :attr:`TrainingConfig.sequence_sampling`.
    """
    return score_sequences(with_sampling(pipeline, **config.sequence_sampling), sequences, config.num_bins,
                           str(pipeline.device))


def score_sequences(method: ReconstructionPipeline, sequences: Sequence[SequenceSpec], num_bins: int,
                    device: str = "cpu") -> dict:
    """Frame-weighted MSE / SSIM / LPIPS and flicker of any reconstructor over whole recordings (the
    EVREAL protocol of ``lase-e2v benchmark``), e.g. the peer a LaSe-E2V model starts from."""
    metrics = build_metrics(METRICS, device=device)
    results = [evaluate_method(method, spec.path, cut=spec.cut_s, num_bins=num_bins, metrics=metrics,
                               device=device, method_name="validation", sequence_name=spec.name,
                               dataset="validation")
               for spec in sequences]
    summary = aggregate(results)["scores"]["validation"]["validation"]
    return {name: math.nan if summary.get(name) is None else summary[name] for name in (*METRICS, "flicker")}


def validation_sequences(config: TrainingConfig) -> dict[str, list[SequenceSpec]]:
    """Whole recordings validation scores, by split name: the first ``val_sequences`` val sequences
    of ``data_dir`` (cut as ``lase-e2v benchmark --dataset synthetic`` cuts them) and slider_depth
    (``slider_depth_cut_s``) when ``slider_depth_dir`` is set."""
    splits = {}
    if config.val_sequences:
        splits["synthetic_sequences"] = synthetic_split(Path(config.data_dir), "val")[: config.val_sequences]
    if config.slider_depth_dir:
        folder = Path(config.slider_depth_dir)
        splits["slider_depth"] = [SequenceSpec(folder.name, folder, "ecd", tuple(config.slider_depth_cut_s))]
    return splits
