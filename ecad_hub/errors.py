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


class EcadError(Exception):
    """Base class of every error ecad-hub raises on purpose.

    ``path`` names the file or repo the problem was found in, when there is one.
    """

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        self.path = path


class ScheduleError(EcadError, ValueError):
    """A schedule file or dictionary is malformed, of an unknown version, or inconsistent.

    ``path`` is the file the problem was found in (``None`` for in-memory data) and
    ``problems`` the individual findings, each a one-line string; ``str(err)`` is the first.
    """

    def __init__(self, message: str, *, path: str | None = None, problems: list[str] | None = None):
        super().__init__(message, path=path)
        self.problems = list(problems) if problems else [message]


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


class SearchError(EcadError):
    """A search cannot start or resume (bad configuration, a run directory of another search)."""


class MetricUnavailableError(EcadError):
    """A quality metric cannot be used here (missing package or weights)."""


class ScheduleNotFoundError(FrontierError, KeyError):
    """A frontier has no schedule of that name (or none reaching the requested speedup or quality)."""

    __str__ = Exception.__str__  # KeyError would quote the message
