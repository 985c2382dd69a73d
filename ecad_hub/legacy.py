"""Import schedules written by other tools into schedule format v1.

Two layouts are understood:

* **ECAD reference** (the paper authors' JSON): ``cache_schedule.schedule["000"]["0"]["attn1"]``
  = step -> block -> component -> bool, for PixArt (``attn1``/``attn2``/``ff``) and FLUX
  (double blocks ``"0".."18"`` with ``full_*`` components, single blocks ``"single_0"..`` with
  ``single_*`` components). Recorded MACs and latency (with the GPU and batch size the file
  records) become v1 metrics; the original name, file and hash become provenance
  (``provenance.imported_from``), and the schedule keeps the file's name (``ours_fast``): a
  frontier assembled from imported schedules never renames them. What the schedule is, where the
  file tells, is recorded as ``provenance.kind``: ``all-compute``; ``heuristic`` (FORA-style
  ``recompute_*_every`` attributes or name, or a mask that recomputes all or nothing at each step);
  ``learned`` (an NSGA-II candidate name such as ``..._gen_358_cand_014``). Custom attention
  functions (TGATE-style ``custom_compute_attn``) are refused: v1 expresses only recompute/reuse.
* **SmoothCache**: ``{"attn": [1, 0, ...], "mlp": [...]}`` (one list per component, shared by all
  blocks) or ``{"attn-0": [...], "mlp-0": [...], ...}`` (per block). ``1`` = compute. The file
  does not name the model, so ``architecture=`` (an :class:`Architecture`, a transformer
  config, or a model) is required; components it does not mention are always computed.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .utils.io import read_bytes_bounded, read_json
from .errors import LegacyFormatError, ScheduleError, UnsupportedFeatureError
from .schedule import MAX_SCHEDULE_BYTES, Architecture, CacheSchedule

_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")  # matched whole (fullmatch)

_CUSTOM_KEYS = ("custom_compute_attn", "custom_compute_ff")
#: Names of static heuristics (FORA's recompute-every-N and the like), matched anywhere in a name.
HEURISTIC_NAME = re.compile(r"(recompute_\w*every|every_?\d+|\bfora\b|fora[-_]?\d|delta[-_]?dit|taylorseer)", re.I)
#: Names of search candidates (the ECAD authors' ``handcrafted-nsga2-pw-bf_gen_358_cand_014``).
LEARNED_NAME = re.compile(r"(nsga|gen_?\d+_cand_?\d+)", re.I)
#: Attributes of an ECAD reference file that describe a recompute-every-N rule.
_EVERY_ATTRIBUTE = re.compile(r"^recompute_\w+_every$")


def from_legacy(path_or_doc, *, name: str | None = None, architecture=None,
                generation: Mapping | None = None) -> CacheSchedule:
    """Import an ECAD-reference or SmoothCache schedule (a path or an already parsed dict).

    Args:
        name: name of the v1 schedule; defaults to the file name without ``.json``
            (the legacy name is kept in ``provenance.imported_from.name``).
        architecture: required for SmoothCache files (an :class:`Architecture`, a transformer
            config dict/path, or a model); checked against ECAD files when given.
        generation: generation settings to record (``base_model``, ``height``, ...), merged
            over what the file's ``config`` holds.

    Raises:
        LegacyFormatError: the file is not a layout ecad-hub can import, or is inconsistent.
        UnsupportedFeatureError: the file uses custom attention/FF functions.
    """
    if isinstance(path_or_doc, (str, os.PathLike)):
        path = Path(path_or_doc)
        doc = read_json(path, error_cls=LegacyFormatError, max_bytes=MAX_SCHEDULE_BYTES)
        source = str(path)
        raw = read_bytes_bounded(path, MAX_SCHEDULE_BYTES, error_cls=LegacyFormatError)
        file_info = {"file": path.name[:400], "sha256": hashlib.sha256(raw).hexdigest()}
        default_name = path.stem
    else:
        doc, source, file_info, default_name = path_or_doc, "<legacy>", {}, None
    if not isinstance(doc, dict):
        raise LegacyFormatError(f"{source}: expected a JSON object, got {type(doc).__name__}", path=source)
    if "cache_schedule" in doc:
        return _from_ecad(doc, source, file_info, name or default_name, architecture, generation)
    if doc and all(isinstance(v, list) for v in doc.values()):
        return _from_smoothcache(doc, source, file_info, name or default_name, architecture, generation)
    if "ecad_schedule_version" in doc:
        raise LegacyFormatError(f"{source}: already a v1 schedule; load it with CacheSchedule.load()", path=source)
    raise LegacyFormatError(
        f"{source}: not a known legacy layout (expected an ECAD 'cache_schedule' object or SmoothCache component lists)",
        path=source,
    )


def _safe_name(candidate: str | None, fallback: str) -> str:
    for value in (candidate, fallback):
        if value and _NAME_OK.fullmatch(value):
            return value
        if value:
            cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-._")[:120]
            if cleaned and _NAME_OK.fullmatch(cleaned):
                return cleaned
    return "imported"


def _bool(value: Any, where: str, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise LegacyFormatError(f"{source}: {where}: expected true/false, got {value!r}", path=source)


def _int(value: Any, where: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LegacyFormatError(f"{source}: {where}: expected a positive integer, got {value!r}", path=source)
    return value


def _check_architecture(found: Architecture, given, source: str) -> None:
    if given is None:
        return
    from .adapters import architecture_of

    expected = architecture_of(given)
    diffs = expected.differences(found)
    if diffs:
        raise LegacyFormatError(f"{source}: the file's architecture differs from the given one: {'; '.join(diffs)}", path=source)


def _ecad_layout(cs: dict, source: str):
    """The architecture and block/component layout of an ECAD ``cache_schedule`` (its adapter's)."""
    from .adapters import adapters

    found = [(adapter, layout) for adapter in adapters()
             if (layout := adapter.legacy_layout(cs, source)) is not None]
    if len(found) != 1:
        which = "no" if not found else f"{len(found)} ({', '.join(a.transformer_class for a, _ in found)})"
        raise LegacyFormatError(f"{source}: {which} architecture adapter recognises this ECAD schedule's layout",
                                path=source)
    layout = found[0][1]
    return layout.architecture, layout.groups


def load_any_schedule(path: str | os.PathLike, architecture=None) -> CacheSchedule:
    """A v1 schedule file, or a legacy (ECAD / SmoothCache) one imported on the fly."""
    doc = read_json(path, error_cls=ScheduleError, max_bytes=MAX_SCHEDULE_BYTES)
    if isinstance(doc, dict) and "ecad_schedule_version" not in doc:
        return from_legacy(path, architecture=architecture)
    return CacheSchedule.from_dict(doc, source=str(path))


def _from_ecad(doc: dict, source: str, file_info: dict, name: str | None, architecture, generation) -> CacheSchedule:
    cs = doc["cache_schedule"]
    if not isinstance(cs, dict) or not isinstance(cs.get("schedule"), dict):
        raise LegacyFormatError(f"{source}: cache_schedule.schedule must be an object", path=source)
    steps = _int(cs.get("num_inference_steps"), "cache_schedule.num_inference_steps", source)
    _int(cs.get("num_blocks"), "cache_schedule.num_blocks", source)
    sched = cs["schedule"]

    # Refuse custom functions before anything else, naming the first occurrence.
    for step_key, blocks in sched.items():
        if not isinstance(blocks, dict):
            raise LegacyFormatError(f"{source}: schedule[{step_key!r}] must be an object", path=source)
        for block_key, comps in blocks.items():
            if isinstance(comps, dict):
                for key in _CUSTOM_KEYS:
                    if key in comps:
                        func = comps[key].get("name", "?") if isinstance(comps[key], dict) else comps[key]
                        raise UnsupportedFeatureError(
                            f"{source}: step {step_key}, block {block_key} uses {key} {func!r} "
                            f"(custom attention/FF functions such as TGATE are not supported; "
                            f"ecad-hub schedules only recompute or reuse sub-module outputs)",
                            path=source,
                        )

    arch, layout = _ecad_layout(cs, source)
    _check_architecture(arch, architecture, source)

    step_keys = _step_keys(sched, steps, source)
    masks = {}
    for group in arch.groups:
        block_keys, comp_map = layout[group.name]
        arr = np.zeros((steps, group.num_blocks, len(group.components)), dtype=bool)
        for s, step_key in enumerate(step_keys):
            blocks = sched[step_key]
            for b, block_key in enumerate(block_keys):
                comps = blocks.get(block_key)
                if not isinstance(comps, dict):
                    raise LegacyFormatError(f"{source}: step {step_key}: missing block {block_key!r}", path=source)
                for legacy_comp, comp in comp_map.items():
                    if legacy_comp not in comps:
                        raise LegacyFormatError(
                            f"{source}: step {step_key}, block {block_key}: missing component {legacy_comp!r}", path=source
                        )
                    arr[s, b, group.components.index(comp)] = _bool(
                        comps[legacy_comp], f"step {step_key}, block {block_key}, {legacy_comp}", source
                    )
                unknown = set(comps) - set(comp_map)
                if unknown:
                    raise LegacyFormatError(
                        f"{source}: step {step_key}, block {block_key}: unknown components {sorted(unknown)} "
                        f"(expected {sorted(comp_map)})",
                        path=source,
                    )
        masks[group.name] = arr
    all_block_keys = set().union(*(set(layout[g][0]) for g in layout))
    for step_key in step_keys:
        extra = set(sched[step_key]) - all_block_keys
        if extra:
            raise LegacyFormatError(f"{source}: step {step_key}: unexpected blocks {sorted(extra)[:5]}", path=source)

    metrics = _ecad_metrics(doc.get("metrics"), steps, source)
    gen = _ecad_generation(doc.get("config"))
    gen.update(generation or {})
    legacy_name = cs.get("name")
    provenance = {"imported_from": {"format": "ecad-legacy", **file_info}}
    if isinstance(legacy_name, str):
        provenance["imported_from"]["name"] = legacy_name[:400]
    final_name = _safe_name(name, legacy_name if isinstance(legacy_name, str) else "")
    kind, description = _ecad_kind(masks, cs, final_name, legacy_name if isinstance(legacy_name, str) else None)
    if kind:
        provenance["kind"] = kind
    _add_version(provenance)
    what = f" ({description})" if description else ""
    origin = file_info.get("file") or "a parsed document"
    original = f", original name {legacy_name[:200]!r}" if isinstance(legacy_name, str) and legacy_name != final_name else ""
    return CacheSchedule(
        final_name, steps, arch, masks, generation=gen, metrics=metrics, provenance=provenance,
        description=f"Imported from the ECAD reference format: {origin}{original}{what}."[:4000],
    )


def _ecad_kind(masks: dict, cs: dict, name: str, legacy_name: str | None) -> tuple[str | None, str | None]:
    """``(provenance kind, description)`` of an ECAD reference schedule, from what the file says."""
    bits = [arr for arr in masks.values()]
    if all(arr.all() for arr in bits):
        return "all-compute", "computes every sub-module at every step"
    attributes = cs.get("attributes") if isinstance(cs.get("attributes"), dict) else {}
    every = sorted({v for k, v in attributes.items() if _EVERY_ATTRIBUTE.match(str(k))
                    and isinstance(v, int) and not isinstance(v, bool)})
    if every:
        n = ", ".join(str(v) for v in every)
        return "heuristic", f"FORA-style heuristic: recompute every {n} steps, reuse otherwise"
    if any(HEURISTIC_NAME.search(n) for n in (name, legacy_name) if n) or is_step_uniform(masks):
        return "heuristic", "heuristic: recomputes all or nothing at each step"
    if legacy_name and LEARNED_NAME.search(legacy_name):
        return "learned", "a search candidate of the ECAD authors' NSGA-II search"
    return None, None


def is_step_uniform(masks: Mapping[str, np.ndarray]) -> bool:
    """Whether every step recomputes either everything or nothing (FORA's recompute-every-N shape),
    with at least one reused step: a static heuristic, not a learned schedule."""
    arrays = [np.asarray(a, dtype=bool).reshape(len(a), -1) for a in masks.values()]
    if not arrays:
        return False
    per_step = np.concatenate(arrays, axis=1)
    full, empty = per_step.all(axis=1), ~per_step.any(axis=1)
    return bool((full | empty).all() and empty[1:].any())


def _step_keys(sched: dict, steps: int, source: str) -> list[str]:
    by_index: dict[int, str] = {}
    for key in sched:
        try:
            idx = int(key)
        except (TypeError, ValueError):
            raise LegacyFormatError(f"{source}: schedule key {key!r} is not a step number", path=source) from None
        if idx in by_index:
            raise LegacyFormatError(f"{source}: step {idx} appears twice", path=source)
        by_index[idx] = key
    missing = [i for i in range(steps) if i not in by_index]
    if missing:
        raise LegacyFormatError(f"{source}: schedule has no step {missing[0]} (num_inference_steps={steps})", path=source)
    extra = sorted(i for i in by_index if not 0 <= i < steps)
    if extra:
        raise LegacyFormatError(f"{source}: schedule has step {extra[0]} beyond num_inference_steps={steps}", path=source)
    return [by_index[i] for i in range(steps)]


def _ecad_metrics(m: Any, steps: int, source: str) -> dict:
    if not isinstance(m, dict):
        return {}
    out: dict[str, Any] = {}
    by_step = m.get("by_inference_step")
    if isinstance(by_step, dict) and by_step:
        keys = _step_keys(by_step, steps, source + " metrics.by_inference_step")
        per_step = []
        for k in keys:
            entry = by_step[k]
            macs = entry.get("macs") if isinstance(entry, dict) else None
            if not isinstance(macs, int) or isinstance(macs, bool) or macs < 0:
                raise LegacyFormatError(f"{source}: metrics.by_inference_step[{k!r}].macs must be a non-negative integer", path=source)
            per_step.append(macs)
        total = sum(per_step)
        recorded = m.get("total_macs")
        if isinstance(recorded, int) and recorded != total:
            raise LegacyFormatError(
                f"{source}: metrics.total_macs {recorded} is not the sum of the per-step MACs {total}", path=source
            )
        out["macs"] = {"per_step": per_step, "total": total}
    lat = m.get("latency")
    if isinstance(lat, dict) and isinstance(lat.get("avg"), (int, float)):
        latency: dict[str, Any] = {"ms_per_image": float(lat["avg"])}
        if isinstance(lat.get("gpu"), str):
            latency["device"] = lat["gpu"][:200]
        if isinstance(lat.get("batch_size"), int) and lat["batch_size"] > 0:
            latency["batch_size"] = lat["batch_size"]
        runs = lat.get("latencies")
        if isinstance(runs, list) and runs:
            latency["runs"] = len(runs)
        out["latency"] = latency
    return out


def _ecad_generation(cfg: Any) -> dict:
    gen: dict[str, Any] = {}
    if not isinstance(cfg, dict):
        return gen
    for key in ("height", "width"):
        if isinstance(cfg.get(key), int) and not isinstance(cfg.get(key), bool) and cfg[key] > 0:
            gen[key] = cfg[key]
    if isinstance(cfg.get("guidance_scale"), (int, float)) and not isinstance(cfg.get("guidance_scale"), bool):
        gen["guidance_scale"] = float(cfg["guidance_scale"])
    weights = cfg.get("transformer_weights") or cfg.get("pipeline_weights")
    if isinstance(weights, str) and weights.count("/") == 1 and len(weights) <= 200:
        gen["base_model"] = weights
    return gen


def _add_version(provenance: dict) -> None:
    from .version import __version__

    provenance["ecad_hub_version"] = __version__


_PER_BLOCK_KEY = re.compile(r"^(?P<comp>[A-Za-z_][A-Za-z0-9_]*)-(?P<block>\d+)$")


def _from_smoothcache(doc: dict, source: str, file_info: dict, name: str | None, architecture, generation) -> CacheSchedule:
    if architecture is None:
        raise LegacyFormatError(
            f"{source}: a SmoothCache schedule does not name its model; pass architecture= (a transformer config or model)",
            path=source,
        )
    from .adapters import adapter_for, architecture_of

    arch = architecture_of(architecture)
    if len(arch.groups) != 1:
        raise LegacyFormatError(
            f"{source}: SmoothCache schedules have one block group; {arch.transformer_class} has {len(arch.groups)}",
            path=source,
        )
    group = arch.groups[0]
    try:
        aliases = dict(adapter_for(arch.transformer_class).component_aliases)
    except Exception:
        aliases = {}

    def resolve(comp: str) -> str:
        resolved = comp if comp in group.components else aliases.get(comp)
        if resolved not in group.components:
            raise LegacyFormatError(
                f"{source}: unknown component {comp!r} for {arch.transformer_class} (known: {list(group.components)}"
                f"{', aliases ' + str(sorted(aliases)) if aliases else ''})",
                path=source,
            )
        return resolved

    lengths = {len(v) for v in doc.values()}
    if len(lengths) != 1:
        raise LegacyFormatError(f"{source}: component lists have different lengths {sorted(lengths)}", path=source)
    steps = lengths.pop()
    if steps < 1:
        raise LegacyFormatError(f"{source}: empty component lists", path=source)
    arr = np.ones((steps, group.num_blocks, len(group.components)), dtype=bool)
    per_block = [k for k in doc if _PER_BLOCK_KEY.match(k)]
    if per_block and len(per_block) != len(doc):
        raise LegacyFormatError(f"{source}: mixes per-block keys ('attn-0') and shared keys ('attn')", path=source)
    for key, values in doc.items():
        bits = np.array([_bool(v, f"{key}[{i}]", source) for i, v in enumerate(values)], dtype=bool)
        if per_block:
            m = _PER_BLOCK_KEY.match(key)
            comp, block = resolve(m["comp"]), int(m["block"])
            if block >= group.num_blocks:
                raise LegacyFormatError(f"{source}: {key}: block {block} out of range ({group.num_blocks} blocks)", path=source)
            arr[:, block, group.components.index(comp)] = bits
        else:
            arr[:, :, group.components.index(resolve(key))] = bits[:, None]
    gen = dict(generation or {})
    provenance = {"imported_from": {"format": "smoothcache", **file_info}}
    _add_version(provenance)
    return CacheSchedule(_safe_name(name, "smoothcache"), steps, arch, {group.name: arr},
                         generation=gen, provenance=provenance)
