"""A checkpoint of a run as a saved pipeline: the weights of the step validation chose, not only the last,
or the average of several runs' weights (a model soup).

A run exports ``run_dir/pipeline`` from its last step; when ``val.csv`` (e.g. its
``synthetic_sequences`` rows) favours an earlier step, :func:`export_checkpoint` writes that step's
weights in the same form, loadable by ``load_lase_pipeline`` / ``--checkpoint``.

Several runs fine-tuned from one starting point with different seeds (or data orders) land in one
basin of the loss; the tensor-wise mean of their weights (a "uniform soup", Wortsman et al., ICML 2022)
costs nothing at inference and is usually at least as good as its best ingredient, where
averaging their *outputs* would multiply the sampling time. :func:`export_checkpoint` writes that mean
when given several runs; whether it helps is for a validation set to say.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from lase_e2v.errors import CheckpointError
from lase_e2v.training.checkpoint import (TRAINED_MODULES, list_checkpoints, load_state_dict, read_state,
                                            read_weights)
from lase_e2v.training.config import TrainingConfig, load_config
from lase_e2v.training.loop import build_pipeline, save_run_pipeline

#: run-config fields that choose frozen modules the trained ones were fitted to (not in their configs)
FROZEN_FIELDS = ("autoencoder", "text_encoder")


def export_checkpoint(run_dirs: str | Path | Sequence[str | Path], output: str | Path, step: int | None = None,
                      ema: bool | None = None) -> Path:
    """Write ``checkpoint-<step>`` of a run (the newest when ``step`` is None) to ``output``; given
    several runs, write the tensor-wise mean of their checkpoints' weights (the same ``step`` in each).

    Args:
        ema: export the EMA weights (``None``: as each run exports, its ``export_ema``, when it keeps
            an EMA); ``False`` the raw weights.

    The pipeline is built from the config saved in the (first run's) checkpoint, so an extended U-Net,
    e.g. with estimate conditioning, has the checkpoint's shape, with the sampling options (and
    ``sampling.json``) that run's own export gets. Runs are averaged only when they build the same
    model (module configs, frozen autoencoder and text encoder); the output is written atomically.
    """
    runs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(run) for run in run_dirs]
    chosen = [_chosen_weights(run, step, ema) for run in runs]
    first_model = _model(*chosen[0])
    for run, weights in zip(runs[1:], chosen[1:]):
        # weights of different models have no meaningful mean, even where their shapes agree
        # (e.g. epsilon- and v-prediction U-Nets)
        differing = [key for key, value in _model(*weights).items() if value != first_model[key]]
        if differing:
            raise CheckpointError(f"{run}: not the model of {runs[0]} ({', '.join(differing)} differ); "
                                  "only runs of one model can be averaged")
    config, first_folder = chosen[0]
    pipeline = build_pipeline(config)
    for name in TRAINED_MODULES:
        weights = _mean([folder / name for _, folder in chosen])
        load_state_dict(getattr(pipeline, name), weights, first_folder / name)
    save_run_pipeline(pipeline, config, Path(output))
    return Path(output)


def _chosen_weights(run_dir: Path, step: int | None, ema: bool | None) -> tuple[TrainingConfig, Path]:
    """The run's config and the folder holding the chosen step's raw or EMA module folders."""
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
    return config, folder / "ema" if use_ema else folder


def _model(config: TrainingConfig, folder: Path) -> dict:
    """What makes a checkpoint's model: its trained modules' configs and the frozen modules it was fitted to."""
    try:
        modules = {name: json.loads((folder / name / "config.json").read_text()) for name in TRAINED_MODULES}
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{folder}: a module's config.json is missing or unreadable ({error})") from None
    for module_config in modules.values():
        module_config.pop("_diffusers_version", None)
    return {**modules, **{field: getattr(config, field) for field in FROZEN_FIELDS}}


def _mean(folders: list[Path]) -> dict[str, torch.Tensor]:
    """Tensor-wise mean of the modules' weights in ``folders`` (non-float tensors: the first's)."""
    state_dicts = [read_weights(folder) for folder in folders]
    first = state_dicts[0]
    if len(state_dicts) == 1:
        return first
    return {key: torch.stack([weights[key].float() for weights in state_dicts]).mean(0).to(value.dtype)
            if value.is_floating_point() else value for key, value in first.items()}
