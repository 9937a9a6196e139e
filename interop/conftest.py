"""Starts a real `evalmint serve` in a temporary data directory for the interop tests."""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, key: str):
        self.url = url
        self.key = key

    def request(self, method: str, path: str, body=None, content_type="application/json"):
        data = None
        headers = {"Authorization": f"Bearer {self.key}"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("EVALMINT_BIN", str(ROOT / "target" / "debug" / "evalmint"))
    if not Path(binary).exists():
        pytest.fail(f"{binary} not found: build it with `cargo build -p evalmint-cli` first")
    port = _free_port()
    key = "em_interop_admin_key_0123456789"
    data = tempfile.mkdtemp(prefix="evalmint-interop-")
    env = dict(os.environ, EVALMINT_ADMIN_KEY=key, EVALMINT_LOG="warn")
    process = subprocess.Popen(
        [binary, "serve", "--data", data, "--listen", f"127.0.0.1:{port}"],
        env=env,
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
    yield Server(url, key)
    process.terminate()
    process.wait(timeout=10)
