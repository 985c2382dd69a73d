"""ecad-hub's JSON schemas (``schemas/*.schema.json``) and the one validator every reader uses.

    >>> from ecad_hub.schemas import schema_problems
    >>> schema_problems({"ecad_schedule_version": 1}, "schedule-v1")[0]
    "(top level): 'name' is a required property"

The schemas reference each other by ``$id`` and are resolved locally, never fetched.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

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
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


def short_repr(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_schema_error(err) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
    kind = err.validator
    if kind == "required":
        return f"{where}: {err.message}"
    if kind == "additionalProperties":
        return f"{where}: {err.message}"
    if kind == "pattern":
        return f"{where}: {short_repr(err.instance)} does not match {err.validator_value}"
    if kind in ("type", "const", "enum"):
        return f"{where}: {short_repr(err.instance)} is not {kind} {short_repr(err.validator_value)}"
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
