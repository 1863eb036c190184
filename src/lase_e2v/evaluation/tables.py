"""Score tables rendered from the aggregate dict of :func:`~lase_e2v.evaluation.benchmark.aggregate`.

Three tables, like EVREAL's ``print_scores`` and the LaSe-E2V paper: image quality (methods x
dataset/metric, best per column in bold), temporal consistency with reconstruction speed, and
per-sequence scores; between the last two, where sequences carry a group (make-dataset folders: the
scenes' lighting), the scores per group. Markdown and HTML come from the same :class:`Table`; the
CSV is "long" (one row per method, dataset, sequence, score) so it loads straight into a spreadsheet
or pandas.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass
from typing import Any

IMAGE_METRICS = ("mse", "ssim", "lpips")
TEMPORAL_SCORES = ("flicker", "reference_flicker", "temporal_error", "subject_consistency", "background_consistency",
                   "frames_per_second")
#: True: lower is better, False: higher is better, None: not ranked (a property of the data)
LOWER_IS_BETTER = {
    "mse": True,
    "ssim": False,
    "lpips": True,
    "lpips_vgg": True,
    "flicker": True,
    "reference_flicker": None,
    "temporal_error": True,
    "subject_consistency": False,
    "background_consistency": False,
    "frames_per_second": False,
}
_DIGITS = {"mse": 4, "frames_per_second": 1, "num_frames": 0}
_LABELS = {
    "flicker": "flicker",
    "reference_flicker": "APS flicker",
    "temporal_error": "temporal err",
    "subject_consistency": "subject cons.",
    "background_consistency": "background cons.",
    "frames_per_second": "frames/s",
}


def label(score: str) -> str:
    """Column label with the direction arrow, e.g. ``SSIM ↑``."""
    arrow = {True: " ↓", False: " ↑", None: ""}[LOWER_IS_BETTER.get(score)]
    return _LABELS.get(score, score.upper()) + arrow


def format_value(score: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{_DIGITS.get(score, 3)}f}"


@dataclass
class Table:
    """``header`` strings; ``rows`` of (row label, values); ``scores[j]`` names column j's score.

    ``groups`` (one key per row, optional): the best value is marked among rows of the same group.
    """

    title: str
    header: list[str]
    rows: list[tuple[str, list[float | None]]]
    scores: list[str]
    groups: list[str] | None = None

    def best(self) -> list[set[int]]:
        """Per column, the row indices holding the best value of their group (none for unranked columns)."""
        groups = self.groups or [""] * len(self.rows)
        marks: list[set[int]] = []
        for j, score in enumerate(self.scores):
            direction = LOWER_IS_BETTER.get(score)
            marked: set[int] = set()
            for group in dict.fromkeys(groups):
                values = [
                    (i, v[j]) for i, (_, v) in enumerate(self.rows) if groups[i] == group and v[j] is not None
                ]
                if direction is not None and len(values) >= 2:
                    target = (min if direction else max)(v for _, v in values)
                    marked |= {i for i, v in values if v == target}
            marks.append(marked)
        return marks

    def cells(self) -> list[list[tuple[str, bool]]]:
        """Formatted cells with a best flag, row label first."""
        best = self.best()
        return [
            [(name, False)]
            + [(format_value(s, v), i in best[j]) for j, (s, v) in enumerate(zip(self.scores, values))]
            for i, (name, values) in enumerate(self.rows)
        ]

    def to_markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(self.header) - 1)) + "|",
        ]
        for row in self.cells():
            lines.append("| " + " | ".join(f"**{text}**" if bold else text for text, bold in row) + " |")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td class='best'>{html.escape(t)}</td>" if bold else f"<td>{html.escape(t)}</td>"
                for t, bold in row
            )
            + "</tr>"
            for row in self.cells()
        )
        title = f"<h3>{html.escape(self.title)}</h3>"
        return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _present(summary: dict[str, Any], candidates: tuple[str, ...]) -> list[str]:
    """The scores among ``candidates`` that some (method, dataset) has."""
    found = {k for per_method in summary["scores"].values() for d in per_method.values() for k in d}
    return [c for c in candidates if c in found]


def dataset_table(summary: dict[str, Any], scores: tuple[str, ...], title: str) -> Table:
    """Methods x (dataset, score) with each dataset's frame count in its first column header."""
    scores_found = _present(summary, scores)
    header, columns = ["Method"], []
    for dataset in summary["datasets"]:
        counts = [summary["scores"][m].get(dataset, {}).get("num_frames", 0) for m in summary["methods"]]
        for k, score in enumerate(scores_found):
            header.append(f"{dataset} ({max(counts)}) {label(score)}" if k == 0 else label(score))
            columns.append((dataset, score))
    rows = [
        (method, [summary["scores"][method].get(d, {}).get(s) for d, s in columns])
        for method in summary["methods"]
    ]
    return Table(title, header, rows, [s for _, s in columns])


#: the per-part tables: aggregate key -> (title, first column header)
PART_TABLES = {"groups": ("Per group (make-dataset folders: the scenes' lighting)", "Group / method"),
               "sequences": ("Per sequence", "Sequence / method")}


def sequence_table(summary: dict[str, Any], scores: tuple[str, ...] = IMAGE_METRICS,
                   parts: str = "sequences") -> Table:
    """Rows (dataset / sequence / method), columns the scores; ``parts="groups"``: rows (dataset /
    group / method) from the aggregate's ``groups``
    (:attr:`~lase_e2v.evaluation.datasets.SequenceSpec.group`)."""
    scores_found = _present(summary, scores)
    title, first_header = PART_TABLES[parts]
    rows, groups = [], []
    for dataset in summary["datasets"]:
        names = list(
            dict.fromkeys(s for m in summary["methods"] for s in summary[parts][m].get(dataset, {}))
        )
        for part in names:
            for method in summary["methods"]:
                values = summary[parts][method].get(dataset, {}).get(part)
                if values is not None:
                    rows.append(
                        (
                            f"{dataset} / {part} / {method}",
                            [values.get(s) for s in scores_found] + [values["num_frames"]],
                        )
                    )
                    groups.append(f"{dataset}/{part}")
    header = [first_header] + [label(s) for s in scores_found] + ["frames"]
    return Table(title, header, rows, scores_found + ["num_frames"], groups)


def tables(summary: dict[str, Any]) -> list[Table]:
    return [
        dataset_table(summary, IMAGE_METRICS, "Image quality (mean over all scored frames)"),
        dataset_table(summary, TEMPORAL_SCORES, "Temporal consistency and speed"),
        *([sequence_table(summary, IMAGE_METRICS + ("flicker",), "groups")] if "groups" in summary else []),
        sequence_table(summary),
    ]


def to_markdown(summary: dict[str, Any]) -> str:
    return "\n".join(t.to_markdown() for t in tables(summary))


def to_csv(summary: dict[str, Any]) -> str:
    """Long format: ``method,dataset,sequence,score,value,num_frames`` (sequence ``ALL`` = dataset mean)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "dataset", "sequence", "score", "value", "num_frames"])
    for method in summary["methods"]:
        for dataset in summary["datasets"]:
            groups = [("ALL", summary["scores"][method].get(dataset))]
            groups += list(summary["sequences"][method].get(dataset, {}).items())
            for sequence, values in groups:
                if values is None:
                    continue
                for score, value in values.items():
                    if score != "num_frames":
                        writer.writerow(
                            [
                                method,
                                dataset,
                                sequence,
                                score,
                                "" if value is None else repr(value),
                                values["num_frames"],
                            ]
                        )
    return buffer.getvalue()
