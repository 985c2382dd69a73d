"""Schedule search: a Pareto frontier of caching schedules for one pipeline, resolution and step count.

    >>> from ecad_hub.search import run_search, SearchConfig
    >>> result = run_search(SearchConfig(population=24, generations=5, metric="fidelity"), "runs/demo")
    >>> result.front[0].mac_speedup

NSGA-II (pymoo, ask/tell) over the whole mask; objectives: the MAC ratio (or measured latency)
and a quality metric over calibration prompts; one constraint (at least one reuse). See
:class:`SearchConfig` for every setting and :mod:`ecad_hub.search.run_dir` for the run directory.

Where to change what:

* settings, strategy presets (``"ecad"`` / ``"paper"``) and their defaults: :mod:`.config`;
* the genome (mask <-> vector, fixed bits): :mod:`.genome`;
* the initial population (heuristic, random and user schedules): :mod:`.seeding`;
* the mutation, repair, duplicate elimination and the NSGA-II assembly: :mod:`.operators`;
* surrogate screening: :mod:`.surrogate`; nondominated sets and hypervolume: :mod:`.pareto`;
* the front (selection, schedule files and their names, ``frontier.png``): :mod:`.front`;
* the run-directory format (``search.json``, generations, evaluations, reference images): :mod:`.run_dir`;
* model, settings, prompts and MAC profile of a search: :mod:`.context` (:mod:`.model`, :mod:`.prompts`);
* evaluating a schedule: :mod:`.evaluate`; where it runs: :mod:`.backends`, :mod:`.ray_backend`;
* the loop (generations, resume, caching): :mod:`.runner`; ``ecad-hub quickstart``: :mod:`.quickstart`.
"""

from __future__ import annotations

from .config import EMBEDDED, SEARCH_VERSION, SearchConfig
from .quickstart import quickstart
from .runner import SearchResult, default_run_dir, run_search

__all__ = ["run_search", "SearchConfig", "SearchResult", "default_run_dir", "quickstart", "EMBEDDED",
           "SEARCH_VERSION"]
