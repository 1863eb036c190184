"""Checkpoints that resume exactly: ``run_dir/checkpoint-<step>/``, written atomically.

Layout (models in ``save_pretrained`` format, the rest readable with ``torch.load(weights_only=True)``)::

    checkpoint-<step>/
      event_encoder/, unet/          config.json + diffusion_pytorch_model.safetensors (raw weights)
      ema/event_encoder/, ema/unet/  the same for the EMA weights (when ema_decay > 0)
      optimizer.pt                   AdamW state (and grad_scaler.pt with fp16)
      rng_state_<rank>.pt            Python / numpy / torch / CUDA generators of every process
      training_state.json            step, EMA step, training seconds, config

The folder is built under a temporary name and renamed when complete
(:func:`lase_e2v.atomic.atomic_path`), so a run killed at any moment leaves either the whole
checkpoint or none. The learning rate is a function of the step and the data order a function of
the sample count (:mod:`.state`), so neither needs saving.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import CheckpointError
from lase_e2v.training.state import rng_state_file

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
STATE_FILE = "training_state.json"
#: what ``STATE_FILE`` holds
STATE_KEYS = ("step", "ema_step", "elapsed_s", "config")
#: the pipeline's trained modules, each saved in ``<name>/`` (raw) and ``ema/<name>/``
TRAINED_MODULES = ("event_encoder", "unet")


@dataclass
class TrainingState:
    """What the loop needs besides tensors: optimizer steps done, the EMA's step count, training seconds."""

    step: int = 0
    ema_step: int = 0
    elapsed_s: float = 0.0


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first (temporary folders never match the pattern)."""
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return sorted(found)


def save_checkpoint(
    run_dir: Path,
    state: TrainingState,
    modules: dict[str, torch.nn.Module],
    ema_modules: dict[str, torch.nn.Module] | None,
    optimizer: torch.optim.Optimizer,
    rng_states: list[dict],
    config_json: str,
    grad_scaler=None,
    keep: int = 2,
) -> Path:
    """Write ``checkpoint-<step>`` (main process only) and delete all but the ``keep`` newest."""
    destination = run_dir / f"checkpoint-{state.step}"
    with atomic_path(destination) as folder:
        folder.mkdir()
        for name, module in modules.items():
            module.save_pretrained(folder / name)
        for name, module in (ema_modules or {}).items():
            module.save_pretrained(folder / "ema" / name)
        torch.save(optimizer.state_dict(), folder / "optimizer.pt")
        if grad_scaler is not None:
            torch.save(grad_scaler.state_dict(), folder / "grad_scaler.pt")
        for rank, rng_state in enumerate(rng_states):
            torch.save(rng_state, rng_state_file(folder, rank))
        state_values = {"step": state.step, "ema_step": state.ema_step, "elapsed_s": state.elapsed_s,
                        "config": json.loads(config_json)}
        (folder / STATE_FILE).write_text(json.dumps(state_values, indent=2, sort_keys=True) + "\n")
    for _, old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return destination


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """``folder/diffusion_pytorch_model.safetensors`` as a state dict."""
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS_NAME}")
    return load_file(weights)


def load_weights(module: torch.nn.Module, folder: Path) -> None:
    """Copy ``folder/diffusion_pytorch_model.safetensors`` into ``module`` (strict: every key must match)."""
    load_state_dict(module, read_weights(folder), folder)


def load_state_dict(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: Path) -> None:
    """Copy ``state_dict`` (read from ``source``) into ``module``; every key must match."""
    missing, unexpected = module.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not match the model (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}); was the config changed?")


def read_state(folder: Path) -> dict:
    """A checkpoint's ``training_state.json``: step, EMA step, training seconds and the run's config
    (the :data:`STATE_KEYS` that :func:`save_checkpoint` writes, all required)."""
    try:
        values = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{folder}: not a training checkpoint ({STATE_FILE} unreadable)") from error
    missing = [key for key in STATE_KEYS if key not in values] if isinstance(values, dict) else list(STATE_KEYS)
    if missing:
        raise CheckpointError(f"{folder}: {STATE_FILE} lacks {', '.join(missing)}")
    return values


def load_checkpoint(
    folder: Path,
    modules: dict[str, torch.nn.Module],
    ema_modules: dict[str, torch.nn.Module] | None,
    optimizer: torch.optim.Optimizer,
    grad_scaler=None,
) -> tuple[TrainingState, Path]:
    """Load weights and optimizer state in place; returns the state and where the RNG files are."""
    values = read_state(folder)
    for name, module in modules.items():
        load_weights(module, folder / name)
    for name, module in (ema_modules or {}).items():
        load_weights(module, folder / "ema" / name)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True))
    if grad_scaler is not None and (folder / "grad_scaler.pt").is_file():
        grad_scaler.load_state_dict(torch.load(folder / "grad_scaler.pt", weights_only=True))
    state = TrainingState(step=values["step"], ema_step=values["ema_step"], elapsed_s=values["elapsed_s"])
    return state, folder
