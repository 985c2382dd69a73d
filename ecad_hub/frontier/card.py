"""The model card (``README.md``) of an ECAD repo: pure rendering, no I/O.

:func:`model_card` builds the Hub metadata (:class:`~huggingface_hub.ModelCardData`: base model,
tags, model-index) and the values the text needs, then renders ``templates/card.md`` (a Jinja
template) with :meth:`huggingface_hub.ModelCard.from_template`. To change the card's wording
or layout edit the template; to change a value (a number's format, a tag, a provenance line)
edit this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .layout import CONFIG_FILE, HEATMAPS_DIR, INDEX_FILE, PLOT_FILE, REPO_ID, SCHEDULES_DIR

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import ModelCard

#: The Jinja template of the card's text (shipped as package data).
TEMPLATE_PATH = Path(__file__).with_name("templates") / "card.md"
#: The tag :func:`ecad_hub.browse` lists repos by.
ECAD_TAG = "ecad"
#: Tags every ECAD repo carries; the model family's tag (from its adapter) is added.
ECAD_TAGS = (ECAD_TAG, "diffusion-caching", "diffusers")
#: The repo id shown in the usage snippet when none is given.
PLACEHOLDER_REPO_ID = "your-username/your-ecad-repo"


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


def _row(frontier, s) -> dict[str, Any]:
    """One line of the schedules table."""
    latency = s.metrics.get("latency") or {}
    lat = f"{latency['ms_per_image']:.1f} ms" if "ms_per_image" in latency else "-"
    if "speedup" in latency:
        lat += f" ({latency['speedup']:.2f}x)"
    quality = frontier.quality(s)
    return {
        "name": s.name,
        "is_default": s.name == frontier.default,
        "speedup": f"{s.mac_speedup:.2f}x" if s.mac_speedup else "-",
        "quality": "-" if quality is None else format(quality, ".4g"),
        "latency": lat,
        "computed": f"{100 * s.fraction_computed():.1f}%",
    }


def _facts(frontier) -> list[tuple[str, str]]:
    """The provenance list: ``(label, value)`` of everything recorded."""
    search = frontier.search
    metric = frontier.metric
    prompts, prompt_sha = prompt_set(frontier)
    facts = [("Base model", f"`{frontier.base_model}`"
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


def model_card(frontier, repo_id: str | None = None) -> "ModelCard":
    """The README of an ECAD repo for ``frontier`` (a :class:`~ecad_hub.Frontier`): Hub metadata and a usage guide.

    ``repo_id`` goes into the usage snippet (a placeholder if ``None``). Deterministic: the
    same frontier and ``repo_id`` always give the same text.
    """
    from huggingface_hub import ModelCard, ModelCardData

    repo = repo_id or PLACEHOLDER_REPO_ID
    family = frontier.family
    data = ModelCardData(
        base_model=frontier.base_model,
        base_model_relation="adapter",  # schedules act on the base model's own weights
        library_name="ecad-hub",
        pipeline_tag="text-to-image",
        tags=list(ECAD_TAGS) + ([family] if family else []),
        model_name=repo.split("/")[-1],
        eval_results=_eval_results(frontier) or None,
    )
    base = frontier.base_model
    return ModelCard.from_template(
        data,
        template_path=str(TEMPLATE_PATH),
        base_model=base,
        base_link=f"[`{base}`](https://huggingface.co/{base})" if REPO_ID.match(base) else f"`{base}`",
        base_model_revision=frontier.base_model_revision,
        transformer_class=frontier.architecture.transformer_class,
        steps=frontier.num_inference_steps,
        num_schedules=len(frontier),
        size=f"{frontier.height}x{frontier.width}" if frontier.resolutions else "the base model's default size",
        repo=repo,
        default=frontier.default,
        fastest=frontier.names[-1],
        quality_header=_md(frontier.metric) if frontier.metric else "Quality",
        rows=[_row(frontier, s) for s in frontier],
        names=frontier.names,
        facts=_facts(frontier),
        config_file=CONFIG_FILE,
        index_file=INDEX_FILE,
        schedules_dir=SCHEDULES_DIR,
        plot_file=PLOT_FILE,
        heatmaps_dir=HEATMAPS_DIR,
        comparison=comparison_section(getattr(frontier, "comparison", None)),
    )
