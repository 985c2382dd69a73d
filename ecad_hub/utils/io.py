"""Small file helpers: atomic writes and bounded JSON reads."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Largest JSON file ecad-hub reads (schedules, configs, run state). Legacy FLUX files are ~200 KB.
MAX_JSON_BYTES = 16 * 1024 * 1024


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Readers see either the old file or the whole new one, never a partly written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any, *, inline_width: int = 100) -> str:
    """Deterministic, human-diffable JSON: 2-space indent, insertion order, trailing newline.

    Lists of numbers/strings/bools that fit in ``inline_width`` characters stay on one line,
    so short lists (component names) are compact while long ones (mask rows) get a line each.
    """
    return _dump(obj, 0, inline_width) + "\n"


def _dump(obj: Any, level: int, width: int) -> str:
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_dump(v, level + 1, width)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        if all(not isinstance(v, (dict, list, tuple)) for v in obj):
            flat = json.dumps(list(obj), ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
            if len(flat) + len(inner) <= width:
                return flat
        return "[\n" + ",\n".join(inner + _dump(v, level + 1, width) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def read_json(path: str | os.PathLike, *, error_cls: type[Exception] = ValueError,
              max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read a JSON file, turning every failure into one ``error_cls`` with a one-line message."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise error_cls(f"{path}: no such file", path=str(path)) from None
    except OSError as e:
        raise error_cls(f"{path}: cannot read ({e.strerror})", path=str(path)) from None
    if path.is_dir():
        raise error_cls(f"{path}: is a directory, expected a JSON file", path=str(path))
    if size > max_bytes:
        raise error_cls(
            f"{path}: file is {size / 1e6:.1f} MB, larger than the {max_bytes // (1024 * 1024)} MB limit",
            path=str(path),
        )
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error_cls(f"{path}: not UTF-8 text (byte {e.start})", path=str(path)) from None
    except OSError as e:
        raise error_cls(f"{path}: cannot read ({e.strerror})", path=str(path)) from None
    return loads_json(text, source=str(path), error_cls=error_cls)


def loads_json(text: str, *, source: str = "<string>", error_cls: type[Exception] = ValueError) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise error_cls(f"{source}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})",
                        path=source) from None
    except RecursionError:
        raise error_cls(f"{source}: JSON nested too deeply", path=source) from None
    except ValueError as e:  # NaN / Infinity
        raise error_cls(f"{source}: {e}", path=source) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def replace_folder(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move the finished folder ``tmp`` to ``target``, replacing what was there.

    ``tmp`` must be beside ``target`` (same file system) so that each step is a rename: an
    existing ``target`` is renamed aside, ``tmp`` renamed into place, then the old one deleted.
    Readers see the old folder or the whole new one (or, after a crash between the two renames,
    the old one next to the target as ``.<name>.old-*``), never a mix of both.
    """
    import shutil

    tmp, target = Path(tmp), Path(target)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def new_folder_beside(target: str | os.PathLike) -> Path:
    """An empty temporary folder in ``target``'s parent (created if needed), to be moved with :func:`replace_folder`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
