"""The static registry site (registry/build_site.py) built from frontiers on the Hub double."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

from support import assert_valid_png, toy_frontier, toy_schedules

ROOT = Path(__file__).resolve().parents[1]


def _build_site_module():
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "registry" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_site_lists_frontiers_per_base_model_and_skips_broken_repos(hub, tmp_path):
    site = _build_site_module()
    toy_frontier().push_to_hub("test-user/tiny-pixart-ecad")
    toy_frontier(schedules=toy_schedules()[:3], base_model="test-org/other-base").push_to_hub("test-org/other-ecad")
    hub.seed("test-user/broken-ecad", {"README.md": b"---\ntags:\n- ecad\n---\n# nothing\n", "frontier.json": b"{oops"})
    out = tmp_path / "site"
    out.mkdir()
    (out / "stale.html").write_text("old")  # the folder is replaced, not merged
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert site.main(["--out", str(out)]) == 0
    assert any("test-user/broken-ecad" in str(w.message) for w in caught)
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "plots", "registry.json"]
    data = json.loads((out / "registry.json").read_text())
    assert sorted(data["base_models"]) == ["test-org/other-base", "test-user/tiny-pixart"]
    (record,) = data["base_models"]["test-user/tiny-pixart"]
    assert record["repo_id"] == "test-user/tiny-pixart-ecad" and len(record["schedules"]) == 4
    assert record["url"].startswith(hub.endpoint)
    page = (out / "index.html").read_text()
    for text in ("test-user/tiny-pixart-ecad", "test-org/other-ecad", 'ECADPipeline.from_pretrained(&quot;test-org/other-ecad&quot;)'):
        assert text in page
    listing = page[page.index('<table class="listing"'):]
    assert "broken-ecad" not in listing  # not listed, but named in the page's "skipped" note
    assert "Skipped" in page and "test-user/broken-ecad" in page[:page.index('<table class="listing"')]
    for png in (out / "plots").iterdir():
        assert_valid_png(png.read_bytes())


def test_site_for_one_base_model(hub, tmp_path):
    site = _build_site_module()
    toy_frontier().push_to_hub("test-user/tiny-pixart-ecad")
    toy_frontier(base_model="test-org/other-base").push_to_hub("test-org/other-ecad")
    out = site.build_site(tmp_path / "site", base_model="test-org/other-base")
    data = json.loads((out / "registry.json").read_text())
    assert list(data["base_models"]) == ["test-org/other-base"]
    assert all(u["base_model"] == "test-org/other-base" for u in data["unresolved"])


# --------------------------------------------------------------------------------------------
# the curated index, its merge with live search, the static page, the app's data layer
# --------------------------------------------------------------------------------------------

import dataclasses  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from ecad_hub.hub import FrontierSummary  # noqa: E402
from ecad_hub.registry import index as registry_index  # noqa: E402
from ecad_hub.registry import model as registry_model  # noqa: E402
from ecad_hub.registry import page as static_page  # noqa: E402
from ecad_hub.schemas import schema_problems  # noqa: E402
from support import REFERENCE, StrictHTML  # noqa: E402

sys.path.insert(0, str(ROOT / "registry"))  # registry/app.py imports as `app`


def _summary(repo_id, base="test-user/tiny-pixart", qualities=(0.9, 0.88, 0.84, 0.7), metric="image_reward", **kw):
    speedups = (1.0, 1.38, 2.06, 3.17)[: len(qualities)]
    return FrontierSummary(repo_id=repo_id, base_model=base, resolution=(64, 64), steps=4,
                           names=tuple(f"ecad-{s:.2f}x" for s in speedups), speedups=speedups,
                           qualities=tuple(qualities), metric=metric, default=f"ecad-{speedups[1]:.2f}x",
                           transformer_class="PixArtTransformer2DModel", **kw)


def test_curated_index_is_valid_and_the_spaces_copy_agrees():
    doc = json.loads(registry_index.DEFAULT_INDEX.read_text())
    assert schema_problems(doc, "registry-index-v1") == []
    assert registry_index.index_problems(doc) == []
    assert registry_index.load_index()["frontiers"]
    # the Space (registry/) ships its own copy: it must be the package's, byte for byte
    assert (ROOT / "registry" / "index.json").read_bytes() == registry_index.DEFAULT_INDEX.read_bytes()
    # an example repo id says so in its note, and nothing in the index claims a quality it does not have
    for e in doc["frontiers"]:
        if e.get("example"):
            assert "example" in e["note"].lower(), e
        if any(s.get("quality") is not None for s in e.get("schedules", [])):
            assert e.get("metric"), e
    bad = {"registry_index_version": 1, "frontiers": [
        {"repo_id": "no-namespace", "base_model": "a/b", "resolution": {"height": 64, "width": 64}, "steps": 4, "note": ""},
        {"repo_id": "a/c", "base_model": "a/b", "resolution": {"height": 64}, "steps": 0, "note": "x", "extra": 1}]}
    problems = schema_problems(bad, "registry-index-v1")
    assert len(problems) >= 4, problems
    dup = {"registry_index_version": 1, "frontiers": [
        {"repo_id": "a/c", "base_model": "a/b", "resolution": {"height": 64, "width": 64}, "steps": 4, "note": ""}] * 2}
    assert registry_index.index_problems(dup) == ["frontiers: a/c is listed twice"]


@pytest.mark.skipif(not (REFERENCE / "pixart_alpha_256").is_dir(), reason=f"ECAD reference data not in {REFERENCE}")
def test_index_entries_from_the_reference_data_match_it():
    """The curated entry for the authors' PixArt schedules describes the reference files: the same schedule
    names, MAC speedups from the authors' own MAC counts, resolution and steps, and no quality they lack."""
    (entry,) = [e for e in registry_index.load_index()["frontiers"] if "ours_fast" in {s["name"] for s in e["schedules"]}]
    assert entry["example"] is True  # no such repo is published: the id is an example
    docs = {s["name"]: json.loads((REFERENCE / "pixart_alpha_256" / f"{s['name']}.json").read_text())
            for s in entry["schedules"]}
    full = docs["default"]["metrics"]["total_macs"]
    for s in entry["schedules"]:
        d = docs[s["name"]]
        assert s["mac_speedup"] == round(full / d["metrics"]["total_macs"], 4), s
        assert d["cache_schedule"]["num_inference_steps"] == entry["steps"]
        assert s.get("quality") is None and "quality" not in json.dumps(d["metrics"]).lower()
    assert entry["resolution"] == {"height": 256, "width": 256} and "metric" not in entry
    # and it is what exporting those files gives (ecad-hub export: ecad-hub's own MAC count, names kept)
    from ecad_hub import Frontier
    from ecad_hub.legacy import load_any_schedule

    config = str(REFERENCE / "configs" / "pixart_xl_2_256_transformer.json")
    schedules = [load_any_schedule(REFERENCE / "pixart_alpha_256" / f"{s['name']}.json", architecture=config)
                 for s in entry["schedules"]]
    doc = Frontier.from_schedules(schedules, transformer_config=config, base_model=entry["base_model"],
                                  height=256, width=256).index_dict()
    assert [(e["name"], e["mac_speedup"], e["quality"]) for e in doc["schedules"]] == [
        (s["name"], s["mac_speedup"], []) for s in entry["schedules"]]
    assert (doc["transformer_class"], doc.get("family"), doc.get("metric"), doc["num_inference_steps"]) == (
        entry["transformer_class"], entry["family"], None, entry["steps"])


def test_merge_index_live_wins_and_unresolved_entries_are_marked():
    index = {"registry_index_version": 1, "frontiers": [
        {"repo_id": "u/live", "base_model": "stale/base", "resolution": {"height": 8, "width": 8}, "steps": 99, "note": "curated"},
        {"repo_id": "u/gone", "base_model": "test-user/tiny-pixart", "resolution": {"height": 64, "width": 64}, "steps": 4, "note": "deleted?"},
        {"repo_id": "u/other", "base_model": "x/other", "resolution": {"height": 64, "width": 64}, "steps": 4, "note": ""}]}
    index["frontiers"].append({"repo_id": "x/example", "example": True, "base_model": "x/other",
                               "resolution": {"height": 64, "width": 64}, "steps": 4, "note": "example id"})
    live = [_summary("u/live"), _summary("u/new")]
    merged = registry_index.merge_index(index, live)
    assert [(m.repo_id, m.status) for m in merged] == [
        ("u/live", registry_index.INDEXED), ("u/new", registry_index.LIVE),
        ("u/gone", registry_index.UNRESOLVED), ("u/other", registry_index.UNRESOLVED),
        ("x/example", registry_index.EXAMPLE)]
    assert merged[0].base_model == "test-user/tiny-pixart" and merged[0].steps == 4 and merged[0].note == "curated"
    assert merged[2].summary is None and merged[2].resolution == (64, 64)
    only = registry_index.merge_index(index, live, base_model="test-user/tiny-pixart")
    assert [m.repo_id for m in only] == ["u/live", "u/new", "u/gone"]
    assert [m.repo_id for m in registry_index.merge_index(index, [], author="U", search="GON")] == ["u/gone"]
    offline = registry_index.merge_index(index, None)
    assert [(m.repo_id, m.status) for m in offline] == [
        ("u/gone", registry_index.OFFLINE), ("u/live", registry_index.OFFLINE), ("u/other", registry_index.OFFLINE),
        ("x/example", registry_index.OFFLINE)]
    assert registry_index.merge_index(None, live)[0].status == registry_index.LIVE


def test_model_rows_points_leaderboard_and_comparisons():
    comp = {"baselines": [{"method": "DeepCache", "points": [{"mac_speedup": 2.0, "quality": 0.8},
                                                             {"speedup": 3.0, "quality": [{"metric": "image_reward", "value": 0.6}]}]},
                          {"name": "FORA", "mac_speedup": 1.5, "quality": 0.85}, "junk", {"method": "no-x"}]}
    a = dataclasses.replace(_summary("u/a"), comparison=comp)
    b = _summary("u/b", qualities=(0.95, 0.93, 0.9))
    c = _summary("u/c", qualities=(None, None, None, None), metric=None)
    other = _summary("v/d", base="x/other", qualities=(0.5, 0.45, 0.4, 0.3))
    rows = registry_model.table_rows([a, b, c, other], 2.0)
    assert [r.repo_id for r in rows] == ["u/b", "u/a", "v/d", "u/c"]  # best quality at 2x first, none last
    assert rows[0].best == ("ecad-2.06x", 2.06, 0.9) and rows[-1].best is None
    assert registry_model.table_rows([a, b], 3.0)[0].repo_id == "u/a"  # u/b does not reach 3x
    points = registry_model.plot_points([a, c])
    baselines = [p for p in points if p.kind == "baseline"]
    assert sorted((p.series, p.speedup, p.quality) for p in baselines) == [
        ("u/a · DeepCache", 2.0, 0.8), ("u/a · DeepCache", 3.0, 0.6), ("u/a · FORA", 1.5, 0.85)]
    unscored = [p for p in points if p.repo_id == "u/c"]
    assert len(unscored) == 4 and all(p.quality is None for p in unscored)  # drawn on the axis, not dropped
    assert registry_model.axis_floor(points) < 0.6
    board = registry_model.leaderboard([a, b, c, other])
    assert board[0][0] == "test-user/tiny-pixart" and board[0][1] == "(none)"
    assert board[1] == ["test-user/tiny-pixart", "image_reward", "0.9 (u/b · ecad-2.06x)",  # 1.38x < 1.5x
                        "0.9 (u/b · ecad-2.06x)", "0.7 (u/a · ecad-3.17x)"]
    assert board[2][0] == "x/other"
    f = registry_model.Filters(base_model="x/other")
    assert [s.repo_id for s in registry_model.apply_filters([a, b, other], f)] == ["v/d"]
    assert [s.repo_id for s in registry_model.apply_filters([a, c], registry_model.Filters(metric="(none)"))] == ["u/c"]
    assert registry_model.family_of(a) == "pixart"  # from the adapter registered for its transformer class
    assert registry_model.family_of(dataclasses.replace(a, family="newdit")) == "newdit"  # frontier.json's own
    # ecad-hub compare's comparison (frontier-v1 rows): baselines drawn, the reference and ECAD rows not
    rows = {"metric": "image_reward", "rows": [
        {"method": "all-compute", "setting": "", "kind": "reference", "mac_speedup": 1.0, "quality": 0.9},
        {"method": "ECAD", "setting": "ecad-2.06x", "kind": "ecad", "mac_speedup": 2.06, "quality": 0.84},
        {"method": "FORA", "setting": "N=3", "kind": "heuristic", "mac_speedup": 2.8, "quality": 0.6},
        {"method": "FirstBlockCache", "setting": "t=0.1", "kind": "diffusers", "mac_speedup": None, "quality": 0.7}]}
    (fora,) = registry_model.comparison_points(dataclasses.replace(a, comparison=rows))
    assert (fora.series, fora.schedule, fora.speedup, fora.quality, fora.kind) == (
        "u/a · FORA", "FORA N=3", 2.8, 0.6, "baseline")
    lines = registry_model.loading_lines("u/a", "ecad-2.06x")
    assert 'ECADPipeline.from_pretrained("u/a", schedule="ecad-2.06x")' in lines


def _check_page(page: str, endpoint: str) -> StrictHTML:
    checker = StrictHTML()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    assert page.startswith("<!doctype html>")
    assert "script" not in checker.tags and "link" not in checker.tags and "img" not in checker.tags
    for tag, key, url in checker.urls:  # only repo links leave the page
        assert tag == "a" and key == "href" and url.startswith(endpoint.rstrip("/") + "/"), (tag, key, url)
    assert not re.search(r"url\(|@import", page)
    assert not re.search(r"https?://", re.sub(r'<a href="[^"]*"', "", page).replace(endpoint, "")), \
        "an external URL outside the repo links"
    return checker


def test_static_page_is_valid_self_contained_and_shows_the_apps_rows():
    pd = pytest.importorskip("pandas", reason="pandas (an app dependency) is needed to build the app's table")
    import app as registry_app  # registry/app.py: its views need no gradio

    comp = [{"method": "DeepCache", "points": [{"mac_speedup": 2.0, "quality": 0.8}]}]
    summaries = [dataclasses.replace(_summary("u/a"), comparison=comp),
                 _summary("u/b", qualities=(0.95, 0.93, 0.9)), _summary("u/c", qualities=(None,) * 4, metric=None),
                 _summary("v/d <x>", base="x/other", qualities=(0.5, 0.45, 0.4, 0.3))]
    endpoint = "https://hub.example"
    gone = dataclasses.replace(_summary("u/gone", qualities=(None,) * 2, metric=None), status=registry_index.UNRESOLVED,
                               note="deleted?")
    page = static_page.render_html(summaries + [gone], endpoint=endpoint,
                                   skipped=["u/broken: frontier.json: not valid JSON"], generated="2026-01-01 00:00 UTC")
    checker = _check_page(page, endpoint)
    assert "u/broken: frontier.json: not valid JSON" in page
    assert page.count("<svg") == 2 and "u/a · DeepCache" in page and "no quality recorded" in page
    assert "v/d &lt;x&gt;" in page and "v/d <x>" not in page
    assert 'href="https://hub.example/u/gone"' not in page and 'href="https://hub.example/u/b"' in page  # not linked
    # the unscored frontier is in the strip under its plot, labelled; the y axis names the metric
    first_svg = page[page.index("<svg"):page.index("</svg>")]
    assert 'class="strip"' in first_svg and "no quality" in first_svg and "u/c (no quality scores)" in first_svg
    assert re.search(r'class="ylabel">image_reward</text>', first_svg)

    class _Reg:  # the app's Registry, already refreshed
        pass

    reg = _Reg()
    reg.summaries, reg.extra_rows, reg.notes = summaries, [registry_model.row_of(gone)], {}
    frame, shown = registry_app.listing_frame(reg, registry_model.Filters(), registry_model.DEFAULT_SORT_SPEEDUP)
    header, *body = checker.tables["listing"]
    assert header[:-1] == list(frame.columns) and header[-1] == "load it"
    page_rows = sorted(tuple(r[:-1]) for r in body if r != header)
    app_rows = sorted(tuple(r) for r in frame.itertuples(index=False, name=None))
    assert page_rows == app_rows and len(app_rows) == 5
    assert [r[0] for r in checker.tables["leaderboard"][1:]] == [r[0] for r in registry_model.leaderboard(summaries)]


def test_built_site_page_is_self_contained(hub, tmp_path):
    site = _build_site_module()
    toy_frontier().push_to_hub("test-user/tiny-pixart-ecad")
    out = site.build_site(tmp_path / "site", index=None)
    page = (out / "index.html").read_text()
    _check_page(page, hub.endpoint)
    assert "<svg" in page and "test-user/tiny-pixart-ecad" in page


def test_app_registry_notes_skipped_repos_and_survives_a_failed_listing():
    import app as registry_app  # registry/app.py: Registry needs no gradio
    from ecad_hub.errors import HubError

    index = {"registry_index_version": 1, "frontiers": [
        {"repo_id": "u/gone", "base_model": "b/m", "resolution": {"height": 64, "width": 64}, "steps": 4, "note": "n"}]}

    calls = []

    def lister(base_model=None, limit=None, index=None, offline=False):  # ecad_hub.browse's signature
        calls.append((index, offline))
        warnings.warn("browse: skipping u/broken: /cache/hub/models--u--broken/snapshots/" + "a" * 40
                      + "/frontier.json: not valid JSON", UserWarning)
        return [_summary("u/a"), dataclasses.replace(_summary("u/gone"), status=registry_index.UNRESOLVED)]

    reg = registry_app.Registry(index=index, lister=lister).refresh()
    assert calls == [(index, False)]
    assert [s.repo_id for s in reg.summaries] == ["u/a"]
    assert reg.skipped == ["u/broken: frontier.json: not valid JSON"]
    assert [(r.repo_id, r.status) for r in reg.extra_rows] == [("u/gone", registry_index.UNRESOLVED)]
    text = registry_app.status_markdown(reg, 1)
    assert "Skipped" in text and "u/broken" in text

    def failing(base_model=None, limit=None, index=None, offline=False):
        if offline:
            from ecad_hub import browse

            return browse(index=index, offline=True)
        raise HubError("cannot list ECAD repos on http://x (503)")

    reg = registry_app.Registry(index=index, lister=failing).refresh()
    assert reg.summaries == [] and reg.error and [r.status for r in reg.extra_rows] == [registry_index.OFFLINE]
    assert "Hub listing failed" in registry_app.status_markdown(reg, 0)
    heat, text, lines, link = registry_app.detail(reg, None)
    assert heat is None and lines == ""
