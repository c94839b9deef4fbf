"""The stored schemas: @auth/pg-adapter's tables exactly, `authsession db init`,
custom table names, SQLite files and rows written by other Auth.js stacks."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests._services import require_postgres, unique_name

from authsession._cli import main
from authsession.adapters import PostgresAdapter, SQLiteAdapter
from authsession.adapters._postgres import render_schema
from authsession.adapters._schema import schema_sql

# @auth/pg-adapter's documented schema: table -> [(column, data type, nullable)].
PG_ADAPTER_SCHEMA = {
    "verification_token": [
        ("identifier", "text", "NO"),
        ("expires", "timestamp with time zone", "NO"),
        ("token", "text", "NO"),
    ],
    "accounts": [
        ("id", "integer", "NO"),
        ("userId", "integer", "NO"),
        ("type", "character varying", "NO"),
        ("provider", "character varying", "NO"),
        ("providerAccountId", "character varying", "NO"),
        ("refresh_token", "text", "YES"),
        ("access_token", "text", "YES"),
        ("expires_at", "bigint", "YES"),
        ("id_token", "text", "YES"),
        ("scope", "text", "YES"),
        ("session_state", "text", "YES"),
        ("token_type", "text", "YES"),
    ],
    "sessions": [
        ("id", "integer", "NO"),
        ("userId", "integer", "NO"),
        ("expires", "timestamp with time zone", "NO"),
        ("sessionToken", "character varying", "NO"),
    ],
    "users": [
        ("id", "integer", "NO"),
        ("name", "character varying", "YES"),
        ("email", "character varying", "YES"),
        ("emailVerified", "timestamp with time zone", "YES"),
        ("image", "text", "YES"),
    ],
}


def columns(conn, schema: str) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    rows = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s ORDER BY table_name, ordinal_position",
        (schema,),
    )
    for table, column, dtype, nullable in rows:
        out.setdefault(table, []).append((column, dtype, nullable))
    return out


@pytest.fixture
def fresh_schema():
    dsn = require_postgres()
    import psycopg

    schema = unique_name("authsession_cli")
    try:
        yield dsn, schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_db_init_creates_exactly_the_pg_adapter_tables_idempotently(fresh_schema, capsys) -> None:
    import psycopg

    dsn, schema = fresh_schema
    assert main(["db", "init", "--dsn", dsn, "--schema", schema]) == 0
    assert main(["db", "init", "--dsn", dsn, "--schema", schema]) == 0  # again: no error
    assert f"schema {schema}" in capsys.readouterr().out
    with psycopg.connect(dsn) as conn:
        assert columns(conn, schema) == PG_ADAPTER_SCHEMA


def test_db_init_print_needs_no_database(capsys) -> None:
    assert main(["db", "init", "--print", "--schema", "auth"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('CREATE SCHEMA IF NOT EXISTS "auth";\nSET search_path TO "auth";')
    assert out.endswith(schema_sql("postgres"))
    assert "CREATE TABLE IF NOT EXISTS sessions" in out


def test_db_init_without_a_dsn_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["db", "init"]) == 2
    assert "--dsn" in capsys.readouterr().err


def test_db_init_unreachable_server_names_it_without_the_password(capsys) -> None:
    assert main(["db", "init", "--dsn", "postgresql://u:hunter2@127.0.0.1:1/x"]) == 1
    err = capsys.readouterr().err
    assert "127.0.0.1:1/x" in err and "hunter2" not in err


def test_render_schema_without_options_is_the_shipped_file() -> None:
    assert render_schema() == schema_sql("postgres")


async def test_custom_table_names_and_create_tables(fresh_schema) -> None:
    import psycopg

    dsn, schema = fresh_schema
    adapter = PostgresAdapter(
        dsn,
        schema=schema,
        users_table="App Users",
        accounts_table="app_accounts",
        sessions_table="app_sessions",
        verification_tokens_table="app_tokens",
    )
    try:
        await adapter.create_tables()
        await adapter.create_tables()
        user = await adapter.create_user({"name": "Custom", "email": "c@example.com"})
        expires = datetime.now(timezone.utc) + timedelta(hours=1)
        await adapter.create_session(session_token="custom-t", user_id=user["id"], expires=expires)
        found = await adapter.get_session_and_user("custom-t")
        assert found is not None and found["user"]["name"] == "Custom"
        later = await adapter.update_session(
            session_token="custom-t", expires=expires + timedelta(days=1)
        )
        assert later is not None and later["expires"] > expires
        await adapter.link_account(
            {"userId": user["id"], "type": "oauth", "provider": "p", "providerAccountId": "1"}
        )
        assert (await adapter.get_user_by_account(provider="p", provider_account_id="1"))[
            "id"
        ] == user["id"]
        await adapter.create_verification_token(identifier="i", token="t", expires=expires)
        assert await adapter.use_verification_token(identifier="i", token="t") is not None
    finally:
        await adapter.aclose()
    with psycopg.connect(dsn) as conn:
        tables = set(columns(conn, schema))
    assert tables == {"App Users", "app_accounts", "app_sessions", "app_tokens"}


async def test_postgres_reads_rows_an_auth_js_app_wrote_with_plain_sql(pg_schema) -> None:
    """Rows as @auth/pg-adapter writes them (integer ids, timestamptz in any zone)."""
    import psycopg

    dsn, schema = pg_schema
    with psycopg.connect(dsn) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        uid = conn.execute(
            "INSERT INTO users (name, email, \"emailVerified\") VALUES ('JS', 'js@example.com', "
            "'2030-01-02 03:04:05.678+05') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            'INSERT INTO sessions ("userId", expires, "sessionToken") '
            "VALUES (%s, '2031-06-07 08:09:10.123-07', 'js-token')",
            (uid,),
        )
    adapter = PostgresAdapter(dsn, schema=schema)
    try:
        found = await adapter.get_session_and_user("js-token")
    finally:
        await adapter.aclose()
    assert found is not None
    assert found["session"]["userId"] == str(uid) == found["user"]["id"]
    assert found["session"]["expires"] == datetime(
        2031, 6, 7, 15, 9, 10, 123000, tzinfo=timezone.utc
    )
    assert found["user"]["emailVerified"] == datetime(
        2030, 1, 1, 22, 4, 5, 678000, tzinfo=timezone.utc
    )


# --------------------------------------------------------------------------- #
# SQLite
# --------------------------------------------------------------------------- #


def test_sqlite_tables_use_the_auth_js_names(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "names.db"
    asyncio.run(SQLiteAdapter(path).get_user("x"))  # tables are created on first use
    with sqlite3.connect(path) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        session_cols = [row[1] for row in conn.execute("PRAGMA table_info(sessions)")]
        user_cols = [row[1] for row in conn.execute("PRAGMA table_info(users)")]
    assert {"users", "accounts", "sessions", "verification_token"} <= tables
    assert session_cols == ["id", "userId", "expires", "sessionToken"]
    assert user_cols == ["id", "name", "email", "emailVerified", "image"]


async def test_sqlite_file_keeps_data_across_adapters_and_threads(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    first = SQLiteAdapter(path)
    user = await first.create_user({"name": "Kept", "email": "k@example.com"})
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    await first.create_session(session_token="kept", user_id=user["id"], expires=expires)
    await first.aclose()

    second = SQLiteAdapter(str(path))
    seen: list[object] = []

    def read_in_thread() -> None:
        import asyncio

        seen.append(asyncio.run(second.get_session_and_user("kept")))

    threads = [threading.Thread(target=read_in_thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    await second.aclose()
    assert len(seen) == 3 and all(s is not None and s["user"]["name"] == "Kept" for s in seen)
    with sqlite3.connect(path) as conn:
        stored = conn.execute(
            'SELECT expires FROM sessions WHERE "sessionToken" = ?', ("kept",)
        ).fetchone()[0]
    # ISO 8601 UTC with milliseconds, what JavaScript's toISOString() writes.
    assert stored == expires.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expires.microsecond // 1000:03d}Z"


async def test_sqlite_reads_epoch_millisecond_rows_from_prisma_or_drizzle(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    adapter = SQLiteAdapter(path)
    await adapter.get_user("warm-up")  # create the tables
    ms = 1_900_000_000_123
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO users (id, name, \"emailVerified\") VALUES ('u1', 'P', ?)", (ms,))
        conn.execute(
            "INSERT INTO sessions (\"userId\", expires, \"sessionToken\") VALUES ('u1', ?, 'p-t')",
            (ms,),
        )
    found = await adapter.get_session_and_user("p-t")
    expected = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    assert found is not None and found["session"]["expires"] == expected
    assert found["user"]["emailVerified"] == expected
    # Sliding compares times, not text: an earlier ISO value does not win.
    same = await adapter.update_session(session_token="p-t", expires=expected - timedelta(days=1))
    assert same is not None and same["expires"] == expected
    await adapter.aclose()


def test_importing_adapters_imports_neither_psycopg_nor_redis() -> None:
    code = (
        "import sys, authsession, authsession.adapters\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool', 'redis'))\n"
        "assert not bad, bad\n"
        "authsession.adapters.SQLiteAdapter(); authsession.adapters.MemoryAdapter()\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('psycopg', 'redis')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
