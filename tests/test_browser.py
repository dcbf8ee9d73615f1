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
def stored_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    for name in ("gtb_us_federal", "gtb_flat30"):  # stored runs for the browser pages
        runner.run(small(name, 2, eval_every=1, ppo=True), seeds=[0, 1], progress=False,
                   root=runs)
    return runs


@pytest.fixture
def app_url(stored_runs):
    """A fresh `streamlit run` server per test (the tests share nothing but the runs)."""
    runs = stored_runs
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
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh page (its own Streamlit session, on its own server) per test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


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


def _full_shot(page, path: Path) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its own container, so the
    viewport is first made as tall as that container's content (at most 12,000 px)."""
    height = page.evaluate(
        "() => Math.max(...Array.from(document.querySelectorAll("
        "'[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"], section.main'"
        ")).map(e => e.scrollHeight), document.body.scrollHeight)")
    page.set_viewport_size({"width": 1400, "height": int(min(max(height, 1000), 12_000))})
    page.wait_for_timeout(600)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def _nav(page, label: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=label).first.click()
    _wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0, label


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    _wait_idle(page)


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
        _full_shot(page, shots / f"{i + 1:02d}_{slug}.png")
    assert len(list(shots.glob("*.png"))) >= len(names)


def test_an_economists_flow_in_a_real_browser(page, app_url, shots, tmp_path):
    """The workbench's second edition end to end: a scripted what-if with three mechanisms,
    the frontier and Lorenz plots, the regression, the Stata and HTML report downloads, and
    an experiment of 3 tax rates x 3 seeds with its regression."""
    import pandas as pd

    page.goto(app_url)
    page.wait_for_selector('[data-testid="stSidebarNav"]')
    _wait_idle(page)
    assert page.get_by_text("Five minutes, no code").count() == 1  # the start page
    _nav(page, "What-if")
    picker = page.locator('[data-testid="stMultiSelect"]').first
    picker.click()
    page.keyboard.type("Free market")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    _wait_idle(page)
    _fill(page, "Seeds", "0-2")
    page.get_by_role("button", name="Run what-if").click()
    _wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("scripted workers (rule-based)", exact=False).count() >= 1
    assert page.get_by_text("Difference to us_federal, seed by seed", exact=False).count() == 1
    _full_shot(page, shots / "flow_1_whatif.png")

    _nav(page, "Plots")
    for head in ("The equality-productivity trade-off", "Lorenz curves", "Tax incidence"):
        assert page.get_by_text(head, exact=True).count() >= 1, head
    _full_shot(page, shots / "flow_2_plots.png")

    _nav(page, "Exports")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Stata: per episode").first.click()
    dta = tmp_path / "episodes.dta"
    dl.value.save_as(dta)
    episodes = pd.read_stata(dta)
    assert len(episodes) == 3 * 3 and episodes.mechanism.nunique() == 3
    with page.expect_download() as dl:
        page.get_by_role("button", name="HTML report", exact=False).first.click()
    html = tmp_path / "report.html"
    dl.value.save_as(html)
    assert "Paired differences to us_federal" in html.read_text()
    _full_shot(page, shots / "flow_3_exports.png")

    _nav(page, "Regression")
    page.get_by_role("button", name="Run regression").click()
    _wait_idle(page)
    assert page.get_by_text("clustered by seed: 3 clusters", exact=False).count() >= 1

    _nav(page, "Experiment")
    _fill(page, "Seeds", "0-2")
    _fill(page, "Training iterations per run", "1")
    assert page.get_by_text("3 run(s) x 3 seed(s)", exact=False).count() == 1
    page.get_by_role("button", name="Run experiment").click()
    _wait_idle(page, timeout_s=600)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlert"]').filter(has_text="No run finished").count() == 0
    page.get_by_role("button", name="Regress the outcome on the parameters").click()
    _wait_idle(page)
    assert page.get_by_text("mechanism_rate", exact=False).count() >= 1
    assert page.get_by_text("Per combination: mean over seeds", exact=False).count() == 1
    with page.expect_download() as dl:
        page.get_by_role("button", name="HTML report", exact=False).first.click()
    report = tmp_path / "experiment.html"
    dl.value.save_as(report)
    text = report.read_text()
    assert "Paired differences to mechanism.rate=0.1" in text
    assert "econsim sweep gtb_flat30 --set mechanism.rate=0.1,0.3,0.5 --seeds 0,1,2" in text
    _full_shot(page, shots / "flow_4_experiment.png")
