"""Compute precision of the neural reconstructors: ``float32``, bfloat16 / float16 autocast, or ``auto``.

Every neural method (LaSe-E2V and the recurrent CNNs) takes ``dtype``. ``"float32"`` is the exact
default. ``"bfloat16"`` and ``"float16"`` run the networks under :func:`torch.autocast`: weights stay
float32, convolutions and matrix products run in the lower precision, numerically sensitive ops
(norms, softmax) stay float32, and frames come back as float32 in [0, 1]. ``"auto"`` picks bfloat16
where the hardware computes it natively (:func:`native_bfloat16`) and float32 elsewhere; the bundled
LaSe-E2V recommends it (its ``sampling.json``).

Where each pays off (measured on slider_depth, one AMD EPYC Zen 4 core, ``docs/performance.md``):
``bfloat16`` on CPUs with AVX512-BF16 or AMX and on GPUs (on the CPU LaSe-E2V about 1.4x and
FireNet 2x faster; LaSe-E2V's slider_depth scores move by less than 0.002); ``float16`` on GPUs
only (CPUs without AVX512-FP16 emulate it: FireNet 14x slower than float32 here). CPUs without
native bfloat16 emulate it too, hence ``"auto"`` rather than bfloat16 everywhere.
"""

from __future__ import annotations

import contextlib

import torch

from lase_e2v.errors import ConfigError

#: accepted ``dtype`` names besides ``"auto"``
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def check_dtype(dtype: str) -> None:
    if dtype != "auto" and dtype not in DTYPES:
        raise ConfigError(f"dtype '{dtype}' unknown; choose from {['auto', *sorted(DTYPES)]}")


def native_bfloat16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX-BF16 (what oneDNN's bfloat16 kernels need to be faster than float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        capabilities = torch.cpu.get_capabilities()
        return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    return False


def resolve_dtype(device: torch.device | str, dtype: str) -> str:
    """``dtype`` itself, or for ``"auto"`` ``"bfloat16"`` where :func:`native_bfloat16` else ``"float32"``."""
    check_dtype(dtype)
    if dtype != "auto":
        return dtype
    return "bfloat16" if native_bfloat16(device) else "float32"


def autocast(device: torch.device | str, dtype: str) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` (resolved, :func:`resolve_dtype`) on ``device``'s type; a no-op for float32."""
    dtype = resolve_dtype(device, dtype)
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[dtype])
