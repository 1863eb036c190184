"""A checkpoint of a run as a saved pipeline: the weights of the step validation chose, not only the last.

A run exports ``run_dir/pipeline`` from its last step; when ``val.csv`` (e.g. its
``synthetic_sequences`` rows) favours an earlier step, :func:`export_checkpoint` writes that step's
weights in the same form, loadable by ``load_lase_pipeline`` / ``--checkpoint``.
"""

from __future__ import annotations

from pathlib import Path

from lase_e2v.errors import CheckpointError
from lase_e2v.training.checkpoint import list_checkpoints, load_weights, read_state
from lase_e2v.training.config import load_config
from lase_e2v.training.loop import build_pipeline


def export_checkpoint(run_dir: str | Path, output: str | Path, step: int | None = None,
                      ema: bool | None = None) -> Path:
    """Write ``checkpoint-<step>`` of ``run_dir`` (the newest when ``step`` is None) to ``output``.

    Args:
        ema: export the EMA weights (``None``: as the run exports, its ``export_ema``, when it keeps
            an EMA); ``False`` the raw weights.

    The pipeline is built from the config saved in the checkpoint (so an extended U-Net, e.g. with
    estimate conditioning, has the checkpoint's shape) with the sampling options the run's own
    export gets; the output is written atomically.
    """
    run_dir = Path(run_dir)
    checkpoints = dict(list_checkpoints(run_dir))
    if not checkpoints:
        raise CheckpointError(f"{run_dir}: no checkpoint-<step> folders")
    step = max(checkpoints) if step is None else step
    if step not in checkpoints:
        raise CheckpointError(f"{run_dir}: no checkpoint-{step}; it has steps "
                              f"{', '.join(map(str, checkpoints))}")
    folder = checkpoints[step]
    config = load_config(read_state(folder)["config"])
    has_ema = (folder / "ema").is_dir()
    use_ema = (config.export_ema and has_ema) if ema is None else ema
    if use_ema and not has_ema:
        raise CheckpointError(f"{folder}: holds no EMA weights (ema_decay 0); export the raw ones")
    pipeline = build_pipeline(config)
    for name in ("event_encoder", "unet"):
        load_weights(getattr(pipeline, name), folder / "ema" / name if use_ema else folder / name)
    pipeline.save_pretrained(output)
    return Path(output)
