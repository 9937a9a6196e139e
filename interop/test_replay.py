"""A replay session through standard clients: the Python MCP client lists the session's tools and
calls query_metrics and submit_rca over streamable HTTP, and a PromQL query through `requests`
against the session's Prometheus API gets the frozen series."""

import asyncio
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import requests
from mcp import Client

from conftest import ROOT, Server, _free_port

KEY = "em_interop_replay_key_0123456789"


@pytest.fixture(scope="module")
def labelled_server():
    """A server over a data directory the simulator and the label pipeline filled."""
    binary = os.environ.get("EVALMINT_BIN", str(ROOT / "target" / "debug" / "evalmint"))
    data = tempfile.mkdtemp(prefix="evalmint-replay-")
    subprocess.run(
        [binary, "bench", "quality", "--incidents", "40", "--seed", "5", "--keep-data", data, "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, EVALMINT_LOG="warn"),
    )
    port = _free_port()
    process = subprocess.Popen(
        [binary, "serve", "--data", data, "--listen", f"127.0.0.1:{port}", "--no-pipeline"],
        env=dict(os.environ, EVALMINT_ADMIN_KEY=KEY, EVALMINT_LOG="warn"),
        stdout=subprocess.DEVNULL,
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
    yield Server(url, KEY)
    process.terminate()
    process.wait(timeout=10)


def open_session(server):
    status, labels = server.request("GET", "/api/v1/labels")
    assert status == 200 and labels["labels"], labels
    label = labels["labels"][0]
    status, session = server.request("POST", "/api/v1/replay/sessions", {"label_id": label["id"]})
    assert status == 201, session
    metric = next(q for q in label["snapshot"] if q["tool_name"] == "query_metrics" and q["status"] == "captured")
    return session, json.loads(metric["arguments"])


def test_the_mcp_client_lists_tools_and_calls_them(labelled_server):
    session, arguments = open_session(labelled_server)

    async def run():
        async with Client(session["mcp_url"]) as client:
            tools = await client.list_tools()
            names = {t.name for t in tools.tools}
            assert {"query_metrics", "search_logs", "get_traces", "get_events", "list_services",
                    "get_service_dependencies", "submit_rca"} <= names
            answer = await client.call_tool("query_metrics", arguments)
            assert not answer.is_error, answer
            frozen = json.loads(answer.content[0].text)
            assert frozen["data"]["result"], "the frozen series came back"
            missing = await client.call_tool("query_metrics", {"query": "up{job=\"nowhere\"}"})
            assert "no data" in missing.content[0].text
            submitted = await client.call_tool("submit_rca", {"conclusion": "db pool", "component": "payments-db"})
            assert not submitted.is_error, submitted

    asyncio.run(run())


def test_promql_through_requests_gets_the_frozen_series(labelled_server):
    session, arguments = open_session(labelled_server)
    base = session["prometheus_url"]
    params = {k: arguments[k] for k in ("query", "start", "end", "step")}
    response = requests.get(base + "/api/v1/query_range", params=params, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["data"]["result"] and body["data"]["result"][0]["values"]
    labels = requests.get(base + "/api/v1/labels", timeout=10).json()
    assert "service" in labels["data"]
    unknown = requests.get(base.replace(session["id"], "s-unknown") + "/api/v1/labels", timeout=10)
    assert unknown.status_code == 404
