"""Every route of /api/openapi.json, fuzzed with schemathesis against the real server: no 5xx, ever.

The server runs as its own process on the demo city (so generated ids often hit real units,
rooms and accounts), signed in as the administrator, who reaches every route. The budget is
small and the seed fixed so CI stays fast and repeatable; `.venv/bin/st run` with other seeds
and a bigger ``-n`` is the way to dig deeper by hand (see the README).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow
ADMIN_PASSWORD = "fuzz-admin-password"
ST = os.path.join(os.path.dirname(sys.executable), "st")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(tmp_path):
    url = f"sqlite:///{tmp_path}/fuzz.sqlite3"
    env = {**os.environ, "DUTYCALL_ADMIN_PASSWORD": ADMIN_PASSWORD}
    subprocess.run([sys.executable, "-m", "dutycall.server", "demo", "--database-url", url],
                   env=env, check=True, capture_output=True, timeout=300)
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "dutycall.server", "--host", "127.0.0.1", "--port", str(port),
         "--ice-addresses", "127.0.0.1", "--database-url", url, "--log-level", "WARNING"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2)
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
    yield base, tmp_path / "server.log"
    server.terminate()
    server.wait(timeout=30)
    log.close()


def _sign_in(base: str) -> tuple[str, str]:
    request = urllib.request.Request(f"{base}/api/session", method="POST",
                                     data=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        cookie = response.headers["Set-Cookie"].split(";")[0]
        return cookie, json.loads(response.read())["csrf_token"]


def _fuzz(base: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ST, "run", f"{base}/api/openapi.json", "--checks", "not_a_server_error", "--max-examples", "15",
         "--seed", "7", "--workers", "1", "--request-timeout", "30", "--no-color",
         "--generation-database", "none", *args],
        capture_output=True, text=True, timeout=900)


def test_no_route_answers_5xx_to_generated_requests(live_server):
    base, server_log = live_server
    cookie, csrf = _sign_in(base)
    # Signed in as the administrator; DELETE /api/session would sign the fuzzer itself out.
    signed_in = _fuzz(base, "-H", f"Cookie: {cookie}", "-H", f"X-CSRF-Token: {csrf}",
                      "--exclude-path", "/api/session")
    assert signed_in.returncode == 0, signed_in.stdout[-6000:]
    # The sign-in routes, anonymous (lone surrogates in the name used to answer 500).
    anonymous = _fuzz(base, "--include-path-regex", "^/api/(session|device-session)$", "--include-method", "POST")
    assert anonymous.returncode == 0, anonymous.stdout[-6000:]
    assert "dutycall.web.hardening: unexpected error" not in server_log.read_text()
