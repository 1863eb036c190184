"""Benchmark report: bar chart, side-by-side videos and one HTML page showing tables, plot and videos.

Everything is written inside the benchmark's (temporary) output folder and linked relatively, so
the folder can be moved or served as is. The HTML needs no script or network.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lase_e2v.evaluation.layout import load_kept_frames
from lase_e2v.evaluation.tables import IMAGE_METRICS, label, tables, to_csv, to_markdown
from lase_e2v.events.representations import polarity_image_rgb
from lase_e2v.pipelines.writers import real_time_fps, to_uint8, write_video

_PLOTTED = IMAGE_METRICS + ("temporal_error",)


def plot_scores(summary: dict[str, Any], path: Path) -> Path:
    """Grouped bars: one panel per score, datasets on the x axis, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [s for s in _PLOTTED if any(s in d for m in summary["scores"].values() for d in m.values())]
    methods, datasets = summary["methods"], summary["datasets"]
    figure, axes = plt.subplots(1, len(scores), figsize=(3.2 * len(scores) + 1, 3.4), squeeze=False)
    width = 0.8 / len(methods)
    positions = np.arange(len(datasets))
    for axis, score in zip(axes[0], scores):
        for k, method in enumerate(methods):
            values = [summary["scores"][method].get(d, {}).get(score) for d in datasets]
            values = [np.nan if v is None else v for v in values]
            axis.bar(positions + (k - (len(methods) - 1) / 2) * width, values, width, label=method)
        axis.set_xticks(positions, datasets)
        axis.set_title(label(score))
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def caption_strip(width: int, text: str) -> np.ndarray:
    """A ``(18, width, 3)`` white strip with ``text`` in PIL's built-in font."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (width, 18), "white")
    ImageDraw.Draw(strip).text((4, 3), text, fill="black")
    return np.asarray(strip, np.float32) / 255.0


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 gray ``(H, W)`` or RGB ``(H, W, 3)`` image as float RGB ``(H, W, 3)`` in [0, 1]."""
    image = np.asarray(image, dtype=np.float32) / 255.0
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def write_side_by_side(
    frames_dir: Path, methods: Sequence[str], path: Path, fps: float | None = None
) -> Path:
    """mp4 of events | each method | reference, from the uint8 arrays the benchmark parked in ``frames_dir``,
    plus a PNG still of its middle frame next to it. Only frames every method kept are shown; ``fps``
    defaults to the APS frame rate.
    """
    kept = load_kept_frames(frames_dir, list(methods))
    indices, references, events, predictions = kept.indices, kept.references, kept.event_signs, kept.predictions
    common = [i for i, index in enumerate(indices) if all(index in done for done, _ in predictions.values())]
    lookup = {m: {int(index): j for j, index in enumerate(done)} for m, (done, _) in predictions.items()}
    if fps is None:
        fps = real_time_fps(kept.t_us)
    width = references.shape[2]
    names = ["events", *predictions, "reference"]
    captions = np.concatenate([caption_strip(width, n) for n in names], axis=1)

    def compose(i: int) -> np.ndarray:
        tiles = [polarity_image_rgb(events[i], saturation=1.0)]
        for method, (_, stack) in predictions.items():
            tiles.append(as_rgb(stack[lookup[method][int(indices[i])]]))
        tiles.append(as_rgb(references[i]))
        return np.concatenate([captions, np.concatenate(tiles, axis=1)], axis=0)

    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, (compose(i) for i in common), fps=fps)
    if common:  # a still of the middle frame: the page's poster, visible without a video decoder
        from PIL import Image

        Image.fromarray(to_uint8(compose(common[len(common) // 2]))).save(path.with_suffix(".png"))
    return path


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.best { font-weight: bold; background: #e8f4e8; }
video, img { max-width: 100%; }
.note { color: #666; font-size: 0.85em; }
"""


def render_html(summary: dict[str, Any], plot: str | None, videos: Sequence[tuple[str, str]]) -> str:
    """The report page: protocol line, tables, bar chart, videos (paths relative to the page)."""
    config = summary.get("eval_config", {})
    protocol = "; ".join(
        f"{k} = {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in config.items()
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>lase-e2v benchmark</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>lase-e2v benchmark</h1>",
        (
            f"<p class='note'>Protocol: {html.escape(protocol)}. Generated "
            f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. Bold: best per column. "
            "Scores are means over all scored frames; data: <a href='aggregate.json'>aggregate.json</a>, "
            "<a href='scores.csv'>scores.csv</a>.</p>"
        ),
    ]
    parts += [table.to_html() for table in tables(summary)]
    if plot:
        parts.append(f"<h3>Scores</h3><img src='{html.escape(plot)}' alt='bar chart of the scores'>")
    for title, video in videos:
        parts.append(
            f"<h3>{html.escape(title)}</h3><p class='note'>events | "
            f"{html.escape(' | '.join(summary['methods']))} | reference</p>"
            f"<video controls loop muted poster='{html.escape(str(Path(video).with_suffix('.png')))}' "
            f"src='{html.escape(video)}'></video>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(folder: Path, summary: dict[str, Any], videos: Sequence[tuple[str, str]] = ()) -> str:
    """Write ``scores.md``, ``scores.csv``, ``scores.png`` and ``index.html`` into ``folder``.

    Returns the Markdown tables.
    """
    markdown = to_markdown(summary)
    (folder / "scores.md").write_text(markdown)
    (folder / "scores.csv").write_text(to_csv(summary))
    plot = plot_scores(summary, folder / "scores.png").name
    (folder / "index.html").write_text(render_html(summary, plot, videos))
    return markdown
