"""`authsession demo`: the real command, on a real port, driven over HTTP."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    def __init__(self, db: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "authsession",
                "demo",
                "--port",
                str(self.port),
                "--db",
                str(db),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stdout.read().decode()) from None  # type: ignore[union-attr]
                time.sleep(0.05)
        raise RuntimeError("demo did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()  # type: ignore[union-attr]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "demo.sqlite3"


def opener(jar: CookieJar) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def test_demo_sign_in_update_restart_sign_out(db: Path) -> None:
    jar = CookieJar()
    client = opener(jar)
    demo = Demo(db)
    try:
        base = f"http://127.0.0.1:{demo.port}"
        assert "Nobody is signed in" in client.open(base + "/").read().decode()
        assert json.load(client.open(base + "/api/auth/session")) is None
        form = urllib.parse.urlencode({"name": "Ada", "email": "ada@example.com"}).encode()
        client.open(base + "/sign-in", data=form)
        token = next(c.value for c in jar if c.name == "authjs.session-token")
        session = json.load(client.open(base + "/api/auth/session"))
        assert session["user"]["name"] == "Ada"
        assert session["user"]["email"] == "ada@example.com"
        client.open(base + "/update", data=urllib.parse.urlencode({"name": "Ada L"}).encode())
        assert json.load(client.open(base + "/api/auth/session"))["user"]["name"] == "Ada L"
    finally:
        demo.stop()
    # The session is a row in the Auth.js schema, and survives a restart.
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            'SELECT "userId" FROM sessions WHERE "sessionToken" = ?', (token,)
        ).fetchall()
    assert len(rows) == 1
    demo = Demo(db)
    try:
        base = f"http://127.0.0.1:{demo.port}"
        assert json.load(client.open(base + "/api/auth/session"))["user"]["name"] == "Ada L"
        client.open(base + "/sign-out", data=b"")
        assert not any(c.name == "authjs.session-token" for c in jar)
        assert json.load(client.open(base + "/api/auth/session")) is None
    finally:
        demo.stop()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


def test_demo_survives_garbage_cookies(db: Path) -> None:
    demo = Demo(db)
    try:
        base = f"http://127.0.0.1:{demo.port}"
        for value in ("garbage", "x" * 5000, "%%%"):
            request = urllib.request.Request(
                base + "/api/auth/session", headers={"Cookie": f"authjs.session-token={value}"}
            )
            with urllib.request.urlopen(request) as response:
                assert response.status == 200
                assert json.load(response) is None
    finally:
        demo.stop()
