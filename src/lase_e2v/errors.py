"""Exceptions raised at the library's boundaries.

Every error a user can cause (bad file, bad data, bad config, wrong checkpoint) is a
:class:`LaseError` with a one-line message that names the thing and what was expected, so the
CLI can print it and exit with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class LaseError(Exception):
    """Base class of every error the user can cause and fix."""


class EventFormatError(LaseError):
    """A file is missing, of an unknown format, truncated or corrupt."""


class EventDataError(LaseError):
    """Event data is invalid: unsorted or negative timestamps, coordinates outside the sensor, empty windows."""


class ConfigError(LaseError):
    """A configuration value or command-line option is invalid."""


class CheckpointError(LaseError):
    """A checkpoint is missing, of the wrong architecture, or has missing/unexpected weights."""


#: longest quoted input in an error message, in characters of its ``repr``
QUOTE_LIMIT = 40


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters (``...`` marks a cut): how error messages quote input.

    Why: input from a file or the command line can hold control characters, newlines or megabytes;
    ``repr`` escapes them, so the message stays on one readable line.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
