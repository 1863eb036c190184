"""fp16 training resumes exactly: the gradient scaler's state is saved and restored (CPU-emulated)."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from lase_e2v.training import load_config, loop, train
from lase_e2v.training.checkpoint import TrainingState, load_checkpoint, save_checkpoint


def scaler_state(scaler: torch.amp.GradScaler) -> dict:
    return {key: float(value) for key, value in scaler.state_dict().items()}


def test_grad_scaler_state_round_trip(tmp_path):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)
    for _ in range(3):  # grows the scale to 2**13 and moves the growth tracker
        scaler.scale(model(torch.ones(1, 2)).sum()).backward()
        scaler.step(optimizer)
        scaler.update()
    folder = save_checkpoint(tmp_path, TrainingState(step=3), {}, None, optimizer, [], "{}", grad_scaler=scaler)
    fresh = torch.amp.GradScaler("cpu", growth_interval=1)
    load_checkpoint(folder, {}, None, torch.optim.SGD(model.parameters(), lr=0.1), grad_scaler=fresh)
    assert scaler_state(fresh) == scaler_state(scaler)
    assert fresh.get_scale() == 2.0**13


class EmulatedFp16Accelerator(Accelerator):
    """An accelerator with fp16's gradient scaler on the CPU (real fp16 training needs CUDA)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)


def test_resumed_fp16_run_continues_with_the_saved_scale(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "Accelerator", EmulatedFp16Accelerator)
    values = {"data_dir": str(data_dir), "crop": [32, 32], "clip_frames": 2, "batch_size": 1, "max_steps": 3,
              "warmup_steps": 1, "checkpoint_every": 1, "keep_checkpoints": 3, "log_every": 1,
              "validate_every": 0, "val_clips": 1, "val_inference_steps": 1}
    train(load_config(values, run_dir=str(tmp_path / "straight")))

    original, calls = loop.compute_losses, {"count": 0}

    def dies_at_step_three(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "compute_losses", dies_at_step_three)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(values, run_dir=str(tmp_path / "resumed")))
    monkeypatch.setattr(loop, "compute_losses", original)
    train(load_config(values, run_dir=str(tmp_path / "resumed")))

    def saved(run: str) -> dict:
        return torch.load(tmp_path / run / "checkpoint-3" / "grad_scaler.pt", weights_only=True)

    assert saved("straight")["scale"] == 2.0**13  # three finite steps, doubling each time
    assert saved("resumed") == saved("straight")
