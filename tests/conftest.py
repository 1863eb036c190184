"""Shared test fixtures: where ../shared lives and the real slider_depth sequence."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lase_e2v.events.formats import write_events
from lase_e2v.events.streams import EventStream, Frames

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


SYNTHETIC_FRAME_T_US = np.array([0, 10_000, 20_000, 30_000, 40_000, 50_000])


def synthetic_recording() -> tuple[EventStream, Frames]:
    """32x32 sensor, 6 frames 10 ms apart, a bright square moving 2 px per frame.

    Events fire only in columns 0..15; in the window ending at frame 3 (30 ms) the last event is at
    27 ms, 3 ms before the frame, so the 1 ms timestamp tolerance leaves that frame unscored.
    """
    rng = np.random.default_rng(0)
    images = np.full((6, 32, 32), 40, np.uint8)
    for k in range(6):
        images[k, 8:20, 2 + 2 * k : 14 + 2 * k] = 200
    ts, xs, ys = [], [], []
    for k in range(5):
        start = k * 10_000
        end = start + (7_000 if k == 2 else 9_950)
        n = 50
        ts.append(np.sort(rng.integers(start, end, n)))
        xs.append(rng.integers(0, 16, n))
        ys.append(rng.integers(0, 32, n))
    t = np.concatenate(ts)
    events = EventStream(
        np.concatenate(xs), np.concatenate(ys), t, np.where(np.arange(len(t)) % 2, 1, -1), (32, 32)
    )
    return events, Frames(images, SYNTHETIC_FRAME_T_US.copy())


@pytest.fixture(scope="session")
def synthetic_sequence(tmp_path_factory) -> Path:
    """The synthetic recording written as an HQF-layout HDF5 file."""
    events, frames = synthetic_recording()
    path = tmp_path_factory.mktemp("synthetic") / "moving_square.h5"
    write_events(path, events, frames)
    return path


@pytest.fixture(scope="session")
def synthetic_frames() -> Frames:
    return synthetic_recording()[1]


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*args)`` runs ``lase-e2v`` in this process: ``(exit code, stdout, stderr)``."""
    from lase_e2v.cli import main

    def run(*args) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def cli_error(run_cli):
    """``cli_error(*args)``: the one ``error:`` line of a command that must fail with exit status 2
    and no traceback."""

    def error_line(*args) -> str:
        code, _, err = run_cli(*args)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and "Traceback" not in err and len(errors) == 1, err
        return errors[0]

    return error_line


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
