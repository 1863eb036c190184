"""What the benchmark scripts share: where the development data is and a disturbance-robust timer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from lase_e2v.atomic import atomic_path
from lase_e2v.paths import shared_dir

#: the development data folder, passed explicitly: $LASE_SHARED, else ../shared beside the repository
SHARED_DATA = (shared_dir() or Path(__file__).resolve().parents[2] / "shared") / "data"


def best_seconds(
    function: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Fastest of ``repeat`` runs (the machine is shared: the minimum is the least disturbed).

    ``clock=time.process_time`` measures the CPU time of the whole process instead (all its
    threads), which other jobs on the machine disturb far less than wall time; meant for code
    pinned to one thread.
    """
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        function()
        best = min(best, clock() - start)
    return best


def write_results(path: Path, report: dict) -> None:
    """Write a benchmark's JSON report atomically and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
