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
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterable

from ..errors import SearchError
from ..schedule import CacheSchedule
from ..utils.io import atomic_write_json, read_json
from .config import SEARCH_VERSION

#: Keys of search.json that may differ when resuming (they do not change what is computed).
RESUMABLE_DIFFERENCES = {"generations", "ecad_hub_version", "execution"}
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
    text = json.dumps(v)
    return text if len(text) <= 50 else text[:47] + "..."


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
            if old.get("generations") != doc["generations"] or old.get("execution") != doc["execution"]:
                atomic_write_json(path, doc)
        else:
            if resume and any(self.path.glob("generations/gen_*.json")):
                raise SearchError(f"{self.path}: generation files but no search.json; cannot resume")
            atomic_write_json(path, doc)

    def write_mac_profile(self, profile: dict) -> None:
        atomic_write_json(self.mac_profile_json, profile)

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
        """The records of the completed generations, in order."""
        return [read_json(self.generation_path(k), error_cls=SearchError) for k in self.completed_generations()]

    def write_generation(self, record: dict) -> dict:
        """Write ``generations/gen_NNNN.json``; returns the record exactly as a resumed run reads it back."""
        self.generations_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.generation_path(record["generation"]), record)
        return json.loads(json.dumps(record))

    # --- reference images -------------------------------------------------------------------
    def read_reference(self):
        """``(images, all-compute ms per image)`` written before, or ``None``."""
        from safetensors.torch import load_file

        if not self.reference_images.exists():
            return None
        meta = read_json(self.reference_json, error_cls=SearchError) if self.reference_json.exists() else {}
        return load_file(str(self.reference_images))["images"], meta.get("all_compute_ms_per_image")

    def write_reference(self, images, ms: float | None) -> None:
        from safetensors.torch import save_file

        tmp = self.reference_images.with_suffix(".tmp")
        save_file({"images": images.contiguous()}, str(tmp))
        os.replace(tmp, self.reference_images)
        atomic_write_json(self.reference_json, {"all_compute_ms_per_image": ms, "num_images": int(images.shape[0])})

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
        self._dirty = False
        self._last_flush = 0.0

    def load(self) -> None:
        if self.path.exists():
            doc = read_json(self.path, error_cls=SearchError)
            self.records = dict(doc.get("evaluations", {}))

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __getitem__(self, key: str) -> dict:
        return self.records[key]

    def __len__(self) -> int:
        return len(self.records)

    def add(self, key: str, record: dict) -> None:
        self.records[key] = record
        self._dirty = True

    def flush(self, force: bool = False) -> None:
        if not self._dirty:
            return
        now = time.monotonic()
        if force or now - self._last_flush >= FLUSH_INTERVAL_S:
            atomic_write_json(self.path, {"ecad_search_version": SEARCH_VERSION, "evaluations": self.records})
            self._last_flush = now
            self._dirty = False
