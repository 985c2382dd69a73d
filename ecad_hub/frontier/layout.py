"""The layout of a frontier folder / Hub repo: file names, download patterns, schedule names, writing.

    ecad_config.json          # base model + revision, pipeline, architecture, resolution, steps, provenance
    frontier.json             # the index browsing reads
    schedules/<name>.json     # schema v1, named ``ecad-<speedup>x`` from most to least compute
    README.md                 # the model card (:mod:`.card`)
    frontier.png, heatmaps/<name>.png
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import FileWriteError, FrontierError
from ..schedule import CacheSchedule
from ..utils.io import new_folder_beside, os_error_message, replace_folder

#: ``ecad_config_version`` this release writes and reads.
CONFIG_VERSION = 1
#: ``ecad_frontier_version`` this release writes and reads.
INDEX_VERSION = 1

CONFIG_FILE = "ecad_config.json"
INDEX_FILE = "frontier.json"
CARD_FILE = "README.md"
PLOT_FILE = "frontier.png"
#: the plot of ``ecad-hub compare --into`` (named by ``frontier.json``'s ``comparison.plot``)
COMPARE_PLOT_FILE = "compare.png"
SCHEDULES_DIR = "schedules"
HEATMAPS_DIR = "heatmaps"
#: The shapes of the files a frontier load reads (what :func:`listed_files` can name), nothing else.
FRONTIER_PATTERNS = [CONFIG_FILE, INDEX_FILE, f"{SCHEDULES_DIR}/*.json"]
#: What ``pull`` may copy: the JSON files plus the model card and its PNG figures.
PULL_PATTERNS = [*FRONTIER_PATTERNS, CARD_FILE, PLOT_FILE, f"{HEATMAPS_DIR}/*.png"]

MANAGED_FILES = {CONFIG_FILE, INDEX_FILE, CARD_FILE, PLOT_FILE}
MANAGED_DIRS = (SCHEDULES_DIR, HEATMAPS_DIR)
#: A Hub repo id ``owner/name`` (anchored with ``\\Z``: ``match`` refuses a trailing newline).
REPO_ID = re.compile(r"^(?!.*(?:--|\.\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}\Z")
#: One path inside a frontier folder: ``name`` or ``folder/name``, file-name-safe parts only.
_SAFE_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,199})?\Z")


def is_repo_id(text: object) -> bool:
    """Whether ``text`` is a Hub repo id (``owner/name``; no ``..``/``--``, at most 96 characters a part)."""
    return isinstance(text, str) and bool(REPO_ID.match(text))


def is_safe_path(rel: object) -> bool:
    """Whether ``rel`` is a path ecad-hub may write inside a frontier folder (no ``..``, no absolute path,
    no control or other unusual characters, at most one folder deep)."""
    return isinstance(rel, str) and bool(_SAFE_PATH.match(rel)) and ".." not in rel.split("/")


def listed_files(index: Mapping, *, card: bool = False) -> list[str]:
    """The files of a frontier whose (schema-valid) ``frontier.json`` is ``index``, in a fixed order.

    ``ecad_config.json``, ``frontier.json`` and every listed schedule file; with ``card``, also
    ``README.md``, ``frontier.png`` and the listed schedules' heatmaps. Nothing else of a repo is
    ever downloaded or copied.
    """
    entries = [e for e in index.get("schedules", []) if isinstance(e, Mapping)]
    files = [CONFIG_FILE, INDEX_FILE, *(e["file"] for e in entries if is_safe_path(e.get("file")))]
    if card:
        files += [CARD_FILE, PLOT_FILE, *(f"{HEATMAPS_DIR}/{e['name']}.png" for e in entries
                                          if is_safe_path(f"{HEATMAPS_DIR}/{e.get('name')}.png"))]
        plot = (index.get("comparison") or {}).get("plot") if isinstance(index.get("comparison"), Mapping) else None
        if isinstance(plot, str) and plot == COMPARE_PLOT_FILE:
            files.append(COMPARE_PLOT_FILE)
    return list(dict.fromkeys(files))


def assign_names(schedules: Sequence[CacheSchedule]) -> list[str]:
    """``ecad-<speedup>x`` names for schedules in frontier order (see :meth:`Frontier.from_schedules`).

    Two decimals; schedules whose two-decimal names collide get three; names still equal get
    ``-2``, ``-3`` ... in order. A schedule without recorded MACs keeps its own name.
    """
    def stem(s: CacheSchedule, digits: int) -> str:
        return f"ecad-{s.mac_speedup:.{digits}f}x" if s.mac_speedup else s.name

    short = [stem(s, 2) for s in schedules]
    return unique_names([stem(s, 3) if s.mac_speedup and short.count(short[i]) > 1 else short[i]
                         for i, s in enumerate(schedules)])


def unique_names(bases: Iterable[str]) -> list[str]:
    """``bases`` in order, a repeated one suffixed ``-2``, ``-3`` ... (the first keeps its name)."""
    names: list[str] = []
    for base in bases:
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}-{k}"
        names.append(name)
    return names


def is_export(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file()


def check_target(target: Path) -> None:
    """Refuse (before anything is rendered or written) a target :func:`write_folder` cannot replace:
    a file, a non-empty folder that is not an ECAD export, or a path under a file."""
    target = Path(target)
    try:
        if target.exists() or target.is_symlink():
            if not target.is_dir():
                raise FrontierError(f"{target}: exists and is not a folder", path=str(target))
            if any(target.iterdir()) and not is_export(target):
                raise FrontierError(f"{target}: refusing to replace a non-empty folder that is not an ECAD export "
                                    f"(no {CONFIG_FILE}); choose an empty or new folder", path=str(target))
            return
        for parent in target.parents:
            if parent.exists() or parent.is_symlink():
                if not parent.is_dir():
                    raise FileWriteError(f"{parent}: is a file, not a folder (cannot write {target} under it)",
                                         path=str(target))
                break
    except FileWriteError:
        raise
    except OSError as e:
        raise FileWriteError(os_error_message(e, action="cannot read", path=target), path=str(target)) from None


def write_folder(target: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` as the folder ``target``, atomically (temp folder beside it, then a rename).

    An existing ECAD export at ``target`` is replaced, keeping files ecad-hub does not manage;
    any other non-empty folder is refused with :class:`FrontierError`.
    """
    target = Path(target)
    unsafe = [rel for rel in files if not is_safe_path(rel)]
    if unsafe:
        raise FrontierError(f"{target}: refusing to write {unsafe[0]!r}: not a file name of the frontier layout")
    check_target(target)
    try:
        tmp = new_folder_beside(target)
    except OSError as e:
        raise FileWriteError(os_error_message(e, path=target), path=str(target)) from None
    try:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if target.is_dir():
            for item in target.iterdir():
                if item.name in MANAGED_FILES or item.name in MANAGED_DIRS:
                    continue
                if item.is_dir() and not item.is_symlink():
                    shutil.copytree(item, tmp / item.name, symlinks=True)
                else:
                    shutil.copy2(item, tmp / item.name, follow_symlinks=False)
        replace_folder(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise FileWriteError(os_error_message(e, path=target), path=str(target)) from None
        raise
