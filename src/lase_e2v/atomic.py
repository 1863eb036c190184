"""Atomic outputs: write to a temporary sibling path, rename into place only on success.

Why: a killed run (Ctrl-C, error, crash) must never leave a half-written video, dataset or
checkpoint behind that looks complete.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lase_e2v.errors import ConfigError


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_path(destination: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``destination`` (same suffix); rename it into place on success.

    Works for files and folders. On any exception, including ``KeyboardInterrupt``, the temporary
    path is removed and ``destination`` is left as it was.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.stem}.tmp-{uuid.uuid4().hex[:8]}{destination.suffix}")
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"{temporary}: nothing was written")
        if destination.exists():
            if not overwrite:
                raise FileExistsError(f"{destination} exists")
            _remove(destination)
        os.replace(temporary, destination)
    except BaseException:
        _remove(temporary)
        raise


def check_output(destination: str | Path, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written or would replace something.

    Raises :class:`~lase_e2v.errors.ConfigError` when ``destination`` exists and ``overwrite`` is
    false, or when its nearest existing ancestor is not a folder this process may write to (the
    missing folders in between are created when the output is written).
    """
    destination = Path(destination)
    if destination.exists() and not overwrite:
        raise ConfigError(f"{destination}: exists; pass --overwrite to replace it")
    ancestor = destination.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{destination}: cannot be written, {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{destination}: cannot be written, no write permission in {ancestor}")
    return destination
