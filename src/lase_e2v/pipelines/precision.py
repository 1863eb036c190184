"""Compute precision of the neural reconstructors: ``float32`` or bfloat16 / float16 autocast.

Every neural method (LaSe-E2V and the recurrent CNNs) takes ``dtype``. ``"float32"`` is the exact
default. ``"bfloat16"`` and ``"float16"`` run the networks under :func:`torch.autocast`: weights stay
float32, convolutions and matrix products run in the lower precision, numerically sensitive ops
(norms, softmax) stay float32, and frames come back as float32 in [0, 1].

Where each pays off (measured on slider_depth, one AMD EPYC Zen 4 core, ``docs/performance.md``):
``bfloat16`` on CPUs with AVX512-BF16 or AMX and on GPUs (on the CPU LaSe-E2V about 1.7x and
FireNet 2x faster; LaSe-E2V's slider_depth scores move by less than 0.001); ``float16`` on GPUs
only (CPUs without AVX512-FP16 emulate it: FireNet 14x slower than float32 here).
"""

from __future__ import annotations

import contextlib

import torch

from lase_e2v.errors import ConfigError

#: accepted ``dtype`` names
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ConfigError(f"dtype '{dtype}' unknown; choose from {sorted(DTYPES)}")


def autocast(device: torch.device | str, dtype: str) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``'s type; a no-op for ``"float32"``."""
    check_dtype(dtype)
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[dtype])
