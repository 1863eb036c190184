"""Reading the small JSON files users write (configs, benchmark definitions) with one clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lase_e2v.errors import ConfigError


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; a missing file, bad JSON or a non-object raise one
    :class:`ConfigError` naming the file and ``what`` it should have been."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {what} is not valid JSON ({error})") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a {what} must be a JSON object")
    return content
