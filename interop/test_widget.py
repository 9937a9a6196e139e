"""The feedback widget in Debian's headless Chromium: each verdict clicked (one by keyboard)
reaches the API as widget feedback on its investigation; a page on an origin the publishable key
does not allow is refused, and the widget says so instead of retrying as if offline; the
publishable key reads nothing."""

import functools
import http.server
import os
import threading
import time

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def investigation(server) -> str:
    trace = os.urandom(16).hex()
    status, body = server.request("POST", "/api/v1/investigations", {
        "id": trace, "agent": {"name": "sre-agent"}, "conclusion": "checkout bad deploy",
        "started_at": "2026-11-29T10:00:00Z",
        "steps": [{"kind": "llm", "name": "chat", "started_at": "2026-11-29T10:00:01Z", "output": "done"}],
    })
    assert status == 201, body
    return trace


def publishable_key(server, origins) -> str:
    status, body = server.request("POST", "/api/v1/keys", {"name": "widget", "scopes": ["feedback"], "allowed_origins": origins})
    assert status == 201, body
    assert body["allowed_origins"] == origins
    return body["secret"]


def widget_feedback(server, trace):
    status, body = server.request("GET", f"/api/v1/investigations/{trace}")
    assert status == 200, body
    return [f for f in body["feedback"] if f["origin"] == "widget"]


def test_each_verdict_reaches_the_api(server, browser):
    key = publishable_key(server, [server.url])
    for verdict, label in [("up", "Thumbs up"), ("not_quite", "Not quite"), ("down", "Thumbs down")]:
        trace = investigation(server)
        page = browser.new_page()
        page.goto(f"{server.url}/widget/demo?investigation={trace}&key={key}&user=u-{verdict}")
        widget = page.locator("evalmint-feedback")
        widget.get_by_role("button", name="Rate 4 of 5").click()
        if verdict == "up":
            # Keyboard only: focus the button and press Enter.
            widget.get_by_role("button", name=label).focus()
            page.keyboard.press("Enter")
        else:
            widget.get_by_role("button", name=label).click()
            box = widget.locator("textarea")
            assert box.is_visible()
            box.fill("<img src=x onerror=alert(1)> it was the payments-db pool")
            widget.get_by_role("button", name="Send feedback").click()
        page.wait_for_function(
            "() => document.querySelector('evalmint-feedback').shadowRoot.querySelector('.status').textContent.startsWith('Thanks')")
        page.close()
        [feedback] = widget_feedback(server, trace)
        assert feedback["verdict"] == verdict and feedback["rating"] == 4
        assert feedback["user_id"] == f"u-{verdict}"
        if verdict != "up":
            assert feedback["correction"].startswith("<img src=x")


def test_a_page_on_another_origin_is_refused_and_the_key_reads_nothing(server, browser, tmp_path):
    key = publishable_key(server, ["https://app.example.com"])
    trace = investigation(server)
    (tmp_path / "host.html").write_text(f"""<!doctype html><script src="{server.url}/widget.js"></script>
<evalmint-feedback investigation="{trace}" endpoint="{server.url}" key="{key}"></evalmint-feedback>""")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{host.server_address[1]}/host.html")
        page.locator("evalmint-feedback").get_by_role("button", name="Thumbs up").click()
        status = "document.querySelector('evalmint-feedback').shadowRoot.querySelector('.status').textContent"
        # The page says its origin was refused, not that it is offline, and stops: nothing
        # waits in its queue and the message stays after the first retry would have run.
        page.wait_for_function(f"() => /refused/.test({status})")
        text = page.evaluate(f"() => {status}")
        assert "not among the allowed origins" in text and "Offline" not in text, text
        page.wait_for_timeout(2500)
        assert page.evaluate(f"() => {status}") == text
        assert page.evaluate("() => localStorage.getItem('evalmint-feedback-queue')") in (None, "[]")
        page.close()
    finally:
        host.shutdown()
    time.sleep(0.2)
    assert widget_feedback(server, trace) == []
    # The publishable key cannot read, even from an allowed origin.
    import urllib.request, urllib.error
    request = urllib.request.Request(f"{server.url}/api/v1/investigations/{trace}",
                                     headers={"Authorization": f"Bearer {key}", "Origin": "https://app.example.com"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 403
