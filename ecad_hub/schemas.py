r"""ecad-hub's JSON schemas (``schemas/*.schema.json``) and the one validator every reader uses.

    >>> from ecad_hub.schemas import schema_problems
    >>> schema_problems({"ecad_schedule_version": 1}, "schedule-v1")[0]
    "(top level): 'name' is a required property"

The schemas reference each other by ``$id`` and are resolved locally, never fetched.

Two rules are stricter than plain JSON Schema, so that whatever validates can be used and
written back unchanged:

* ``integer`` means a JSON number written without a fraction or exponent (``20``, not ``20.0``
  or ``2e1``), i.e. a Python ``int`` (never a ``bool``); ``number`` means a *finite* number
  (``1e400`` parses to infinity and is refused; so is NaN);
* every ``pattern`` matches the whole string: each ends with ``(?![\s\S])`` (end of input in
  both ECMA-262 and Python; a plain ``$`` also matches before a trailing newline in Python's
  ``re.search``). ``tests/test_schedule.py`` checks every pattern of every schema.

Every message is one line (control characters escaped, long keys and values shortened).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

from .errors import escape_control

__all__ = ["load_schema", "schema_problems", "schema_names", "short_repr"]


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------

def _schema_dir() -> Path:
    """Folder holding the JSON schemas (``schemas/`` in a checkout, ``ecad_hub/schemas`` when installed)."""
    try:
        from importlib.resources import files

        path = Path(str(files("ecad_hub.schemas")))
        if (path / "schedule-v1.schema.json").is_file():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "schemas"


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """Return the parsed JSON schema ``schemas/<name>.schema.json`` (e.g. ``"schedule-v1"``)."""
    with open(_schema_dir() / f"{name}.schema.json", encoding="utf-8") as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _validator(name: str):
    """A validator for ``schemas/<name>.schema.json`` resolving ``$ref`` s between ecad-hub's schemas.

    The schemas reference each other by ``$id`` (e.g. ``urn:ecad-hub:schema:schedule:1#/$defs/architecture``),
    resolved through a :mod:`referencing` registry of every local schema, never fetched.
    """
    import jsonschema
    from referencing import Registry, Resource

    names = sorted(p.name[: -len(".schema.json")] for p in _schema_dir().glob("*.schema.json"))
    registry = Registry().with_resources(
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in names
    )
    schema = load_schema(name)
    base = jsonschema.validators.validator_for(schema)
    base.check_schema(schema)
    checker = base.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_finite_number})
    cls = jsonschema.validators.extend(base, type_checker=checker)
    return cls(schema, registry=registry, format_checker=base.FORMAT_CHECKER)


def _is_integer(checker, value: Any) -> bool:
    """JSON Schema ``integer``, strictly: an ``int`` (``20.0`` parses to a float and is not one), never a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(checker, value: Any) -> bool:
    """JSON Schema ``number``: an int or a finite float (not a bool, infinity or NaN)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= _MAX_FLOAT_INT  # usable as a float (ecad-hub computes ratios with them)
    return isinstance(value, float) and math.isfinite(value)


_MAX_FLOAT_INT = int(1.7976931348623157e308)


def short_repr(value: Any, limit: int = 60) -> str:
    """A short, one-line rendering of a JSON value for messages (control characters escaped)."""
    if isinstance(value, str):
        text = repr(value if len(value) <= 4 * limit else value[: 4 * limit])
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (ValueError, TypeError, RecursionError):
            text = type(value).__name__
    text = escape_control(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path_part(part: Any) -> str:
    text = escape_control(part)
    return text if len(text) <= 64 else text[:61] + "..."


def _format_schema_error(err) -> str:
    return escape_control(_format(err))


def _format(err) -> str:
    where = "/".join(_path_part(p) for p in err.absolute_path) or "(top level)"
    kind = err.validator
    if kind == "required":
        return f"{where}: {err.message}"
    if kind == "pattern":
        return f"{where}: {short_repr(err.instance)} does not match {err.validator_value}"
    if kind == "type" and err.validator_value == "integer" and isinstance(err.instance, float):
        return f"{where}: {short_repr(err.instance)} is not type 'integer' (write integers without a fraction or exponent)"
    if kind == "type" and err.validator_value == "number" and isinstance(err.instance, (int, float)) \
            and not isinstance(err.instance, bool):
        return f"{where}: {short_repr(err.instance)} is not a finite number"
    if kind in ("type", "const", "enum"):
        return f"{where}: {short_repr(err.instance)} is not {kind} {short_repr(err.validator_value)}"
    if kind == "additionalProperties":
        return f"{where}: {escape_control(err.message)[:200]}"
    message = err.message
    if len(message) > 160:
        message = message[:157] + "..."
    return f"{where}: {message}"


def schema_problems(doc: Any, schema: str) -> list[str]:
    """Every JSON Schema violation of ``doc`` against ``schemas/<schema>.schema.json``, one line each."""
    errors = sorted(_validator(schema).iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [_format_schema_error(e) for e in errors]


def schema_names() -> list[str]:
    """The names of the schemas shipped with ecad-hub (``schedule-v1``, ``ecad-config-v1``, ...)."""
    return sorted(p.name[: -len(".schema.json")] for p in _schema_dir().glob("*.schema.json"))
