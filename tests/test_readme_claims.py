"""What the READMEs claim about the bundled LaSe-E2V checkpoint, pinned to one file.

``assets/lase_tiny/scores.json`` holds the checkpoint's measured slider_depth scores; both READMEs
quote them in their "(default)" row (checked here, fast), and the ``slow`` test reproduces them
within 0.002 (EVREAL protocol, one CPU thread, about 2-4 minutes). Replacing the checkpoint means
updating that JSON and the two rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lase_e2v.evaluation import evaluate
from lase_e2v.pipelines.lase import LASE_TINY_DIR

REPO = Path(__file__).resolve().parents[1]
SCORES = json.loads((LASE_TINY_DIR / "scores.json").read_text())["slider_depth"]
TOLERANCE = 0.002


def default_row(readme: Path) -> str:
    rows = [line.replace("**", "") for line in readme.read_text().splitlines()
            if line.startswith("|") and "(default)" in line]
    assert len(rows) == 1, f"{readme}: expected one table row marked (default)"
    return rows[0]


@pytest.mark.parametrize("readme", [REPO / "README.md", LASE_TINY_DIR / "README.md"],
                         ids=["README", "asset README"])
def test_readmes_quote_the_measured_scores(readme):
    quoted = f"{SCORES['mse']:.4f} / {SCORES['ssim']:.3f} / {SCORES['lpips']:.3f}"
    assert quoted in default_row(readme), f"update the (default) row of {readme} to scores.json: {quoted}"


@pytest.mark.slow
def test_bundled_checkpoint_reproduces_its_slider_depth_scores(slider_depth_dir, tmp_path):
    result = evaluate("lase", slider_depth_dir, tmp_path / "eval", dataset="ecd/slider_depth", videos=False,
                      progress=False)
    measured = result.summary["scores"]["LaSe-E2V"]["ECD"]
    assert measured["num_frames"] == SCORES["num_frames"]
    for metric in ("mse", "ssim", "lpips"):
        assert measured[metric] == pytest.approx(SCORES[metric], abs=TOLERANCE), metric
