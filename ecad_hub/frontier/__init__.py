"""A frontier: the published artifact (the schedules of one model, resolution and step count).

Modules:

* :mod:`.frontier`: :class:`Frontier`: build (from schedules or a search run directory), load
  (a folder, a run directory or a Hub repo, every file validated), pick, validate, render,
  save (:meth:`~Frontier.save_pretrained`), push (:meth:`~Frontier.push_to_hub`), display;
* :mod:`.layout`: the file layout of a frontier folder / Hub repo: file names, download
  patterns, schedule naming (``ecad-<speedup>x``), atomic folder writes;
* :mod:`.card`: the model card (``README.md``), pure rendering of ``templates/card.md`` with
  ``huggingface_hub.ModelCard.from_template``;
* :mod:`.remote`: Hub transfer: the bounded download, the one-commit push, and the mapping of
  huggingface_hub errors to :class:`~ecad_hub.errors.HubError`.

Where to change what:

* the model card: its wording and layout in ``templates/card.md``, its values (metadata,
  tags, number formats, provenance lines) in ``card.py``;
* the file layout (names, folders, what is downloaded): ``layout.py``;
* how files move to and from the Hub, and Hub error messages: ``remote.py``;
* the documents themselves (``ecad_config.json``, ``frontier.json``) and loading rules: ``frontier.py``
  (their schemas are ``schemas/*.schema.json``).

This package imports nothing above it (not :mod:`ecad_hub.hub`, :mod:`ecad_hub.pipeline`,
:mod:`ecad_hub.search` or :mod:`ecad_hub.cli`); community operations on published frontiers
(browse, pull) live in :mod:`ecad_hub.hub` and use only the public names below.
"""

from __future__ import annotations

from .frontier import Frontier, check_document, document_problems  # noqa: F401
from .layout import (  # noqa: F401
    CARD_FILE, CONFIG_FILE, FRONTIER_PATTERNS, HEATMAPS_DIR, INDEX_FILE, PLOT_FILE, PULL_PATTERNS, REPO_ID,
    SCHEDULES_DIR, assign_names, is_export, is_repo_id, is_safe_path, listed_files, write_folder,
)
