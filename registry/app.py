#!/usr/bin/env python
"""The ECAD frontier explorer: a Gradio app (a Hugging Face Space) over every published frontier.

    python registry/app.py                                   # the Hub (HF_ENDPOINT, default huggingface.co)
    python registry/app.py --endpoint http://127.0.0.1:8080 --port 7860
    ECAD_REGISTRY_ENDPOINT=... ECAD_REGISTRY_PORT=... python registry/app.py

* a listing of every repo tagged ``ecad`` (plus the curated ``index.json``; live data wins,
  entries the Hub no longer has are marked), filtered by base model, architecture family,
  resolution, steps and metric, sorted by best quality at a chosen MAC speedup;
* one overlay plot of their Pareto frontiers (MAC speedup vs quality on each frontier's own
  metric; frontiers without quality lie on the speedup axis; baselines from a frontier's
  ``comparison`` drawn beside it), hover shows repo, schedule, speedup and quality;
* for a selected schedule (a row of the "schedules" table, or the dropdown): its mask heatmap,
  metrics and provenance, copy-paste loading lines and a link to the repo;
* a per-base-model leaderboard: best quality at 1.5x / 2x / 3x across repos.

It reads only through ecad-hub's public API (``ecad_hub.browse`` for the listing,
``ecad_hub.Frontier.load`` for a selected repo), so only frontier JSON is ever downloaded; repos
with a broken ``frontier.json`` are skipped with a visible note.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE.parent / "ecad_hub").is_dir():  # a checkout: use its ecad_hub (a Space installs ecad-hub instead)
    sys.path.insert(0, str(HERE.parent))

from ecad_hub.registry import model  # noqa: E402  (rows, points, leaderboard: shared with browse --html)
from ecad_hub.registry.index import INDEXED, LIVE, load_index  # noqa: E402

INDEX_PATH = HERE / "index.json"  # the Space's copy of ecad_hub/registry/index.json (a test checks they agree)

ALL = "(all)"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


class Registry:
    """What the app shows: the live listing merged with the curated index, and loaded frontiers.

    ``lister``/``loader`` default to ``ecad_hub.browse`` (called with ``index=``, and with
    ``offline=True`` when the Hub listing fails) / ``ecad_hub.Frontier.load``. Frontiers read on the
    Hub are :attr:`summaries`; index entries the Hub did not resolve are :attr:`extra_rows`.
    """

    def __init__(self, *, base_model: str | None = None, limit: int = 500, index: dict | None = None,
                 lister=None, loader=None):
        self.base_model, self.limit = base_model, limit
        self.index = index
        self._lister, self._loader = lister, loader
        self.summaries: list = []
        self.skipped: list[str] = []
        self.extra_rows: list = []
        self.notes: dict[str, str] = {}
        self.error: str | None = None
        self._frontiers: dict = {}
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        from huggingface_hub import constants

        return constants.ENDPOINT

    def refresh(self) -> "Registry":
        from ecad_hub import EcadError, browse

        lister = self._lister or browse
        with self._lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                listed = lister(base_model=self.base_model, limit=self.limit, index=self.index)
                self.error = None
            except EcadError as e:
                self.error = str(e)
                listed = ([] if self.index is None else
                          lister(base_model=self.base_model, limit=self.limit, index=self.index, offline=True))
            self.skipped = [_short(str(w.message).removeprefix("browse: skipping ")) for w in caught
                            if issubclass(w.category, UserWarning) and "skipping" in str(w.message)]
            live = [getattr(s, "status", LIVE) in (LIVE, INDEXED) for s in listed]
            self.summaries = [s for s, ok in zip(listed, live) if ok]
            self.extra_rows = [model.row_of(s) for s, ok in zip(listed, live) if not ok]
            self.notes = {}
        return self

    def summary(self, repo_id: str):
        return next((s for s in self.summaries if s.repo_id == repo_id), None)

    def frontier(self, repo_id: str):
        """The repo's frontier (``Frontier.load``: its JSON files only), cached per commit."""
        from ecad_hub import Frontier

        s = self.summary(repo_id)
        key = (repo_id, getattr(s, "sha", None))
        if key not in self._frontiers:
            load = self._loader or Frontier.load
            self._frontiers[key] = load(repo_id, revision=key[1]) if key[1] else load(repo_id)
        return self._frontiers[key]


def _short(message: str) -> str:
    """A skip reason without the local cache path (``.../snapshots/<sha>/frontier.json`` -> ``frontier.json``)."""
    return re.sub(r"\S*/snapshots/[0-9a-f]{40}/", "", message)


# --------------------------------------------------------------------------------------------
# views (pure: registry + filter values -> what the components show)
# --------------------------------------------------------------------------------------------

def _filters(base, family, resolution, steps, metric) -> model.Filters:
    return model.Filters(base, family, resolution, None if steps in (None, "", ALL) else int(steps), metric)


def status_markdown(reg: Registry, shown: int) -> str:
    lines = [f"**{shown}** of **{len(reg.summaries)}** published frontier(s) shown "
             f"(from {reg.endpoint}, repos tagged `ecad`)."]
    if reg.error:
        lines.append(f"\n**Hub listing failed:** {reg.error}; showing the curated index only.")
    if reg.skipped:
        lines.append("\n**Skipped** (unreadable frontier.json):\n" + "\n".join(f"* {s}" for s in reg.skipped))
    if reg.extra_rows:
        lines.append(f"\n{len(reg.extra_rows)} curated index entr{'y' if len(reg.extra_rows) == 1 else 'ies'} "
                     "without live data (marked in the table).")
    return "\n".join(lines)


def points_frame(points):
    import pandas as pd

    floor = model.axis_floor(points)
    several = len({p.metric for p in points if p.quality is not None}) > 1
    return pd.DataFrame({
        "MAC speedup": [p.speedup for p in points],
        "quality": [p.quality if p.quality is not None else floor for p in points],
        "series": [p.series + (" (no quality scores)" if p.quality is None else f" [{p.metric}]" if several else "")
                   for p in points],
        "repo": [p.repo_id for p in points],
        "schedule": [p.schedule for p in points],
        "speedup": [model.fmt_speedup(p.speedup) for p in points],
        "value": [f"{p.metric} {p.quality:.4g}" if p.quality is not None else "not recorded" for p in points],
        "kind": [p.kind for p in points],
    })


def schedules_frame(points):
    import pandas as pd

    return pd.DataFrame([[p.repo_id, p.schedule, model.fmt_speedup(p.speedup),
                          "-" if p.quality is None else f"{p.quality:.4g}", p.metric, p.kind] for p in points],
                        columns=["repo", "schedule", "MAC speedup", "quality", "metric", "kind"])


def listing_frame(reg: Registry, f: model.Filters, sort_speedup: float):
    import pandas as pd

    shown = model.apply_filters(reg.summaries, f)
    extra = [r for r in reg.extra_rows if _row_matches(r, f)]
    rows = model.table_rows(shown, sort_speedup, notes=reg.notes, extra=extra)
    return pd.DataFrame([r.cells() for r in rows], columns=model.table_headers(sort_speedup)), shown


def _row_matches(row, f: model.Filters) -> bool:
    f = f.normalized()
    return ((not f.base_model or row.base_model == f.base_model) and (not f.family or row.family == f.family)
            and (not f.resolution or row.resolution == f.resolution) and (f.steps is None or row.steps == f.steps)
            and (not f.metric or row.metric == f.metric))


def leaderboard_frame(summaries):
    import pandas as pd

    return pd.DataFrame(model.leaderboard(summaries), columns=model.leaderboard_headers())


def detail(reg: Registry, label: str | None):
    """(heatmap figure or None, details markdown, loading lines, link markdown) for ``"repo · schedule"``."""
    if not label or " · " not in label:
        return None, "Select a schedule (a row of the schedules table, or the dropdown).", "", ""
    repo_id, name = label.split(" · ", 1)
    s = reg.summary(repo_id)
    link = f"[{repo_id} on the Hub]({model.repo_url(reg.endpoint, repo_id)})"
    if s is None or name not in s.names:
        return None, f"**{label}** is a baseline from the repo's comparison results (no schedule file).", "", link
    from ecad_hub import EcadError
    from ecad_hub.plotting import mask_heatmap_figure

    try:
        frontier = reg.frontier(repo_id)
        schedule = frontier[name]
    except EcadError as e:
        return None, f"**Cannot load {repo_id}:** {e}", model.loading_lines(repo_id, name), link
    q = frontier.quality(schedule)
    lines = [f"### {repo_id} · `{name}`",
             f"* MAC speedup: **{model.fmt_speedup(schedule.mac_speedup)}**, "
             f"{100 * schedule.fraction_computed():.1f}% of sub-module evaluations computed",
             f"* quality: **{model.fmt(q)}** ({frontier.metric or 'no metric recorded'})"]
    others = [f"{e['metric']} {e['value']:.4g}" for e in schedule.metrics.get("quality", [])
              if e.get("metric") != frontier.metric]
    if others:
        lines.append(f"* other quality records: {', '.join(others)}")
    latency = schedule.metrics.get("latency") or {}
    if latency:
        lines.append("* latency: " + ", ".join(f"{k} {v}" for k, v in latency.items()))
    lines.append(f"* base model: `{frontier.base_model}`" + (f" @ `{frontier.base_model_revision}`"
                                                            if frontier.base_model_revision else ""))
    lines.append(f"* {frontier.architecture.transformer_class}, {frontier.num_inference_steps} steps, "
                 + (", ".join(f"{h}x{w}" for h, w in frontier.resolutions) or "resolution not recorded"))
    if frontier.commit:
        lines.append(f"* repo commit: `{frontier.commit}`")
    search = frontier.search or {}
    if search:
        metric = (search.get("metric") or {}).get("name", "-")
        prompts = search.get("prompt_set") or {}
        lines.append(f"* search: metric {metric}, prompts {prompts.get('name', '-')} "
                     f"({prompts.get('num_prompts', '-')}), population {search.get('population', '-')}, "
                     f"generations {search.get('generations', '-')}, seed {search.get('seed', '-')}, "
                     f"ecad-hub {search.get('ecad_hub_version', '-')}")
    prov = schedule.provenance
    if prov:
        lines.append("* schedule provenance: " + ", ".join(f"{k}: {v}" for k, v in prov.items()))
    return mask_heatmap_figure(schedule), "\n".join(lines), model.loading_lines(repo_id, name), link


# --------------------------------------------------------------------------------------------
# the Gradio app
# --------------------------------------------------------------------------------------------

def build_app(reg: Registry):
    import gradio as gr

    def dd(label, values, elem_id):
        return gr.Dropdown([ALL] + [str(v) for v in values], value=ALL, label=label, elem_id=elem_id)

    c = model.choices(reg.summaries)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    with gr.Blocks(title="ECAD frontier explorer") as demo:
        demo.theme = theme
        gr.Markdown("# ECAD frontier explorer\nLearned caching schedules for diffusion transformers, "
                    "published on the Hub: compare frontiers, pick a schedule, copy the line that loads it.")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            base = dd("base model", c["base_model"], "f-base")
            family = dd("architecture family", c["family"], "f-family")
            resolution = dd("resolution", c["resolution"], "f-resolution")
            steps = dd("steps", c["steps"], "f-steps")
            metric = dd("metric", c["metric"], "f-metric")
            sort_at = gr.Number(value=model.DEFAULT_SORT_SPEEDUP, label="sort by best quality at speedup (x)",
                                minimum=1.0, step=0.5, elem_id="f-sort")
        plot = gr.ScatterPlot(x="MAC speedup", y="quality", color="series",
                              tooltip=["repo", "schedule", "speedup", "value", "kind"],
                              x_title="MAC speedup (x)", y_title="quality (the frontier's metric)",
                              label="Pareto frontiers", elem_id="overlay")
        listing = gr.Dataframe(label="frontiers", interactive=False, wrap=True, elem_id="listing")
        with gr.Row():
            with gr.Column(scale=1):
                schedules = gr.Dataframe(label="schedules: click a row to inspect it", interactive=False,
                                         elem_id="schedules", max_height=360)
                pick = gr.Dropdown([], label="selected schedule", elem_id="pick", allow_custom_value=True)
            with gr.Column(scale=1):
                heatmap = gr.Plot(label="mask heatmap", elem_id="heatmap")
        with gr.Row():
            details = gr.Markdown(elem_id="details")
            with gr.Column():
                loading = gr.Code(label="load it", language="python", elem_id="loading", interactive=False)
                link = gr.Markdown(elem_id="repo-link")
        gr.Markdown("## Leaderboard\nBest quality reaching each MAC speedup, across repos (per base model and metric).")
        board = gr.Dataframe(label="leaderboard", interactive=False, elem_id="leaderboard")
        refresh = gr.Button("Refresh from the Hub", elem_id="refresh")

        filters = [base, family, resolution, steps, metric, sort_at]

        def update(b, fa, r, st, me, x):
            f = _filters(b, fa, r, st, me)
            x = float(x or model.DEFAULT_SORT_SPEEDUP)
            frame, shown = listing_frame(reg, f, x)
            points = model.plot_points(shown)
            labels = [p.label for p in points]
            xs = [p.speedup for p in points] or [1.0, 2.0]
            ys = [p.quality for p in points if p.quality is not None]
            lo = model.axis_floor(points)
            hi = max(ys) if ys else 1.0
            pad = (hi - lo) * 0.05 or 0.05
            metrics = sorted({p.metric for p in points if p.quality is not None})
            y_title = (metrics[0] if len(metrics) == 1 else "quality: " + " / ".join(metrics) + " (see series)"
                       if metrics else "no quality scores") + ("; no quality scores: bottom row"
                                                               if metrics and len(ys) < len(points) else "")
            plot_value = gr.update(value=points_frame(points), x_lim=[min(xs) - 0.1, max(xs) * 1.05 + 0.05],
                                   y_lim=[lo - pad, hi + pad], y_title=y_title)
            return (status_markdown(reg, len(shown)), plot_value, frame, schedules_frame(points),
                    gr.update(choices=labels, value=None), leaderboard_frame(shown))

        outputs = [status, plot, listing, schedules, pick, board]
        for comp in filters:
            comp.change(update, filters, outputs)

        def do_refresh(*values):
            reg.refresh()
            return update(*values)

        refresh.click(do_refresh, filters, outputs)
        demo.load(update, filters, outputs)

        def on_row(frame, evt: gr.SelectData):
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            if frame is None or row is None or row >= len(frame):
                return gr.update()
            return f"{frame.iloc[row]['repo']} · {frame.iloc[row]['schedule']}"

        on_row.__annotations__ = {"frame": object, "evt": gr.SelectData}  # real classes: this module's are strings
        schedules.select(on_row, [schedules], [pick])
        pick.change(lambda label: detail(reg, label), [pick], [heatmap, details, loading, link])
    return demo


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="The ECAD frontier explorer (a Gradio app).")
    ap.add_argument("--endpoint", default=os.environ.get("ECAD_REGISTRY_ENDPOINT"),
                    help="the Hub to read (sets HF_ENDPOINT; default: $HF_ENDPOINT or huggingface.co)")
    ap.add_argument("--host", default=os.environ.get("ECAD_REGISTRY_HOST", os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")))
    ap.add_argument("--port", type=int, default=int(os.environ.get("ECAD_REGISTRY_PORT",
                                                                   os.environ.get("GRADIO_SERVER_PORT", "7860"))))
    ap.add_argument("--base-model", default=os.environ.get("ECAD_REGISTRY_BASE_MODEL"),
                    help="only frontiers for this base model")
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--index", default=os.environ.get("ECAD_REGISTRY_INDEX", str(INDEX_PATH)),
                    help="the curated index (\"none\": live search only)")
    args = ap.parse_args(argv)
    if args.endpoint:  # before anything imports huggingface_hub (gradio does): it reads HF_ENDPOINT once
        if "huggingface_hub" in sys.modules:
            print("warning: huggingface_hub already imported; --endpoint may be ignored", file=sys.stderr)
        os.environ["HF_ENDPOINT"] = args.endpoint
    index = None if args.index.lower() == "none" else load_index(args.index)
    reg = Registry(base_model=args.base_model, limit=args.limit, index=index).refresh()
    demo = build_app(reg)
    print(f"ECAD frontier explorer on http://{args.host}:{args.port} "
          f"({len(reg.summaries)} frontier(s), {len(reg.skipped)} skipped)", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, footer_links=[], ssr_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
