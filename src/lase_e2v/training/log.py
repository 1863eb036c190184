"""Training logs: ``log.csv`` (one row per ``log_every`` steps), ``val.csv`` and ``loss.png``.

Rows are appended as they come, so a killed run keeps its log; on resume, rows past the
checkpoint's step are dropped first (they will be trained, and logged, again).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from lase_e2v.atomic import atomic_path


class CsvLog:
    """Append-only CSV with a fixed header; ``truncate(step)`` drops rows with a larger ``step``."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = path, columns

    def rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def truncate(self, step: int) -> None:
        kept = [row for row in self.rows() if int(row["step"]) <= step]
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(kept)

    def append(self, row: dict) -> None:
        new = not self.path.is_file()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            if new:
                writer.writeheader()
            writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in row.items()})


def plot_losses(log: CsvLog, terms: Sequence[str], path: Path) -> None:
    """The loss ``terms`` (columns of ``log``) against steps (log scale) -> PNG."""
    rows = log.rows()
    if not rows:
        return
    figure, axis = plt.subplots(figsize=(6, 4))
    steps = [int(row["step"]) for row in rows]
    for column in terms:
        values = [float(row.get(column) or 0) for row in rows]  # a run resumed from before a column has none
        if any(v > 0 for v in values):
            axis.plot(steps, values, label=column)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
