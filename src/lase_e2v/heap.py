"""Keep the memory of freed tensors in the process's heap (glibc), so large CPU tensors are not
mapped afresh by the kernel on every operation; and give free pages back on request.

Why: glibc's ``malloc`` serves every block above its mmap threshold (128 KiB at start, adapting up to
32 MiB) with a fresh ``mmap`` and gives it back to the kernel on ``free``. A CPU forward pass
allocates and frees tensors of tens to hundreds of MB per layer from 640x480 up, so each layer pays
the kernel again for zeroing and faulting in fresh pages. At 1280x720 that was half of CISTA-TC's
time (16.3 against 8.3 CPU s a frame on one core) and made the default LaSe-E2V 1.8x slower on both
cores (0.057 against 0.102 frames/s, ``benchmarks/resolution.py --heap retain system``). Raising the
mmap and trim thresholds keeps those blocks in the heap, where the next layer reuses them: the
effect PyTorch's CPU performance guide gets from jemalloc or tcmalloc through ``LD_PRELOAD``,
without a second allocator. Results are bit for bit the same (tested); the cost is peak resident
memory (the heap keeps freed blocks, and some fragmentation: for the default LaSe-E2V at 1280x720
+0.4 GB on one thread, +1.0 GB on two), which stays bounded, as the same blocks are reused frame
after frame.

The command line calls :func:`retain_freed_memory` before every command; an API user calls it once
(it changes the whole process, so the library never does it on import). ``LASE_MALLOC=system``
leaves the allocator alone, as does any of glibc's own malloc variables set by the user (their
setting wins). Without glibc (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

from lase_e2v.errors import ConfigError

#: the switch: ``retain`` (the default) or ``system`` (glibc's own adaptive thresholds)
VARIABLE = "LASE_MALLOC"
CHOICES = ("retain", "system")
#: glibc's own settings of these thresholds: when the user set one, theirs wins
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
GLIBC_TUNABLE = "glibc.malloc."
#: ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: the largest value ``mallopt``'s ``int`` takes: every tensor lives in the heap, none is trimmed
LARGEST = 2**31 - 1


def glibc_function(name: str) -> Callable[..., int] | None:
    """The C library's function ``name`` (``mallopt``, ``malloc_trim``), or ``None`` where it has none."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (AttributeError, OSError, TypeError):  # not glibc (macOS, Windows)
        return None


def heap_choice() -> str:
    """``$LASE_MALLOC`` (default ``retain``); anything else is a :class:`ConfigError`."""
    choice = os.environ.get(VARIABLE, "retain").strip().lower() or "retain"
    if choice not in CHOICES:
        raise ConfigError(f"{VARIABLE} must be one of {', '.join(CHOICES)}, not {os.environ[VARIABLE]!r}")
    return choice


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds so freed blocks stay in the heap for reuse.

    Returns whether the allocator was changed: not with ``LASE_MALLOC=system``, not when the user set
    glibc's own malloc variables, not without glibc (musl's ``mallopt`` refuses). Calling it again
    does no harm. :func:`malloc_trim` still gives free pages back when asked (the HDF5 writer does,
    once a second).
    """
    user_set = any(name in os.environ for name in GLIBC_VARIABLES) or GLIBC_TUNABLE in os.environ.get(
        "GLIBC_TUNABLES", "")
    if heap_choice() == "system" or user_set:
        return False
    mallopt = glibc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, LARGEST)) and bool(
        mallopt(M_TRIM_THRESHOLD, LARGEST))


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim(pad)``, or ``None`` where the C library has none."""
    return glibc_function("malloc_trim")
