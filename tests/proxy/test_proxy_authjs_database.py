"""Proxy mode in front of a real Auth.js with ``strategy: "database"``.

Reuses the database suite's harness: ``authjs_database_server.mjs`` runs
``Auth()`` with an adapter answered by a Python ``SQLiteAdapter`` (JSON RPC),
so the test can look at the rows. Proxy mode needs no secret and no adapter of
its own here: it reads whatever the upstream says, and ``sign_out_upstream``
makes Auth.js delete the row. Skips without node locally, fails under CI=true.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.database.test_database_interop import AdapterRpc, AuthJsDatabase

from authsession import AuthConfig, AuthRuntime, ProxyConfig
from authsession._bridge import run_sync
from authsession.adapters import SQLiteAdapter

pytestmark = pytest.mark.interop

COOKIE = "authjs.session-token"
USER = {"name": "Grace Hopper", "email": "grace@example.com", "image": None}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[AdapterRpc, AuthJsDatabase]]:
    from interop._harness import ensure_node_modules

    ensure_node_modules()  # skip (or fail under CI=true) without node
    rpc = AdapterRpc()
    try:
        server = AuthJsDatabase(rpc)
    except BaseException:
        rpc.close()
        raise
    yield rpc, server
    server.close()
    rpc.close()


@pytest.fixture
def store(upstream: tuple[AdapterRpc, AuthJsDatabase], tmp_path: Path) -> Iterator[SQLiteAdapter]:
    adapter = SQLiteAdapter(tmp_path / "authjs.db")
    upstream[0].adapter = adapter
    yield adapter
    run_sync(adapter.aclose())


def row(store: SQLiteAdapter, token: str) -> Any:
    return run_sync(store.get_session_and_user(token))


def test_proxy_reads_and_signs_out_database_sessions(
    upstream: tuple[AdapterRpc, AuthJsDatabase],
    store: SQLiteAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, server = upstream
    # A session in the shared database (what the Next.js app would have made).
    token = AuthRuntime(AuthConfig(strategy="database", adapter=store)).sign_in_sync(dict(USER))
    proxy = AuthRuntime(ProxyConfig(upstream_url=server.base_url, sign_out_upstream=True))
    try:
        direct, _ = server.session(token)
        session = proxy.get_session_sync({COOKIE: token})
        assert session is not None and direct is not None
        assert dict(session) == direct  # the row's expires: identical, not just close
        assert session.user.email == "grace@example.com"

        caplog.set_level(logging.WARNING, "authsession")
        response: list[tuple[str, str]] = []
        proxy.sign_out_sync(({COOKIE: token}, response))
        assert [v.split(";")[0] for _, v in response] == [f"{COOKIE}="]
        assert not caplog.records, [r.getMessage() for r in caplog.records]
        # Auth.js deleted the row: the session is over everywhere, not just here.
        assert row(store, token) is None
        assert server.session(token)[0] is None
    finally:
        proxy.close()


def test_without_sign_out_upstream_the_row_stays(
    upstream: tuple[AdapterRpc, AuthJsDatabase], store: SQLiteAdapter
) -> None:
    _, server = upstream
    token = AuthRuntime(AuthConfig(strategy="database", adapter=store)).sign_in_sync(dict(USER))
    proxy = AuthRuntime(ProxyConfig(upstream_url=server.base_url))
    try:
        assert proxy.get_session_sync({COOKIE: token}) is not None
        proxy.sign_out_sync({COOKIE: token})
        assert proxy.get_session_sync({COOKIE: token}) is None  # refused here ...
        assert row(store, token) is not None  # ... but the upstream still has it
        assert server.session(token)[0] is not None
    finally:
        proxy.close()
