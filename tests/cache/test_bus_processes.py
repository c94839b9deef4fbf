"""Two real server processes share sign-outs through the invalidation bus.

Each process is uvicorn serving ``tests/cache/_bus_app.py`` on a loopback port
of its own, with the same secret, a one-hour cache TTL and the bus on the test
Redis (a channel unique to the run). A session signed in through A and cached
by both must be refused by B soon after A signs it out; the measured
propagation time is printed (run with ``-s``) and kept in the test's
``user_properties``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests._services import require_redis, unique_name
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class Server:
    """``uvicorn tests.cache._bus_app:app`` on a free loopback port."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.cache._bus_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--log-level",
                "info",
                "--no-access-log",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = 0
        self.log: list[str] = []
        ready = threading.Event()

        def read() -> None:  # keeps draining stderr so the server never blocks on it
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                match = READY.search(line)
                if match:
                    self.port = int(match.group(1))
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30):
            self.stop()
            raise RuntimeError(f"server {name} did not start:\n{''.join(self.log)}")

    def request(self, method: str, path: str, cookie: str = "", body: object = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"cookie": cookie} if cookie else {}
            data = None
            if body is not None:
                data = json.dumps(body)
                headers["content-type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            return response.status, response.getheader("set-cookie") or "", payload
        finally:
            conn.close()

    def json(self, path: str) -> dict:
        return json.loads(self.request("GET", path)[2])

    def wait_bus(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.json("/health")["bus"] != "connected":
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: bus not connected:\n{''.join(self.log)}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def servers(request):
    started: list[Server] = []

    def start(name: str, **env: str) -> Server:
        server = Server(name, env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def bus_env(redis_url: str, channel: str) -> dict[str, str]:
    return {"BUS_APP_SECRET": SECRET, "BUS_APP_BUS": redis_url, "BUS_APP_CHANNEL": channel}


def sign_in(server: Server) -> str:
    status, set_cookie, _ = server.request("POST", "/signin", body={"id": "1", "name": "Ada"})
    assert status == 200, set_cookie
    return set_cookie.split(";", 1)[0]  # "authjs.session-token=..."


def refused_within(server: Server, cookie: str, limit: float) -> float | None:
    """Seconds until ``server`` answers 401 for ``cookie``, polling; None past ``limit``."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if server.request("GET", "/session", cookie)[0] == 401:
            return time.perf_counter() - start
    return None


@pytest.fixture
def channel():
    redis_url = require_redis()
    name = unique_name("authsession_bus_proc")
    yield redis_url, name
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(f"{name}:denied")
    finally:
        client.close()


def test_jwt_sign_out_through_a_is_refused_by_b(servers, channel, request):
    redis_url, name = channel
    a = servers("A", **bus_env(redis_url, name))
    b = servers("B", **bus_env(redis_url, name))
    a.wait_bus()
    b.wait_bus()
    assert a.json("/health")["pid"] != b.json("/health")["pid"]

    cookie = sign_in(a)
    for server in (a, b):
        status, _, body = server.request("GET", "/session", cookie)
        assert status == 200 and json.loads(body)["user"]["name"] == "Ada"
        assert server.json("/stats")["size"] == 1  # both cached it

    status, set_cookie, _ = a.request("POST", "/signout", cookie)
    assert status == 204 and "Max-Age=0" in set_cookie
    latency = refused_within(b, cookie, limit=1.0)
    assert latency is not None, f"B still served the session 1 s after the sign-out: {b.log}"
    request.node.user_properties.append(("propagation_seconds", latency))
    print(f"\njwt sign-out A -> B refused after {latency * 1000:.1f} ms (polling over HTTP)")

    # B refuses the replayed cookie for good, though it still decrypts: the
    # bus carried a denial, not just "drop your cached copy".
    for server in (a, b):
        for _ in range(3):
            assert server.request("GET", "/session", cookie)[0] == 401
    stats_b = b.json("/stats")
    assert stats_b["bus_received"] == 1 and stats_b["denied"] >= 3 and stats_b["revoked"] == 1

    # a process started after the sign-out loads the denial from Redis
    c = servers("C", **bus_env(redis_url, name))
    c.wait_bus()
    assert c.request("GET", "/session", cookie)[0] == 401


def test_database_sign_out_through_a_is_refused_by_b(servers, channel, tmp_path, request):
    pytest.importorskip("authsession.adapters").SQLiteAdapter  # noqa: B018
    redis_url, name = channel
    database = {"BUS_APP_STRATEGY": "database", "BUS_APP_SQLITE": str(tmp_path / "auth.db")}
    a = servers("A", **bus_env(redis_url, name), **database)
    a.wait_bus()  # A creates the schema before the others open the file
    b = servers("B", **bus_env(redis_url, name), **database)
    # the control: same database and TTL, no bus
    c = servers("C", BUS_APP_SECRET=SECRET, **database)
    b.wait_bus()

    cookie = sign_in(a)
    for server in (a, b, c):
        assert server.request("GET", "/session", cookie)[0] == 200

    assert a.request("POST", "/signout", cookie)[0] == 204
    latency = refused_within(b, cookie, limit=1.0)
    assert latency is not None, f"B still served the session 1 s after the sign-out: {b.log}"
    request.node.user_properties.append(("propagation_seconds", latency))
    print(f"\ndatabase sign-out A -> B refused after {latency * 1000:.1f} ms (polling over HTTP)")
    # Without the bus, C keeps serving its cached copy until its TTL runs out:
    # what the bus is for.
    assert c.request("GET", "/session", cookie)[0] == 200
