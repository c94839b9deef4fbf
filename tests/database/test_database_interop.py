"""authsession and a real Auth.js (``@auth/core``) sharing one session store.

``authjs_database_server.mjs`` runs ``Auth()`` with ``strategy: "database"``
and an adapter whose every call is answered by the test's Python adapter (a
JSON RPC served here). So both sides read and write the same rows, as a
Next.js app and a Python service share one database, and we compare what
each answers: the session JSON, the sliding update, pruning and sign-out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.interop._harness import (
    NODE_MODULES,
    SECRET,
    SERVER_START_TIMEOUT,
    _Child,
    _client,
    _send,
    apply_set_cookies,
    ensure_node_modules,
    get_session,
    parse_set_cookie,
)

from authsession import AuthConfig, AuthRuntime
from authsession._bridge import run_sync
from authsession._time import iso_ms, parse_iso
from authsession.adapters import SQLiteAdapter

from .conftest import COOKIE, MAX_AGE, UPDATE_AGE, USER, expires_for_age, row, seed

pytestmark = pytest.mark.interop

SERVER = Path(__file__).resolve().parent / "authjs_database_server.mjs"


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_ms(value.timestamp())
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


class AdapterRpc:
    """Serves ``{"method", "args"}`` POSTs from node by calling the current Python adapter."""

    def __init__(self) -> None:
        self.adapter: Any = None
        rpc = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                args = dict(body["args"])
                if isinstance(args.get("expires"), str):
                    args["expires"] = parse_iso(args["expires"])
                try:
                    method = getattr(rpc.adapter, body["method"])
                    payload, status = {"result": _to_json(run_sync(method(**args)))}, 200
                except Exception as exc:
                    payload, status = {"error": f"{type(exc).__name__}: {exc}"}, 500
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/rpc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AuthJsDatabase:
    """A running ``authjs_database_server.mjs`` wired to an :class:`AdapterRpc`."""

    def __init__(self, rpc: AdapterRpc, callback: str = "") -> None:
        self.child = _Child(
            SERVER,
            {
                "AUTHSESSION_NODE_MODULES": str(NODE_MODULES),
                "AUTH_SECRET": SECRET,
                "AUTHJS_ADAPTER_RPC": rpc.url,
                "AUTH_MAX_AGE": str(MAX_AGE),
                "AUTH_UPDATE_AGE": str(UPDATE_AGE),
                "AUTH_SESSION_CALLBACK": callback,
                "AUTH_URL": "",
                "NEXTAUTH_URL": "",
            },
        )
        line = self.child.stdout.readline(SERVER_START_TIMEOUT)
        if line is None:
            stderr = self.child.stderr_text()
            self.child.stop()
            raise RuntimeError(f"authjs_database_server.mjs did not start:\n{stderr}")
        self.base_url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def session(self, token: str) -> tuple[Any, dict[str, Any]]:
        """(JSON body, {cookie name: parsed Set-Cookie}) of GET /api/auth/session."""
        res = get_session(self.base_url, {COOKIE: token})
        assert res.status == 200, (res.status, res.text, self.child.stderr_text()[-2000:])
        return res.json, {c.name: c for c in map(parse_set_cookie, res.set_cookie)}

    def sign_out(self, token: str) -> None:
        jar: dict[str, str] = {}
        with _client() as client:
            csrf = _send(client, "GET", f"{self.base_url}/api/auth/csrf", jar)
            apply_set_cookies(jar, csrf.headers.get_list("set-cookie"))
            jar[COOKIE] = token
            res = _send(
                client,
                "POST",
                f"{self.base_url}/api/auth/signout",
                jar,
                data={"csrfToken": csrf.json()["csrfToken"], "callbackUrl": self.base_url},
            )
        assert res.status_code in (200, 302), res.text

    def close(self) -> None:
        self.child.stop()


@pytest.fixture(scope="module")
def rpc() -> Iterator[AdapterRpc]:
    ensure_node_modules()
    server = AdapterRpc()
    yield server
    server.close()


@pytest.fixture(scope="module")
def authjs(rpc: AdapterRpc) -> Iterator[AuthJsDatabase]:
    server = AuthJsDatabase(rpc)
    yield server
    server.close()


@pytest.fixture(scope="module")
def authjs_user_id(rpc: AdapterRpc) -> Iterator[AuthJsDatabase]:
    server = AuthJsDatabase(rpc, callback="user-id")
    yield server
    server.close()


@pytest.fixture
def store(rpc: AdapterRpc, tmp_path: Path) -> Iterator[SQLiteAdapter]:
    """One SQLite database that Auth.js (through the RPC) and authsession both use."""
    adapter = SQLiteAdapter(tmp_path / "shared.db")
    rpc.adapter = adapter
    yield adapter
    run_sync(adapter.aclose())


def runtime(store: SQLiteAdapter, **options: Any) -> AuthRuntime:
    return AuthRuntime(
        AuthConfig(
            strategy="database", adapter=store, max_age=MAX_AGE, update_age=UPDATE_AGE, **options
        )
    )


def python_json(rt: AuthRuntime, token: str, response: Any = None) -> Any:
    source = ({COOKIE: token}, response) if response is not None else {COOKIE: token}
    session = rt.get_session_sync(source)
    return None if session is None else json.loads(json.dumps(session))


def test_a_python_sign_in_reads_the_same_in_authjs(authjs, store):
    rt = runtime(store)
    token = rt.sign_in_sync(dict(USER))
    body, _ = authjs.session(token)
    assert body == python_json(rt, token)
    assert body["user"] == {"name": USER["name"], "email": USER["email"], "image": USER["image"]}


def test_null_fields_match(authjs, store):
    token, _ = seed(store, user={"email": "only-email@example.com"})
    body, _ = authjs.session(token)
    assert body == python_json(runtime(store), token)
    assert body["user"]["name"] is None


def test_a_session_callback_reads_the_same(authjs_user_id, store):
    def session_cb(session, user):
        return {
            "user": {
                "name": user["name"],
                "email": user["email"],
                "image": user["image"],
                "id": user["id"],
            },
            "expires": session["expires"],
        }

    token, stored = seed(store)
    body, _ = authjs_user_id.session(token)
    assert body == python_json(runtime(store, callbacks={"session": session_cb}), token)
    assert body["user"]["id"] == stored["id"]


def test_sliding_matches_authjs(authjs, store):
    theirs, _ = seed(store, age=UPDATE_AGE + 120)
    ours, _ = seed(store, age=UPDATE_AGE + 120)
    their_old, our_old = row(store, theirs)["expires"], row(store, ours)["expires"]
    started = time.time()
    body, their_cookies = authjs.session(theirs)
    response: list[tuple[str, str]] = []
    our_body = python_json(runtime(store), ours, response)
    # Both answer with the expiry they read, and both moved the row to now + maxAge.
    assert body["expires"] == iso_ms(their_old.timestamp())
    assert our_body["expires"] == iso_ms(our_old.timestamp())
    for token in (theirs, ours):
        assert abs(row(store, token)["expires"].timestamp() - (started + MAX_AGE)) < 5
    # The refreshed cookie: same token, new expiry, Auth.js's attributes.
    their_cookie = their_cookies[COOKIE]
    (our_header,) = [value for key, value in response if key == "set-cookie"]
    our_cookie = parse_set_cookie(our_header)
    assert their_cookie.value == theirs and our_cookie.value == ours
    assert set(our_cookie.attributes) == set(their_cookie.attributes)
    for name in ("path", "samesite"):
        assert our_cookie.attributes[name].lower() == their_cookie.attributes[name].lower()
    gap = parsedate_to_datetime(our_cookie.attributes["expires"]) - parsedate_to_datetime(
        their_cookie.attributes["expires"]
    )
    assert abs(gap.total_seconds()) < 5


def test_a_fresh_session_slides_in_neither(authjs, store):
    token, _ = seed(store, age=60)
    before = row(store, token)["expires"]
    authjs.session(token)
    python_json(runtime(store), token)
    assert row(store, token)["expires"] == before


def test_expired_sessions_are_pruned_by_both(authjs, store):
    theirs, _ = seed(store, expires=expires_for_age(MAX_AGE + 60))
    ours, _ = seed(store, expires=expires_for_age(MAX_AGE + 60))
    body, their_cookies = authjs.session(theirs)
    response: list[tuple[str, str]] = []
    assert body is None and python_json(runtime(store), ours, response) is None
    assert row(store, theirs) is None and row(store, ours) is None
    assert their_cookies[COOKIE].deletes
    assert parse_set_cookie(response[0][1]).deletes


def test_sign_out_on_either_side_ends_the_session_on_both(authjs, store):
    rt = runtime(store, cache=False)
    # Auth.js signs out a session authsession made ...
    token = rt.sign_in_sync(dict(USER))
    assert python_json(rt, token) is not None
    authjs.sign_out(token)
    assert row(store, token) is None and python_json(rt, token) is None
    # ... and authsession signs out one Auth.js reads.
    token = rt.sign_in_sync(dict(USER))
    assert authjs.session(token)[0] is not None
    rt.sign_out_sync({COOKIE: token})
    assert authjs.session(token)[0] is None
