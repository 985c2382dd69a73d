"""A :class:`Frontier`: the quality/compute Pareto front of ECAD schedules for one base model.

A frontier is what a search produces and what an ECAD Hub repo holds::

    user/pixart-ecad
    ├── ecad_config.json          base model + revision, architecture, resolution, steps, default,
    │                             search provenance          (schemas/ecad-config-v1.schema.json)
    ├── frontier.json             the index: name, file, MAC speedup, quality, latency, hash per
    │                             schedule                   (schemas/frontier-v1.schema.json)
    ├── schedules/ecad-1.52x.json one schedule file per point (schemas/schedule-v1.schema.json)
    ├── README.md                 model card (metadata, usage, table, plots, provenance, citation)
    ├── frontier.png
    └── heatmaps/ecad-1.52x.png

Build one from schedules (or load a search run directory), then save or push it::

    >>> from ecad_hub import Frontier
    >>> frontier = Frontier.from_schedules(
    ...     [from_legacy("default.json"), from_legacy("ours_fast.json"), from_legacy("ours_faster.json")],
    ...     base_model="PixArt-alpha/PixArt-XL-2-256x256",
    ...     transformer_config="configs/pixart_xl_2_256_transformer.json", height=256, width=256,
    ... )
    >>> frontier.names            # imported schedules keep their names; a search's are named ecad-<speedup>x
    ['default', 'ours_fast', 'ours_faster']
    >>> frontier.save_pretrained("pixart-ecad")            # a local folder, written atomically
    >>> frontier.push_to_hub("user/pixart-ecad")            # one commit (None if nothing changed)

and load one back, from a folder, a search run directory or the Hub (only the small JSON files
are downloaded, every file is validated against its schema, nothing is executed)::

    >>> frontier = Frontier.load("user/pixart-ecad")
    >>> frontier.pick(speedup=2.5).name
    'ours_fast'
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..errors import ArchitectureMismatchError, FrontierError, ScheduleError, ScheduleNotFoundError, escape_control
from ..schedule import MAX_SCHEDULE_BYTES, Architecture, CacheSchedule, architecture_problems
from ..schemas import schema_problems
from ..utils.io import dumps_json, read_json
from ..utils.table import format_table
from . import remote
from .card import KIND_LABELS, check_license, latency_conditions, model_card, schedule_kind
from .layout import (
    CARD_FILE, COMPARE_PLOT_FILE, CONFIG_FILE, CONFIG_VERSION, HEATMAPS_DIR, INDEX_FILE, INDEX_VERSION, PLOT_FILE,
    SCHEDULES_DIR, assign_names, check_target, is_repo_id, listed_files, unique_names, write_folder,
)

_logger = logging.getLogger("ecad_hub.frontier")
_SPEEDUP_SPEC = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*[xX]?\s*$")
_SEARCH_KEYS = ("population", "generations", "seed", "ecad_hub_version")
_PROMPT_SET_KEYS = ("name", "sha256", "num_prompts", "images_per_prompt")


# --------------------------------------------------------------------------------------------
# schema validation (the config and index schemas $ref the schedule schema's definitions)
# --------------------------------------------------------------------------------------------

#: Every JSON Schema violation of a document, one line each (the ecad-hub schemas ``$ref`` each other).
document_problems = schema_problems


def _more(problems: Sequence[str]) -> str:
    return f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""


def check_document(doc: Any, schema: str, source: str) -> None:
    """Raise :class:`FrontierError` (``"<source>: <first problem>"``) if ``doc`` violates ``schemas/<schema>``.

    The one check every reader of ``ecad_config.json`` / ``frontier.json`` runs: the schema, then
    (for a config) the architecture checks the schema cannot express
    (:func:`~ecad_hub.schedule.architecture_problems`).
    """
    problems = document_problems(doc, schema)
    if not problems and schema == "ecad-config-v1":
        problems = [f"architecture/{p}" for p in architecture_problems(doc["architecture"])]
    if problems:
        raise FrontierError(f"{source}: {problems[0]}{_more(problems)}", path=source)


# --------------------------------------------------------------------------------------------
# per-schedule numbers
# --------------------------------------------------------------------------------------------

def _mac_ratio(s: CacheSchedule) -> float | None:
    macs = s.metrics.get("macs") or {}
    if "ratio" in macs:
        return float(macs["ratio"])
    if macs.get("all_compute_total") and macs.get("total"):
        return macs["total"] / macs["all_compute_total"]
    speedup = s.mac_speedup
    return 1.0 / speedup if speedup else None


def _compute_key(s: CacheSchedule) -> float:
    """Relative compute of a schedule: its MAC ratio, else its fraction of computed sub-modules."""
    ratio = _mac_ratio(s)
    return ratio if ratio is not None else s.fraction_computed()


def _latency(s: CacheSchedule) -> dict:
    return s.metrics.get("latency") or {}


def _fmt(value: float | None, spec: str = ".4g", none: str = "-") -> str:
    return none if value is None else format(value, spec)


# --------------------------------------------------------------------------------------------
# Frontier
# --------------------------------------------------------------------------------------------

#: largest comparison plot carried from a folder (a PNG of one figure is ~100 KB)
MAX_COMPARE_PLOT_BYTES = 1024 * 1024


class Frontier:
    """ECAD schedules for one base model, ordered from most to least compute.

    Build one with :meth:`from_schedules` or :meth:`load`; the constructor takes schedules
    that are already named and ordered (it checks, it does not rename).

    Attributes:
        base_model: Hub id (or local path) of the diffusers pipeline the schedules are for.
        base_model_revision: the base model's commit the schedules were searched on, if known.
        pipeline_class: the diffusers pipeline class name, if known (informational).
        architecture: the transformer block structure every schedule is written for.
        resolutions: ``(height, width)`` pairs searched; the first is the main one.
        num_inference_steps: denoising steps of every schedule.
        guidance_scale: the guidance scale searched at, if known.
        metric: the quality metric the frontier is ranked by (``None`` if none was recorded).
        default: name of the schedule used when none is asked for.
        search: search provenance (metric, prompt set, population, generations, seed,
            ecad-hub version), or ``None`` for a frontier assembled from schedule files.
        source: where it was loaded from (folder, run directory or repo id), if loaded.
        repo_id: the Hub repo it was loaded from, if any.
        commit: the resolved commit sha of that repo (pin it with ``revision=``).

    Example::

        >>> frontier = Frontier.load("user/pixart-ecad")
        >>> len(frontier), frontier.default
        (4, 'ecad-2.68x')
        >>> frontier["ecad-2.68x"].mac_speedup
        2.6759
        >>> print(frontier.to_table())
    """

    #: the frontier's license id (``apache-2.0``, ``openrail++``, ``other``, ...) for the model card's
    #: metadata and ``ecad_config.json``; ``None``: not recorded (the card then uses the base model's
    #: where :meth:`push_to_hub` can read it, else ``other``)
    license: str | None = None

    def __init__(
        self,
        schedules: Sequence[CacheSchedule],
        *,
        base_model: str,
        base_model_revision: str | None = None,
        pipeline_class: str | None = None,
        resolutions: Iterable[tuple[int, int]] = (),
        guidance_scale: float | None = None,
        metric: str | None = None,
        default: str | None = None,
        search: Mapping | None = None,
        source: str | None = None,
        repo_id: str | None = None,
        commit: str | None = None,
        comparison: Mapping | None = None,
        pipeline_call: Mapping | None = None,
        scheduler: Mapping | None = None,
    ):
        schedules = list(schedules)
        label = source or "frontier"
        if not schedules:
            raise FrontierError(f"{label}: a frontier needs at least one schedule")
        if not isinstance(base_model, str) or not base_model:
            raise FrontierError(f"{label}: base_model must be a model id or path")
        for s in schedules:
            if not isinstance(s, CacheSchedule):
                raise TypeError(f"expected CacheSchedule objects, got {type(s).__name__}")
        first = schedules[0]
        for s in schedules[1:]:
            diffs = first.architecture.differences(s.architecture)
            if diffs:
                raise FrontierError(
                    f"{label}: schedules {first.name!r} and {s.name!r} are for different architectures "
                    f"({first.architecture.describe()} vs {s.architecture.describe()})"
                )
            if s.num_inference_steps != first.num_inference_steps:
                raise FrontierError(
                    f"{label}: schedules {first.name!r} ({first.num_inference_steps} steps) and {s.name!r} "
                    f"({s.num_inference_steps} steps) are for different step counts; a frontier has one"
                )
        names = [s.name for s in schedules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise FrontierError(f"{label}: several schedules are named {dupes[0]!r}")
        self._schedules = schedules
        self._by_name = {s.name: s for s in schedules}
        self.base_model = base_model
        self.base_model_revision = base_model_revision
        self.pipeline_class = pipeline_class
        self.architecture: Architecture = first.architecture
        self.num_inference_steps = first.num_inference_steps
        self.resolutions: tuple[tuple[int, int], ...] = tuple((int(h), int(w)) for h, w in resolutions)
        self.guidance_scale = None if guidance_scale is None else float(guidance_scale)
        self.metric = metric
        self.default = default if default is not None else names[len(names) // 2]
        if self.default not in self._by_name:
            raise FrontierError(f"{label}: default schedule {self.default!r} is not one of {names}")
        self.search = dict(search) if search else None
        self.source = source
        self.repo_id = repo_id
        self.commit = commit
        #: the comparison with other caches on held-out prompts (``ecad-hub compare --into``), if any
        self.comparison = dict(comparison) if comparison else None
        #: the comparison's PNG plot (``compare.png``), carried from the folder it was loaded from
        self.comparison_plot: bytes | None = None
        #: the pipeline call settings the schedules were searched with (``height``, ``width``,
        #: ``guidance_scale``, ``max_sequence_length``, ``use_resolution_binning``, ...): the defaults
        #: of :class:`~ecad_hub.ECADPipeline` calls and :attr:`~ecad_hub.pipeline.LoadedSchedule.call_kwargs`
        self.pipeline_call = dict(pipeline_call) if pipeline_call else None
        #: the scheduler the schedules were searched with: ``{"class": name, "config": {...}}`` (or ``None``)
        self.scheduler = copy.deepcopy(dict(scheduler)) if scheduler else None
        #: what the last speedup :meth:`pick` chose and why, when it was not the speedup typed (else ``None``)
        self.pick_note: str | None = None
        check_document(self.config_dict(), "ecad-config-v1", f"{label}: {CONFIG_FILE}")

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def from_schedules(
        cls,
        schedules: Iterable[CacheSchedule | str | os.PathLike],
        *,
        base_model: str,
        revision: str | None = None,
        pipeline_class: str | None = None,
        height: int | None = None,
        width: int | None = None,
        transformer_config=None,
        profile=None,
        metric: str | None = None,
        default: str | float | None = None,
        search: Mapping | None = None,
        guidance_scale: float | None = None,
        license: str | None = None,
        rename: bool | None = None,
    ) -> "Frontier":
        """Assemble a frontier from schedules (objects or v1 files): count MACs, sort, name.

        Args:
            schedules: :class:`CacheSchedule` objects or paths to v1 schedule files, all for
                one architecture and step count, with distinct masks.
            base_model: Hub id (or local path) of the diffusers pipeline they are for.
            revision: the base model's commit (recorded, and pinned by loaders).
            pipeline_class: diffusers pipeline class name (informational).
            height, width: the image size searched (default: the profile's, else the
                schedules' ``generation`` size).
            transformer_config: a transformer config (dict, ``config.json`` path, or model) to
                count MACs with :func:`ecad_hub.macs.profile_macs` at ``height`` x ``width``.
            profile: a :class:`~ecad_hub.macs.MacProfile` to count MACs with (instead).
                Without either, MACs already recorded in the schedules are kept.
            metric: the quality metric to rank by (default: the search's, else the first one
                the schedules record).
            default: the default schedule: a name (given or assigned) or a speedup for
                :meth:`pick` (default: :func:`default_schedule`, never a heuristic or an unscored
                schedule when a learned, scored one exists).
            search: search provenance (see ``schemas/ecad-config-v1.schema.json``).
            guidance_scale: the guidance scale searched at.
            license: the frontier's license id for the model card (``apache-2.0``, ``other``, ...).
            rename: ``None`` (default): schedules imported from another tool's file
                (``provenance.imported_from``: the ECAD authors' ``ours_fast``,
                ``recompute_all_every_003``) and heuristics (``fora-2``: see
                :func:`~ecad_hub.frontier.card.schedule_kind`) keep their own names, the others (a
                search's, or made in code) are named ``ecad-<speedup>x``; ``True``: every schedule
                gets a generated name; ``False``: none does.

        Generated names are ``ecad-<MAC speedup>x`` with two decimals (``ecad-1.00x`` ...
        ``ecad-2.68x``), or the schedule's own name when its MACs are unknown. Schedules whose names
        would collide get three decimals (``ecad-1.518x``, ``ecad-1.524x``), names still equal
        (generated or kept) get ``-2``, ``-3`` ... in frontier order. Order: most compute first
        (ties: better quality first, then content hash), so the result is the same for the same
        inputs in any order.
        """
        loaded: list[tuple[str, CacheSchedule]] = []
        for item in schedules:
            s = item if isinstance(item, CacheSchedule) else CacheSchedule.load(item)
            loaded.append((s.name, s))
        if not loaded:
            raise FrontierError("a frontier needs at least one schedule")
        arch = loaded[0][1].architecture
        for _, s in loaded:
            if arch.differences(s.architecture):
                raise FrontierError(
                    f"schedules {loaded[0][0]!r} and {s.name!r} are for different architectures "
                    f"({arch.describe()} vs {s.architecture.describe()})"
                )
        gens = [s.generation for _, s in loaded]
        if profile is None and transformer_config is not None:
            from ..macs import profile_macs

            h = height or next((g["height"] for g in gens if "height" in g), None)
            w = width or next((g["width"] for g in gens if "width" in g), None)
            if not (h and w):
                raise FrontierError("pass height and width to count MACs with a transformer config")
            try:
                profile = profile_macs(transformer_config, h, w)
            except (ValueError, TypeError) as e:
                raise FrontierError(f"cannot count MACs with {transformer_config}: {e}") from None
        if profile is not None:
            try:
                loaded = [(n, profile.annotate(s)) for n, s in loaded]
            except ArchitectureMismatchError as e:
                raise ArchitectureMismatchError(f"cannot count MACs: {e}") from None
        if height and width:
            resolutions = [(int(height), int(width))]
        elif profile is not None:
            resolutions = [(profile.height, profile.width)]
        else:
            resolutions = list(dict.fromkeys((g["height"], g["width"]) for g in gens if "height" in g and "width" in g))
        seen: dict[str, str] = {}
        for original, s in loaded:
            if s.content_hash in seen:
                raise FrontierError(f"schedules {seen[s.content_hash]!r} and {original!r} have the same mask")
            seen[s.content_hash] = original
        if metric is None:
            metric = ((search or {}).get("metric") or {}).get("name")
        if metric is None:
            metric = next((q["metric"] for _, s in loaded for q in s.metrics.get("quality", [])), None)

        def order(item):
            s = item[1]
            quality = s.quality(metric) if metric else None
            return (-_compute_key(s), -(quality if quality is not None else -math.inf), s.content_hash)

        loaded.sort(key=order)
        generation = {k: v for k, v in (("base_model", base_model), ("revision", revision),
                                         ("pipeline_class", pipeline_class),
                                         ("height", resolutions[0][0] if resolutions else None),
                                         ("width", resolutions[0][1] if resolutions else None),
                                         ("guidance_scale", guidance_scale)) if v is not None}
        named: list[CacheSchedule] = []
        renamed: dict[str, str] = {}
        for (original, s), name in zip(loaded, _frontier_names([s for _, s in loaded], rename)):
            renamed.setdefault(original, name)
            named.append(s.replace(name=name, generation={**generation, **s.generation}))
        clean_search = _clean_search(search)
        frontier = cls(named, base_model=base_model, base_model_revision=revision, pipeline_class=pipeline_class,
                       resolutions=resolutions, guidance_scale=guidance_scale, metric=metric,
                       default=default_schedule(named, metric, searched=bool(clean_search)), search=clean_search)
        frontier.license = check_license(license)
        if default is not None:
            if isinstance(default, str) and default in renamed and default not in frontier._by_name:
                default = renamed[default]
            frontier.default = frontier.resolve(default).name
        return frontier

    @classmethod
    def load(
        cls,
        path_or_repo_id: str | os.PathLike,
        revision: str | None = None,
        token: str | bool | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
    ) -> "Frontier":
        """Load a frontier from a search run directory, an exported folder, or a Hub repo.

        * a folder holding ``search.json`` and ``front/*.json``: a search run (named and
          ordered as by :meth:`from_schedules`);
        * a folder holding ``ecad_config.json``: a frontier saved with :meth:`save_pretrained`
          (or pulled);
        * otherwise a Hub repo id: only ``ecad_config.json``, ``frontier.json`` and
          ``schedules/*.json`` are downloaded (``snapshot_download(allow_patterns=...)``), at
          ``revision`` (branch, tag or commit sha); :attr:`commit` is the resolved sha.

        Every file is validated against its schema and checked against the index; any problem
        raises :class:`~ecad_hub.errors.FrontierError` (Hub failures raise
        :class:`~ecad_hub.errors.HubError`). Nothing in the repo is ever executed or unpickled.
        """
        path = Path(path_or_repo_id)
        if path.exists():
            if not path.is_dir():
                raise FrontierError(f"{path}: expected a folder (exported frontier or search run) or a Hub repo id")
            if (path / CONFIG_FILE).is_file():
                return cls.load_folder(path)
            if (path / "search.json").is_file():
                return cls._load_run(path)
            raise FrontierError(f"{path}: neither an exported ECAD folder (no {CONFIG_FILE}) "
                                f"nor a search run directory (no search.json)", path=str(path))
        repo_id = str(path_or_repo_id)
        if not is_repo_id(repo_id):
            raise FrontierError(f"{repo_id}: no such folder, and not a Hub repo id (namespace/name)")
        return cls.fetch(repo_id, revision=revision, token=token, cache_dir=cache_dir,
                         local_files_only=local_files_only)[0]

    @classmethod
    def fetch(
        cls,
        repo_id: str,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        card: bool = False,
    ) -> tuple["Frontier", "remote.Snapshot"]:
        """Download and load a frontier from a Hub repo; returns it with the :class:`~.remote.Snapshot`
        of what was downloaded (the cache folder, the commit, the files).

        Exactly the files the frontier layout names are downloaded (:func:`~.layout.listed_files`):
        ``ecad_config.json``, ``frontier.json`` and the schedules it lists (with ``card``, also
        ``README.md``, ``frontier.png`` and the listed heatmaps), all of one commit, each checked
        against the repo listing's sizes first (:data:`~.remote.MAX_FILE_BYTES` a file,
        :data:`~.remote.MAX_TOTAL_BYTES` in all). Nothing else is requested, whatever the repo holds.
        """
        if not is_repo_id(repo_id):
            raise FrontierError(f"{repo_id!r} is not a Hub repo id (namespace/name)", path=str(repo_id))
        repo = remote.RemoteRepo(repo_id, revision=revision, token=token, cache_dir=cache_dir,
                                 local_files_only=local_files_only)
        if repo.sizes is not None and CONFIG_FILE not in repo.sizes:
            raise FrontierError(f"{repo.label} is not an ECAD repo: it has no {CONFIG_FILE}", path=repo_id)
        folder = repo.download([CONFIG_FILE])
        label = repo.label
        config = read_json(folder / CONFIG_FILE, error_cls=FrontierError, max_bytes=remote.MAX_FILE_BYTES)
        check_document(config, "ecad-config-v1", f"{label}/{CONFIG_FILE}")
        repo.download([INDEX_FILE], optional=True)
        if not (folder / INDEX_FILE).is_file():
            raise FrontierError(f"{label}: {INDEX_FILE} is missing", path=label)
        index = read_json(folder / INDEX_FILE, error_cls=FrontierError, max_bytes=remote.MAX_FILE_BYTES)
        check_document(index, "frontier-v1", f"{label}/{INDEX_FILE}")
        repo.download(listed_files(index), optional=True)  # a missing schedule: load_folder names it
        if card:
            repo.download(listed_files(index, card=True), optional=True)
        frontier = cls.load_folder(folder, label=label, repo_id=repo_id, commit=repo.snapshot.commit,
                                   listing=repo.sizes)
        return frontier, repo.snapshot

    @classmethod
    def load_folder(cls, folder: str | os.PathLike, *, label: str | None = None, repo_id: str | None = None,
                    commit: str | None = None, listing: Iterable[str] | None = None) -> "Frontier":
        """Load and check an exported (or downloaded) frontier folder, the one holding ``ecad_config.json``.

        ``label`` names the folder in error messages (default: its path); ``repo_id`` and
        ``commit`` record where a downloaded folder came from, ``listing`` the repo's files (for
        the warning about unlisted schedules; default: the folder's). Every file is validated as
        :meth:`load` describes; :meth:`load` calls this for folders and Hub repos.
        """
        folder = Path(folder)
        label = str(folder) if label is None else label
        config = read_json(folder / CONFIG_FILE, error_cls=FrontierError)
        check_document(config, "ecad-config-v1", f"{label}/{CONFIG_FILE}")
        if not (folder / INDEX_FILE).is_file():
            raise FrontierError(f"{label}: {INDEX_FILE} is missing", path=label)
        index = read_json(folder / INDEX_FILE, error_cls=FrontierError)
        check_document(index, "frontier-v1", f"{label}/{INDEX_FILE}")
        config_arch = Architecture.from_dict(config["architecture"])  # checked by check_document
        schedules = []
        for entry in index["schedules"]:
            where = f"{label}/{entry['file']}"
            if entry["file"] != f"{SCHEDULES_DIR}/{entry['name']}.json":
                raise FrontierError(f"{label}/{INDEX_FILE}: schedule {entry['name']!r} must be stored as "
                                    f"{SCHEDULES_DIR}/{entry['name']}.json, not {entry['file']}")
            file = folder / entry["file"]
            if not file.is_file():
                raise FrontierError(f"{where}: listed in {INDEX_FILE} but missing", path=where)
            try:
                doc = read_json(file, error_cls=ScheduleError, max_bytes=MAX_SCHEDULE_BYTES)
                s = CacheSchedule.from_dict(doc, source=where)
            except ScheduleError as e:
                raise FrontierError(f"invalid schedule: {e}", path=where) from None
            if s.name != entry["name"]:
                raise FrontierError(f"{where}: names itself {s.name!r}, {INDEX_FILE} says {entry['name']!r}")
            if s.content_hash != entry["content_hash"]:
                raise FrontierError(f"{where}: content hash does not match {INDEX_FILE} (edited by hand?)")
            arch_diffs = config_arch.differences(s.architecture)
            if arch_diffs:
                raise FrontierError(f"{where}: architecture differs from {CONFIG_FILE}: {'; '.join(arch_diffs)}")
            schedules.append(s)
        listed = {e["file"] for e in index["schedules"]}
        if listing is None:
            present = [p.relative_to(folder).as_posix() for p in (folder / SCHEDULES_DIR).glob("*.json")]
        else:
            present = [p for p in listing if p.startswith(f"{SCHEDULES_DIR}/") and p.endswith(".json")]
        unlisted = sorted(p for p in present if p not in listed)
        if unlisted:
            shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
            warnings.warn(escape_control(f"{label}: ignoring {shown} (not listed in {INDEX_FILE})"), stacklevel=3)
        frontier = cls(
            schedules,
            base_model=config["base_model"],
            base_model_revision=config.get("base_model_revision"),
            pipeline_class=config.get("pipeline_class"),
            resolutions=[(r["height"], r["width"]) for r in config.get("resolutions", [])],
            guidance_scale=config.get("guidance_scale"),
            metric=config.get("metric"),
            default=config["default_schedule"],
            search=config.get("search"),
            source=label,
            repo_id=repo_id,
            commit=commit,
            comparison=index.get("comparison"),
            pipeline_call=config.get("pipeline_call"),
            scheduler=config.get("scheduler"),
        )
        frontier.license = config.get("license")
        plot_file = folder / COMPARE_PLOT_FILE
        if frontier.comparison and frontier.comparison.get("plot") == COMPARE_PLOT_FILE and plot_file.is_file() \
                and plot_file.stat().st_size <= MAX_COMPARE_PLOT_BYTES:
            frontier.comparison_plot = plot_file.read_bytes()
        if frontier.num_inference_steps != config["num_inference_steps"]:
            raise FrontierError(f"{label}: {CONFIG_FILE} says {config['num_inference_steps']} steps, "
                                f"the schedules have {frontier.num_inference_steps}")
        if frontier.index_dict() != index:
            raise FrontierError(f"{label}/{INDEX_FILE}: does not match {CONFIG_FILE} and the schedule files "
                                f"(stale index?)")
        return frontier

    @classmethod
    def _load_run(cls, run_dir: Path) -> "Frontier":
        meta = read_json(run_dir / "search.json", error_cls=FrontierError)
        if not isinstance(meta, dict) or not isinstance(meta.get("base_model"), str):
            raise FrontierError(f"{run_dir}/search.json: no base_model")
        files = sorted((run_dir / "front").glob("*.json")) if (run_dir / "front").is_dir() else []
        if not files:
            raise FrontierError(f"{run_dir}: no front/*.json schedules (has the search finished a generation?)")
        try:
            schedules = [CacheSchedule.load(f) for f in files]
        except ScheduleError as e:
            raise FrontierError(f"invalid schedule in search run: {e}") from None
        if meta.get("architecture"):
            try:
                declared = Architecture.from_dict(meta["architecture"])
            except (KeyError, TypeError, ValueError) as e:
                raise FrontierError(f"{run_dir}/search.json: bad architecture ({e})") from None
            diffs = declared.differences(schedules[0].architecture)
            if diffs:
                raise FrontierError(f"{run_dir}: front/ schedules do not match search.json's architecture: "
                                    f"{'; '.join(diffs)}")
        metric = meta.get("metric") or {}
        frontier = cls.from_schedules(
            schedules,
            base_model=meta["base_model"],
            revision=meta.get("revision"),
            pipeline_class=meta.get("pipeline_class"),
            height=meta.get("height"),
            width=meta.get("width"),
            metric=metric.get("name") if isinstance(metric, dict) else None,
            search=meta,
            guidance_scale=meta.get("guidance_scale"),
        )
        steps = meta.get("num_inference_steps")
        if steps is not None and steps != frontier.num_inference_steps:
            raise FrontierError(f"{run_dir}: search.json says {steps} steps, front/ schedules have "
                                f"{frontier.num_inference_steps}")
        frontier.source = str(run_dir)
        if meta.get("pipeline_call") or meta.get("scheduler"):  # the settings travel (checked as a config's)
            frontier.pipeline_call = dict(meta["pipeline_call"]) if isinstance(meta.get("pipeline_call"), dict) else None
            frontier.scheduler = copy.deepcopy(meta["scheduler"]) if isinstance(meta.get("scheduler"), dict) else None
            check_document(frontier.config_dict(), "ecad-config-v1", f"{run_dir}/search.json")
        return frontier

    # --- access -----------------------------------------------------------------------------
    @property
    def schedules(self) -> list[CacheSchedule]:
        """The schedules, from most to least compute."""
        return list(self._schedules)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._schedules]

    @property
    def height(self) -> int | None:
        return self.resolutions[0][0] if self.resolutions else None

    @property
    def width(self) -> int | None:
        return self.resolutions[0][1] if self.resolutions else None

    @property
    def family(self) -> str | None:
        """The model family tag of the transformer (``pixart``, ``flux``, ``sd3``), if ecad-hub knows it."""
        from ..adapters import find_adapter

        adapter = find_adapter(self.architecture.transformer_class)
        return adapter.family if adapter is not None else None

    def __len__(self) -> int:
        return len(self._schedules)

    def __iter__(self) -> Iterator[CacheSchedule]:
        return iter(list(self._schedules))

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str | int) -> CacheSchedule:
        if isinstance(name, int):
            return self._schedules[name]
        try:
            return self._by_name[name]
        except KeyError:
            raise ScheduleNotFoundError(f"{self._label}: no schedule named {name!r}; "
                                        f"available: {', '.join(self.names)}") from None

    @property
    def _label(self) -> str:
        return self.source or self.base_model

    def quality(self, schedule: CacheSchedule | str) -> float | None:
        """The schedule's value of the frontier's quality metric (``None`` if not recorded)."""
        s = self[schedule] if isinstance(schedule, str) else schedule
        return s.quality(self.metric) if self.metric else None

    def pick(self, speedup: float | str | None = None, *, min_quality: float | None = None) -> CacheSchedule:
        """Choose a schedule by MAC speedup or by quality.

        * ``pick(speedup=x)`` (a number, or a string like ``"3.93x"``): the schedule *shown* as
          ``x``, i.e. whose MAC speedup written with the decimals of names and tables (two, or as
          many as ``x`` has if more: ``ecad-1.518x``) is ``x``: ``3.93`` selects ``ecad-3.93x``
          even when its exact speedup is 3.9255. Otherwise the nearest schedule at or above ``x``
          (the least aggressive one reaching it; equal speedups: the better quality); then
          :attr:`pick_note` says what was picked instead of ``x`` (also logged at INFO on the
          ``ecad_hub.frontier`` logger), and is ``None`` after an exact pick.
        * ``pick(min_quality=q)``: the fastest schedule whose quality is >= ``q``.

        Raises :class:`~ecad_hub.errors.ScheduleNotFoundError` (a ``FrontierError``) naming the
        best available value when no schedule qualifies.
        """
        if (speedup is None) == (min_quality is None):
            raise TypeError("pass exactly one of speedup= or min_quality=")
        if speedup is not None:
            value, decimals = _speedup_value(speedup)
            known = [s for s in self._schedules if s.mac_speedup is not None]
            if not known:
                raise FrontierError(f"{self._label}: no schedule has recorded MACs; cannot pick by speedup")
            self.pick_note = None
            shown = format(value, f".{decimals}f")
            named = [s for s in known if format(s.mac_speedup, f".{decimals}f") == shown]
            if named:  # the schedule the user read in a name or a table
                return min(named, key=lambda s: (abs(s.mac_speedup - value), -self._quality_key(s)))
            fast_enough = [s for s in known if s.mac_speedup >= value - 1e-9]
            if not fast_enough:
                best = max(known, key=lambda s: s.mac_speedup)
                raise ScheduleNotFoundError(
                    f"{self._label}: no schedule reaches a {value:.2f}x MAC speedup; the fastest is "
                    f"{best.name} ({best.mac_speedup:.2f}x)")
            chosen = min(fast_enough, key=lambda s: (s.mac_speedup, -self._quality_key(s)))
            self.pick_note = (f"no schedule is shown as {shown}x; picked {chosen.name} "
                              f"({chosen.mac_speedup:.{decimals}f}x), the nearest at or above it")
            _logger.info("%s: %s", self._label, self.pick_note)
            return chosen
        scored = [(s, self.quality(s)) for s in self._schedules]
        scored = [(s, v) for s, v in scored if v is not None]
        if not scored:
            raise FrontierError(f"{self._label}: no schedule records a quality metric; cannot pick by quality")
        good = [s for s, v in scored if v >= float(min_quality)]
        if not good:
            best = max(scored, key=lambda t: t[1])
            raise ScheduleNotFoundError(
                f"{self._label}: no schedule reaches {self.metric} >= {min_quality:g}; the best is {best[0].name} "
                f"({self.metric} {best[1]:.4g})")
        return min(good, key=_compute_key)

    def _quality_key(self, s: CacheSchedule) -> float:
        q = self.quality(s)
        return q if q is not None else -math.inf

    def resolve(self, spec: str | float | int | CacheSchedule | None = None) -> CacheSchedule:
        """A schedule by name, by speedup (a number, or a string like ``"2.5"`` / ``"3.93x"``: see
        :meth:`pick`), or the default."""
        if spec is None:
            return self._by_name[self.default]
        if isinstance(spec, CacheSchedule):
            return spec
        if isinstance(spec, bool):
            raise TypeError("a schedule is chosen by name or speedup, not a bool")
        if isinstance(spec, (int, float)):
            return self.pick(speedup=float(spec))
        if isinstance(spec, str):
            if spec in self._by_name:
                return self._by_name[spec]
            if _SPEEDUP_SPEC.match(spec):
                return self.pick(speedup=spec)
            return self[spec]
        raise TypeError(f"a schedule is chosen by name or speedup, got {type(spec).__name__}")

    # --- documents --------------------------------------------------------------------------
    def config_dict(self) -> dict:
        """The ``ecad_config.json`` document."""
        d: dict[str, Any] = {"ecad_config_version": CONFIG_VERSION, "base_model": self.base_model}
        if self.base_model_revision:
            d["base_model_revision"] = self.base_model_revision
        if self.pipeline_class:
            d["pipeline_class"] = self.pipeline_class
        d["architecture"] = self.architecture.to_dict()
        if self.resolutions:
            d["resolutions"] = [{"height": h, "width": w} for h, w in self.resolutions]
        d["num_inference_steps"] = self.num_inference_steps
        if self.guidance_scale is not None:
            d["guidance_scale"] = self.guidance_scale
        d["default_schedule"] = self.default
        if self.metric:
            d["metric"] = self.metric
        if self.search:
            d["search"] = self.search
        if self.pipeline_call:
            d["pipeline_call"] = dict(self.pipeline_call)
        if self.scheduler:
            d["scheduler"] = copy.deepcopy(self.scheduler)
        if self.license:
            d["license"] = self.license
        return d

    def entry(self, schedule: CacheSchedule) -> dict:
        """The ``frontier.json`` entry of one schedule."""
        speedup, ratio = schedule.mac_speedup, _mac_ratio(schedule)
        e: dict[str, Any] = {
            "name": schedule.name,
            "file": f"{SCHEDULES_DIR}/{schedule.name}.json",
            "mac_speedup": None if speedup is None else round(float(speedup), 4),
            "mac_ratio": None if ratio is None else round(float(ratio), 6),
            "fraction_computed": round(schedule.fraction_computed(), 6),
            "quality": [{"metric": q["metric"], "value": q["value"]} for q in schedule.metrics.get("quality", [])],
        }
        latency = _latency(schedule)
        if "ms_per_image" in latency:
            e["latency_ms"] = latency["ms_per_image"]
        if "speedup" in latency:
            e["latency_speedup"] = latency["speedup"]
        e["content_hash"] = schedule.content_hash
        return e

    def index_dict(self) -> dict:
        """The ``frontier.json`` document: everything a listing needs."""
        d: dict[str, Any] = {"ecad_frontier_version": INDEX_VERSION, "base_model": self.base_model}
        if self.base_model_revision:
            d["base_model_revision"] = self.base_model_revision
        d["transformer_class"] = self.architecture.transformer_class
        if self.family:
            d["family"] = self.family
        if self.resolutions:
            d["resolutions"] = [{"height": h, "width": w} for h, w in self.resolutions]
        d["num_inference_steps"] = self.num_inference_steps
        if self.metric:
            d["metric"] = self.metric
        d["default_schedule"] = self.default
        d["schedules"] = [self.entry(s) for s in self._schedules]
        if self.comparison:
            d["comparison"] = copy.deepcopy(self.comparison)
        return d

    def plot_points(self) -> tuple[list[tuple[float, float]], str, str]:
        """``(points, xlabel, ylabel)`` for the frontier plot, one point per schedule.

        x is the MAC speedup (else the sub-module evaluation speedup); y the quality metric
        (else the percentage of sub-module evaluations computed).
        """
        with_macs = all(s.mac_speedup for s in self._schedules)
        with_quality = self.metric is not None and all(self.quality(s) is not None for s in self._schedules)
        points = []
        for s in self._schedules:
            x = s.mac_speedup if with_macs else 1.0 / s.fraction_computed()
            y = self.quality(s) if with_quality else 100.0 * s.fraction_computed()
            points.append((float(x), float(y)))
        xlabel = "MAC speedup (x)" if with_macs else "sub-module evaluation speedup (x)"
        ylabel = self.metric if with_quality else "sub-module evaluations computed (%)"
        return points, xlabel, ylabel

    # --- checking and rendering -------------------------------------------------------------
    def validate(self) -> "Frontier":
        """Check every document the artifact holds, as :meth:`load` would; returns ``self``.

        Each schedule with :meth:`CacheSchedule.validate`, then ``ecad_config.json`` and
        ``frontier.json`` against their schemas. Raises :class:`~ecad_hub.errors.FrontierError`.
        :meth:`render` (so :meth:`save_pretrained` and :meth:`push_to_hub`) calls it first, so
        ecad-hub never writes or pushes a frontier it would then refuse to load.
        """
        if self.default not in self._by_name:
            raise FrontierError(f"{self._label}: default schedule {self.default!r} is not one of {self.names}")
        for s in self._schedules:  # first: the index is made from them
            try:
                s.validate()
            except ScheduleError as e:
                where = f"{self._label}: {SCHEDULES_DIR}/{s.name}.json"
                raise FrontierError(f"invalid schedule: {where}: {e.problems[0]}{_more(e.problems)}",
                                    path=where) from None
        check_document(self.config_dict(), "ecad-config-v1", f"{self._label}: {CONFIG_FILE}")
        check_document(self.index_dict(), "frontier-v1", f"{self._label}: {INDEX_FILE}")
        return self

    def render(self, repo_id: str | None = None, *, license: str | None = None) -> dict[str, bytes]:
        """Every file of the artifact as ``{path in repo: bytes}``; the same frontier gives the same bytes.

        ``repo_id`` is written into the model card's usage snippets (without one, a placeholder the
        card marks as such). ``license``: the card's license id when :attr:`license` is not set
        (see :func:`~ecad_hub.frontier.card.model_card`). Everything is checked first (:meth:`validate`).
        """
        from .. import plotting

        self.validate()
        files = {
            CONFIG_FILE: dumps_json(self.config_dict()).encode(),
            INDEX_FILE: dumps_json(self.index_dict()).encode(),
        }
        for s in self._schedules:
            files[f"{SCHEDULES_DIR}/{s.name}.json"] = s.to_json().encode()
        points, xlabel, ylabel = self.plot_points()
        default_point = [points[self.names.index(self.default)]]
        title = f"ECAD frontier: {self.base_model}"
        files[PLOT_FILE] = _png(("frontier", tuple(points), tuple(default_point), xlabel, ylabel, title),
                                lambda: plotting.frontier_figure({"ECAD schedules": points}, highlight=default_point,
                                                                 xlabel=xlabel, ylabel=ylabel, title=title))
        for s in self._schedules:
            files[f"{HEATMAPS_DIR}/{s.name}.png"] = _png(("heatmap", s.name, s.content_hash, s.mac_speedup),
                                                         lambda s=s: plotting.mask_heatmap_figure(s))
        plot = (self.comparison or {}).get("plot")
        if plot == COMPARE_PLOT_FILE and self.comparison_plot:
            files[COMPARE_PLOT_FILE] = self.comparison_plot
        files[CARD_FILE] = str(model_card(self, repo_id, license=self.license or license)).encode()
        return files

    # --- saving -----------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, *, repo_id: str | None = None) -> Path:
        """Write the whole artifact (config, index, schedules, model card, PNGs) to a folder.

        The folder is built beside ``save_directory`` and moved into place, so it holds either
        the old export or the complete new one. An existing export is replaced (files ecad-hub
        does not manage are kept); a non-empty folder that is not an export is refused.
        ``repo_id`` goes into the model card's usage snippets (default: the repo it was loaded
        from; without one the card says it has none, and :meth:`push_to_hub` fills it in). Returns
        the folder.

        Example::

            >>> frontier.save_pretrained("pixart-ecad")
            PosixPath('pixart-ecad')
            >>> Frontier.load("pixart-ecad") == frontier
            True
        """
        target = Path(save_directory)
        check_target(target)  # a target that cannot be written fails before the (slow) rendering
        files = self.render(repo_id=repo_id or self.repo_id)
        write_folder(target, files)
        return target

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        commit_message: str | None = None,
        license: str | None = None,
    ):
        """Publish the frontier to a Hub model repo in ONE commit; returns its ``CommitInfo``, or ``None``.

        Creates the repo if needed (``private`` applies then), compares every file with what
        the repo holds at ``revision`` (default ``main``), and commits only the changed files
        plus deletions of stale ``schedules/`` and ``heatmaps/`` files, with the head it
        compared against as parent. An unchanged frontier makes no commit and returns ``None``.
        A failed commit changes nothing (raises :class:`~ecad_hub.errors.HubError`). A repo
        holding something other than an ECAD frontier is refused.

        The model card is written for ``repo_id`` (its snippets name it, whatever the folder was
        exported with). Its ``license``: ``license=`` (recorded in ``ecad_config.json`` too), else
        :attr:`license`, else the base model's license as its Hub card states it, else ``other``.

        Example::

            >>> info = frontier.push_to_hub("user/pixart-ecad")
            >>> info.commit_url
            'https://huggingface.co/user/pixart-ecad/commit/...'
            >>> frontier.push_to_hub("user/pixart-ecad") is None      # nothing changed
            True
        """
        if license is not None:
            self.license = check_license(license)
        self.validate()  # before any request: an invalid frontier never touches the Hub
        base_license = None if self.license else _base_model_license(self.base_model, self.base_model_revision, token)
        files = self.render(repo_id=repo_id, license=base_license)  # before any write: a failure here changes nothing
        message = commit_message or f"ECAD frontier: {len(self)} schedules for {self.base_model}"
        return remote.push_files(repo_id, files, commit_message=message, private=private, token=token,
                                 revision=revision, create_pr=create_pr)

    # --- display ----------------------------------------------------------------------------
    def to_table(self) -> str:
        """A text table: name, MAC speedup, quality, latency, computed fraction, kind; ``*`` marks the default.

        Quality reads ``not scored`` where none is recorded; latency carries the device, dtype and
        batch size it was measured with (``device not recorded`` ... where the schedule does not
        say); kind is :func:`~ecad_hub.frontier.card.schedule_kind` (learned, heuristic, ...).
        """
        rows = []
        searched = bool(self.search)
        for s in self._schedules:
            latency = _latency(s)
            quality = self.quality(s)
            rows.append([
                ("* " if s.name == self.default else "  ") + s.name,
                _fmt(s.mac_speedup, ".2f") + ("x" if s.mac_speedup else ""),
                "not scored" if quality is None else _fmt(quality),
                f"{latency['ms_per_image']:.1f} ms ({latency_conditions(latency)})" if "ms_per_image" in latency else "-",
                f"{100 * s.fraction_computed():.1f}%",
                KIND_LABELS[schedule_kind(s, searched)],
            ])
        return format_table(rows, ["  schedule", "MAC speedup", self.metric or "quality", "latency", "computed",
                                   "kind"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self.config_dict() == other.config_dict() and self._schedules == other._schedules

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = f", from {self.source}" if self.source else ""
        return (f"Frontier({self.base_model}, {self.architecture.transformer_class}, {self.num_inference_steps} steps, "
                f"{len(self)} schedules [{', '.join(self.names)}], default {self.default!r}{where})")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_PNG_CACHE: "OrderedDict[tuple, bytes]" = OrderedDict()
_PNG_CACHE_SIZE = 256


def _png(key: tuple, make_figure) -> bytes:
    """PNG bytes of ``make_figure()``, memoised on ``key`` (everything the figure depends on).

    Rendering is the slow part of an export; a search re-exporting its frontier every
    generation, or a save followed by a push, renders each figure once.
    """
    from ..plotting import png_bytes

    if key in _PNG_CACHE:
        _PNG_CACHE.move_to_end(key)
        return _PNG_CACHE[key]
    data = png_bytes(make_figure())
    _PNG_CACHE[key] = data
    while len(_PNG_CACHE) > _PNG_CACHE_SIZE:
        _PNG_CACHE.popitem(last=False)
    return data


def _frontier_names(schedules: Sequence[CacheSchedule], rename: bool | None) -> list[str]:
    """The names of ``schedules`` (in frontier order) in a frontier: see :meth:`Frontier.from_schedules`."""
    keep = [rename is False or (rename is None and ("imported_from" in s.provenance or schedule_kind(s) == "heuristic"))
            for s in schedules]
    generated = iter(assign_names([s for s, k in zip(schedules, keep) if not k]))
    return unique_names([s.name if k else next(generated) for s, k in zip(schedules, keep)])


def default_schedule(schedules: Sequence[CacheSchedule], metric: str | None, *, searched: bool = False) -> str:
    """The default of a frontier of ``schedules`` (most to least compute): the middle one of the
    first non-empty group of

    1. learned schedules with a ``metric`` score, 2. learned ones without, 3. schedules of
    unrecorded origin with a score, 4. the same without, 5. heuristics with a score, 6. heuristics,
    7. all of them

    (kinds as :func:`~ecad_hub.frontier.card.schedule_kind` says, ``searched`` as there; the
    all-compute reference is never the default unless it is all there is). So a heuristic such
    as ``recompute_all_every_003`` or an unscored schedule is never the default while a learned,
    scored one exists.
    """
    schedules = list(schedules)
    kind = {s.name: schedule_kind(s, searched) for s in schedules}

    def scored(s: CacheSchedule) -> bool:
        return metric is not None and s.quality(metric) is not None

    for wanted, with_score in (("learned", True), ("learned", False), ("unknown", True), ("unknown", False),
                               ("heuristic", True), ("heuristic", False)):
        group = [s for s in schedules if kind[s.name] == wanted and scored(s) == with_score]
        if group:
            return group[len(group) // 2].name
    return schedules[len(schedules) // 2].name


#: Relative quality tolerance of :func:`quality_default`: 5% of the all-compute quality's magnitude.
QUALITY_TOLERANCE = 0.05


def quality_default(frontier: "Frontier", *, heldout: Mapping[str, float] | None = None,
                    tolerance: float | None = None, relative: float = QUALITY_TOLERANCE) -> str:
    """The default chosen on quality: the fastest learned schedule whose quality is within a
    tolerance of the all-compute quality on every measurement there is.

    A schedule qualifies when its recorded quality (the frontier's metric) is at least
    ``q_all - tolerance`` for the all-compute value its record carries
    (``metrics.quality[].all_compute_value``, else the all-compute schedule's quality), and, when
    ``heldout`` (``{schedule name: held-out quality, "all-compute": value}``) is given, its
    held-out quality passes the same test against the held-out all-compute value. ``tolerance``
    is in the metric's units (the quickstart passes the embedded reward's,
    :data:`ecad_hub.embedded.REWARD_TOLERANCE`); ``None``: ``relative * |q_all|`` (``relative``
    itself where ``q_all`` is 0). Without any qualifying schedule: the least aggressive learned
    schedule; without quality or learned schedules: the frontier's current default. Higher
    quality is better (the metrics ecad-hub records are).
    """
    learned = [s for s in frontier if schedule_kind(s, bool(frontier.search)) == "learned"]
    if not learned or frontier.metric is None:
        return frontier.default
    reference = next((frontier.quality(s) for s in frontier if schedule_kind(s) == "all-compute"
                      and frontier.quality(s) is not None), None)

    def within(value: float | None, ref: float | None) -> bool:
        if value is None or ref is None:
            return False
        allowed = tolerance if tolerance is not None else relative * (abs(ref) if ref else 1.0)
        return value >= ref - allowed

    def qualifies(s: CacheSchedule) -> bool:
        record = next((q for q in s.metrics.get("quality", []) if q["metric"] == frontier.metric), None)
        if record is None:
            return False
        if not within(record["value"], record.get("all_compute_value", reference)):
            return False
        if heldout is not None:
            return within(heldout.get(s.name), heldout.get("all-compute"))
        return True

    ok = [s for s in learned if qualifies(s)]
    if not ok:
        return max(learned, key=_compute_key).name
    return min(ok, key=_compute_key).name


def _base_model_license(base_model: str, revision: str | None, token) -> str | None:
    """The ``license`` the base model's Hub card states (``None`` if it states none or cannot be read)."""
    from ..embedded import MODEL_ID

    if base_model == MODEL_ID or not is_repo_id(base_model):
        return None
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(base_model, revision=revision, token=token)
    except Exception:  # noqa: BLE001 - any failure: the license is simply not known
        return None
    data = getattr(info, "card_data", None)
    value = data.get("license") if data is not None else None
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    from .card import LICENSE_ID

    return value.lower() if isinstance(value, str) and LICENSE_ID.fullmatch(value.lower()) else None


def _speedup_value(speedup: float | int | str) -> tuple[float, int]:
    """``(value, decimals to compare at)`` of a speedup as typed: the decimals of names and tables
    (two), or more when the value is written with more (``"1.518x"``, ``1.518``)."""
    if isinstance(speedup, bool):
        raise TypeError("a speedup is a number or a string like '2.5x', not a bool")
    if isinstance(speedup, str):
        match = _SPEEDUP_SPEC.match(speedup)
        if not match:
            raise ScheduleNotFoundError(f"{speedup!r} is not a speedup (a number, optionally followed by x)")
        text = match.group(1)
        value = float(text)
    else:
        value = float(speedup)
        if not math.isfinite(value):
            raise ScheduleNotFoundError(f"{speedup!r} is not a finite speedup")
        text = repr(value)
    decimals = len(text.partition(".")[2]) if "e" not in text.lower() else 2
    return value, max(2, min(decimals, 6))


def _clean_search(search: Mapping | None) -> dict | None:
    """Search provenance restricted to the keys ``ecad_config.json`` records (e.g. from search.json)."""
    if not search:
        return None
    out: dict[str, Any] = {}
    metric = search.get("metric")
    if isinstance(metric, Mapping) and metric.get("name"):
        out["metric"] = {k: v for k, v in metric.items() if isinstance(v, (str, int, float, bool)) or v is None}
    prompts = search.get("prompt_set")
    if isinstance(prompts, Mapping) and prompts.get("name"):
        out["prompt_set"] = {k: prompts[k] for k in _PROMPT_SET_KEYS if prompts.get(k) is not None}
    for key in _SEARCH_KEYS:
        if search.get(key) is not None:
            out[key] = search[key]
    return out or None
