"""The runs pages of the web UI in a real browser (Debian's Chromium through Playwright). The
data come from `evalmint demo` on a small world (labels, a release of them, agents v1 and v2
evaluated on it, v2 against v1); `evalmint serve` then serves the directory. A
reviewer signs in, opens the runs list, opens v2's run, compares it with v1's by keyboard, and
the page shows the per-segment chart, the baseline and the flags the API's summary gives."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from test_review_ui import CHROMIUM, SHOTS, _require_browser

BINARY = os.environ.get("EVALMINT_BIN", str(ROOT / "target" / "debug" / "evalmint"))
KEY = "em_runs_ui_admin_key_0123456789"


def _evalmint(*args, data):
    done = subprocess.run(
        [BINARY, *args, "--data", data], capture_output=True, text=True,
        env=dict(os.environ, EVALMINT_LOG="error"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _word(text, prefix):
    for word in text.replace("/", " ").split():
        if word.startswith(prefix):
            return word
    pytest.fail(f"no {prefix}… in {text}")


@pytest.fixture(scope="module")
def served_runs():
    """A data directory with two runs on one release, served; yields (url, release, v1, v2)."""
    data = tempfile.mkdtemp(prefix="evalmint-runs-ui-")
    demo = _evalmint("demo", "--incidents", "40", "--listen", "127.0.0.1:0", "--no-wait", data=data)
    release = _word(demo, "rel-")
    # The tour links v2's run compared with v1's: `…/runs/{v2}?baseline={v1}`.
    v2, v1 = _word(demo, "run-").split("?baseline=")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [BINARY, "serve", "--data", data, "--listen", f"127.0.0.1:{port}"],
        env=dict(os.environ, EVALMINT_ADMIN_KEY=KEY, EVALMINT_LOG="warn"), stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("evalmint serve did not become healthy")
            time.sleep(0.1)
    yield url, release, v1, v2
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(data, ignore_errors=True)


def _summary(url, run):
    request = urllib.request.Request(f"{url}/api/v1/runs/{run}", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_runs_pages_compare_a_run_with_its_baseline(served_runs):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    url, release, v1, v2 = served_runs
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(15000)
        page.goto(url + "/signin")
        page.get_by_label("API key (review scope)").fill(KEY)
        page.keyboard.press("Enter")
        expect(page).to_have_url(url + "/review")

        # The list: both runs, each naming its agent and linking the release it read.
        page.get_by_role("link", name="Runs").click()
        expect(page).to_have_url(url + "/runs")
        rows = page.locator("#runs tbody tr")
        expect(rows).to_have_count(2)
        for run, agent in ((v1, "sim:v1"), (v2, "sim:v2")):
            row = rows.filter(has_text=run)
            expect(row).to_contain_text(agent)
            expect(row.get_by_role("link", name=release)).to_have_attribute("href", f"/releases/{release}")
        page.screenshot(path=str(SHOTS / "07-runs.png"), full_page=True)

        # One run: its segments as bars, compared by default with the baseline it was run against
        # (the demo runs v2 against v1).
        page.get_by_role("link", name=v2).click()
        expect(page).to_have_url(f"{url}/runs/{v2}")
        chart = page.locator("#segment-chart")
        expect(chart).to_be_visible()
        segments = page.locator("#segments tbody tr")
        api = _summary(url, v2)["summary"]
        expect(segments).to_have_count(min(len(api["segments"]), 40))
        expect(segments.first).to_contain_text("overall")
        overall = api["segments"][0]["rate"]
        expect(segments.first).to_contain_text(f"{overall['passed']}/{overall['total']}")
        expect(page.locator("#comparison")).to_contain_text(v1)

        # An empty baseline shows the run alone.
        page.goto(f"{url}/runs/{v2}?baseline=")
        expect(page.locator("#segments tbody tr").first).to_contain_text("overall")
        expect(page.locator("#comparison")).to_have_count(0)

        # Compare with v1 by keyboard: the select is labelled, Enter submits.
        page.get_by_label("Compare with").focus()
        page.get_by_label("Compare with").select_option(v1)
        page.get_by_role("button", name="Compare").press("Enter")
        page.wait_for_url(f"**/runs/{v2}?baseline={v1}")
        comparison = page.locator("#comparison")
        expect(comparison).to_contain_text(v1)
        # Each segment v1 also graded has a baseline bar; flags match the regression rows.
        assert chart.locator("rect.traffic").count() >= 1
        flagged = page.locator("#segments tr.regression").count()
        if flagged:
            expect(comparison).to_contain_text(f"{flagged} segment(s) regressed")
        else:
            expect(comparison).to_contain_text("no segment regressed")
        page.screenshot(path=str(SHOTS / "08-run-against-baseline.png"), full_page=True)
        browser.close()
