"""End to end in a real browser: `streamlit run app.py` on 127.0.0.1, driven by Playwright on
Debian's Chromium. Runs a what-if and saves a screenshot of every page into a temporary
folder; ``ECONSIM_SCREENSHOTS=docs`` (``make screenshots``) writes them into docs/ on purpose
(a relative folder is taken from the repository root).

Skipped, with the reason, only when Chromium is not installed (`make test` installs it with
apt-get where it can) or Playwright is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from econsim import runner
from tests.reference import small

ROOT = Path(__file__).resolve().parents[1]
SHOTS_ENV = "ECONSIM_SCREENSHOTS"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Chromium is not installed (apt-get install chromium); browser test skipped")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    for name in ("gtb_us_federal", "gtb_flat30"):  # stored runs for the browser pages
        runner.run(small(name, 2, eval_every=1, ppo=True), seeds=[0, 1], progress=False,
                   root=runs)
    port = _free_port()
    env = {**os.environ, "ECONSIM_RUNS": str(runs), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            proc.kill()
            out = proc.stdout.read().decode(errors="replace")[-2000:]
            pytest.fail(f"streamlit did not start on {url}: {out}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def shots(tmp_path):
    """Where the screenshots go: a temporary folder, or $ECONSIM_SCREENSHOTS when set."""
    chosen = os.environ.get(SHOTS_ENV)
    folder = ROOT / chosen if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(app_url):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def _wait_idle(page, timeout_s: float = 180) -> None:
    """Until Streamlit has finished running the page's script (no "Stop" button in the
    toolbar for a second)."""
    page.wait_for_timeout(700)
    stop = page.get_by_role("button", name="Stop", exact=True)
    deadline, quiet = time.time() + timeout_s, 0
    while time.time() < deadline and quiet < 3:
        quiet = quiet + 1 if stop.count() == 0 else 0
        page.wait_for_timeout(400)
    assert quiet >= 3, "the app was still running after the timeout"


def test_what_if_runs_in_a_real_browser(page, app_url, shots):
    page.goto(app_url)
    page.wait_for_selector('[data-testid="stSidebarNav"]')
    _wait_idle(page)
    links = page.locator('[data-testid="stSidebarNav"] a')
    names = [links.nth(i).inner_text().strip() for i in range(links.count())]
    slugs = [urlparse(links.nth(i).get_attribute("href") or "").path.strip("/") or "home"
             for i in range(links.count())]
    assert any("what" in n.lower() for n in names), names
    for i, name in enumerate(names):
        links.nth(i).click()
        _wait_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0, name
        if slugs[i] == "regression":
            page.get_by_role("button", name="Run regression").click()
            _wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0
        if "what" in name.lower():
            page.get_by_role("button", name="Run what-if").click()
            _wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.get_by_text("welfare", exact=False).filter(visible=True).count() > 0
        slug = "".join(c if c.isalnum() else "_" for c in slugs[i])
        page.screenshot(path=str(shots / f"{i + 1:02d}_{slug}.png"), full_page=True)
    assert len(list(shots.glob("*.png"))) >= len(names)
