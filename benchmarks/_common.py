"""What the benchmark scripts share: where the development data is, a disturbance-robust timer, the
peak memory of a process, and the JSON report."""

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


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it was started (``VmHWM`` of /proc/self/status, Linux).

    Not ``ru_maxrss``: Linux keeps that across ``exec`` from the ``fork`` before it, so a worker
    started by a 600 MB parent reports at least the parent's resident size, whatever it used itself.
    """
    with open("/proc/self/status") as status:
        kilobytes = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    return int(kilobytes) * 1024


def write_results(path: Path, report: dict) -> None:
    """Write a benchmark's JSON report atomically and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
