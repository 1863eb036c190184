"""Shared test fixtures: where ../shared lives and the real slider_depth sequence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores shared by pytest and BLAS: one intra-op thread avoids oversubscription and is faster here.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LASE_SHARED", REPO_ROOT.parent / "shared"))
SLIDER_DEPTH = SHARED / "data" / "ecd_slider_depth"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("LASE_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: set LASE_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED}; set LASE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def slider_depth_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "ecd_slider_depth"
