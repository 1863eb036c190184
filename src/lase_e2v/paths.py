"""Where local data lives when the user does not say: nothing is ever downloaded.

``shared_dir()`` is the development data folder (``$LASE_SHARED``, else ``<repo>/../shared``) that
holds coco_mini, slider_depth and the peers' official weights; installed users pass paths instead.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``$LASE_SHARED`` if set, else the ``shared`` folder beside the repository checkout."""
    return Path(os.environ["LASE_SHARED"]) if os.environ.get("LASE_SHARED") else _REPO_ROOT.parent / "shared"


def default_coco_dir() -> Path:
    """The coco_mini photos + captions used to make synthetic training sequences."""
    return shared_dir() / "data" / "coco_mini"
