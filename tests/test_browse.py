"""``ecad-hub browse``: the curated index merged with the live Hub (``--offline``, ``--index``), the
``--base-model`` fallback to ``frontier.json``, ``--plot`` for frontiers with and without quality, and
``--html`` (one self-contained page).

CLI tests run the real console script against the Hub double of this test process (the subprocess
inherits ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_TOKEN`` from conftest).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ecad_hub import browse
from ecad_hub.registry import DEFAULT_INDEX, EXAMPLE, INDEXED, LIVE, OFFLINE, UNRESOLVED
from support import METRIC, StrictHTML, assert_valid_png, toy_frontier, toy_schedules

ECAD_HUB = shutil.which("ecad-hub", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).parent / "ecad-hub")
BASE = "test-user/tiny-pixart"
SCORED = "test-user/tiny-pixart-ecad"
UNSCORED = "test-user/unscored-ecad"
PAPER = "your-username/pixart-alpha-256-ecad-paper"  # the shipped index's example entry


def run(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([ECAD_HUB, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})})


def _dead_endpoint() -> str:
    with socket.socket() as s:  # a port nothing listens on: any request would fail
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _unscored():
    return toy_frontier(schedules=[s.replace(name=f"u-{s.name}", metrics={}) for s in toy_schedules()], search=None)


def _card_without_base_model() -> bytes:
    return b"---\ntags:\n- ecad\nlibrary_name: ecad-hub\n---\n\n# an ECAD frontier\n"


def _index(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"registry_index_version": 1, "frontiers": list(entries)}))
    return path


def _entry(repo_id: str, **kw) -> dict:
    return {"repo_id": repo_id, "base_model": BASE, "resolution": {"height": 64, "width": 64}, "steps": 4,
            "note": f"curated: {repo_id}", **kw}


# --------------------------------------------------------------------------------------------
# offline and the index
# --------------------------------------------------------------------------------------------

def test_browse_offline_lists_the_shipped_index_without_any_network(hub, tmp_path):
    hub.clear_requests()
    result = run("browse", "--offline", cwd=tmp_path, env={"HF_ENDPOINT": _dead_endpoint()})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    header, row = result.stdout.splitlines()[:2]
    assert header.split()[:3] == ["repo", "base", "model"] and header.split()[-1] == "status"
    assert row.split()[:4] == [PAPER, "PixArt-alpha/PixArt-XL-2-256x256", "256x256", "20"]
    assert "1.00x, 2.68x, 3.93x, 4.86x" in row and row.endswith(OFFLINE)
    assert f"note: {PAPER}: Example repo id, not published" in result.stdout
    assert hub.requests == []

    found = browse(offline=True)
    assert [(s.repo_id, s.status, s.steps) for s in found] == [(PAPER, OFFLINE, 20)]
    assert found[0].qualities == (None,) * 4 and found[0].metric is None  # the paper's files record no quality
    assert json.loads(DEFAULT_INDEX.read_text())["frontiers"][0]["repo_id"] == PAPER


def test_browse_offline_with_another_index_and_a_broken_one(hub, tmp_path):
    index = _index(tmp_path, _entry("a/one", schedules=[{"name": "s1", "mac_speedup": 1.5, "quality": 0.8}],
                                    metric=METRIC), _entry("b/two"))
    result = run("browse", "--offline", "--index", index, "--author", "a", cwd=tmp_path,
                 env={"HF_ENDPOINT": _dead_endpoint()})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[0] == "a/one" and "1.50x" in lines[1] and f"{METRIC} 0.8..0.8" in lines[1]
    assert "b/two" not in result.stdout and PAPER not in result.stdout

    (tmp_path / "bad.json").write_text(json.dumps({"registry_index_version": 1, "frontiers": [{"repo_id": "x"}]}))
    for args, expected in ((["--index", tmp_path / "bad.json"], "bad.json: not a registry index"),
                           (["--index", tmp_path / "missing.json"], "missing.json"),
                           (["--no-index", "--offline"], "--no-index cannot be combined")):
        result = run("browse", "--offline", *args, cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: ") and expected in line, line


def test_live_wins_and_index_entries_that_do_not_resolve_are_marked(hub, tmp_path):
    toy_frontier().push_to_hub(SCORED)
    # a repo the listing does not return (no ecad tag) but the index names: looked up directly, live data shown
    files = toy_frontier().render(repo_id="test-org/untagged-ecad")
    files["README.md"] = b"---\nlibrary_name: ecad-hub\n---\n# untagged\n"
    hub.seed("test-org/untagged-ecad", files)
    index = _index(tmp_path, _entry(SCORED, steps=99, note="the toy frontier"), _entry("test-org/untagged-ecad"),
                   _entry("test-user/gone-ecad", note="deleted since"), _entry("test-user/sample", example=True))
    found = {s.repo_id: s for s in browse(index=index)}
    assert [(r, s.status) for r, s in found.items()] == [
        (SCORED, INDEXED), ("test-org/untagged-ecad", INDEXED), ("test-user/gone-ecad", UNRESOLVED),
        ("test-user/sample", EXAMPLE)]
    assert found[SCORED].steps == 4 and found[SCORED].note == "the toy frontier"  # live data, the index's note
    assert found["test-org/untagged-ecad"].sha == hub.refs("test-org/untagged-ecad")["main"]
    gone = found["test-user/gone-ecad"]
    assert gone.note.startswith("deleted since [not found on http://127.0.0.1:") and gone.names == ()
    assert found["test-user/sample"].note == "curated: test-user/sample"
    assert [s.status for s in browse()] == [LIVE]  # no index: the live search alone, as before


# --------------------------------------------------------------------------------------------
# --base-model: frontier.json when the tags do not say
# --------------------------------------------------------------------------------------------

def test_base_model_falls_back_to_frontier_json_when_the_card_names_none(hub, tmp_path):
    toy_frontier().push_to_hub(SCORED)
    files = toy_frontier().render(repo_id="test-user/no-base-tag")
    files["README.md"] = _card_without_base_model()
    hub.seed("test-user/no-base-tag", files)
    other = toy_frontier(base_model="test-org/other-base").render(repo_id="test-org/other-untagged")
    other["README.md"] = _card_without_base_model()
    hub.seed("test-org/other-untagged", other)
    assert not [t for t in hub_tags(hub, "test-user/no-base-tag") if t.startswith("base_model:")]

    assert sorted(s.repo_id for s in browse(base_model=BASE)) == sorted([SCORED, "test-user/no-base-tag"])
    assert [s.repo_id for s in browse(base_model="test-org/other-base")] == ["test-org/other-untagged"]
    assert browse(base_model=BASE, transformer_class="SomeOtherTransformer2DModel") == []

    result = run("browse", "--base-model", BASE, "--no-index", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    repos = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert sorted(repos) == sorted([SCORED, "test-user/no-base-tag"])


def hub_tags(hub, repo_id: str) -> list[str]:
    from huggingface_hub import HfApi

    return list(HfApi().model_info(repo_id).tags or [])


# --------------------------------------------------------------------------------------------
# --plot: frontiers without quality, one panel per metric
# --------------------------------------------------------------------------------------------

def test_plot_needs_no_base_model_and_draws_frontiers_without_quality(hub, tmp_path):
    toy_frontier().push_to_hub(SCORED)
    _unscored().push_to_hub(UNSCORED)
    toy_frontier(base_model="test-org/other-base").push_to_hub("test-org/other-ecad")
    result = run("browse", "--plot", tmp_path / "all.png", cwd=tmp_path)  # two base models, one unscored
    assert result.returncode == 0, result.stderr
    assert f"wrote {tmp_path / 'all.png'}" in result.stdout
    assert_valid_png((tmp_path / "all.png").read_bytes())
    result = run("browse", "--plot", tmp_path / "scored.png", "--search", "tiny", "--no-index", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "all.png").read_bytes() != (tmp_path / "scored.png").read_bytes()
    # only frontiers without quality (the shipped index's paper schedules, offline): a plot, not an error
    result = run("browse", "--offline", "--plot", tmp_path / "paper.png", cwd=tmp_path,
                 env={"HF_ENDPOINT": _dead_endpoint()})
    assert result.returncode == 0, result.stderr
    assert_valid_png((tmp_path / "paper.png").read_bytes())


def test_the_overlay_figure_labels_the_metric_and_keeps_unscored_frontiers(hub):
    from ecad_hub.plotting import NO_QUALITY_LABEL, overlay_figure

    toy_frontier().push_to_hub(SCORED)
    _unscored().push_to_hub(UNSCORED)
    found = {s.repo_id: s for s in browse()}
    frontiers = [(s.repo_id, s.metric, list(zip(s.speedups, s.qualities))) for s in found.values()]
    fig = overlay_figure(frontiers, title="t")
    panel, strip = fig.axes
    assert panel.get_ylabel() == METRIC and strip.get_ylabel().replace("\n", " ") == NO_QUALITY_LABEL
    assert strip.get_xlabel() == "MAC speedup (x)"
    (scored_line,) = panel.get_lines()
    assert sorted(scored_line.get_xdata()) == sorted(found[SCORED].speedups)
    (rug,) = strip.get_lines()
    assert sorted(rug.get_xdata()) == sorted(found[UNSCORED].speedups)  # every unscored schedule is drawn
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [SCORED, f"{UNSCORED} ({NO_QUALITY_LABEL})"]

    two = overlay_figure([("a", "image_reward", [(1.0, 0.9), (2.0, 0.8)]), ("b", "clip", [(1.5, 30.0)])])
    assert [ax.get_ylabel() for ax in two.axes] == ["clip", "image_reward"]  # one panel per metric, no strip
    with pytest.raises(ValueError, match="nothing to plot"):
        overlay_figure([("a", None, [])])


# --------------------------------------------------------------------------------------------
# --html: one self-contained page with the rows browse returns
# --------------------------------------------------------------------------------------------

def test_browse_html_is_one_valid_self_contained_page_with_the_rows_browse_returns(hub, tmp_path):
    toy_frontier().push_to_hub(SCORED)
    _unscored().push_to_hub(UNSCORED)
    hub.seed("test-user/broken-ecad", {"README.md": b"---\ntags:\n- ecad\n---\n# nothing\n", "frontier.json": b"{oops"})
    result = run("browse", "--html", tmp_path / "page.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipping test-user/broken-ecad" in result.stderr
    page = (tmp_path / "page.html").read_text()
    parser = StrictHTML()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == [], (parser.errors, parser.stack)
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(parser.tags)
    for tag, key, value in parser.attrs:  # the only URLs: links to repos on the endpoint
        if key in ("src", "srcset", "data", "xlink:href") or (key == "href" and tag != "a"):
            pytest.fail(f"external resource: <{tag} {key}={value!r}>")
        if key == "href":
            assert value.startswith(hub.endpoint + "/"), value
        assert "url(" not in value and not (key.startswith("on")), (tag, key, value)
    assert not re.search(r"url\(|@import", page)
    assert not re.search(r"https?://", re.sub(r'<a href="[^"]*"', "", page).replace(hub.endpoint, ""))
    assert "broken-ecad" in page.split('<table class="listing"')[0]  # noted as skipped, not listed

    with pytest.warns(UserWarning, match="skipping test-user/broken-ecad"):
        listed = browse(index=True)
    header, *rows = parser.tables["listing"]
    rows = [r for r in rows if r != header]  # (one header row per listing table)
    assert sorted(r[0] for r in rows) == sorted(s.repo_id for s in listed)
    assert {r[0]: r[-3] for r in rows} == {s.repo_id: s.status for s in listed}  # the status column
    assert {SCORED, UNSCORED, PAPER} <= {r[0] for r in rows}
    assert f'href="{hub.endpoint}/{SCORED}"' in page and f'href="{hub.endpoint}/{PAPER}"' not in page

    result = run("browse", "--offline", "--html", tmp_path / "offline.html", cwd=tmp_path,
                 env={"HF_ENDPOINT": _dead_endpoint()})
    assert result.returncode == 0, result.stderr
    offline = (tmp_path / "offline.html").read_text()
    assert "offline" in offline and PAPER in offline and "no quality scores" in offline
    (tmp_path / "afile").write_text("a file, not a folder\n")
    result = run("browse", "--offline", "--html", tmp_path / "afile" / "x.html", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
