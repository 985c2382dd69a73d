"""``ecad-hub validate``: check ecad-hub files, each against its own schema and checks.

    ecad-hub validate schedules/                 # schedule files (a folder is searched for *.json)
    ecad-hub validate pixart-ecad                # an exported or pulled frontier folder
    ecad-hub validate runs/pixart                # a search run directory
    ecad-hub validate pixart-ecad/frontier.json  # one file of any kind

What a path is, is told by the layout (a folder holding ``ecad_config.json`` is a frontier folder,
one holding ``search.json`` a run directory) and, for a single file, by its name or its top-level
version key (:func:`file_kind`). Every check is the one the reader of that file runs:

* schedules: :func:`ecad_hub.schedule.validate_file` (schema, shapes, architecture);
* ``ecad_config.json`` / ``frontier.json`` / the registry index: their JSON schema
  (:func:`ecad_hub.schemas.schema_problems`, plus the architecture checks of a config); a frontier
  folder whose files are all valid is then loaded (:meth:`ecad_hub.frontier.Frontier.load_folder`:
  index against schedules, content hashes, architecture, steps);
* a run directory: ``search.json`` (version, base model, architecture, steps, seed),
  ``mac_profile.json`` (a :class:`~ecad_hub.macs.MacProfile`, for the search's architecture),
  ``generations/gen_NNNN.json`` (:func:`ecad_hub.search.run_dir.check_generation_record`),
  ``evaluations.json`` (:class:`~ecad_hub.search.run_dir.EvaluationStore`), ``reference.json`` and
  ``front/*.json``; then the front is loaded as a frontier (:meth:`ecad_hub.frontier.Frontier.load`).
  (``--resume`` additionally replays every generation against the evaluations.)

Output: one line per problem (``FILE: problem``) on stdout, or ``FILE: ok`` (``-q``: nothing) and
a one-line summary; with any problem, one ``error: N of M file(s) invalid`` line on stderr and
exit status 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EcadError, escape_control

#: file kinds, by the names the layouts give them
SCHEDULE, CONFIG, INDEX, REGISTRY, SEARCH, GENERATION, EVALUATIONS, MAC_PROFILE, REFERENCE = (
    "schedule", "ecad_config.json", "frontier.json", "registry index", "search.json", "generation record",
    "evaluations.json", "mac_profile.json", "reference.json")
_GENERATION_NAME = re.compile(r"gen_\d{4,}\.json")
_BY_NAME = {"ecad_config.json": CONFIG, "frontier.json": INDEX, "search.json": SEARCH,
            "evaluations.json": EVALUATIONS, "mac_profile.json": MAC_PROFILE, "reference.json": REFERENCE}
_BY_VERSION_KEY = {"ecad_schedule_version": SCHEDULE, "ecad_config_version": CONFIG, "ecad_frontier_version": INDEX,
                   "registry_index_version": REGISTRY}


def add_validate_parser(sub: argparse._SubParsersAction, handler) -> None:
    p = sub.add_parser("validate", help="validate schedules, frontier folders, search runs or single files; "
                                        "exit 1 if any is invalid",
                       description="Check ecad-hub files, each against its own schema: schedule files, an "
                                   "exported or pulled frontier folder (ecad_config.json, frontier.json, "
                                   "schedules/*.json, and that they agree), a search run directory (search.json, "
                                   "mac_profile.json, generations/*.json, evaluations.json, front/*.json), or "
                                   "single files of any of these kinds.")
    p.set_defaults(handler=handler)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="files, frontier folders, search run directories, or folders of them")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")


# --------------------------------------------------------------------------------------------
# what a path is
# --------------------------------------------------------------------------------------------

@dataclass
class Report:
    """What checking the paths found: per file checked, its problems (empty: valid) and its kind."""

    files: dict[str, list[str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    summaries: list[str] = field(default_factory=list)

    def add(self, label: str, problems: list[str], kind: str = SCHEDULE) -> None:
        self.files.setdefault(label, []).extend(problems)
        self.kinds[label] = kind


def file_kind(path: Path, doc: Any) -> str:
    """What a single JSON file is: by its top-level version key, else by its name, else a schedule."""
    if isinstance(doc, dict):
        for key, kind in _BY_VERSION_KEY.items():
            if key in doc:
                return kind
        if "ecad_search_version" in doc:
            if "offspring" in doc or _GENERATION_NAME.fullmatch(path.name):
                return GENERATION
            if "evaluations" in doc:
                return EVALUATIONS
            return SEARCH
    if _GENERATION_NAME.fullmatch(path.name) and path.parent.name == "generations":
        return GENERATION
    return _BY_NAME.get(path.name, SCHEDULE)


def is_frontier_folder(path: Path) -> bool:
    from ..frontier.layout import CONFIG_FILE

    return path.is_dir() and (path / CONFIG_FILE).is_file()


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / "search.json").is_file() and not is_frontier_folder(path)


def _read(path: Path) -> tuple[Any, list[str]]:
    from ..schedule import MAX_SCHEDULE_BYTES
    from ..utils.io import read_json

    try:
        return read_json(path, error_cls=EcadError, max_bytes=2 * MAX_SCHEDULE_BYTES), []
    except EcadError as e:
        return None, [str(e)]


def _json_type(v: Any) -> str:
    from ..search.run_dir import _json_type as json_type

    return json_type(v)


# --------------------------------------------------------------------------------------------
# the checks of each kind (each returns one line per problem, prefixed with the file)
# --------------------------------------------------------------------------------------------

def schema_file_problems(path: Path, doc: Any, schema: str) -> list[str]:
    """``doc`` (read from ``path``) against ``schemas/<schema>``, as the frontier readers check it."""
    from ..frontier import document_problems
    from ..schedule import architecture_problems

    problems = document_problems(doc, schema)
    if not problems and schema == "ecad-config-v1":
        problems = [f"architecture/{p}" for p in architecture_problems(doc["architecture"])]
    return [f"{path}: {p}" for p in problems]


def search_problems(path: Path, doc: Any) -> tuple[list[str], dict | None]:
    """Problems of a ``search.json``, and (when it is usable) its architecture, steps and seed."""
    from ..schedule import Architecture
    from ..search.config import SEARCH_VERSION
    from ..search.run_dir import is_int

    if not isinstance(doc, dict):
        return [f"{path}: not a search.json (a JSON {_json_type(doc)}, expected an object)"], None
    problems = []
    if doc.get("ecad_search_version") != SEARCH_VERSION:
        problems.append(f"{path}: ecad_search_version {_short(doc.get('ecad_search_version'))}, expected "
                        f"{SEARCH_VERSION}")
    if not isinstance(doc.get("base_model"), str) or not doc.get("base_model"):
        problems.append(f"{path}: no base_model")
    for key in ("num_inference_steps", "seed"):
        if not is_int(doc.get(key)) or (key == "num_inference_steps" and doc[key] < 1):
            problems.append(f"{path}: {key} is {_short(doc.get(key))}, expected "
                            f"{'a positive integer' if key == 'num_inference_steps' else 'an integer'}")
    for key in ("height", "width", "population", "generations"):
        if key in doc and doc[key] is not None and (not is_int(doc[key]) or doc[key] < 1):
            problems.append(f"{path}: {key} is {_short(doc[key])}, expected a positive integer")
    arch = None
    try:
        arch = Architecture.from_dict(doc.get("architecture"))
    except EcadError as e:
        problems.append(f"{path}: architecture: {e}")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        problems.append(f"{path}: architecture: {type(e).__name__}: {escape_control(e)}")
    if problems:
        return problems, None
    return [], {"architecture": arch, "steps": doc["num_inference_steps"], "seed": doc["seed"]}


def mac_profile_problems(path: Path, doc: Any, search: dict | None) -> list[str]:
    from ..macs import MacProfile

    if not isinstance(doc, dict):
        return [f"{path}: not a MAC profile (a JSON {_json_type(doc)}, expected an object)"]
    try:
        profile = MacProfile.from_dict(doc)
    except EcadError as e:
        return [f"{path}: {e}"]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        what = f"missing key {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {escape_control(e)}"
        return [f"{path}: not a MAC profile ({what})"]
    problems = []
    for g in profile.architecture.groups:
        arr = profile.component_macs.get(g.name)
        if arr is None or arr.shape != (g.num_blocks, len(g.components)):
            problems.append(f"{path}: component_macs/{g.name}: expected {g.num_blocks} x {len(g.components)} "
                            f"(blocks x components), got {None if arr is None else list(arr.shape)}")
        elif (arr < 0).any():
            problems.append(f"{path}: component_macs/{g.name}: negative MACs")
    if search is not None:
        diffs = search["architecture"].differences(profile.architecture)
        if diffs:
            problems.append(f"{path}: architecture differs from search.json's: {'; '.join(diffs)}")
    return problems


def generation_problems(path: Path, doc: Any, search: dict | None) -> list[str]:
    from ..errors import SearchError
    from ..search.genome import Genome
    from ..search.run_dir import check_generation_record

    if search is None:
        return [f"{path}: a generation record is checked against its run's search.json "
                f"({path.parent.parent / 'search.json'}), which is missing or invalid"]
    k = int(_GENERATION_NAME.fullmatch(path.name).group(0)[4:-5]) if _GENERATION_NAME.fullmatch(path.name) else \
        (doc.get("generation") if isinstance(doc, dict) else -1)
    try:
        check_generation_record(path, doc, k, seed=search["seed"],
                                genome=Genome(search["architecture"], search["steps"]))
    except SearchError as e:
        return [str(e).replace("; cannot resume (delete this and later generation files to redo them)",
                               " (a resume refuses it; delete this and later generation files to redo them)")]
    return []


def evaluations_problems(path: Path) -> tuple[list[str], int]:
    from ..errors import SearchError
    from ..search.run_dir import EvaluationStore

    store = EvaluationStore(path)
    try:
        store.load()
    except SearchError as e:
        return [str(e)], 0
    return [], len(store)


def reference_problems(path: Path) -> list[str]:
    from ..search.run_dir import RunDir

    _, problem = RunDir(path.parent).read_reference_meta()  # reads path.parent / "reference.json", i.e. path
    return [problem] if problem else []


def schedule_problems(path: Path) -> list[str]:
    from ..schedule import validate_file

    return validate_file(path)


def check_file(path: Path, report: Report, *, search: dict | None | bool = False) -> str:
    """Check one file by its kind (``search``: the run's parsed search.json when known); returns the kind."""
    doc, problems = _read(path)
    kind = file_kind(path, doc if not problems else None)
    if problems and kind == SCHEDULE:
        problems = schedule_problems(path)  # the schedule reader's own wording
    elif not problems:
        if kind == SCHEDULE:
            problems = schedule_problems(path)
        elif kind == CONFIG:
            problems = schema_file_problems(path, doc, "ecad-config-v1")
        elif kind == INDEX:
            problems = schema_file_problems(path, doc, "frontier-v1")
        elif kind == REGISTRY:
            problems = schema_file_problems(path, doc, "registry-index-v1")
        elif kind == SEARCH:
            problems, _ = search_problems(path, doc)
        elif kind in (MAC_PROFILE, GENERATION):
            if search is False:  # a file given alone: its run's search.json, when there is one
                search = _search_of(path.parent if kind == MAC_PROFILE else path.parent.parent)
            check = mac_profile_problems if kind == MAC_PROFILE else generation_problems
            problems = check(path, doc, search if search else None)
        elif kind == EVALUATIONS:
            problems, _ = evaluations_problems(path)
        elif kind == REFERENCE:
            problems = reference_problems(path)
    report.add(str(path), problems, kind)
    return kind


def _search_of(run_dir: Path) -> dict | None:
    path = run_dir / "search.json"
    if not path.is_file():
        return None
    doc, problems = _read(path)
    if problems:
        return None
    return search_problems(path, doc)[1]


# --------------------------------------------------------------------------------------------
# folders
# --------------------------------------------------------------------------------------------

def check_frontier_folder(folder: Path, report: Report) -> None:
    """ecad_config.json, frontier.json and schedules/*.json each against its own schema; then the folder as a whole."""
    from ..frontier import Frontier
    from ..frontier.layout import CONFIG_FILE, INDEX_FILE, SCHEDULES_DIR

    before = {k: list(v) for k, v in report.files.items()}
    check_file(folder / CONFIG_FILE, report)
    index = folder / INDEX_FILE
    if index.is_file():
        check_file(index, report)
    else:
        report.add(str(index), [f"{index}: missing (a frontier folder has {CONFIG_FILE}, {INDEX_FILE} and "
                                f"{SCHEDULES_DIR}/)"], INDEX)
    schedules = sorted((folder / SCHEDULES_DIR).glob("*.json")) if (folder / SCHEDULES_DIR).is_dir() else []
    for f in schedules:
        report.add(str(f), schedule_problems(f))
    bad = any(report.files[k] and k not in before for k in report.files)
    if bad:
        return
    try:
        frontier = Frontier.load_folder(folder)
    except EcadError as e:  # the files disagree with each other: the one the message names (else the index)
        named = str(e).split(": ", 1)[0]
        report.files[named if named in report.files else str(index)].append(str(e))
        return
    report.summaries.append(
        f"{folder}: ok (frontier folder: {CONFIG_FILE}, {INDEX_FILE}, {len(schedules)} schedule(s) in "
        f"{SCHEDULES_DIR}/, {len(frontier)} listed; default {frontier.default}; {frontier.architecture.transformer_class},"
        f" {frontier.num_inference_steps} steps)")


def check_run_dir(run: Path, report: Report) -> None:
    """search.json, mac_profile.json, generations/*.json, evaluations.json, reference.json, front/*.json; then the front."""
    from ..frontier import Frontier
    from ..search.run_dir import RunDir

    rd = RunDir(run)
    before = set(report.files)
    doc, problems = _read(rd.search_json)
    search = None
    if not problems:
        problems, search = search_problems(rd.search_json, doc)
    report.add(str(rd.search_json), problems, SEARCH)
    if rd.mac_profile_json.is_file() and search is not None:  # (both are checked against search.json)
        check_file(rd.mac_profile_json, report, search=search)
    gens = sorted(rd.generations_dir.glob("gen_*.json")) if rd.generations_dir.is_dir() and search is not None else []
    for g in gens:
        if _GENERATION_NAME.fullmatch(g.name):
            doc, problems = _read(g)
            report.add(str(g), problems or generation_problems(g, doc, search), GENERATION)
    evaluations = 0
    if rd.evaluations_json.exists():
        problems, evaluations = evaluations_problems(rd.evaluations_json)
        report.add(str(rd.evaluations_json), problems, EVALUATIONS)
    if rd.reference_json.exists():
        report.add(str(rd.reference_json), reference_problems(rd.reference_json), REFERENCE)
    front = sorted(rd.front_dir.glob("*.json")) if rd.front_dir.is_dir() else []
    for f in front:
        report.add(str(f), schedule_problems(f))
    if any(report.files[k] for k in report.files if k not in before):
        return
    if not front:
        report.summaries.append(f"{run}: ok (search run: search.json; no generation finished yet, no front/)")
        return
    try:
        Frontier.load(run)
    except EcadError as e:
        report.files[str(rd.search_json)].append(str(e))
        return
    done = rd.completed_generations()
    report.summaries.append(
        f"{run}: ok (search run: search.json, {'mac_profile.json, ' if rd.mac_profile_json.is_file() else ''}"
        f"{len(done)} generation(s), {evaluations} evaluation(s), {len(front)} front schedule(s); "
        f"--resume also replays the generations against the evaluations)")


def check_path(path: Path, report: Report) -> None:
    if is_frontier_folder(path):
        check_frontier_folder(path, report)
    elif is_run_dir(path):
        check_run_dir(path, report)
    elif path.is_dir():
        for child in sorted(path.iterdir()):
            if child.is_dir():
                check_path(child, report)
            elif child.suffix == ".json" and child.is_file():
                check_file(child, report)
    else:
        check_file(path, report)


def _short(v: Any) -> str:
    from ..search.run_dir import _short as short

    return escape_control(short(v))


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------

def cmd_validate(args) -> int:
    """Validate every path (see the module docstring); one line per problem, exit 1 if any."""
    report = Report()
    for p in args.paths:
        check_path(Path(p), report)
    if not report.files:
        print("error: no files to validate found (no *.json in " + ", ".join(args.paths) + ")", file=sys.stderr)
        return 1
    bad = [label for label, problems in report.files.items() if problems]
    for label, problems in report.files.items():
        if problems:
            for problem in problems:
                print(problem)
        elif not args.quiet:
            kind = report.kinds.get(label, SCHEDULE)
            print(f"{label}: ok" + (f" ({kind})" if kind not in (SCHEDULE, Path(label).name) else ""))
    if bad:
        print(f"error: {len(bad)} of {len(report.files)} file(s) invalid", file=sys.stderr)
        return 1
    if not args.quiet:
        for line in report.summaries:
            print(line)
        print(f"{len(report.files)} file(s) valid")
    return 0
