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
