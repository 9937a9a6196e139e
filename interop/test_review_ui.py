"""The review UI in a real browser: Debian's Chromium driven by Playwright (never a downloaded
browser). Candidates come from the simulator; a reviewer signs in, reviews 20 candidates by
keyboard only, edits one and rejects one in forms opened inline in the queue (a refused field
shown in the form), completes an insufficient one the same way, creates a release and opens its
coverage chart. Asserts on the pages and on the API afterwards, and saves screenshots."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("EVALMINT_SCREENSHOTS", ROOT / "target" / "interop-screenshots"))


def _require_browser():
    missing = None
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package"
    if missing is None and not Path(CHROMIUM).exists():
        missing = CHROMIUM
    if missing:
        if os.environ.get("EVALMINT_REQUIRE_ALL") == "1":
            pytest.fail(f"{missing} is required (EVALMINT_REQUIRE_ALL=1)")
        pytest.skip(f"{missing} is not installed")


def _queue_totals(server):
    totals = {}
    for route in ("all", "review", "insufficient"):
        status, body = server.request("GET", f"/api/v1/review?route={route}&limit=1")
        assert status == 200, body
        totals[route] = body["total"]
    return totals


@pytest.fixture(scope="module")
def candidates(server):
    """Plays simulated incidents against the server until enough candidates wait for review."""
    binary = os.environ.get("EVALMINT_BIN", str(ROOT / "target" / "debug" / "evalmint"))
    subprocess.run(
        [binary, "sim", "run", "--server", server.url, "--api-key", server.key,
         "--incidents", "120", "--seed", "7", "--silence-when-right", "0.2",
         "--silence-when-wrong", "0", "--style-no-text", "0.3",
         "--truth", str(SHOTS.parent / "review-ui-truth.jsonl")],
        check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, EVALMINT_LOG="warn"),
    )
    deadline = time.monotonic() + 90
    while True:
        totals = _queue_totals(server)
        if totals["review"] >= 23 and totals["insufficient"] >= 1:
            return totals
        if time.monotonic() > deadline:
            pytest.fail(f"not enough candidates for review: {totals}")
        time.sleep(1)


def _versions(server, candidate_id):
    status, body = server.request("GET", f"/api/v1/labels/{candidate_id}/versions")
    assert status == 200, body
    return body["versions"]


def test_review_by_keyboard_in_chromium(server, candidates):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(15000)

        # Sign in: the key field has focus; typing and Enter are all it takes.
        page.goto(server.url + "/")
        expect(page).to_have_url(server.url + "/signin")
        expect(page.get_by_label("API key (review scope)")).to_be_focused()
        page.keyboard.type(server.key)
        page.keyboard.press("Enter")
        expect(page).to_have_url(server.url + "/review")
        cookies = {c["name"]: c for c in page.context.cookies()}
        session = cookies["evalmint_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        page.screenshot(path=str(SHOTS / "01-queue.png"))

        # Twenty approvals by keyboard: j skips a row that cannot be approved, a approves.
        approved = []
        started = time.monotonic()
        keys = 0
        while len(approved) < 20:
            row = page.locator("#queue tr.item.selected")
            expect(row).to_have_count(1)
            candidate_id = row.get_attribute("data-id")
            if row.locator("button[disabled]").count():
                page.keyboard.press("j")
                keys += 1
                continue
            decided = page.locator("#queue tr.decided").count()
            page.keyboard.press("a")
            keys += 1
            expect(page.locator("#queue tr.decided")).to_have_count(decided + 1)
            approved.append(candidate_id)
        elapsed = time.monotonic() - started
        per_minute = 20 / elapsed * 60
        page.screenshot(path=str(SHOTS / "02-after-20-approvals.png"))
        expect(page.locator("#queue tr.decided").first).to_contain_text("approve as version")

        # Edit one inline: e opens its edit form right under the row, the statement focused.
        page.goto(server.url + "/review?route=review")
        row = page.locator("#queue tr.item.selected")
        edited = row.get_attribute("data-id")
        page.keyboard.press("e")
        inline = page.locator("#inline-form")
        statement = inline.get_by_label("Statement")
        expect(statement).to_be_focused()
        expect(page.locator(f'#queue tr.item[data-id="{edited}"] + tr#inline-form')).to_have_count(1)
        expect(inline.get_by_label("Category")).to_be_visible()
        page.screenshot(path=str(SHOTS / "03-inline-edit.png"), full_page=True)
        # Escape closes it and gives the row the focus back; e opens it again.
        page.keyboard.press("Escape")
        expect(inline).to_have_count(0)
        expect(page.locator(f'#queue tr.item.selected[data-id="{edited}"]')).to_be_focused()
        page.keyboard.press("e")
        expect(statement).to_be_focused()
        # A refused field is named in the form, and focused.
        for _ in range(3):
            page.keyboard.press("Tab")
        onset = inline.get_by_label("Onset (RFC 3339)")
        expect(onset).to_be_focused()
        page.keyboard.press("Control+A")
        page.keyboard.type("yesterday")
        page.keyboard.press("Enter")
        expect(inline.get_by_role("alert")).to_contain_text("ground_truth.onset")
        expect(onset).to_be_focused()
        expect(onset).to_have_attribute("aria-invalid", "true")
        page.screenshot(path=str(SHOTS / "03b-inline-error.png"), full_page=True)
        page.keyboard.press("Control+A")
        page.keyboard.press("Backspace")
        for _ in range(3):
            page.keyboard.press("Shift+Tab")
        expect(statement).to_be_focused()
        page.keyboard.press("Control+A")
        page.keyboard.type("checkout: connection pool exhausted after the 14:02 deploy <b>x</b>")
        page.keyboard.press("Enter")
        expect(page.locator(f'#queue tr.decided[data-id="{edited}"]')).to_contain_text("edit as version")
        expect(inline).to_have_count(0)

        # Reject the next one inline: r, a note, the reason, Enter.
        row = page.locator("#queue tr.item.selected")
        expect(row).to_be_focused()
        rejected = row.get_attribute("data-id")
        assert rejected != edited
        page.keyboard.press("r")
        reason = inline.get_by_label("Reason")
        expect(reason).to_be_focused()
        page.keyboard.press("Tab")
        page.keyboard.type("the snapshot has no metric of the pool")
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("ArrowDown")  # insufficient_evidence
        expect(reason).to_have_value("insufficient_evidence")
        page.screenshot(path=str(SHOTS / "03c-inline-reject.png"), full_page=True)
        page.keyboard.press("Enter")
        expect(page.locator(f'#queue tr.decided[data-id="{rejected}"]')).to_contain_text("reject as version")
        expect(inline).to_have_count(0)

        # Complete an insufficient one inline: statement and component, then Enter.
        page.goto(server.url + "/review?route=insufficient")
        row = page.locator("#queue tr.item.selected")
        completed = row.get_attribute("data-id")
        expect(row.locator("button")).to_be_disabled()
        page.keyboard.press("e")
        expect(inline.get_by_label("Statement")).to_be_focused()
        page.keyboard.type("payments-db: disk full on the primary")
        page.keyboard.press("Tab")
        page.keyboard.type("payments-db")
        page.keyboard.press("Enter")
        expect(page.locator(f'#queue tr.decided[data-id="{completed}"]')).to_contain_text("edit as version")

        # The edited candidate's page shows its history with the diff, text escaped.
        page.goto(server.url + f"/review/{edited}")
        history = page.locator("#h-hist + article")
        expect(history).to_contain_text("edit by")
        expect(history).to_contain_text("<b>x</b>")
        page.screenshot(path=str(SHOTS / "04-history.png"), full_page=True)
        # The candidate page keeps its own forms: e opens its edit panel there.
        page.keyboard.press("e")
        expect(page.locator("#e-statement")).to_be_focused()

        # A release, and its coverage chart.
        page.goto(server.url + "/releases")
        page.get_by_label("Name").focus()
        page.keyboard.type("browser-run")
        page.keyboard.press("Enter")
        page.wait_for_url("**/releases/rel-*")
        chart = page.locator("#coverage-chart")
        expect(chart).to_be_visible()
        assert chart.locator("rect").count() >= 2
        chart.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "05-release-coverage.png"), full_page=True)
        release_id = page.url.rsplit("/", 1)[1]

        page.goto(server.url + "/calibration")
        expect(page.locator("h1")).to_have_text("Calibration")
        page.screenshot(path=str(SHOTS / "06-calibration.png"), full_page=True)
        browser.close()

    # The API agrees with what the pages showed.
    for candidate_id in approved:
        latest = _versions(server, candidate_id)[-1]
        assert latest["decision"]["action"] == "approve", candidate_id
        assert latest["state"] == "active"
    edit = _versions(server, edited)[-1]
    assert edit["decision"]["action"] == "edit"
    assert edit["ground_truth"]["statement"].startswith("checkout: connection pool exhausted")
    assert any(c["field"] == "ground_truth.statement" for c in edit["changes"])
    reject = _versions(server, rejected)[-1]
    assert reject["state"] == "rejected"
    assert reject["decision"]["reason"] == "insufficient_evidence"
    assert reject["decision"]["note"] == "the snapshot has no metric of the pool"
    complete = _versions(server, completed)[-1]
    assert complete["ground_truth"]["components"] == ["payments-db"]
    status, queue = server.request("GET", "/api/v1/review?limit=1000")
    assert status == 200
    waiting = {c["id"] for c in queue["queue"]}
    decided = set(approved) | {edited, rejected, completed}
    assert len(decided) == 23
    assert not decided & waiting, "decided candidates leave the queue"
    status, release = server.request("GET", f"/api/v1/releases/{release_id}")
    assert status == 200
    assert release["name"] == "browser-run"
    assert release["labels"] >= 22

    report = {"decisions": 20, "seconds": round(elapsed, 2), "decisions_per_minute": round(per_minute, 1),
              "keys_pressed": keys}
    (SHOTS / "review-speed.json").write_text(json.dumps(report) + "\n")
    print(f"\nkeyboard review: {report}")
