"""Exceptions raised by ecad-hub.

Every error a user can cause by passing bad input is an :class:`EcadError` subclass with a
one-line, specific message, so that the CLI can print it and exit with status 1, and API
users can catch exactly what they expect::

    >>> from ecad_hub import CacheSchedule, ScheduleError
    >>> try:
    ...     CacheSchedule.load("broken.json")
    ... except ScheduleError as err:
    ...     print(err)
    broken.json: not valid JSON (line 3, column 5: Expecting ',' delimiter)
"""

from __future__ import annotations

import re

#: Characters that would break a one-line message or drive a terminal: C0/C1 controls and DEL, line
#: and paragraph separators, and the bidirectional overrides/isolates (text that reads differently
#: than it is stored).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def escape_control(text: object) -> str:
    """``text`` with every control character escaped (``\\n``, ``\\x1b``, ``\\u2028``): safe to print on one line.

    Every :class:`EcadError` message goes through it, and so does anything ecad-hub prints that
    came from a file or a repo (names, base models, warnings)::

        >>> escape_control("evil\\n\\x1b[31mred")
        'evil\\\\n\\\\x1b[31mred'
    """
    text = str(text)
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(_escape_one, text)


def _escape_one(match: re.Match) -> str:
    ch = match.group(0)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if ch in named:
        return named[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


class EcadError(Exception):
    """Base class of every error ecad-hub raises on purpose.

    ``path`` names the file or repo the problem was found in, when there is one. The message is
    always one line: control characters (from file contents, keys or names) are escaped
    (:func:`escape_control`).
    """

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(escape_control(message))
        self.path = path


class ScheduleError(EcadError, ValueError):
    """A schedule file or dictionary is malformed, of an unknown version, or inconsistent.

    ``path`` is the file the problem was found in (``None`` for in-memory data) and
    ``problems`` the individual findings, each a one-line string; ``str(err)`` is the first.
    """

    def __init__(self, message: str, *, path: str | None = None, problems: list[str] | None = None):
        super().__init__(message, path=path)
        self.problems = [escape_control(p) for p in problems] if problems else [str(self)]


class LegacyFormatError(ScheduleError):
    """A legacy (ECAD reference or SmoothCache) schedule cannot be imported."""


class UnsupportedFeatureError(LegacyFormatError):
    """A legacy schedule uses a feature ecad-hub does not implement (e.g. custom attention functions)."""


class ArchitectureMismatchError(EcadError, ValueError):
    """A schedule's declared architecture does not match the transformer it is applied to."""


class StepMismatchError(EcadError, ValueError):
    """A pipeline was called with a number of denoising steps other than the schedule's."""


class UnsupportedModelError(EcadError, TypeError):
    """ecad-hub has no adapter for this transformer class."""


class FrontierError(EcadError, ValueError):
    """A frontier (folder, run directory or Hub repo) is malformed or cannot be used."""


class HubError(EcadError):
    """A Hub operation failed (network, permissions, a repo that is not an ECAD repo)."""


class ModelLoadError(EcadError):
    """A base model (diffusers pipeline) cannot be loaded: missing or malformed files, custom code, ..."""


class CacheConflictError(EcadError, ValueError):
    """Another cache (a diffusers cache hook, ``enable_cache``) is already on the transformer."""


class FileWriteError(EcadError, OSError):
    """An output file or folder cannot be written (not writable, a file where a folder is needed, disk full)."""


class SearchError(EcadError):
    """A search cannot start or resume (bad configuration, a run directory of another search)."""


class MetricUnavailableError(EcadError):
    """A quality metric cannot be used here (missing package or weights)."""


class ScheduleNotFoundError(FrontierError, KeyError):
    """A frontier has no schedule of that name (or none reaching the requested speedup or quality)."""

    __str__ = Exception.__str__  # KeyError would quote the message
