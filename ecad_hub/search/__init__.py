"""Schedule search: a Pareto frontier of caching schedules for one pipeline, resolution and step count.

    >>> from ecad_hub.search import run_search, SearchConfig
    >>> result = run_search(SearchConfig(population=24, generations=5, metric="fidelity"), "runs/demo")
    >>> result.front[0].mac_speedup

NSGA-II (pymoo, ask/tell) over the whole mask; objectives: the MAC ratio (or measured latency)
and a quality metric over calibration prompts; one constraint (at least one reuse). See
:class:`SearchConfig` for every setting and :mod:`ecad_hub.search.runner` for the run directory.
"""

from __future__ import annotations

from .config import EMBEDDED, SEARCH_VERSION, SearchConfig
from .quickstart import quickstart
from .runner import SearchResult, default_run_dir, run_search

__all__ = ["run_search", "SearchConfig", "SearchResult", "default_run_dir", "quickstart", "EMBEDDED",
           "SEARCH_VERSION"]
