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
    assert "broken-ecad" not in page
    for png in (out / "plots").iterdir():
        assert_valid_png(png.read_bytes())


def test_site_for_one_base_model(hub, tmp_path):
    site = _build_site_module()
    toy_frontier().push_to_hub("test-user/tiny-pixart-ecad")
    toy_frontier(base_model="test-org/other-base").push_to_hub("test-org/other-ecad")
    out = site.build_site(tmp_path / "site", base_model="test-org/other-base")
    data = json.loads((out / "registry.json").read_text())
    assert list(data["base_models"]) == ["test-org/other-base"]
