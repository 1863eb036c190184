"""Training LaSe-E2V: ``train(config, resume=True) -> run_dir`` (see :mod:`lase_e2v.training.loop`).

Imported lazily, so that ``lase_e2v.training.clips`` (the dataset) loads without the training stack.
"""

from __future__ import annotations

__all__ = ["TrainingConfig", "load_config", "train"]


def __getattr__(name: str):
    if name in ("TrainingConfig", "load_config"):
        from lase_e2v.training import config

        return getattr(config, name)
    if name == "train":
        from lase_e2v.training.loop import train

        return train
    raise AttributeError(f"module 'lase_e2v.training' has no attribute {name!r}")
