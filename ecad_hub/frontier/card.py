"""The model card (``README.md``) of an ECAD repo: pure rendering, no I/O.

:func:`model_card` builds the Hub metadata (:class:`~huggingface_hub.ModelCardData`: base model,
tags, model-index) and the values the text needs, then renders ``templates/card.md`` (a Jinja
template) with :meth:`huggingface_hub.ModelCard.from_template`. To change the card's wording
or layout edit the template; to change a value (a number's format, a tag, a provenance line)
edit this module.

What the card claims is what the frontier records (issue #14, "honest cards"):

* each schedule's **kind** (:func:`schedule_kind`): ``learned`` (found by a search: ecad-hub's, or
  one recorded in ``provenance``), ``heuristic`` (FORA-style recompute-every-N and other static
  rules, by ``provenance.kind``, name or mask shape), ``all-compute`` (the reference) or
  ``unknown``; the words "learned" and "Pareto frontier" appear only when true (no quality scores:
  the schedules are ordered by MACs only, and the card says so);
* latency with the device, dtype and batch size it was measured with (what is not recorded is
  said to be not recorded);
* ``license`` in the metadata: the frontier's (``license=``, ``--license``), else the base model's
  where known, else ``other`` with a line saying none was recorded;
* the repo id in the snippets (filled in by ``push_to_hub``); a local card says it has none;
* the embedded model (``ecad_hub.embedded``) is described as what it is, with no ``base_model``
  metadata (it is not a Hub model) and a prompt from its own vocabulary.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FrontierError
from ..legacy import HEURISTIC_NAME, is_step_uniform
from .layout import CONFIG_FILE, HEATMAPS_DIR, INDEX_FILE, PLOT_FILE, REPO_ID, SCHEDULES_DIR

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import ModelCard

#: The Jinja template of the card's text (shipped as package data).
TEMPLATE_PATH = Path(__file__).with_name("templates") / "card.md"
#: The tag :func:`ecad_hub.browse` lists repos by.
ECAD_TAG = "ecad"
#: Tags every ECAD repo carries; the model family's tag (from its adapter) is added.
ECAD_TAGS = (ECAD_TAG, "diffusion-caching", "diffusers")
#: The repo id shown in the usage snippet when none is given (the card says it is a placeholder).
PLACEHOLDER_REPO_ID = "your-username/your-ecad-repo"
#: The license written when neither the frontier nor its base model records one.
UNKNOWN_LICENSE = "other"
#: What a license id looks like (Hub license ids: ``apache-2.0``, ``openrail++``, ``cc-by-nc-4.0``, ``other``).
LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")
#: The usage snippet's prompt for models other than the embedded one.
GENERIC_PROMPT = "a photo of a red fox in the snow"


def check_license(value) -> str | None:
    """``value`` as a license id (lower-cased), ``None`` for ``None``/empty; a bad one raises :class:`FrontierError`."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if not LICENSE_ID.fullmatch(text):
        raise FrontierError(f"license {str(value)[:80]!r} is not a Hub license id (e.g. apache-2.0, mit, "
                            f"openrail++, cc-by-nc-4.0, other)")
    return text


# --------------------------------------------------------------------------------------------
# what each schedule is
# --------------------------------------------------------------------------------------------

#: An ECAD reference candidate name: ``handcrafted-nsga2-pw-bf_gen_358_cand_014``.
LEARNED_DETAIL = re.compile(r"gen_?(?P<gen>\d+)_cand_?(?P<cand>\d+)")
#: Short labels of the kinds, as the schedules table shows them.
KIND_LABELS = {"learned": "learned", "heuristic": "heuristic (not learned)",
               "all-compute": "all-compute reference", "unknown": "origin not recorded"}


def schedule_kind(schedule, searched: bool = False) -> str:
    """What a schedule is: ``"all-compute"``, ``"heuristic"``, ``"learned"`` or ``"unknown"``.

    ``all-compute``: it computes every sub-module at every step. ``heuristic``: its
    ``provenance.kind`` says so, its name is a heuristic's (``recompute_all_every_003``,
    ``fora-3``, ...) or its mask recomputes all or nothing at each step (FORA's shape).
    ``learned``: ``provenance.kind`` says so, it records an ecad-hub search run, or ``searched``
    (the frontier records search provenance) and it was not imported from a file. Else ``unknown``.
    """
    prov = schedule.provenance
    kind = prov.get("kind")
    if kind == "all-compute" or schedule.fraction_computed() >= 1.0:
        return "all-compute"
    if kind == "heuristic" or HEURISTIC_NAME.search(schedule.name) or is_step_uniform(schedule.masks):
        return "heuristic"
    if kind == "learned" or prov.get("search_run") or (searched and "imported_from" not in prov):
        return "learned"
    return "unknown"


def kinds(frontier) -> dict[str, str]:
    """``{schedule name: kind}`` (:func:`schedule_kind`) of every schedule of ``frontier``."""
    searched = bool(frontier.search)
    return {s.name: schedule_kind(s, searched) for s in frontier}


def schedule_origin(schedule, kind: str) -> str:
    """One line on where a schedule comes from, from its provenance (for the card's provenance list)."""
    prov = schedule.provenance
    imported = prov.get("imported_from") or {}
    parts = []
    if imported:
        fmt = {"ecad-legacy": "the ECAD reference format (the ECAD authors' JSON layout)",
               "smoothcache": "the SmoothCache format"}.get(imported.get("format"), f"`{imported.get('format')}`")
        where = f"`{_md(imported['file'])}`" if imported.get("file") else "a file"
        text = f"imported from {where} in {fmt}"
        if imported.get("name") and imported["name"] != schedule.name:
            text += f", original name `{_md(imported['name'])}`"
        if imported.get("sha256"):
            text += f", sha256 `{imported['sha256'][:12]}…`"
        parts.append(text)
    if prov.get("search_run"):
        text = f"found by ecad-hub search run `{_md(prov['search_run'])}`"
        if "generation" in prov:
            text += f", generation {prov['generation']}"
        if "candidate" in prov:
            text += f", candidate {prov['candidate']}"
        parts.append(text)
    found = LEARNED_DETAIL.search(imported.get("name") or "") if imported.get("format") == "ecad-legacy" else None
    if kind == "learned" and found:
        parts.append(f"learned: generation {int(found['gen'])}, candidate {int(found['cand'])} of the ECAD authors' "
                     f"NSGA-II search (by its original name)")
        return "; ".join(parts)
    parts.append({"learned": "learned (found by a search)",
                  "heuristic": "a static heuristic, not learned",
                  "all-compute": "the all-compute reference (no caching)",
                  "unknown": "what made it is not recorded"}[kind])
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------------------------

def latency_conditions(latency: dict) -> str:
    """``"NVIDIA RTX A6000, dtype not recorded, batch 100"``: what a latency figure was measured with."""
    device = latency.get("device")
    dtype = latency.get("dtype")
    batch = latency.get("batch_size")
    return ", ".join([_md(device) if device else "device not recorded",
                      _md(dtype) if dtype else "dtype not recorded",
                      f"batch {batch}" if batch else "batch size not recorded"])


def _latency_cell(latency: dict, label: bool) -> str:
    if "ms_per_image" not in latency:
        return "-"
    text = f"{latency['ms_per_image']:.1f} ms/image"
    if "speedup" in latency:
        text += f" ({latency['speedup']:.2f}x)"
    if label:
        text += f" ({latency_conditions(latency)})"
    return text


def _latency_note(frontier) -> tuple[str | None, bool]:
    """``(note under the table, label each cell)``: one note when every figure shares its conditions."""
    measured = [s.metrics.get("latency") or {} for s in frontier]
    measured = [m for m in measured if "ms_per_image" in m]
    if not measured:
        return None, False
    conditions = {latency_conditions(m) for m in measured}
    runs = {m.get("runs") for m in measured}
    if len(conditions) == 1:
        run_text = f", {runs.pop()} timed runs" if len(runs) == 1 and None not in runs else ""
        return (f"Latency: as recorded with the schedules ({conditions.pop()}{run_text}), "
                f"not measured on your hardware; ms per image."), False
    return "Latency: as recorded with each schedule (conditions in each cell), not measured on your hardware.", True


def prompt_set(frontier) -> tuple[str | None, str | None]:
    """``(name, sha256)`` of the prompt set the quality was measured on: the search's, else a schedule's."""
    prompts = (frontier.search or {}).get("prompt_set") or {}
    if prompts.get("name"):
        return prompts["name"], prompts.get("sha256")
    for s in frontier:
        for q in s.metrics.get("quality", []):
            if q.get("prompt_set"):
                return q["prompt_set"], q.get("prompt_set_sha256")
    return None, None


def _eval_results(frontier) -> list:
    from huggingface_hub import EvalResult

    name, _ = prompt_set(frontier)
    dataset = name or "unspecified-prompts"
    results = []
    for s in frontier:
        common = dict(task_type="text-to-image", task_name=f"Text-to-image with schedule {s.name}",
                      dataset_type=dataset, dataset_name=dataset, dataset_config=s.name)
        for q in s.metrics.get("quality", []):
            results.append(EvalResult(metric_type=q["metric"], metric_name=q["metric"],
                                      metric_value=float(q["value"]), **common))
        if s.mac_speedup is not None:
            results.append(EvalResult(metric_type="mac_speedup", metric_name="MAC speedup",
                                      metric_value=round(float(s.mac_speedup), 4), **common))
        latency = s.metrics.get("latency") or {}
        if "speedup" in latency:
            results.append(EvalResult(metric_type="latency_speedup", metric_name="Latency speedup",
                                      metric_value=float(latency["speedup"]), **common))
    return results


def _md(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|")


def _row(frontier, s, kind: str, label_latency: bool) -> dict[str, Any]:
    """One line of the schedules table."""
    quality = frontier.quality(s)
    return {
        "name": s.name,
        "is_default": s.name == frontier.default,
        "speedup": f"{s.mac_speedup:.2f}x" if s.mac_speedup else "-",
        "quality": "not scored" if quality is None else format(quality, ".4g"),
        "latency": _latency_cell(s.metrics.get("latency") or {}, label_latency),
        "computed": f"{100 * s.fraction_computed():.1f}%",
        "kind": KIND_LABELS[kind],
    }


def _facts(frontier) -> list[tuple[str, str]]:
    """The provenance list: ``(label, value)`` of everything recorded."""
    search = frontier.search
    metric = frontier.metric
    prompts, prompt_sha = prompt_set(frontier)
    facts = [("Base model", (f"`{frontier.base_model}`" if not _is_embedded(frontier) else
                             f"`{frontier.base_model}` (the digits model inside the ecad-hub package, not a Hub model)")
              + (f" @ `{frontier.base_model_revision}`" if frontier.base_model_revision else "")),
             ("Pipeline", f"`{frontier.pipeline_class}`" if frontier.pipeline_class else None),
             ("Transformer", f"`{frontier.architecture.describe()}`"),
             ("Resolution", ", ".join(f"{h}x{w}" for h, w in frontier.resolutions) or None),
             ("Steps", str(frontier.num_inference_steps)),
             ("Guidance scale", f"{frontier.guidance_scale:g}" if frontier.guidance_scale is not None else None),
             ("Quality metric", f"`{metric}`" if metric else None),
             ("Prompt set", f"`{prompts}`" + (f" (sha256 `{prompt_sha}`)" if prompt_sha else "")
              if prompts else None)]
    if search:
        facts += [("Population", str(search["population"]) if "population" in search else None),
                  ("Generations", str(search["generations"]) if "generations" in search else None),
                  ("Seed", str(search["seed"]) if "seed" in search else None),
                  ("ecad-hub version", f"`{search['ecad_hub_version']}`" if "ecad_hub_version" in search else None)]
    else:
        facts.append(("Search", "assembled from schedule files (no search provenance recorded)"))
    return [(k, v) for k, v in facts if v is not None]


def _fmt_num(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{format(value, spec)}{suffix}"


def comparison_section(comparison) -> dict[str, Any] | None:
    """The values of the "Compared with other caches" section, from a frontier's ``comparison``
    record (``ecad-hub compare --into``; schema ``frontier-v1#/$defs/comparison``), or ``None``."""
    if not comparison or not comparison.get("rows"):
        return None
    metric = comparison.get("metric", "quality")
    head = ["Method", "Setting", "MAC speedup", "Wall speedup", f"{metric} (held-out)", "PSNR vs all-compute",
            f"{metric} (calibration)"]
    lines = ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
    for r in comparison["rows"]:
        cells = [r.get("method", ""), r.get("setting", ""), _fmt_num(r.get("mac_speedup"), ".2f", "x"),
                 _fmt_num(r.get("wall_speedup"), ".2f", "x"), _fmt_num(r.get("quality"), ".4g"),
                 "-" if r.get("kind") == "reference" else _fmt_num(r.get("fidelity_psnr"), ".1f", " dB"),
                 _fmt_num(r.get("calibration_quality"), ".4g")]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    ps = comparison.get("prompt_set") or {}
    machine = comparison.get("machine") or {}
    load = machine.get("loadavg_at_start")
    timing = comparison.get("timing") or {}
    return {
        "plot": comparison.get("plot"),
        "table": "\n".join(lines),
        "metric": _md(metric),
        "prompt_set": _md(ps.get("name", "held-out prompts")),
        "num_pairs": ps.get("num_pairs"),
        "num_images": ps.get("images") or (comparison["rows"][0].get("num_images")),
        "seeds": ps.get("seeds"),
        "calibration_prompts": (comparison.get("calibration") or {}).get("num_prompts"),
        "machine": _md(f"{machine.get('cpu', 'unknown CPU')}, {machine.get('cpu_count', '?')} CPUs, "
                       f"{machine.get('torch_threads', '?')} torch threads, torch {machine.get('torch', '?')}"
                       + (f", load average {load[0]:.2f} at start" if load else "")),
        "timing": _md(timing.get("what", "")),
        "summary": [_md(x) for x in comparison.get("summary", [])],
        "skipped": [_md(x) for x in comparison.get("skipped", [])],
    }


def _is_embedded(frontier) -> bool:
    from ..embedded import MODEL_ID

    return frontier.base_model == MODEL_ID


def _summary(frontier, kind_of: dict[str, str]) -> dict[str, Any]:
    """The card's claims about the schedules: what they are, whether they are scored, the wording."""
    counts = {k: sum(1 for v in kind_of.values() if v == k) for k in KIND_LABELS}
    caching = [n for n, k in kind_of.items() if k != "all-compute"]
    scored = [s.name for s in frontier if frontier.quality(s) is not None]
    scored_caching = [n for n in caching if n in scored]
    all_learned = bool(caching) and all(kind_of[n] == "learned" for n in caching)
    parts = []
    for key, one, many in (("learned", "learned by a search", "learned by a search"),
                           ("heuristic", "static heuristic (not learned)", "static heuristics (not learned)"),
                           ("unknown", "of unrecorded origin", "of unrecorded origin"),
                           ("all-compute", "all-compute reference", "all-compute references")):
        if counts[key]:
            parts.append(f"{counts[key]} {one if counts[key] == 1 else many}")
    composition = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    pareto = bool(frontier.search) and all_learned and caching and len(scored_caching) == len(caching)
    if not scored_caching:
        ranking = ("None of them is quality-scored here, so they are ordered by MAC count only: this is not a "
                   "quality/compute Pareto frontier, and the images they give are not checked by this card.")
    elif len(scored_caching) < len(caching):
        ranking = (f"{len(scored_caching)} of the {len(caching)} caching schedules are scored with "
                   f"`{_md(frontier.metric)}`; the others are marked *not scored* and ordered by MAC count only.")
    elif pareto:
        ranking = (f"They trade compute for quality (`{_md(frontier.metric)}`) along the Pareto frontier of an "
                   f"ecad-hub search.")
    else:
        ranking = f"Every caching schedule is scored with `{_md(frontier.metric)}`; they are ordered by MAC count."
    return {"learned_word": all_learned, "composition": composition, "ranking": ranking, "pareto": pareto,
            "scored": bool(scored_caching)}


def _default_reason(frontier, kind_of: dict[str, str]) -> str:
    kind = kind_of[frontier.default]
    scored = frontier.quality(frontier.default) is not None
    if kind == "learned":
        return "a learned schedule" + (" with a quality score" if scored else ", not quality-scored here")
    if kind == "heuristic":
        return "a heuristic: the frontier has no learned schedule"
    if kind == "all-compute":
        return "the all-compute reference: the frontier has no other schedule to recommend"
    return "of unrecorded origin" + (", scored" if scored else ", not quality-scored")


def model_card(frontier, repo_id: str | None = None, *, license: str | None = None) -> "ModelCard":
    """The README of an ECAD repo for ``frontier`` (a :class:`~ecad_hub.Frontier`): Hub metadata and a usage guide.

    ``repo_id`` goes into the usage snippets (without one, a placeholder the card marks as such).
    ``license``: the license id for the metadata (default: ``frontier.license``, else ``other``
    with a line saying none was recorded). Deterministic: the same arguments give the same text.
    """
    from huggingface_hub import ModelCard, ModelCardData

    repo = repo_id or PLACEHOLDER_REPO_ID
    family = frontier.family
    embedded = _is_embedded(frontier)
    base = frontier.base_model
    hub_base = bool(REPO_ID.match(base)) and not embedded
    license_id = check_license(license) or check_license(getattr(frontier, "license", None))
    if license_id is None and embedded:
        from ..embedded import LICENSE

        license_id = LICENSE
    recorded_license = license_id is not None
    license_id = license_id or UNKNOWN_LICENSE
    kind_of = kinds(frontier)
    summary = _summary(frontier, kind_of)
    latency_note, label_latency = _latency_note(frontier)
    points, xlabel, ylabel = frontier.plot_points()
    if embedded:
        from .. import embedded as embedded_model

        prompt = embedded_model.default_prompts(1, seed=0)[0]
        base_title = "the embedded digits model"
        base_link = "the embedded digits model"
        base_description = embedded_model.CARD_DESCRIPTION
        local_name = "embedded-digits-ecad"
    else:
        prompt = GENERIC_PROMPT
        base_title = base
        base_link = f"[`{base}`](https://huggingface.co/{base})" if hub_base else f"`{base}`"
        base_description = None
        local_name = f"{base.rstrip('/').split('/')[-1][:80] or 'model'}-ecad"
    data = ModelCardData(
        base_model=base if hub_base else None,
        base_model_relation="adapter" if hub_base else None,  # schedules act on the base model's own weights
        library_name="ecad-hub",
        license=license_id,
        pipeline_tag="text-to-image",
        tags=list(ECAD_TAGS) + ([family] if family else []),
        model_name=repo.split("/")[-1] if repo_id else local_name,
        eval_results=_eval_results(frontier) or None,
    )
    return ModelCard.from_template(
        data,
        template_path=str(TEMPLATE_PATH),
        base_model=base,
        base_title=base_title,
        base_link=base_link,
        base_description=base_description,
        embedded=embedded,
        hub_base=hub_base,
        base_model_revision=frontier.base_model_revision,
        transformer_class=frontier.architecture.transformer_class,
        steps=frontier.num_inference_steps,
        num_schedules=len(frontier),
        size=f"{frontier.height}x{frontier.width}" if frontier.resolutions else "the base model's default size",
        repo=repo,
        has_repo=bool(repo_id),
        prompt=prompt,
        default=frontier.default,
        default_reason=_default_reason(frontier, kind_of),
        fastest=frontier.names[-1],
        summary=summary,
        quality_header=_md(frontier.metric) if frontier.metric else "Quality",
        rows=[_row(frontier, s, kind_of[s.name], label_latency) for s in frontier],
        latency_note=latency_note,
        plot_alt=_md(f"{ylabel} against {xlabel}"),
        origins=[(s.name, schedule_origin(s, kind_of[s.name])) for s in frontier],
        names=frontier.names,
        facts=_facts(frontier),
        license=license_id,
        recorded_license=recorded_license,
        config_file=CONFIG_FILE,
        index_file=INDEX_FILE,
        schedules_dir=SCHEDULES_DIR,
        plot_file=PLOT_FILE,
        heatmaps_dir=HEATMAPS_DIR,
        comparison=comparison_section(getattr(frontier, "comparison", None)),
    )
