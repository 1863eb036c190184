"""What the benchmark scripts share: where the development data is and a disturbance-robust timer."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lase_e2v.paths import shared_dir

#: the development data folder, passed explicitly: $LASE_SHARED, else ../shared beside the repository
SHARED_DATA = (shared_dir() or Path(__file__).resolve().parents[2] / "shared") / "data"


def best_seconds(function: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` runs (the machine is shared: the minimum is the least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
