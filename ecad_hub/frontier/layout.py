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
from typing import Mapping, Sequence

from ..errors import FrontierError
from ..schedule import CacheSchedule
from ..utils.io import new_folder_beside, replace_folder

#: ``ecad_config_version`` this release writes and reads.
CONFIG_VERSION = 1
#: ``ecad_frontier_version`` this release writes and reads.
INDEX_VERSION = 1

CONFIG_FILE = "ecad_config.json"
INDEX_FILE = "frontier.json"
CARD_FILE = "README.md"
PLOT_FILE = "frontier.png"
SCHEDULES_DIR = "schedules"
HEATMAPS_DIR = "heatmaps"
#: What a frontier load downloads from a Hub repo: the small JSON files, nothing else.
FRONTIER_PATTERNS = [CONFIG_FILE, INDEX_FILE, f"{SCHEDULES_DIR}/*.json"]
#: What ``pull`` downloads: the JSON files plus the model card and its PNG figures.
PULL_PATTERNS = [*FRONTIER_PATTERNS, CARD_FILE, PLOT_FILE, f"{HEATMAPS_DIR}/*.png"]

MANAGED_FILES = {CONFIG_FILE, INDEX_FILE, CARD_FILE, PLOT_FILE}
MANAGED_DIRS = (SCHEDULES_DIR, HEATMAPS_DIR)
#: A Hub repo id ``owner/name``.
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_repo_id(text: str) -> bool:
    """Whether ``text`` is a Hub repo id (``owner/name``)."""
    return bool(REPO_ID.fullmatch(text))


def assign_names(schedules: Sequence[CacheSchedule]) -> list[str]:
    """``ecad-<speedup>x`` names for schedules in frontier order (see :meth:`Frontier.from_schedules`).

    Two decimals; schedules whose two-decimal names collide get three; names still equal get
    ``-2``, ``-3`` ... in order. A schedule without recorded MACs keeps its own name.
    """
    def stem(s: CacheSchedule, digits: int) -> str:
        return f"ecad-{s.mac_speedup:.{digits}f}x" if s.mac_speedup else s.name

    short = [stem(s, 2) for s in schedules]
    stems = [stem(s, 3) if s.mac_speedup and short.count(short[i]) > 1 else short[i]
             for i, s in enumerate(schedules)]
    names: list[str] = []
    for base in stems:
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}-{k}"
        names.append(name)
    return names


def is_export(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file()


def write_folder(target: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` as the folder ``target``, atomically (temp folder beside it, then a rename).

    An existing ECAD export at ``target`` is replaced, keeping files ecad-hub does not manage;
    any other non-empty folder is refused with :class:`FrontierError`.
    """
    target = Path(target)
    if target.exists():
        if not target.is_dir():
            raise FrontierError(f"{target}: exists and is not a folder")
        if any(target.iterdir()) and not is_export(target):
            raise FrontierError(f"{target}: refusing to replace a non-empty folder that is not an ECAD export "
                                f"(no {CONFIG_FILE}); choose an empty or new folder")
    tmp = new_folder_beside(target)
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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
