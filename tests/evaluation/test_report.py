"""run_benchmark / evaluate / benchmark outputs: JSON, tables, plot, videos, HTML, written atomically."""

from __future__ import annotations

import csv
import io
import json

import imageio.v2 as imageio
import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.evaluation import EvalConfig, SequenceSpec, benchmark, evaluate, run_benchmark
from lase_e2v.evaluation.tables import Table

FAST = EvalConfig(name="fast", metrics=("mse", "ssim"))


@pytest.fixture(scope="module")
def report(tmp_path_factory, synthetic_sequence, synthetic_frames, fakes):
    out_dir = tmp_path_factory.mktemp("bench") / "report"
    methods = {
        "APS": lambda: fakes["aps"](synthetic_frames),
        "Gray 0.5": lambda: fakes["constant"]((32, 32), 0.5),
    }
    sequences = [
        SequenceSpec("square", synthetic_sequence, "SYN", None, group="normal"),
        SequenceSpec("square_cut", synthetic_sequence, "SYN", (0.0, 0.025), group="dark"),
    ]
    return run_benchmark(methods, sequences, out_dir, FAST, progress=False)


def test_files_and_per_frame_json(report):
    out = report.out_dir
    for name in (
        "aggregate.json",
        "scores.md",
        "scores.csv",
        "scores.png",
        "index.html",
        "videos/SYN_square.mp4",
        "videos/SYN_square.png",
        "results/SYN/square/APS.json",
    ):
        assert (out / name).is_file(), name
    assert not (out / "_frames").exists()
    gray = json.loads((out / "results/SYN/square/Gray_0.5.json").read_text())
    assert [f["index"] for f in gray["frames"]] == [1, 2, 4, 5]
    assert gray["means"]["mse"] == pytest.approx(sum(f["mse"] for f in gray["frames"]) / 4)
    assert gray["num_windows"] == 5 and gray["cut_s"] is None


def test_aggregate_and_tables_hold_the_same_numbers(report):
    summary = json.loads((report.out_dir / "aggregate.json").read_text())
    assert summary["methods"] == ["APS", "Gray 0.5"] and summary["datasets"] == ["SYN"]
    aps, gray = summary["scores"]["APS"]["SYN"], summary["scores"]["Gray 0.5"]["SYN"]
    assert aps["mse"] == 0.0 and aps["ssim"] == pytest.approx(1.0) and aps["num_frames"] == 4 + 2
    frames = [
        f
        for s in ("square", "square_cut")
        for f in json.loads((report.out_dir / f"results/SYN/{s}/Gray_0.5.json").read_text())["frames"]
    ]
    assert gray["mse"] == pytest.approx(sum(f["mse"] for f in frames) / len(frames))
    assert summary["eval_config"]["name"] == "fast"
    by_group = summary["groups"]["Gray 0.5"]["SYN"]  # make-dataset folders: the scenes' lighting
    cut = summary["sequences"]["Gray 0.5"]["SYN"]["square_cut"]
    assert by_group["dark"]["mse"] == pytest.approx(cut["mse"])
    assert (by_group["normal"]["num_frames"], by_group["dark"]["num_frames"]) == (4, 2)

    markdown = (report.out_dir / "scores.md").read_text()
    assert markdown == str(report)
    assert "| APS | **0.0000** | **1.000** |" in markdown
    assert f"| Gray 0.5 | {gray['mse']:.4f} | {gray['ssim']:.3f} |" in markdown
    rows = list(csv.DictReader(io.StringIO((report.out_dir / "scores.csv").read_text())))
    row = next(
        r for r in rows if r["method"] == "Gray 0.5" and r["sequence"] == "ALL" and r["score"] == "ssim"
    )
    assert float(row["value"]) == gray["ssim"] and row["num_frames"] == "6"
    html = (report.out_dir / "index.html").read_text()
    assert f"{gray['mse']:.4f}" in html and "scores.png" in html and "Per group" in html
    assert "src='videos/SYN_square.mp4'" in html and "poster='videos/SYN_square.png'" in html


def test_side_by_side_video(report):
    reader = imageio.get_reader(report.out_dir / "videos/SYN_square.mp4")
    frames = [frame for frame in reader]
    reader.close()
    # 4 scored frames; tiles events | APS | Gray 0.5 | reference, 32 px wide, caption strip on top
    assert len(frames) == 4
    assert frames[0].shape == (32 + 18, 4 * 32, 3)
    reference, aps = frames[0][18:, 96:128].astype(int), frames[0][18:, 32:64].astype(int)
    assert abs(reference - aps).max() <= 12  # same image, up to H.264 loss
    assert abs(frames[0][18:, 64:96].astype(int) - 128).max() <= 6  # the 0.5 gray tile


def test_failed_run_leaves_previous_output(report, synthetic_sequence):
    before = (report.out_dir / "scores.md").read_text()

    def broken():
        raise ConfigError("no weights")

    with pytest.raises(ConfigError):
        run_benchmark(
            {"broken": broken}, [SequenceSpec("s", synthetic_sequence)], report.out_dir, FAST, progress=False
        )
    assert (report.out_dir / "scores.md").read_text() == before
    assert [p.name for p in report.out_dir.parent.iterdir()] == ["report"]


def test_cli_functions(tmp_path, synthetic_sequence, synthetic_frames, fakes):
    config = tmp_path / "fast.json"
    config.write_text(json.dumps({"metrics": ["mse"], "warmup_s": 0}))
    result = evaluate(
        fakes["constant"]((32, 32), 0.0),
        synthetic_sequence,
        tmp_path / "one",
        eval_config=config,
        videos=False,
        progress=False,
    )
    assert list(result.summary["scores"]) == ["constant"]
    assert result.summary["scores"]["constant"]["custom"]["num_frames"] == 4
    assert not (tmp_path / "one" / "videos").exists()
    html = benchmark(
        {"APS": lambda: fakes["aps"](synthetic_frames)},
        synthetic_sequence,
        tmp_path / "two",
        eval_config=config,
        videos=False,
        progress=False,
    )
    assert html == tmp_path / "two" / "index.html" and html.is_file()


def test_best_values_are_marked_per_group():
    table = Table(
        "t",
        ["name", "MSE", "SSIM"],
        [("a", [0.1, 0.5]), ("b", [0.2, 0.7]), ("c", [0.3, 0.1])],
        ["mse", "ssim"],
        groups=["x", "x", "y"],
    )
    assert table.best() == [{0}, {1}]  # group y has one row: nothing to compare
