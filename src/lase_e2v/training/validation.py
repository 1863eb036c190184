"""Validation during training: held-out synthetic clips and, optionally, real slider_depth.

Synthetic: the first ``val_clips`` clips of the ``val`` split (no augmentation, so the same clips
every time) are reconstructed by :meth:`LaSeE2VPipeline.generate_clip` from their events and real
previous frame, exactly as the sampler runs at inference (EI from the peer's cached estimates when
training uses a peer, else from the previous frame), and scored
per frame with EVREAL's MSE / SSIM / LPIPS (:mod:`lase_e2v.evaluation.metrics`). A PNG grid
(rows: reference, reconstruction, per clip) is saved.

Real: :func:`lase_e2v.evaluation.protocol.evaluate_method` on slider_depth (EVREAL protocol, the
ECD cut 1.0-2.5 s by default) with the caption from the folder's ``caption.txt``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lase_e2v.atomic import atomic_path
from lase_e2v.evaluation.metrics import build_metrics, clip_unit
from lase_e2v.pipelines.lase import LaSeE2VPipeline
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


def validate_slider_depth(pipeline: LaSeE2VPipeline, config: TrainingConfig) -> dict:
    """EVREAL-protocol scores of the pipeline on slider_depth (cut ``slider_depth_cut_s``)."""
    from lase_e2v.evaluation.protocol import evaluate_method

    folder = Path(config.slider_depth_dir)
    caption_file = folder / "caption.txt"
    prompt = caption_file.read_text().strip() if config.use_text and caption_file.is_file() else ""
    saved = pipeline.options
    pipeline.options = replace(saved, prompt=prompt, num_inference_steps=config.val_inference_steps,
                               guidance_scale=config.val_guidance_scale, ei_strength=config.ei_strength)
    try:
        result = evaluate_method(pipeline, folder, cut=tuple(config.slider_depth_cut_s),
                                 num_bins=config.num_bins, metrics=METRICS, device=str(pipeline.device))
    finally:
        pipeline.options = saved
    return {name: result.means[name] for name in METRICS}
