"""Small file helpers: atomic writes and bounded JSON reads.

* Reads are bounded by the bytes actually read (``/dev/zero`` or a growing file cannot exhaust
  memory), and a JSON document is accepted only if it can be written back unchanged: no
  ``NaN``/``Infinity``, no number that overflows to infinity (``1e400``), no lone surrogate.
* Writes go through a temporary file (or folder) and a rename; the result gets the permissions
  a plain ``open()`` / ``mkdir()`` would give under the process umask (an existing file keeps its
  mode), not ``mkstemp``'s private 0600 / 0700.
* Every function taking ``error_cls`` raises that class with a one-line message (``path=`` set)
  instead of ``OSError`` / ``ValueError``; :func:`os_error_message` is the one wording of an
  ``OSError``.

This module imports nothing from ecad-hub (it sits beside :mod:`ecad_hub.errors`): callers pass
their error class.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

#: Largest JSON file ecad-hub reads (schedules, configs, run state). Legacy FLUX files are ~200 KB.
MAX_JSON_BYTES = 16 * 1024 * 1024

_UMASK_LOCK = threading.Lock()


def _make_error(error_cls: type[Exception], message: str, path: str | None) -> Exception:
    try:
        return error_cls(message, path=path)
    except TypeError:  # a plain exception class without ``path=``
        return error_cls(message)


def _file_in_the_way(path: str | os.PathLike | None) -> Path | None:
    """The first existing ancestor of ``path`` (or ``path``'s parent chain) that is not a folder."""
    if path is None:
        return None
    for parent in [Path(path), *Path(path).parents]:
        try:
            if parent.exists() or parent.is_symlink():
                return None if parent.is_dir() else parent
        except OSError:
            return None
    return None


def os_error_message(err: OSError, action: str = "cannot write", path: str | os.PathLike | None = None) -> str:
    """``"<file>: <action> (<reason>)"`` for an ``OSError`` (``path`` when it names no file), on one line.

    A file where a folder is needed (``--out notes.txt/run``) is named as such.
    """
    reason = err.strerror or (str(err.args[0]) if err.args else "") or type(err).__name__
    where = path if path is not None else err.filename  # ``path``: what the caller writes (not a temp file)
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        blocker = _file_in_the_way(Path(path).parent if path is not None else where)
        if blocker is not None:
            note = f" ({action} {path} under it)" if path is not None else ""
            return " ".join(f"{blocker}: is a file, not a folder{note}".split())
    other = f" -> {err.filename2}" if getattr(err, "filename2", None) else ""
    text = f"{where}{other}: {action} ({reason})" if where is not None else f"{action} ({reason})"
    return " ".join(text.split())


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, error_cls: type[Exception] | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Readers see either the old file or the whole new one, never a partly written file. The file
    gets the mode a plain ``open(path, "w")`` would give (an existing file keeps its mode).
    With ``error_cls``, an ``OSError`` becomes ``error_cls("<path>: cannot write (<reason>)")``.
    """
    path = Path(path)
    try:
        _atomic_write(path, data)
    except OSError as e:
        if error_cls is None:
            raise
        raise _make_error(error_cls, os_error_message(e, path=path), str(path)) from None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        existing = path.stat()
        mode = stat.S_IMODE(existing.st_mode) if stat.S_ISREG(existing.st_mode) else None
    except OSError:
        mode = None
    if mode is None:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
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


def atomic_write_text(path: str | os.PathLike, text: str, *, error_cls: type[Exception] | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), error_cls=error_cls)


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


def atomic_write_json(path: str | os.PathLike, obj: Any, *, error_cls: type[Exception] | None = None) -> None:
    atomic_write_text(path, dumps_json(obj), error_cls=error_cls)


def _limit(max_bytes: int) -> str:
    return f"{max_bytes // (1024 * 1024)} MB" if max_bytes >= 1024 * 1024 else f"{max_bytes:,} bytes"


def read_bytes_bounded(path: str | os.PathLike, max_bytes: int, *, error_cls: type[Exception] = ValueError) -> bytes:
    """The bytes of a file, refusing one larger than ``max_bytes`` (by ``stat`` first, then by what is read).

    Never reads more than ``max_bytes + 1`` bytes, so a device (``/dev/zero``), a pipe or a file
    that grows while it is read cannot exhaust memory.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _make_error(error_cls, f"{path}: no such file", str(path)) from None
    except OSError as e:
        raise _make_error(error_cls, f"{path}: cannot read ({e.strerror or e})", str(path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise _make_error(error_cls, f"{path}: is a directory, expected a JSON file", str(path))
    too_big = f"{path}: larger than the {_limit(max_bytes)} limit"
    if stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
        raise _make_error(error_cls, f"{path}: file is {st.st_size / 1e6:.1f} MB, larger than the "
                                     f"{_limit(max_bytes)} limit", str(path))
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise _make_error(error_cls, f"{path}: cannot read ({e.strerror or e})", str(path)) from None
    if len(raw) > max_bytes:
        raise _make_error(error_cls, too_big, str(path))
    return raw


def read_json(path: str | os.PathLike, *, error_cls: type[Exception] = ValueError,
              max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read a JSON file, turning every failure into one ``error_cls`` with a one-line message.

    At most ``max_bytes`` are read (see :func:`read_bytes_bounded`); the document must be UTF-8
    and standard JSON that can be written back unchanged (see :func:`loads_json`).
    """
    path = Path(path)
    raw = read_bytes_bounded(path, max_bytes, error_cls=error_cls)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _make_error(error_cls, f"{path}: not UTF-8 text (byte {e.start})", str(path)) from None
    return loads_json(text, source=str(path), error_cls=error_cls)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def loads_json(text: str, *, source: str = "<string>", error_cls: type[Exception] = ValueError) -> Any:
    """Parse standard JSON that can be written back unchanged; anything else is one ``error_cls``.

    Refused: ``NaN`` / ``Infinity`` literals, numbers too large for a float (``1e400``, which
    Python would read as infinity), integers of more than 4300 digits, and lone UTF-16
    surrogates (``"\\ud800"``, which cannot be encoded as UTF-8).
    """
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except json.JSONDecodeError as e:
        raise _make_error(error_cls, f"{source}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})",
                          source) from None
    except RecursionError:
        raise _make_error(error_cls, f"{source}: JSON nested too deeply", source) from None
    except ValueError as e:  # NaN / Infinity / 1e400 / a 5000-digit integer
        message = str(e).split(":")[0] if "integer string conversion" in str(e) else str(e)
        raise _make_error(error_cls, f"{source}: {message}", source) from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _make_error(error_cls, f"{source}: contains a lone UTF-16 surrogate escape (\\ud800-\\udfff), "
                                         f"not valid Unicode", source) from None
        except RecursionError:
            raise _make_error(error_cls, f"{source}: JSON nested too deeply", source) from None
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"number {shown} is too large (it would be read as infinity)")
    return value


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
    """An empty temporary folder in ``target``'s parent (created if needed), to be moved with :func:`replace_folder`.

    It gets the mode a plain ``mkdir`` would give (``mkdtemp``'s 0700 would make the published
    folder private to this user).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(folder, 0o777 & ~current_umask())
    return folder
