"""Run by ``test_scale_out.py`` under ``torchrun``: train with a config and record, per process, the
train clips it drew, the sequences whose latents it cached and a digest of its trained weights after
every optimizer step.

``python record_training.py CONFIG RECORD_DIR`` writes ``RECORD_DIR/rank<RANK>.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from lase_e2v.training import clips, load_config, loop, train


def digest(module: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer, by name."""
    return weights_digest(module.state_dict())


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    """sha256 of named tensors, in name order."""
    hasher = hashlib.sha256()
    for key, value in sorted(weights.items()):
        hasher.update(key.encode())
        hasher.update(value.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def main(config_path: str, record_dir: str) -> None:
    torch.set_num_threads(1)
    seen: list[int] = []
    digests: list[str] = []
    cached: list[str] = []
    original_item, original_update = clips.SyntheticClipDataset.__getitem__, loop.update_ema
    original_cache = loop.cache_latents

    def recording_item(self, index):
        if self.split == "train":
            seen.append(int(index))
        return original_item(self, index)

    def recording_update(ema, model, decay):  # called once per optimizer step, after it
        digests.append(digest(model))
        return original_update(ema, model, decay)

    def recording_cache(data_dir, autoencoder, sequences, *args, **kwargs):
        cached.extend(sequence["file"] for sequence in sequences)
        return original_cache(data_dir, autoencoder, sequences, *args, **kwargs)

    clips.SyntheticClipDataset.__getitem__ = recording_item
    loop.update_ema = recording_update
    loop.cache_latents = recording_cache
    train(load_config(config_path))
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    record = {"rank": rank, "world_size": world_size, "clips": seen, "digests": digests, "cached": cached}
    (Path(record_dir) / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:])
