"""A frontier: the published artifact (the schedules of one model, resolution and step count).

* :mod:`.frontier`: :class:`Frontier` (load from schedules / a run directory / a folder / a repo, pick, save, push);
* :mod:`.layout`: file names and download patterns of a frontier folder, schedule naming, atomic folder writes.
"""

from __future__ import annotations

from .frontier import Frontier, _check_document, document_problems  # noqa: F401
from .layout import (  # noqa: F401
    CARD_FILE, CONFIG_FILE, FRONTIER_PATTERNS, HEATMAPS_DIR, INDEX_FILE, PLOT_FILE, PULL_PATTERNS, REPO_ID,
    SCHEDULES_DIR, assign_names, is_export, is_repo_id, write_folder,
)
