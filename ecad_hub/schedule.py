"""The versioned schedule format: :class:`CacheSchedule`, :class:`Architecture`, validation.

A schedule is a boolean mask over (inference step, block, component) for one transformer
architecture: ``True`` = recompute the sub-module at that step, ``False`` = reuse its output
from the last step where it was computed (a reuse at step 0, with nothing cached yet, is
computed anyway).

On disk a schedule is JSON following ``schemas/schedule-v1.schema.json``. The mask is stored
as one string of ``0``/``1`` per (group, component, step), one character per block, so a
PixArt 20 x 28 x 3 schedule is 60 short lines, readable and diffable::

    "mask": {
      "transformer_blocks": {
        "attn1": [
          "1111111111111111111111111111",
          "0000000000000000000000000000",
          ...

Every load goes through :func:`migrate` (keyed by ``ecad_schedule_version``), then JSON Schema
validation, then shape checks; any problem raises :class:`~ecad_hub.errors.ScheduleError`
with a one-line message.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .errors import FileWriteError, ScheduleError
from .schemas import schema_problems, short_repr
from .utils.io import atomic_write_text, dumps_json, loads_json, read_json

#: The schedule format version this release writes.
SCHEDULE_VERSION = 1
#: Versions this release can read (older ones are migrated on load).
READABLE_VERSIONS = (1,)
#: Largest schedule file accepted (legacy FLUX files are about 200 KB).
MAX_SCHEDULE_BYTES = 8 * 1024 * 1024

_VERSION_KEY = "ecad_schedule_version"
#: Schedule names: the schema's ``$defs/name`` pattern, matched as a whole (no trailing newline).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")


# --------------------------------------------------------------------------------------------
# Architecture
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockGroup:
    """One ModuleList of transformer blocks, e.g. ``transformer_blocks`` with 28 blocks.

    ``absent`` lists (component, block) pairs that do not exist in the model (SD3's last
    block has no ``ff_context``); their mask bits are ignored.
    """

    name: str
    num_blocks: int
    components: tuple[str, ...]
    absent: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    def __post_init__(self):
        problems = _group_problems(self.name, self.num_blocks, self.components,
                                   {c: [b for cc, b in self.absent if cc == c] for c, _ in self.absent})
        if problems:
            raise ScheduleError(f"invalid block group: {problems[0]}", problems=problems)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "num_blocks": self.num_blocks, "components": list(self.components)}
        if self.absent:
            d["absent"] = {
                comp: sorted(b for c, b in self.absent if c == comp)
                for comp in self.components
                if any(c == comp for c, _ in self.absent)
            }
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "BlockGroup":
        """From a schema-valid ``block_group`` document; raises :class:`ScheduleError` if it is inconsistent."""
        try:
            absent = frozenset(
                (comp, int(b)) for comp, blocks in (d.get("absent") or {}).items() for b in blocks
            )
            return cls(str(d["name"]), int(d["num_blocks"]), tuple(d["components"]), absent)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, ScheduleError):
                raise
            raise ScheduleError(f"invalid block group: {type(e).__name__}: {e}") from None

    def present(self) -> np.ndarray:
        """Bool array ``[num_blocks, num_components]``: which sub-modules exist."""
        out = np.ones((self.num_blocks, len(self.components)), dtype=bool)
        for comp, block in self.absent:
            out[block, self.components.index(comp)] = False
        return out


@dataclass(frozen=True)
class Architecture:
    """The block structure a schedule is written for: transformer class and block groups."""

    transformer_class: str
    groups: tuple[BlockGroup, ...]

    def to_dict(self) -> dict:
        return {"transformer_class": self.transformer_class, "groups": [g.to_dict() for g in self.groups]}

    def __post_init__(self):
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            dupe = next(n for n in names if names.count(n) > 1)
            raise ScheduleError(f"invalid architecture: duplicate block group {dupe!r}")

    @classmethod
    def from_dict(cls, d: Mapping) -> "Architecture":
        """From a schema-valid ``architecture`` document; raises :class:`ScheduleError` if it is inconsistent."""
        problems = architecture_problems(d)
        if problems:
            raise ScheduleError(f"invalid architecture: {problems[0]}", problems=problems)
        try:
            return cls(str(d["transformer_class"]), tuple(BlockGroup.from_dict(g) for g in d["groups"]))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, ScheduleError):
                raise
            raise ScheduleError(f"invalid architecture: {type(e).__name__}: {e}") from None

    def group(self, name: str) -> BlockGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    def differences(self, other: "Architecture") -> list[str]:
        """Human-readable differences between ``self`` (expected) and ``other`` (found); empty if equal."""
        diffs = []
        if self.transformer_class != other.transformer_class:
            diffs.append(f"transformer class {self.transformer_class} vs {other.transformer_class}")
        mine, theirs = {g.name: g for g in self.groups}, {g.name: g for g in other.groups}
        for name in mine.keys() - theirs.keys():
            diffs.append(f"block group {name} missing in the second")
        for name in theirs.keys() - mine.keys():
            diffs.append(f"block group {name} missing in the first")
        for name in [g.name for g in self.groups if g.name in theirs]:
            a, b = mine[name], theirs[name]
            if a.num_blocks != b.num_blocks:
                diffs.append(f"{name}: {a.num_blocks} blocks vs {b.num_blocks}")
            if a.components != b.components:
                diffs.append(f"{name}: components {list(a.components)} vs {list(b.components)}")
            elif a.absent != b.absent:
                diffs.append(f"{name}: absent sub-modules {sorted(a.absent)} vs {sorted(b.absent)}")
        if not diffs and self.group_names != other.group_names:
            diffs.append(f"group order {list(self.group_names)} vs {list(other.group_names)}")
        return diffs

    def describe(self) -> str:
        parts = [f"{g.name}[{g.num_blocks}]x{{{','.join(g.components)}}}" for g in self.groups]
        return f"{self.transformer_class}(" + "; ".join(parts) + ")"


# --------------------------------------------------------------------------------------------
# Migration
# --------------------------------------------------------------------------------------------

def _migrate_v1(doc: dict) -> dict:
    return doc


#: version found in a file -> function turning it into the next version's document.
#: A future v2 adds ``1: _v1_to_v2`` here and ``2: _migrate_v2`` as identity.
_MIGRATIONS = {1: _migrate_v1}


def migrate(doc: Any, *, source: str = "<schedule>") -> dict:
    """Bring a parsed schedule document of any readable version to the current version.

    This is the single entry point every load goes through, keyed by the document's
    ``ecad_schedule_version``. Raises :class:`ScheduleError` for unknown or missing versions.
    """
    if not isinstance(doc, dict):
        raise ScheduleError(f"{source}: a schedule must be a JSON object, got {type(doc).__name__}", path=source)
    if _VERSION_KEY not in doc:
        if "cache_schedule" in doc:
            hint = "; it looks like a legacy ECAD schedule: convert it with `ecad-hub import` or ecad_hub.from_legacy()"
        elif doc and all(isinstance(v, list) for v in doc.values()):
            hint = "; it looks like a SmoothCache schedule: convert it with ecad_hub.from_legacy(..., architecture=...)"
        else:
            hint = ""
        raise ScheduleError(f"{source}: missing {_VERSION_KEY}{hint}", path=source)
    version = doc[_VERSION_KEY]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ScheduleError(f"{source}: {_VERSION_KEY} must be an integer, got {short_repr(version)}", path=source)
    if version not in _MIGRATIONS:
        newest = max(READABLE_VERSIONS)
        advice = "upgrade ecad-hub" if version > newest else "no migration exists"
        raise ScheduleError(
            f"{source}: unsupported {_VERSION_KEY} {version} (this ecad-hub reads {', '.join(map(str, READABLE_VERSIONS))}; {advice})",
            path=source,
        )
    while version != SCHEDULE_VERSION:
        doc = _MIGRATIONS[version](doc)
        version = doc[_VERSION_KEY]
    return _MIGRATIONS[version](doc)


# --------------------------------------------------------------------------------------------
# CacheSchedule
# --------------------------------------------------------------------------------------------

class CacheSchedule:
    """An ECAD caching schedule for one transformer architecture and step count.

    Args:
        name: stable, file-name-safe name (``[A-Za-z0-9][A-Za-z0-9._-]*``).
        num_inference_steps: number of denoising steps the schedule is written for.
        architecture: the block groups and components the mask covers.
        masks: one bool array ``[num_inference_steps, num_blocks, num_components]`` per block
            group, keyed by group name. ``True`` = recompute, ``False`` = reuse.
        generation, metrics, provenance, description: optional metadata (see the schema).

    Example::

        >>> from ecad_hub import CacheSchedule
        >>> s = CacheSchedule.load("ours_fast.json")
        >>> s.masks["transformer_blocks"].shape
        (20, 28, 3)
        >>> round(s.fraction_computed(), 3)
        0.374
        >>> s.save("copy.json")

    Instances are immutable (the mask arrays are read-only); use :meth:`replace` to derive.
    """

    def __init__(
        self,
        name: str,
        num_inference_steps: int,
        architecture: Architecture,
        masks: Mapping[str, np.ndarray],
        *,
        generation: Mapping | None = None,
        metrics: Mapping | None = None,
        provenance: Mapping | None = None,
        description: str | None = None,
    ):
        self._name = name
        self._steps = int(num_inference_steps)
        self._architecture = architecture
        self._masks: dict[str, np.ndarray] = {}
        if set(masks) != set(architecture.group_names):
            raise ScheduleError(
                f"mask groups {sorted(masks)} do not match the architecture's {list(architecture.group_names)}"
            )
        for group in architecture.groups:
            arr = np.asarray(masks[group.name])
            if arr.dtype != np.bool_:
                if not np.isin(arr, (0, 1)).all():
                    raise ScheduleError(f"mask of {group.name} has non-boolean entries")
                arr = arr.astype(bool)
            expected = (self._steps, group.num_blocks, len(group.components))
            if arr.shape != expected:
                raise ScheduleError(f"mask of {group.name} has shape {arr.shape}, expected {expected}")
            arr = arr.copy()
            if group.absent:
                arr[:, ~group.present()] = True
            arr.flags.writeable = False
            self._masks[group.name] = arr
        self._generation = _frozen_copy(generation)
        self._metrics = _frozen_copy(metrics)
        self._provenance = _frozen_copy(provenance)
        self._description = description
        # Cheap checks only: the metadata is validated against the schema where a schedule
        # enters or leaves ecad-hub (from_dict/load, validate/save), not on every construction
        # (the search builds thousands of candidates).
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ScheduleError(f"invalid schedule: name {short_repr(name)} is not a file-name-safe name "
                                f"(letters, digits, '.', '_', '-'; at most 120 characters)")
        if not 1 <= self._steps <= 1000:
            raise ScheduleError(f"invalid schedule: num_inference_steps {self._steps} is not in 1..1000")

    def validate(self) -> "CacheSchedule":
        """Check the whole document against the schema; returns ``self``. Raises :class:`ScheduleError`."""
        problems = schema_problems(self.to_dict(), "schedule-v1")
        if problems:
            raise ScheduleError(f"invalid schedule {self._name}: {problems[0]}", problems=problems)
        return self

    # --- basic properties -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def num_inference_steps(self) -> int:
        return self._steps

    @property
    def architecture(self) -> Architecture:
        return self._architecture

    @property
    def masks(self) -> dict[str, np.ndarray]:
        """Read-only bool arrays ``[steps, blocks, components]`` per block group (``True`` = recompute)."""
        return dict(self._masks)

    @property
    def generation(self) -> dict:
        return copy.deepcopy(self._generation)

    @property
    def metrics(self) -> dict:
        return copy.deepcopy(self._metrics)

    @property
    def provenance(self) -> dict:
        return copy.deepcopy(self._provenance)

    @property
    def description(self) -> str | None:
        return self._description

    def mask(self, group: str | None = None) -> np.ndarray:
        """The mask of one block group (the only group when ``group`` is omitted)."""
        if group is None:
            if len(self._masks) != 1:
                raise ValueError(f"this schedule has several block groups {list(self._masks)}; name one")
            return next(iter(self._masks.values()))
        return self._masks[group]

    def restart_steps(self) -> tuple[int, ...]:
        """Steps at which nothing is cached, so everything computes: step 0 and, for a two-expert
        pipeline (Wan 2.2), the first step of the second expert (``generation.expert_switch_step``)."""
        switch = self._generation.get("expert_switch_step")
        steps = [0]
        if isinstance(switch, int) and 0 < switch < self._steps:
            steps.append(switch)
        return tuple(steps)

    def effective_masks(self) -> dict[str, np.ndarray]:
        """What actually runs: the masks with the :meth:`restart_steps` computed (nothing is cached there)."""
        out = {}
        restart = list(self.restart_steps())
        for g, arr in self._masks.items():
            eff = arr.copy()
            eff[restart] = True
            out[g] = eff
        return out

    def fraction_computed(self) -> float:
        """Fraction of existing sub-module evaluations that are computed (step 0 always is)."""
        computed = total = 0
        effective = self.effective_masks()
        for group in self._architecture.groups:
            eff = effective[group.name]
            present = np.broadcast_to(group.present(), eff.shape)
            computed += int(eff[present].sum())
            total += int(present.sum())
        return computed / total if total else 1.0

    # --- metadata shortcuts -----------------------------------------------------------------
    @property
    def mac_speedup(self) -> float | None:
        """``all_compute_total / total`` MACs when the metrics record it."""
        macs = self._metrics.get("macs") or {}
        if "speedup" in macs:
            return float(macs["speedup"])
        if macs.get("all_compute_total") and macs.get("total"):
            return macs["all_compute_total"] / macs["total"]
        return None

    def quality(self, metric: str | None = None) -> float | None:
        """The recorded quality value for ``metric`` (the first recorded metric by default)."""
        for q in self._metrics.get("quality", []):
            if metric is None or q["metric"] == metric:
                return float(q["value"])
        return None

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def all_compute(cls, architecture: Architecture, num_inference_steps: int, name: str = "all-compute", **kwargs) -> "CacheSchedule":
        """The schedule that recomputes everything at every step (identical to no caching)."""
        masks = {
            g.name: np.ones((num_inference_steps, g.num_blocks, len(g.components)), dtype=bool)
            for g in architecture.groups
        }
        return cls(name, num_inference_steps, architecture, masks, **kwargs)

    def replace(self, **changes) -> "CacheSchedule":
        """A copy with some fields changed: ``name``, ``masks``, ``generation``, ``metrics``, ``provenance``, ``description``."""
        fields = dict(
            name=self._name,
            num_inference_steps=self._steps,
            architecture=self._architecture,
            masks=self._masks,
            generation=self._generation,
            metrics=self._metrics,
            provenance=self._provenance,
            description=self._description,
        )
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown fields {sorted(unknown)}")
        fields.update(changes)
        name, steps, arch, masks = fields.pop("name"), fields.pop("num_inference_steps"), fields.pop("architecture"), fields.pop("masks")
        return CacheSchedule(name, steps, arch, masks, **fields)

    # --- flat vector (the search genome) ----------------------------------------------------
    def to_vector(self) -> np.ndarray:
        """All mask bits as one flat bool vector (groups in architecture order, C order inside)."""
        return np.concatenate([self._masks[g.name].ravel() for g in self._architecture.groups])

    @classmethod
    def from_vector(cls, architecture: Architecture, num_inference_steps: int, vector, name: str = "candidate", **kwargs) -> "CacheSchedule":
        """Inverse of :meth:`to_vector`."""
        vector = np.asarray(vector).astype(bool).ravel()
        masks, offset = {}, 0
        for g in architecture.groups:
            n = num_inference_steps * g.num_blocks * len(g.components)
            if offset + n > vector.size:
                raise ScheduleError(f"vector has {vector.size} bits, too few for {architecture.describe()} x {num_inference_steps} steps")
            masks[g.name] = vector[offset: offset + n].reshape(num_inference_steps, g.num_blocks, len(g.components))
            offset += n
        if offset != vector.size:
            raise ScheduleError(f"vector has {vector.size} bits, expected {offset}")
        return cls(name, num_inference_steps, architecture, masks, **kwargs)

    # --- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The schema v1 document (a fresh dict; keys in a fixed order)."""
        d: dict[str, Any] = {
            _VERSION_KEY: SCHEDULE_VERSION,
            "name": self._name,
        }
        if self._description:
            d["description"] = self._description
        d["num_inference_steps"] = self._steps
        d["architecture"] = self._architecture.to_dict()
        d["mask"] = _encode_masks(self._architecture, self._masks)
        for key, value in (("generation", self._generation), ("metrics", self._metrics), ("provenance", self._provenance)):
            if value:
                d[key] = copy.deepcopy(value)
        return d

    def to_json(self) -> str:
        """Deterministic JSON text: the same schedule always gives the same bytes."""
        return dumps_json(self.to_dict())

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<schedule>") -> "CacheSchedule":
        """Build from a parsed document of any readable version (migrated, validated)."""
        doc = migrate(doc, source=source)
        problems = schema_problems(doc, "schedule-v1")
        if not problems:  # the semantic checks read the raw document (the objects would drop what is wrong)
            problems = [f"architecture/{p}" for p in architecture_problems(doc["architecture"])]
        if problems:
            raise ScheduleError(f"{source}: {problems[0]}", path=source, problems=[f"{source}: {p}" for p in problems])
        try:
            arch = Architecture.from_dict(doc["architecture"])
        except ScheduleError as e:  # pragma: no cover - architecture_problems found nothing
            raise ScheduleError(f"{source}: architecture: {e}", path=source) from None
        problems = _shape_problems(doc, arch)
        if problems:
            raise ScheduleError(f"{source}: {problems[0]}", path=source, problems=[f"{source}: {p}" for p in problems])
        masks = _decode_masks(arch, doc["num_inference_steps"], doc["mask"])
        try:
            return cls(
                doc["name"], doc["num_inference_steps"], arch, masks,
                generation=doc.get("generation"), metrics=doc.get("metrics"),
                provenance=doc.get("provenance"), description=doc.get("description"),
            )
        except ScheduleError as e:
            raise ScheduleError(f"{source}: {e}", path=source, problems=[f"{source}: {p}" for p in e.problems]) from None

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> "CacheSchedule":
        return cls.from_dict(loads_json(text, source=source, error_cls=ScheduleError), source=source)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CacheSchedule":
        """Read a schedule file (any readable version). Raises :class:`ScheduleError` on any problem."""
        doc = read_json(path, error_cls=ScheduleError, max_bytes=MAX_SCHEDULE_BYTES)
        return cls.from_dict(doc, source=str(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the schedule as schema v1 JSON, atomically (temp file + rename). Returns the path."""
        path = Path(path)
        atomic_write_text(path, self.validate().to_json(), error_cls=FileWriteError)
        return path

    # --- identity ---------------------------------------------------------------------------
    @property
    def content_hash(self) -> str:
        """SHA-256 of what the schedule *computes*: architecture, step count and mask.

        Two schedules with the same mask have the same hash whatever their names or metrics;
        the search uses it to never evaluate a mask twice.
        """
        core = {
            _VERSION_KEY: SCHEDULE_VERSION,
            "num_inference_steps": self._steps,
            "architecture": self._architecture.to_dict(),
            "mask": _encode_masks(self._architecture, self._masks),
        }
        return hashlib.sha256(json.dumps(core, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CacheSchedule):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def __repr__(self) -> str:
        return (
            f"CacheSchedule(name={self._name!r}, {self._architecture.transformer_class}, "
            f"{self._steps} steps, {100 * self.fraction_computed():.1f}% computed)"
        )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _frozen_copy(value: Mapping | None) -> dict:
    return copy.deepcopy(dict(value)) if value else {}


def _encode_masks(arch: Architecture, masks: Mapping[str, np.ndarray]) -> dict:
    out: dict[str, dict[str, list[str]]] = {}
    for g in arch.groups:
        arr = masks[g.name]
        out[g.name] = {
            comp: ["".join("1" if b else "0" for b in arr[s, :, c]) for s in range(arr.shape[0])]
            for c, comp in enumerate(g.components)
        }
    return out


def _decode_masks(arch: Architecture, steps: int, doc_mask: Mapping) -> dict[str, np.ndarray]:
    out = {}
    for g in arch.groups:
        arr = np.zeros((steps, g.num_blocks, len(g.components)), dtype=bool)
        for c, comp in enumerate(g.components):
            rows = doc_mask[g.name][comp]
            arr[:, :, c] = np.array([[ch == "1" for ch in row] for row in rows], dtype=bool).reshape(steps, g.num_blocks)
        out[g.name] = arr
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _group_problems(name: str, num_blocks: Any, components: Any, absent: Any) -> list[str]:
    problems: list[str] = []
    if not isinstance(absent, Mapping):
        return problems
    comps = list(components) if isinstance(components, (list, tuple)) else []
    for comp, blocks in absent.items():
        if comp not in comps:
            problems.append(f"{name}/absent: unknown component {comp!r} (declared: {comps})")
            continue
        bad = [b for b in (blocks if isinstance(blocks, (list, tuple)) else [])
               if not _is_int(num_blocks) or not _is_int(b) or not 0 <= b < num_blocks]
        if bad:
            problems.append(f"{name}/absent/{comp}: block {short_repr(bad[0])} out of range (num_blocks {num_blocks})")
    return problems


def architecture_problems(doc: Any) -> list[str]:
    """Checks of an ``architecture`` document JSON Schema cannot express, one line each (empty if fine).

    Group names are distinct; every ``absent`` entry names a declared component and blocks in
    range. Every reader of an architecture (schedules, ``ecad_config.json``) runs it on the raw
    document, after the schema.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("groups"), list):
        return []
    problems: list[str] = []
    names = [g.get("name") for g in doc["groups"] if isinstance(g, Mapping)]
    for n in dict.fromkeys(n for n in names if names.count(n) > 1):
        problems.append(f"groups: duplicate block group {short_repr(n)}")
    for g in doc["groups"]:
        if isinstance(g, Mapping):
            problems += _group_problems(str(g.get("name")), g.get("num_blocks"), g.get("components"), g.get("absent"))
    return problems


def _shape_problems(doc: Mapping, arch: Architecture) -> list[str]:
    """Checks JSON Schema cannot express: the mask matches the declared counts and names."""
    problems: list[str] = []
    steps = doc["num_inference_steps"]
    mask = doc["mask"]
    names = [g.name for g in arch.groups]
    for extra in sorted(set(mask) - set(names)):
        problems.append(f"mask/{extra}: unknown block group (architecture declares {names})")
    for g in arch.groups:
        if g.name not in mask:
            problems.append(f"mask: missing block group {g.name!r}")
            continue
        gm = mask[g.name]
        for extra in sorted(set(gm) - set(g.components)):
            problems.append(f"mask/{g.name}/{extra}: unknown component (declared: {list(g.components)})")
        for comp in g.components:
            if comp not in gm:
                problems.append(f"mask/{g.name}: missing component {comp!r}")
                continue
            rows = gm[comp]
            if len(rows) != steps:
                problems.append(f"mask/{g.name}/{comp}: {len(rows)} steps, expected num_inference_steps={steps}")
            for s, row in enumerate(rows):
                if len(row) != g.num_blocks:
                    problems.append(f"mask/{g.name}/{comp}/{s}: {len(row)} blocks, expected num_blocks={g.num_blocks}")
                    break
    macs = (doc.get("metrics") or {}).get("macs")
    if macs and len(macs["per_step"]) != steps:
        problems.append(f"metrics/macs/per_step: {len(macs['per_step'])} entries, expected {steps}")
    if macs and sum(macs["per_step"]) != macs["total"]:
        problems.append(f"metrics/macs/total: {macs['total']} is not the sum of per_step ({sum(macs['per_step'])})")
    return problems


def validate_file(path: str | os.PathLike) -> list[str]:
    """All problems of a schedule file, one line each (empty when valid). Never raises for bad input."""
    try:
        doc = read_json(path, error_cls=ScheduleError, max_bytes=MAX_SCHEDULE_BYTES)
        CacheSchedule.from_dict(doc, source=str(path))
    except ScheduleError as e:
        return e.problems
    return []


def iter_schedule_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders to the ``*.json`` files inside them (sorted); files pass through."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*.json") if q.is_file()))
        else:
            out.append(p)
    return out
