"""PostgresAdapter and the real ``@auth/pg-adapter`` share one database.

Node runs ``@auth/pg-adapter`` (``pg_adapter_tool.mjs``) against the test
PostgreSQL, in a schema made for this run with authsession's shipped
``postgres.sql``. Each side writes what the other reads: users, sessions
(``expires`` identical to the millisecond), slides, sign-outs, accounts and
verification tokens.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from tests._services import auth_schema

from authsession.adapters import PostgresAdapter

from ._harness import INTEROP_DIR, REQUEST_TIMEOUT, _Child

TOOL = INTEROP_DIR / "pg_adapter_tool.mjs"


class PgAdapterTool:
    """One ``pg_adapter_tool.mjs`` process: ``call("getSessionAndUser", token)``."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._child = _Child(TOOL, env={"AUTHSESSION_PG_DSN": dsn, "AUTHSESSION_PG_SCHEMA": schema})
        self._lock = threading.Lock()
        self.call("ping")

    def call(self, op: str, arg: Any = None) -> Any:
        line = json.dumps({"op": op, "arg": arg}) + "\n"
        with self._lock:
            proc = self._child.proc
            if proc.poll() is not None:
                raise RuntimeError(f"pg_adapter_tool.mjs exited:\n{self._child.stderr_text()}")
            assert proc.stdin is not None
            proc.stdin.write(line)
            proc.stdin.flush()
            out = self._child.stdout.readline(REQUEST_TIMEOUT)
        if out is None:
            raise RuntimeError(f"pg_adapter_tool.mjs closed stdout:\n{self._child.stderr_text()}")
        response = json.loads(out)
        if not response["ok"]:
            raise AssertionError(f"@auth/pg-adapter {op} failed: {response['error']}")
        return response["result"]

    def close(self) -> None:
        self._child.stop()


@pytest.fixture(scope="module")
def shared_db(node_modules: Path) -> Iterator[tuple[str, str]]:
    with auth_schema("authsession_interop") as where:
        yield where


@pytest.fixture(scope="module")
def node(shared_db: tuple[str, str]) -> Iterator[PgAdapterTool]:
    tool = PgAdapterTool(*shared_db)
    try:
        yield tool
    finally:
        tool.close()


@pytest.fixture
async def py(shared_db: tuple[str, str]) -> AsyncIterator[PostgresAdapter]:
    dsn, schema = shared_db
    adapter = PostgresAdapter(dsn, schema=schema)
    try:
        yield adapter
    finally:
        await adapter.aclose()


def js_iso(value: datetime) -> str:
    """``Date.prototype.toISOString`` of *value*."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_js(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def soon(hours: float = 1) -> datetime:
    return datetime.now(timezone.utc) + timedelta(hours=hours)


def token() -> str:
    return f"interop-{uuid.uuid4()}"


async def test_node_writes_python_reads(node: PgAdapterTool, py: PostgresAdapter) -> None:
    verified = soon(-48)
    user = node.call(
        "createUser",
        {
            "name": "Node Writer",
            "email": f"{uuid.uuid4().hex}@node.example",
            "emailVerified": js_iso(verified),
            "image": "https://i/n.png",
        },
    )
    expires = soon(24 * 30)
    t = token()
    node.call(
        "createSession", {"sessionToken": t, "userId": user["id"], "expires": js_iso(expires)}
    )

    found = await py.get_session_and_user(t)
    assert found is not None
    session, stored_user = found["session"], found["user"]
    assert session["sessionToken"] == session["session_token"] == t
    assert session["userId"] == str(user["id"]) == stored_user["id"]
    assert js_iso(session["expires"]) == js_iso(expires)
    assert session["expires"] == parse_js(js_iso(expires))
    assert stored_user["name"] == "Node Writer" and stored_user["email"] == user["email"]
    assert stored_user["image"] == "https://i/n.png"
    assert js_iso(stored_user["emailVerified"]) == user["emailVerified"] == js_iso(verified)
    assert (await py.get_user(str(user["id"])))["email"] == user["email"]
    assert (await py.get_user_by_email(user["email"]))["id"] == str(user["id"])


async def test_python_writes_node_reads(node: PgAdapterTool, py: PostgresAdapter) -> None:
    user = await py.create_user(
        {"name": "Py Writer 東京", "email": f"{uuid.uuid4().hex}@py.example"}
    )
    expires = soon(24 * 7)
    t = token()
    await py.create_session(session_token=t, user_id=user["id"], expires=expires)

    found = node.call("getSessionAndUser", t)
    assert found is not None
    assert found["session"]["sessionToken"] == t
    assert str(found["session"]["userId"]) == user["id"] == str(found["user"]["id"])
    assert found["session"]["expires"] == js_iso(expires)
    assert found["user"]["name"] == "Py Writer 東京" and found["user"]["email"] == user["email"]
    assert found["user"]["emailVerified"] is None
    assert node.call("getUser", user["id"])["name"] == "Py Writer 東京"


async def test_slides_cross_both_ways(node: PgAdapterTool, py: PostgresAdapter) -> None:
    user = await py.create_user({"name": "Slider", "email": f"{uuid.uuid4().hex}@example.com"})
    t = token()
    await py.create_session(session_token=t, user_id=user["id"], expires=soon(1))

    python_slide = soon(24)
    updated = await py.update_session(session_token=t, expires=python_slide)
    assert updated is not None
    assert node.call("getSessionAndUser", t)["session"]["expires"] == js_iso(python_slide)

    node_slide = soon(48)
    node.call("updateSession", {"sessionToken": t, "expires": js_iso(node_slide)})
    found = await py.get_session_and_user(t)
    assert found is not None and js_iso(found["session"]["expires"]) == js_iso(node_slide)


async def test_sign_out_crosses_both_ways(node: PgAdapterTool, py: PostgresAdapter) -> None:
    user = await py.create_user({"name": "Leaver", "email": f"{uuid.uuid4().hex}@example.com"})

    by_node = token()
    await py.create_session(session_token=by_node, user_id=user["id"], expires=soon())
    node.call("deleteSession", by_node)
    assert await py.get_session_and_user(by_node) is None
    # A slide racing the sign-out cannot bring it back.
    assert await py.update_session(session_token=by_node, expires=soon(24)) is None
    assert node.call("getSessionAndUser", by_node) is None

    by_python = token()
    node.call(
        "createSession",
        {"sessionToken": by_python, "userId": int(user["id"]), "expires": js_iso(soon())},
    )
    assert node.call("getSessionAndUser", by_python) is not None
    await py.delete_session(by_python)
    assert node.call("getSessionAndUser", by_python) is None


async def test_accounts_cross_both_ways(node: PgAdapterTool, py: PostgresAdapter) -> None:
    user = await py.create_user({"name": "Linked", "email": f"{uuid.uuid4().hex}@example.com"})
    node_account = uuid.uuid4().hex
    node.call(
        "linkAccount",
        {
            "userId": int(user["id"]),
            "type": "oauth",
            "provider": "github",
            "providerAccountId": node_account,
            "access_token": "at",
            "expires_at": 1_900_000_000,
        },
    )
    found = await py.get_user_by_account(provider="github", provider_account_id=node_account)
    assert found is not None and found["id"] == user["id"]

    py_account = uuid.uuid4().hex
    await py.link_account(
        {
            "userId": user["id"],
            "type": "oidc",
            "provider": "google",
            "providerAccountId": py_account,
        }
    )
    assert (
        str(
            node.call("getUserByAccount", {"provider": "google", "providerAccountId": py_account})[
                "id"
            ]
        )
        == user["id"]
    )


async def test_verification_tokens_cross_both_ways(
    node: PgAdapterTool, py: PostgresAdapter
) -> None:
    expires = soon(1)
    identifier = f"{uuid.uuid4().hex}@example.com"
    await py.create_verification_token(identifier=identifier, token="from-python", expires=expires)
    used = node.call("useVerificationToken", {"identifier": identifier, "token": "from-python"})
    assert used == {"identifier": identifier, "token": "from-python", "expires": js_iso(expires)}

    node.call(
        "createVerificationToken",
        {"identifier": identifier, "token": "from-node", "expires": js_iso(expires)},
    )
    used_py = await py.use_verification_token(identifier=identifier, token="from-node")
    assert used_py is not None and js_iso(used_py["expires"]) == js_iso(expires)
    assert (
        node.call("useVerificationToken", {"identifier": identifier, "token": "from-node"}) is None
    )
