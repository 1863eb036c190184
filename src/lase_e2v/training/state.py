"""What makes a resumed run continue exactly: the data order and the random number generators.

Data order is a pure function of ``(seed, sample number)`` (:class:`ClipSampler`), so a resumed run
starts its sampler at the number of samples already consumed instead of replaying a DataLoader.
The RNG states of Python, numpy and torch (CPU and CUDA) of every process are saved as plain
tensors (``torch.load(weights_only=True)`` reads them back; no pickle of arbitrary objects).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Sampler


class ClipSampler(Sampler[int]):
    """Endless, seeded, resumable sample order for one process.

    The global sample stream is epoch after epoch of permutations: sample ``s`` is
    ``permutation(seed + s // size)[s % size]``. Each micro-step consumes ``batch_size * world_size``
    samples; process ``rank`` takes its ``batch_size`` consecutive ones. ``start_micro_step`` skips
    what an earlier run already consumed, without loading anything. With ``weights`` (one per sample,
    any positive scale) an epoch is ``size`` draws with replacement in proportion to them instead of
    a permutation, seeded the same way, so a weighted run resumes as exactly.
    """

    def __init__(self, size: int, batch_size: int, seed: int, start_micro_step: int = 0,
                 rank: int = 0, world_size: int = 1, weights: torch.Tensor | None = None) -> None:
        if weights is not None and (weights.shape != (size,) or not bool((weights >= 0).all())
                                    or not float(weights.sum()) > 0):
            raise ValueError(f"weights must be {size} non-negative values with a positive sum")
        self.size, self.batch_size, self.seed, self.weights = size, batch_size, seed, weights
        self.start_micro_step, self.rank, self.world_size = start_micro_step, rank, world_size

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights.double(), self.size, replacement=True, generator=generator)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[int]:
        micro_step = self.start_micro_step
        epoch, permutation = -1, None
        while True:
            first = (micro_step * self.world_size + self.rank) * self.batch_size
            for sample in range(first, first + self.batch_size):
                if sample // self.size != epoch:
                    epoch = sample // self.size
                    permutation = self._permutation(epoch)
                yield int(permutation[sample % self.size])
            micro_step += 1


def capture_rng_state() -> dict[str, torch.Tensor | int | float | str | list]:
    """This process's Python, numpy, torch (and CUDA) generator states as tensors and plain values."""
    python_version, python_state, python_gauss = random.getstate()
    numpy_name, numpy_keys, numpy_pos, numpy_has_gauss, numpy_gauss = np.random.get_state()
    state = {
        "python_version": python_version,
        "python_state": torch.tensor(python_state, dtype=torch.int64),
        "python_gauss": python_gauss if python_gauss is not None else "none",
        "numpy_name": numpy_name,
        "numpy_keys": torch.from_numpy(numpy_keys.astype(np.int64)),
        "numpy_pos": int(numpy_pos),
        "numpy_has_gauss": int(numpy_has_gauss),
        "numpy_gauss": float(numpy_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    gauss = None if state["python_gauss"] == "none" else state["python_gauss"]
    random.setstate((state["python_version"], tuple(state["python_state"].tolist()), gauss))
    np.random.set_state((state["numpy_name"], state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rng_state_file(checkpoint_dir: Path, rank: int) -> Path:
    return checkpoint_dir / f"rng_state_{rank}.pt"
