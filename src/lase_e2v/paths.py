"""Where local data lives when the user passes no path: an explicit environment variable, never a
guess from where the code happens to be installed.

``$LASE_SHARED`` names a data folder laid out like the development ``shared/`` folder
(``data/coco_mini`` for ``make-dataset``). Weights never come from here: they are bundled in the
package or passed as a path (see :mod:`lase_e2v.pipelines.baselines`).
"""

from __future__ import annotations

import os
from pathlib import Path

from lase_e2v.errors import ConfigError

#: environment variable naming the shared data folder
SHARED_ENV = "LASE_SHARED"


def shared_dir() -> Path | None:
    """``$LASE_SHARED`` if set, else ``None``."""
    value = os.environ.get(SHARED_ENV)
    return Path(value) if value else None


def default_coco_dir() -> Path:
    """The coco_mini photos + captions used to make synthetic training sequences: ``$LASE_SHARED/data/coco_mini``."""
    shared = shared_dir()
    if shared is None:
        raise ConfigError(f"no photo folder given: pass coco_dir (--coco-dir) or set {SHARED_ENV}")
    return shared / "data" / "coco_mini"
