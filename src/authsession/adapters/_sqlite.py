"""``SQLiteAdapter``: the Auth.js schema on the standard library's ``sqlite3``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from ._interface import AdapterError, Record
from ._records import (
    ACCOUNT_FIELDS,
    account_record,
    canonical,
    extra_user_id,
    iso,
    new_id,
    session_record,
    stored_time,
    user_from_row,
    user_record,
    utc,
)
from ._schema import schema_sql

logger = logging.getLogger("authsession.adapters")

T = TypeVar("T")

_USER_COLUMNS = ("name", "email", "emailVerified", "image")
# Aliases for the session columns of the session+user join, so they cannot
# collide with a users column of the same name.
_S_USER = "__authsession_session_user"
_S_EXPIRES = "__authsession_session_expires"


def _q(name: str) -> str:
    """A double-quoted SQL identifier (only ever called with the fixed names above)."""
    return '"' + name.replace('"', '""') + '"'


class SQLiteAdapter:
    """The Auth.js adapter on an SQLite database: the embedded default.

    ``path`` is a file path or ``":memory:"`` (the default: a private database
    that lives as long as this adapter). Tables use the Auth.js names
    (``users``, ``accounts``, ``sessions``, ``verification_token``) and quoted
    camelCase columns (``"sessionToken"``, ``"userId"``, ``"emailVerified"``);
    they are created on first use (``schema/sqlite.sql``). User ids are text: a
    uuid unless the caller gives one. Datetimes are stored as ISO 8601 UTC
    text with milliseconds (``2026-11-22T18:34:42.123Z``, what JavaScript's
    ``toISOString`` writes); epoch-millisecond integers written by Prisma or
    Drizzle are read too.

    One connection serves the adapter, guarded by a lock, and every call runs
    in a worker thread (``asyncio.to_thread``), so the event loop never blocks
    on disk and the adapter can be shared by threads and event loops (the sync
    bridge's loop thread included). Multi-statement changes run in
    ``BEGIN IMMEDIATE`` transactions, so they are atomic against other
    processes using the same file, too.

    Semantics the database strategy relies on (see :class:`Adapter`):
    ``get_session_and_user`` returns expired sessions too (the strategy decides
    and deletes); ``update_session`` never creates a session and never moves
    ``expires`` backwards; ``delete_session`` of a missing token is a no-op.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # -- plumbing ----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.row_factory = sqlite3.Row
            if self.path != ":memory:" and not self.path.startswith("file::memory:"):
                # WAL lets readers in other processes proceed during a write.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema_sql("sqlite"))
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                return fn(self._conn)
            except sqlite3.Error as exc:
                logger.debug("SQLiteAdapter(%r).%s failed: %s", self.path, what, exc)
                raise AdapterError(f"SQLiteAdapter({self.path!r}).{what} failed: {exc}") from exc

    async def _call(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._run, what, fn)

    @staticmethod
    @contextlib.contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _user(row: sqlite3.Row | Mapping[str, Any] | None) -> Record | None:
        return user_from_row(row)

    @staticmethod
    def _session(token: str, user_id: Any, expires: Any) -> Record:
        when = stored_time(expires)
        if when is None:  # NOT NULL in the schema; a foreign writer broke it
            raise AdapterError("SQLiteAdapter: a session row has no expires")
        return session_record(token, user_id, when)

    # -- users -------------------------------------------------------------
    async def create_user(self, user: Record) -> Record:
        record = user_record(user)
        if record["id"] is None:
            record["id"] = new_id()
        verified = record["emailVerified"]
        params = (
            record["id"],
            record["name"],
            record["email"],
            iso(verified) if verified is not None else None,
            record["image"],
        )

        def run(conn: sqlite3.Connection) -> Record | None:
            conn.execute(
                'INSERT INTO users (id, name, email, "emailVerified", image) '
                "VALUES (?, ?, ?, ?, ?)",
                params,
            )
            return self._user(
                conn.execute("SELECT * FROM users WHERE id = ?", (params[0],)).fetchone()
            )

        stored = await self._call("create_user", run)
        assert stored is not None
        return stored

    async def get_user(self, id: str) -> Record | None:
        uid = str(id)
        return await self._call(
            "get_user",
            lambda conn: self._user(
                conn.execute("SELECT * FROM users WHERE id = ?", (uid,)).fetchone()
            ),
        )

    async def get_user_by_email(self, email: str) -> Record | None:
        return await self._call(
            "get_user_by_email",
            lambda conn: self._user(
                conn.execute("SELECT * FROM users WHERE email = ? LIMIT 1", (email,)).fetchone()
            ),
        )

    async def get_user_by_account(
        self, *, provider: str, provider_account_id: str
    ) -> Record | None:
        sql = (
            'SELECT u.* FROM users u JOIN accounts a ON u.id = a."userId" '
            'WHERE a.provider = ? AND a."providerAccountId" = ? LIMIT 1'
        )
        params = (provider, provider_account_id)
        return await self._call(
            "get_user_by_account",
            lambda conn: self._user(conn.execute(sql, params).fetchone()),
        )

    async def update_user(self, user: Record) -> Record | None:
        changes = canonical(user)
        if changes.get("id") is None:
            raise AdapterError("SQLiteAdapter.update_user: the user has no 'id'")
        uid = str(changes["id"])
        columns = [c for c in _USER_COLUMNS if c in changes]
        values: list[Any] = []
        for column in columns:
            value = changes[column]
            if column == "emailVerified" and value is not None:
                value = iso(utc(value))
            values.append(value)

        def run(conn: sqlite3.Connection) -> Record | None:
            if columns:
                assignments = ", ".join(f"{_q(c)} = ?" for c in columns)
                conn.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*values, uid))  # noqa: S608 - fixed column names
            return self._user(conn.execute("SELECT * FROM users WHERE id = ?", (uid,)).fetchone())

        return await self._call("update_user", run)

    async def delete_user(self, id: str) -> None:
        uid = str(id)

        def run(conn: sqlite3.Connection) -> None:
            with self._transaction(conn):
                conn.execute('DELETE FROM sessions WHERE "userId" = ?', (uid,))
                conn.execute('DELETE FROM accounts WHERE "userId" = ?', (uid,))
                conn.execute("DELETE FROM users WHERE id = ?", (uid,))

        await self._call("delete_user", run)

    # -- accounts ----------------------------------------------------------
    async def link_account(self, account: Record) -> Record:
        record = account_record(account)
        if not record["provider"] or not record["providerAccountId"] or not record["userId"]:
            raise AdapterError(
                "SQLiteAdapter.link_account: the account needs provider, providerAccountId "
                "and userId"
            )
        columns = ", ".join(_q(c) for c in ACCOUNT_FIELDS)
        marks = ", ".join("?" for _ in ACCOUNT_FIELDS)
        params = tuple(record[c] for c in ACCOUNT_FIELDS)
        # One account per (provider, providerAccountId): linking again replaces it.
        sql = f"INSERT OR REPLACE INTO accounts ({columns}) VALUES ({marks})"  # noqa: S608 - fixed column names

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(sql, params)

        await self._call("link_account", run)
        return record

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Record | None:
        params = (provider, provider_account_id)

        def run(conn: sqlite3.Connection) -> Record | None:
            with self._transaction(conn):
                row = conn.execute(
                    'SELECT * FROM accounts WHERE provider = ? AND "providerAccountId" = ?', params
                ).fetchone()
                if row is None:
                    return None
                conn.execute(
                    'DELETE FROM accounts WHERE provider = ? AND "providerAccountId" = ?', params
                )
            found = dict(row)
            found.pop("id", None)
            return account_record(found)

        return await self._call("unlink_account", run)

    # -- sessions ----------------------------------------------------------
    async def create_session(
        self, *, session_token: str, user_id: str, expires: datetime
    ) -> Record:
        record = session_record(session_token, user_id, expires)
        params = (record["userId"], iso(record["expires"]), session_token)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                'INSERT INTO sessions ("userId", expires, "sessionToken") VALUES (?, ?, ?)',
                params,
            )

        await self._call("create_session", run)
        return record

    async def get_session_and_user(self, session_token: str) -> Record | None:
        sql = (
            f'SELECT s."userId" AS {_q(_S_USER)}, s.expires AS {_q(_S_EXPIRES)}, u.* '  # noqa: S608
            'FROM sessions s JOIN users u ON u.id = s."userId" WHERE s."sessionToken" = ?'
        )

        def run(conn: sqlite3.Connection) -> Record | None:
            row = conn.execute(sql, (session_token,)).fetchone()
            if row is None:
                return None
            data = dict(row)
            session = self._session(session_token, data.pop(_S_USER), data.pop(_S_EXPIRES))
            return {"session": session, "user": self._user(data)}

        return await self._call("get_session_and_user", run)

    async def update_session(
        self, *, session_token: str, expires: datetime | None = None, **extra: Any
    ) -> Record | None:
        wanted = utc(expires) if expires is not None else None
        new_owner = extra_user_id(extra)

        def run(conn: sqlite3.Connection) -> Record | None:
            # Read and write under one write lock: a sign-out that deleted the
            # row wins (nothing is re-created), and a later expiry never loses
            # to an earlier one, whatever order concurrent slides commit in.
            with self._transaction(conn):
                row = conn.execute(
                    'SELECT "userId", expires FROM sessions WHERE "sessionToken" = ?',
                    (session_token,),
                ).fetchone()
                if row is None:
                    return None
                current = self._session(session_token, row["userId"], row["expires"])
                when = current["expires"]
                if wanted is not None and wanted > when:
                    when = wanted
                owner = new_owner if new_owner is not None else current["userId"]
                if when != current["expires"] or owner != current["userId"]:
                    conn.execute(
                        'UPDATE sessions SET expires = ?, "userId" = ? WHERE "sessionToken" = ?',
                        (iso(when), owner, session_token),
                    )
            return session_record(session_token, owner, when)

        return await self._call("update_session", run)

    async def delete_session(self, session_token: str) -> None:
        await self._call(
            "delete_session",
            lambda conn: conn.execute(
                'DELETE FROM sessions WHERE "sessionToken" = ?', (session_token,)
            ).close(),
        )

    # -- verification tokens -----------------------------------------------
    async def create_verification_token(
        self, *, identifier: str, token: str, expires: datetime
    ) -> Record:
        when = utc(expires)
        params = (identifier, iso(when), token)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO verification_token (identifier, expires, token) "
                "VALUES (?, ?, ?)",
                params,
            )

        await self._call("create_verification_token", run)
        return {"identifier": identifier, "token": token, "expires": when}

    async def use_verification_token(self, *, identifier: str, token: str) -> Record | None:
        params = (identifier, token)

        def run(conn: sqlite3.Connection) -> Record | None:
            with self._transaction(conn):
                row = conn.execute(
                    "SELECT identifier, expires, token FROM verification_token "
                    "WHERE identifier = ? AND token = ?",
                    params,
                ).fetchone()
                if row is None:
                    return None
                conn.execute(
                    "DELETE FROM verification_token WHERE identifier = ? AND token = ?", params
                )
            return {
                "identifier": row["identifier"],
                "token": row["token"],
                "expires": stored_time(row["expires"]),
            }

        return await self._call("use_verification_token", run)

    async def aclose(self) -> None:
        """Close the connection. A ``":memory:"`` database is gone after this; a
        file database reopens on the next call."""

        def close() -> None:
            with self._lock:
                conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

        await asyncio.to_thread(close)

    def __repr__(self) -> str:
        return f"SQLiteAdapter({self.path!r})"
