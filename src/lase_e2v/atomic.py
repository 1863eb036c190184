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
