"""The run directory of a search: its layout, and reading and writing every file in it.

Layout (a contract :meth:`ecad_hub.frontier.Frontier.load` relies on)::

    search.json                 the search's configuration (:func:`search_document`)
    generations/gen_NNNN.json   per generation: evaluated candidates, surviving population,
                                the Pareto front (hashes), hypervolume
    evaluations.json            content hash -> objectives of every schedule ever evaluated
    front/<name>.json           the current Pareto front as schedule v1 files
    frontier.png                candidates of every generation (older ones faded) and the front
    reference_images.safetensors  all-compute images (metrics that compare against them)
    reference.json              their ms per image and count
    mac_profile.json            the MAC profile used for the cost objective
    log.txt                     one line per event and per generation

State is JSON (+ safetensors), never pickle. Resuming needs an identical ``search.json`` (up to
:data:`RESUMABLE_DIFFERENCES`), reads the gap-free prefix of generation files, and reuses every
evaluation in ``evaluations.json``.

Nothing in a damaged run directory crashes a resume or silently changes its results
(:meth:`ecad_hub.search.runner.SearchRunner` does the cross-checks; each refusal is one
:class:`~ecad_hub.errors.SearchError` line naming the file):

* generation records are checked field by field (:func:`check_generation_record`), then rebuilt
  from the evaluations and compared with what is recorded, and replayed without evaluating
  (NSGA-II is deterministic per generation), so an edited population, front, hypervolume or
  ``hv_reference`` is refused;
* ``evaluations.json`` is a cache: entries of recorded candidates that are missing (or the whole
  file) are rebuilt from the generation records, others are evaluated again; an entry that
  disagrees with a generation record, or whose MACs do not follow from its genome, is refused;
  each entry carries the ``sha256`` of its hash and content, and an entry no record confirms (a
  candidate of an interrupted generation) is reused only if that checksum holds -- otherwise it is
  dropped and evaluated again (its quality cannot be checked any other way);
* ``reference.json`` records the sha256 of the reference images (:func:`images_sha256`); images
  that are missing, unreadable or do not match are generated again and used only if they match
  the recorded sha256 (else the resume is refused: the recorded qualities were measured against
  the original images). Without a recorded sha256 (``reference.json`` missing, damaged, or from
  before it was recorded) the stored images are generated again and must be identical to them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import SearchError
from ..schedule import CacheSchedule
from ..utils.io import atomic_write_json, read_json
from .config import SEARCH_VERSION

#: Keys of search.json that may differ when resuming (they do not change what is computed).
RESUMABLE_DIFFERENCES = {"generations", "ecad_hub_version", "execution", "pipeline_call", "scheduler"}
#: Seconds between two writes of ``evaluations.json`` inside a generation.
FLUSH_INTERVAL_S = 2.0


def search_document(context, metric_desc: dict) -> dict:
    """The content of ``search.json``: everything that defines the search (compared on resume).

    ``context`` is the :class:`~ecad_hub.search.context.SearchContext` of the search,
    ``metric_desc`` its metric's ``describe()``.
    """
    from ..version import __version__

    cfg = context.config
    name = context.metric_name
    return {
        "ecad_search_version": SEARCH_VERSION,
        "base_model": cfg.base_model,
        "revision": cfg.revision,
        "pipeline_class": context.info.pipeline_class,
        "scheduler_class": context.info.scheduler_class,
        "architecture": context.genome.architecture.to_dict(),
        "height": context.settings["height"],
        "width": context.settings["width"],
        "num_inference_steps": context.settings["num_inference_steps"],
        "guidance_scale": context.settings["guidance_scale"],
        "max_sequence_length": context.settings["max_sequence_length"],
        **({"num_frames": context.settings["num_frames"]} if "num_frames" in context.settings else {}),
        "dtype": cfg.dtype,
        "metric": dict(metric_desc, name=name) if metric_desc.get("name") != name else dict(metric_desc),
        "prompt_set": context.prompt_set.describe(cfg.images_per_prompt, cfg.image_seed),
        "population": cfg.population,
        "generations": cfg.generations,
        "seed": cfg.seed,
        "cost": cfg.cost,
        "operators": cfg.operators(),
        "objectives": ["cost ratio (minimise)", f"-{name} (minimise)"],
        "mac_profile": context.profile.profile_settings(),
        "ecad_hub_version": __version__,
        "execution": {"device": str(context.device) if not cfg.ray else "ray", "ray": cfg.ray,
                      "batch_size": cfg.batch_size, "num_threads": cfg.num_threads},
        # the settings that travel with the frontier (ecad_config.json): derived from the above
        "pipeline_call": context.pipeline_call(),
        **({"scheduler": scheduler} if (scheduler := context.scheduler_record()) else {}),
    }


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                out.append(f"{prefix}{k}")
            else:
                out += _diff_keys(a[k], b[k], f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _short(v: Any) -> str:
    try:
        text = json.dumps(v)
    except (RecursionError, TypeError, ValueError):
        return "(a value nested too deeply to show)"
    return text if len(text) <= 50 else text[:47] + "..."


def is_number(v: Any) -> bool:
    """A finite JSON number (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_HASH = re.compile(r"[0-9a-f]{64}")

#: Keys of a generation record and of its entries (what :meth:`SearchRunner._generation_record` writes).
GENERATION_KEYS = ("ecad_search_version", "generation", "seed", "num_evaluations", "offspring", "population",
                   "front", "hypervolume", "hv_reference", "best_quality_at_speedup")


def check_generation_record(path: Path, doc: Any, k: int, *, seed: int, genome) -> None:
    """Refuse (one :class:`SearchError` line naming ``path``) a generation record that is not what
    the search writes for generation ``k``: the shape, version, generation number, seed and every
    candidate's genome (valid, canonical, and hashing to its recorded content hash). What the
    fields hold is checked afterwards, against the evaluations (the runner rebuilds the record)."""
    def bad(what: str) -> SearchError:
        return SearchError(f"{path}: {what}; cannot resume (delete this and later generation files to redo them)",
                           path=str(path))

    if not isinstance(doc, dict):
        raise bad(f"not a generation record (a JSON {_json_type(doc)})")
    missing = [key for key in GENERATION_KEYS if key not in doc]
    if missing:
        raise bad(f"missing key {missing[0]!r}")
    if doc["ecad_search_version"] != SEARCH_VERSION:
        raise bad(f"ecad_search_version {_short(doc['ecad_search_version'])}, expected {SEARCH_VERSION}")
    if not is_int(doc["generation"]) or doc["generation"] != k:
        raise bad(f"generation {_short(doc['generation'])}, expected {k} (from the file name)")
    if not is_int(doc["seed"]) or doc["seed"] != seed:
        raise bad(f"seed {_short(doc['seed'])}, but search.json has seed {seed}")
    for key in ("offspring", "population"):
        entries = doc[key]
        if not isinstance(entries, list):
            raise bad(f"{key} is a JSON {_json_type(entries)}, expected a list")
        if not entries:
            raise bad(f"{key} is empty")
        seen = set()
        for i, e in enumerate(entries):
            where = f"{key}[{i}]"
            if not isinstance(e, dict):
                raise bad(f"{where} is a JSON {_json_type(e)}, expected an object")
            for field in ("hash", "genome", "mac_ratio", "quality") + (("macs",) if key == "offspring" else ()):
                if field not in e:
                    raise bad(f"{where} has no {field!r}")
            h = e["hash"]
            if not isinstance(h, str) or not _HASH.fullmatch(h):
                raise bad(f"{where}.hash is not a sha256 hex digest: {_short(h)}")
            if h in seen:
                raise bad(f"{where}: schedule {h[:12]} appears twice")
            seen.add(h)
            try:
                x = genome.from_hex(e["genome"])
            except ValueError as err:
                raise bad(f"{where}.genome: {err}") from None
            if not genome.is_canonical(x):
                raise bad(f"{where}.genome has fixed bits cleared (step 0 / absent sub-modules)")
            if genome.hash_of(x) != h:
                raise bad(f"{where}: genome does not hash to {h[:12]}")
            for field in ("mac_ratio", "quality") + (("latency_ms_per_image",) if "latency_ms_per_image" in e else ()):
                if not is_number(e[field]):
                    raise bad(f"{where}.{field} is not a finite number: {_short(e[field])}")
            if key == "offspring" and not is_int(e["macs"]):
                raise bad(f"{where}.macs is not an integer: {_short(e['macs'])}")
            if key == "offspring" and k == 0 and not isinstance(e.get("init"), str):
                raise bad(f"{where}.init is not a string: {_short(e.get('init'))}")
    if not isinstance(doc["hv_reference"], dict):
        raise bad(f"hv_reference is a JSON {_json_type(doc['hv_reference'])}, expected an object")


def _json_type(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number" if isinstance(v, (int, float)) else type(v).__name__)


def first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """``(path, a's value, b's value)`` of the first place two JSON documents differ (types count:
    ``1`` is not ``1.0``), or ``None``."""
    try:
        return _first_difference(a, b, prefix)
    except RecursionError:
        return prefix.rstrip(".") or "(document)", "(nested too deeply)", "(a flat value)"


def _first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{prefix}{k}", a.get(k, "<missing>"), b.get(k, "<missing>")
            d = _first_difference(a[k], b[k], f"{prefix}{k}.")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{prefix}{i}.")
            if d:
                return d
        return None
    same = type(a) is type(b) and a == b
    return None if same else (prefix.rstrip(".") or "(document)", a, b)


def images_sha256(images) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (what ``reference.json`` records of the images)."""
    import torch

    t = images.detach().to("cpu").contiguous()
    digest = hashlib.sha256(f"{t.dtype}:{list(t.shape)}:".encode())
    digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class RunDir:
    """Paths and file I/O of one run directory (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # --- paths ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def search_json(self) -> Path:
        return self.path / "search.json"

    @property
    def generations_dir(self) -> Path:
        return self.path / "generations"

    def generation_path(self, k: int) -> Path:
        return self.generations_dir / f"gen_{k:04d}.json"

    @property
    def evaluations_json(self) -> Path:
        return self.path / "evaluations.json"

    @property
    def front_dir(self) -> Path:
        return self.path / "front"

    @property
    def plot_path(self) -> Path:
        return self.path / "frontier.png"

    @property
    def reference_images(self) -> Path:
        return self.path / "reference_images.safetensors"

    @property
    def reference_json(self) -> Path:
        return self.path / "reference.json"

    @property
    def mac_profile_json(self) -> Path:
        return self.path / "mac_profile.json"

    @property
    def log_txt(self) -> Path:
        return self.path / "log.txt"

    # --- state ------------------------------------------------------------------------------
    def holds_search(self) -> bool:
        return self.search_json.exists()

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def append_log(self, message: str) -> None:
        """One time-stamped line in ``log.txt``."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.create()
        with open(self.log_txt, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")

    def check_or_write_search_json(self, doc: dict, resume: bool) -> None:
        """Write ``search.json``, or (``resume``) check that the recorded one is the same search
        (only :data:`RESUMABLE_DIFFERENCES` may differ; they are updated)."""
        path = self.search_json
        if path.exists():
            if not resume:
                raise SearchError(f"{self.path} already holds a search; pass --resume to continue it or choose another --out")
            old = read_json(path, error_cls=SearchError)
            if not isinstance(old, dict) or old.get("ecad_search_version") != SEARCH_VERSION:
                raise SearchError(f"{path}: not an ecad-hub search (or of another version); cannot resume")
            diffs = [k for k in _diff_keys(old, doc) if k.split(".")[0] not in RESUMABLE_DIFFERENCES]
            if diffs:
                k = diffs[0]
                a = old
                b = doc
                for part in k.split("."):
                    a = a.get(part) if isinstance(a, dict) else None
                    b = b.get(part) if isinstance(b, dict) else None
                raise SearchError(
                    f"{self.path} is a different search ({k}: {_short(a)} there, {_short(b)} here); "
                    f"refusing to resume it")
            if any(old.get(k) != doc.get(k) for k in RESUMABLE_DIFFERENCES):
                atomic_write_json(path, doc)
        else:
            if resume and any(self.path.glob("generations/gen_*.json")):
                raise SearchError(f"{self.path}: generation files but no search.json; cannot resume")
            atomic_write_json(path, doc)

    def write_mac_profile(self, profile: dict) -> None:
        atomic_write_json(self.mac_profile_json, profile, error_cls=SearchError)

    # --- generations ------------------------------------------------------------------------
    def completed_generations(self) -> list[int]:
        """Numbers of the generation files present; only a gap-free prefix 0, 1, ... counts (a
        file beyond a gap would be from something else)."""
        out = []
        for p in self.generations_dir.glob("gen_*.json"):
            m = re.fullmatch(r"gen_(\d{4,})\.json", p.name)
            if m:
                out.append(int(m.group(1)))
        out.sort()
        prefix = []
        for i, k in enumerate(out):
            if k != i:
                break
            prefix.append(k)
        return prefix

    def read_generations(self) -> list[dict]:
        """The records of the completed generations, in order (as parsed: the runner checks them)."""
        gd = self.generations_dir
        if (gd.exists() or gd.is_symlink()) and not gd.is_dir():
            raise SearchError(f"{gd}: is a file, not a folder of generation records; cannot resume", path=str(gd))
        return [read_json(self.generation_path(k), error_cls=SearchError) for k in self.completed_generations()]

    def write_generation(self, record: dict) -> dict:
        """Write ``generations/gen_NNNN.json``; returns the record exactly as a resumed run reads it back."""
        self.generations_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.generation_path(record["generation"]), record, error_cls=SearchError)
        return json.loads(json.dumps(record))

    # --- reference images -------------------------------------------------------------------
    def read_reference_meta(self) -> tuple[dict | None, str | None]:
        """``(reference.json, None)``, or ``(None, what is wrong with it)`` when it is missing or not
        what :meth:`write_reference` writes."""
        path = self.reference_json
        if not path.exists():
            return None, f"{path}: missing"
        try:
            meta = read_json(path, error_cls=SearchError)
        except SearchError as err:
            return None, str(err)
        if not isinstance(meta, dict):
            return None, f"{path}: not an object"
        ms = meta.get("all_compute_ms_per_image")
        if ms is not None and not is_number(ms):
            return None, f"{path}: all_compute_ms_per_image is not a number"
        sha = meta.get("images_sha256")
        if sha is not None and (not isinstance(sha, str) or not _HASH.fullmatch(sha)):
            return None, f"{path}: images_sha256 is not a sha256 hex digest"
        return meta, None

    def read_reference_images(self, num_images: int):
        """``(images, None)``, or ``(None, what is wrong)`` when the file is missing, unreadable or
        not ``num_images`` finite float images ``[N, 3, H, W]``."""
        path = self.reference_images
        if not path.exists():
            return None, f"{path}: missing"
        try:
            from safetensors.torch import load_file

            tensors = load_file(str(path))
        except Exception as err:  # noqa: BLE001 - truncated, not safetensors, a folder, ...
            text = " ".join(str(err).split())[:120]
            return None, f"{path}: unreadable ({type(err).__name__}: {text})"
        images = tensors.get("images")
        if images is None or set(tensors) != {"images"}:
            return None, f"{path}: does not hold exactly one tensor 'images'"
        if images.ndim != 4 or images.shape[0] != num_images or images.shape[1] != 3 or not images.is_floating_point():
            return None, (f"{path}: holds {images.dtype} {list(images.shape)}, expected {num_images} float images "
                          f"[N, 3, H, W]")
        import torch

        if not bool(torch.isfinite(images).all()):
            return None, f"{path}: holds non-finite values"
        return images, None

    def write_reference(self, images, ms: float | None) -> None:
        from safetensors.torch import save_file

        tmp = self.reference_images.with_suffix(".tmp")
        save_file({"images": images.contiguous()}, str(tmp))
        os.replace(tmp, self.reference_images)
        atomic_write_json(self.reference_json, {"all_compute_ms_per_image": ms, "num_images": int(images.shape[0]),
                                                "images_sha256": images_sha256(images)}, error_cls=SearchError)

    # --- front ------------------------------------------------------------------------------
    def write_front(self, schedules: Iterable[CacheSchedule]) -> None:
        """``front/<name>.json`` for each schedule; files of schedules no longer on the front go."""
        folder = self.front_dir
        folder.mkdir(parents=True, exist_ok=True)
        keep = set()
        for s in schedules:
            s.save(folder / f"{s.name}.json")
            keep.add(f"{s.name}.json")
        for p in folder.glob("*.json"):
            if p.name not in keep:
                p.unlink()


class EvaluationStore:
    """``evaluations.json``: content hash -> record of every schedule evaluated, written at most
    every :data:`FLUSH_INTERVAL_S` seconds while a generation runs (and whenever forced)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        #: entries read without a matching ``sha256`` (edited, damaged, or from before it was written):
        #: used only where a generation record confirms them (:meth:`drop_unverified` removes the rest)
        self.unverified: set[str] = set()
        self._dirty = False
        self._last_flush = 0.0

    @staticmethod
    def checksum(key: str, record: dict) -> str:
        """The ``sha256`` written with each entry: of its hash key and its canonical JSON."""
        text = json.dumps([key, record], sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def load(self, check: Callable[[str, Any], str | None] | None = None) -> None:
        """Read the cache; ``check(hash, entry)`` returns what is wrong with an entry (or ``None``).
        A file that is not the cache, or a bad entry, is one :class:`SearchError` naming the file."""
        self.records = {}
        if not (self.path.exists() or self.path.is_symlink()):
            return
        doc = read_json(self.path, error_cls=SearchError)
        hint = "delete it to rebuild the cache from the generation records"
        if not isinstance(doc, dict) or not isinstance(doc.get("evaluations"), dict):
            what = f"a JSON {_json_type(doc)}" if not isinstance(doc, dict) else "no 'evaluations' object"
            raise SearchError(f"{self.path}: not an evaluations cache ({what}); {hint}", path=str(self.path))
        if doc.get("ecad_search_version") != SEARCH_VERSION:
            raise SearchError(f"{self.path}: ecad_search_version {_short(doc.get('ecad_search_version'))}, expected "
                              f"{SEARCH_VERSION}; {hint}", path=str(self.path))
        records, unverified = {}, set()
        for h, rec in doc["evaluations"].items():
            digest = rec.pop("sha256", None) if isinstance(rec, dict) else None
            problem = check(h, rec) if check is not None else None
            if problem:
                shown = h[:12] if _HASH.fullmatch(h) else _short(h)
                raise SearchError(f"{self.path}: evaluation {shown}: {problem}; {hint}", path=str(self.path))
            if not (isinstance(digest, str) and digest == self.checksum(h, rec)):
                unverified.add(h)
            records[h] = rec
        self.records, self.unverified = records, unverified

    def drop_unverified(self, confirmed: Iterable[str]) -> int:
        """Forget entries whose checksum failed and that no generation record confirms (``confirmed``:
        the hashes the records hold and were compared with): they are evaluated again, never trusted.
        Returns how many were dropped."""
        gone = self.unverified - set(confirmed)
        for h in gone:
            del self.records[h]
        self.unverified = set()
        if gone:
            self._dirty = True
        return len(gone)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __getitem__(self, key: str) -> dict:
        return self.records[key]

    def __len__(self) -> int:
        return len(self.records)

    def add(self, key: str, record: dict, *, dirty: bool = True) -> None:
        """Add an entry; ``dirty=False``: not written until something marks the cache dirty
        (:meth:`mark_dirty`; a resume that is refused writes nothing it rebuilt)."""
        self.records[key] = record
        self._dirty = self._dirty or dirty

    def mark_dirty(self) -> None:
        self._dirty = True

    def flush(self, force: bool = False) -> None:
        if not self._dirty:
            return
        now = time.monotonic()
        if force or now - self._last_flush >= FLUSH_INTERVAL_S:
            entries = {h: {**rec, "sha256": self.checksum(h, rec)} for h, rec in self.records.items()}
            atomic_write_json(self.path, {"ecad_search_version": SEARCH_VERSION, "evaluations": entries},
                              error_cls=SearchError)
            self._last_flush = now
            self._dirty = False
