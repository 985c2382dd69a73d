"""The registry's Gradio app (registry/app.py) in a real headless browser, against the Hub double.

Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium opens the app, served by
``python registry/app.py --endpoint <Hub double>`` in a subprocess, backed by three published
frontiers (two base models, one without quality scores) and one broken repo. Screenshots are
saved under ``tmp_path`` (and copied to ``docs/registry-*.png`` with ``ECAD_UPDATE_SCREENSHOTS=1``).

Selection is made by clicking a row of the app's "schedules" table (one row per plotted point):
clicking points inside the Vega plot canvas is not reliable from Selenium.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support import METRIC, toy_frontier, toy_schedules

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = (os.environ.get("ECAD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
            or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ECAD_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _missing() -> str | None:
    for module in ("gradio", "selenium", "pandas"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[registry]')"
    for path, what in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")):
        if not os.path.exists(path):
            return f"{what} not found (apt-get install chromium chromium-driver)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(hub) -> None:
    toy_frontier().push_to_hub("test-user/tiny-pixart-ecad")
    other = [s.replace(metrics={"quality": [{"metric": METRIC, "value": s.quality() + 0.03}]}) for s in toy_schedules()[:3]]
    toy_frontier(schedules=other, base_model="test-org/other-base").push_to_hub("test-org/other-ecad")
    unscored = [s.replace(name=f"u-{s.name}", metrics={}) for s in toy_schedules()]
    toy_frontier(schedules=unscored, search=None).push_to_hub("test-user/unscored-ecad")
    hub.seed("test-user/broken-ecad", {"README.md": b"---\ntags:\n- ecad\n---\n# nothing\n", "frontier.json": b"{oops"})


@pytest.fixture
def app_url(hub, tmp_path):
    _seed(hub)
    index = {"registry_index_version": 1, "frontiers": [
        {"repo_id": "test-user/tiny-pixart-ecad", "base_model": "test-user/tiny-pixart",
         "resolution": {"height": 64, "width": 64}, "steps": 4, "note": "the toy frontier"},
        {"repo_id": "test-user/gone-ecad", "base_model": "test-user/tiny-pixart",
         "resolution": {"height": 64, "width": 64}, "steps": 4, "note": "deleted since"}]}
    (tmp_path / "index.json").write_text(json.dumps(index))
    port = _free_port()
    # a fresh HF cache: files other tests of the session downloaded (same repo ids, same content and so
    # the same commit in the double) must not be served from the cache, or the download check below sees nothing
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", HF_HOME=str(tmp_path / "hf-home"))
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "registry" / "app.py"), "--endpoint", hub.endpoint,
                             "--port", str(port), "--index", str(tmp_path / "index.json")],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited ({proc.returncode}):\n{(tmp_path / 'app.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not start in 90 s:\n{(tmp_path / 'app.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1800", "--force-device-scale-factor=1", "--no-proxy-server"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver, elem_id: str) -> str:
    from selenium.common.exceptions import NoSuchElementException

    try:
        return driver.find_element("id", elem_id).text
    except NoSuchElementException:
        return ""


def _wait(driver, what: str, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(d))
    except Exception:  # noqa: BLE001 - say what was awaited, with the page text
        body = driver.find_element("tag name", "body").text
        pytest.fail(f"timed out waiting for {what}; page text:\n{body[:4000]}")


def _screenshot(driver, path: Path, name: str) -> None:
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 40, 4000)))
    time.sleep(0.3)
    target = path / name
    driver.save_screenshot(str(target))
    if os.environ.get("ECAD_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(target, ROOT / "docs" / name)


def _choose(driver, elem_id: str, value: str) -> None:
    """Pick ``value`` in a Gradio dropdown: open it, then click the option."""
    box = driver.find_element("css selector", f"#{elem_id} input")
    box.click()
    option = _wait(driver, f"option {value!r} of #{elem_id}", lambda d: next(
        (li for li in d.find_elements("css selector", "[role='option']") if li.text.strip() == value), False))
    option.click()


def test_explorer_lists_selects_and_filters(app_url, browser, hub, tmp_path):
    driver = browser
    driver.get(app_url)
    repos = ("test-user/tiny-pixart-ecad", "test-org/other-ecad", "test-user/unscored-ecad")
    _wait(driver, "the listing", lambda d: all(r in _text(d, "listing") for r in repos), timeout=60)
    listing = _text(driver, "listing")
    assert "test-user/gone-ecad" in listing and "unresolved" in listing  # index entry, marked
    assert "broken-ecad" not in listing
    status = _text(driver, "status")
    assert "Skipped" in status and "test-user/broken-ecad" in status, status
    assert "3" in status
    # the overlay plot rendered (Vega draws a canvas or svg), the leaderboard has both base models
    _wait(driver, "the plot", lambda d: d.find_elements("css selector", "#overlay canvas, #overlay svg"))
    board = _text(driver, "leaderboard")
    assert "test-user/tiny-pixart" in board and "test-org/other-base" in board
    _screenshot(driver, tmp_path, "registry-listing.png")

    # select a schedule: click its row in the schedules table
    cell = _wait(driver, "a row of the schedules table", lambda d: next(
        (c for c in d.find_elements("css selector", "#schedules [role='gridcell']")
         if c.text.strip() == "ecad-3.17x"), False))  # the first is test-user/tiny-pixart-ecad's
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    cell.click()
    _wait(driver, "the loading line", lambda d: 'ECADPipeline.from_pretrained("test-user/tiny-pixart-ecad", schedule="'
          in _text(d, "loading"))
    _wait(driver, "the heatmap", lambda d: d.find_elements("css selector", "#heatmap img"))
    details = _text(driver, "details")
    assert "MAC speedup" in details and "image_reward" in details and "tiny-prompts" in details, details
    assert "test-user/tiny-pixart-ecad on the Hub" in _text(driver, "repo-link")
    _screenshot(driver, tmp_path, "registry-selected.png")

    # filters narrow the list
    _choose(driver, "f-base", "test-org/other-base")
    _wait(driver, "the filtered listing", lambda d: "test-org/other-ecad" in _text(d, "listing")
          and "tiny-pixart-ecad" not in _text(d, "listing"))
    assert "unscored-ecad" not in _text(driver, "listing")
    _choose(driver, "f-base", "(all)")
    _choose(driver, "f-metric", "(none)")
    _wait(driver, "the metric filter", lambda d: "test-user/unscored-ecad" in _text(d, "listing")
          and "other-ecad" not in _text(d, "listing"))
    fetched = hub.downloaded()  # by the app (browse, then Frontier.load of the selected repo) and the seeding
    assert "frontier.json" in fetched and "schedules/ecad-3.17x.json" in fetched
    assert all(p.endswith(".json") for p in fetched), fetched  # frontier JSON only: no card, no PNGs
    for name in ("registry-listing.png", "registry-selected.png"):
        assert (tmp_path / name).stat().st_size > 10_000
