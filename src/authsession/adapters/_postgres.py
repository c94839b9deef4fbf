"""``PostgresAdapter``: the ``@auth/pg-adapter`` schema over psycopg 3 (async).

psycopg and psycopg-pool are imported when an adapter is constructed, never at
package import (extra ``authsession[postgres]``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ._interface import AdapterError, AdapterUnavailable, Record
from ._perloop import PerLoop
from ._records import (
    ACCOUNT_FIELDS,
    account_record,
    canonical,
    extra_user_id,
    session_record,
    user_from_row,
    user_record,
    utc,
)
from ._schema import schema_sql

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg.rows import DictRow
    from psycopg.sql import Composable, Composed
    from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger("authsession.adapters")

_USER_COLUMNS = ("name", "email", "emailVerified", "image")
_S_USER = "__authsession_session_user"
_S_EXPIRES = "__authsession_session_expires"

#: The table names of the @auth/pg-adapter schema, by role.
DEFAULT_TABLES = {
    "users": "users",
    "accounts": "accounts",
    "sessions": "sessions",
    "verification_token": "verification_token",
}


def _import_psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - checked here so the error names the extra
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "PostgresAdapter needs psycopg 3 and psycopg-pool: pip install 'authsession[postgres]'"
        ) from exc
    return psycopg


def check_dsn(dsn: str, owner: str = "PostgresAdapter") -> None:
    """Raise :class:`ConfigurationError` unless libpq can parse *dsn*.

    Parsing up front matters for secrecy as much as for early errors: libpq's
    parse errors quote the offending part of the string, which is often the
    password (an unescaped ``%`` in it), and psycopg-pool logs every failed
    connection attempt at WARNING. The message here keeps only the reason's
    words before the first quote, and the original error is not chained.
    """
    if not isinstance(dsn, str):
        raise ConfigurationError(f"{owner}: dsn must be a string, got {type(dsn).__name__}")
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(dsn)
    except Exception as exc:
        raise ConfigurationError(
            f"{owner}: the dsn is not a valid PostgreSQL connection string "
            f"({_without_dsn(str(exc), dsn) or type(exc).__name__}; parts of the dsn are "
            "not shown as they may hold a password). In a URL, percent-encode special "
            "characters of the password (% as %25, @ as %40, : as %3A, / as %2F), and use "
            "only libpq's parameter names after '?'"
        ) from None


def _without_dsn(message: str, dsn: str) -> str:
    """libpq's parse error with every word that comes from *dsn* replaced by ``...``.

    libpq quotes the piece it choked on, which is often (part of) the
    password; a word found anywhere in the DSN is dropped, so whatever it
    quoted goes, and libpq's own words stay.
    """
    lines = message.strip().splitlines()
    words = []
    for word in (lines[0] if lines else "").split():
        core = word.strip("\"':,.()")
        words.append('"..."' if core and core in dsn else word)
    return " ".join(words)


def describe_dsn(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, for messages: never the password."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(dsn)
    except Exception:  # check_dsn reports it (adapters check at construction)
        return "<unparsable dsn>"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or 5432
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, double-quoted (for DDL text shown to people too)."""
    return '"' + name.replace('"', '""') + '"'


def render_schema(schema: str | None = None, tables: Mapping[str, str] | None = None) -> str:
    """The shipped ``postgres.sql`` for *schema* and custom table names.

    With a schema the script first creates it (``IF NOT EXISTS``) and sets the
    ``search_path`` of the session running the script to it.
    """
    names = {**DEFAULT_TABLES, **(tables or {})}
    text = schema_sql("postgres")

    def table(match: re.Match[str]) -> str:
        old = match.group(2)
        new = names.get(old, old)
        return f"{match.group(1)} {new if new == old else quote_ident(new)}"

    def index(match: re.Match[str]) -> str:
        name, old = match.group(1), match.group(2)
        new = names.get(old, old)
        if new == old:
            return match.group(0)
        suffix = name[len(old) :] if name.startswith(old) else "_" + name
        return f"CREATE INDEX IF NOT EXISTS {quote_ident(new + suffix)} ON {quote_ident(new)}"

    text = re.sub(r"CREATE INDEX IF NOT EXISTS (\w+) ON (\w+)", index, text)
    text = re.sub(r"(CREATE TABLE IF NOT EXISTS) (\w+)", table, text)
    if schema:
        head = (
            f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)};\n"
            f"SET search_path TO {quote_ident(schema)};\n\n"
        )
        text = head + text
    return text


def init_database(
    dsn: str, schema: str | None = None, tables: Mapping[str, str] | None = None
) -> str:
    """Run :func:`render_schema` on *dsn* in one transaction; where it ran, for messages.

    Raises :class:`AdapterUnavailable` when the server cannot be reached and
    :class:`AdapterError` when the script fails (the message never holds the
    DSN's password).
    """
    psycopg = _import_psycopg()
    check_dsn(dsn, "init_database")
    where = describe_dsn(dsn) + (f" (schema {schema})" if schema else "")
    try:
        with psycopg.connect(dsn) as conn:
            conn.execute(render_schema(schema, tables))
    except psycopg.OperationalError as exc:
        raise AdapterUnavailable(f"cannot reach PostgreSQL at {describe_dsn(dsn)}: {exc}") from exc
    except psycopg.Error as exc:
        raise AdapterError(f"creating the Auth.js tables in {where} failed: {exc}") from exc
    return where


class PostgresAdapter:
    """The Auth.js adapter on PostgreSQL, sharing the tables ``@auth/pg-adapter`` uses.

    ``PostgresAdapter(dsn)`` opens a ``psycopg_pool.AsyncConnectionPool`` on
    first use (one per event loop: pools are loop-bound, and the sync bridge
    runs on its own loop) and ``aclose()`` closes it. A DSN libpq cannot
    parse is a :class:`ConfigurationError` here, which never quotes it. With
    the server unreachable, concurrent calls share one connection attempt
    (one ``timeout``), and after a failed one calls fail at once with
    :class:`AdapterUnavailable` for a backoff (1 s, doubling to 10 s).

    Pass ``pool=`` to use a pool you own instead (it is then never opened or
    closed here). That pool belongs to the loop that opened it, so the
    database strategy calls such an adapter on the caller's loop
    (``bound_to_caller_loop``): the async API only.

    The schema is exactly ``@auth/pg-adapter``'s (``schema/postgres.sql``;
    apply it with ``authsession db init --dsn DSN`` or :meth:`create_tables`):
    ``users``/``accounts``/``sessions`` with ``SERIAL`` ids, so ids are
    assigned by the database (a given ``"id"`` is ignored, as in Auth.js) and
    come back as strings. Table names and a schema are configurable; every
    identifier goes through ``psycopg.sql.Identifier`` and every value is a
    query parameter.

    Semantics the database strategy relies on (see :class:`Adapter`):
    ``get_session_and_user`` returns expired sessions too; ``update_session``
    is one ``UPDATE ... SET expires = GREATEST(expires, $new) WHERE
    "sessionToken" = $t`` -- it never creates a row a sign-out deleted, and row
    locking makes concurrent slides keep the latest expiry; ``delete_session``
    of a missing token is a no-op. A server that is down or drops connections
    raises :class:`AdapterUnavailable`; the pool checks connections before
    handing them out, so the call after a server restart reconnects
    (``check_connections=False`` saves that round trip -- about 0.1 ms on
    loopback -- at the price of one failed call per dead pooled connection).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        schema: str | None = None,
        users_table: str = "users",
        accounts_table: str = "accounts",
        sessions_table: str = "sessions",
        verification_tokens_table: str = "verification_token",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
        check_connections: bool = True,
    ) -> None:
        psycopg = _import_psycopg()
        if dsn is None and pool is None:
            raise ConfigurationError(
                "PostgresAdapter needs a dsn (e.g. 'postgresql://user@host:5432/db') or pool="
            )
        if dsn is not None:
            check_dsn(dsn)
        self._psycopg = psycopg
        self._sql = psycopg.sql
        self._dsn = dsn
        self._own_pool = pool
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._check = check_connections
        self.schema = schema
        self.tables = {
            "users": users_table,
            "accounts": accounts_table,
            "sessions": sessions_table,
            "verification_token": verification_tokens_table,
        }
        self._where = describe_dsn(dsn) if dsn is not None else "<pool>"
        self._pools: PerLoop[AsyncConnectionPool[Any]] = PerLoop(
            self._open_pool,
            self._close_pool,
            describe=f"PostgresAdapter: PostgreSQL at {self._where}",
        )

    @property
    def bound_to_caller_loop(self) -> bool:
        """True with ``pool=``: that pool belongs to the loop that opened it, so the
        database strategy calls this adapter on the caller's loop (async API only)."""
        return self._own_pool is not None

    # -- plumbing ----------------------------------------------------------
    def _t(self, role: str) -> Composable:
        name = self.tables[role]
        ident: Composable = (
            self._sql.Identifier(self.schema, name) if self.schema else self._sql.Identifier(name)
        )
        return ident

    def _q(self, template: str, **extra: Composable) -> Composed:
        """*template* with ``{users}``, ``{accounts}``, ``{sessions}``, ``{tokens}`` filled."""
        composed: Composed = self._sql.SQL(template).format(
            users=self._t("users"),
            accounts=self._t("accounts"),
            sessions=self._t("sessions"),
            tokens=self._t("verification_token"),
            **extra,
        )
        return composed

    async def _open_pool(self) -> AsyncConnectionPool[Any]:
        from psycopg_pool import AsyncConnectionPool

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._dsn or "",
            min_size=self._min_size,
            max_size=self._max_size,
            timeout=self._timeout,
            open=False,
            check=AsyncConnectionPool.check_connection if self._check else None,
            name=f"authsession-{self._where}",
        )
        # Wait for the first connection: an unreachable server then fails this
        # call (and the pool is closed again, its retry workers stopped) instead
        # of leaving a pool that keeps reconnecting in the background.
        try:
            await pool.open(wait=True, timeout=self._timeout)
        except BaseException:
            await pool.close()
            raise
        return pool

    @staticmethod
    async def _close_pool(pool: AsyncConnectionPool[Any]) -> None:
        await pool.close()

    async def _pool(self) -> AsyncConnectionPool[Any]:
        if self._own_pool is not None:
            return self._own_pool
        return await self._pools.get()

    def _failure(self, what: str, exc: Exception) -> AdapterError:
        psycopg = self._psycopg
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            logger.debug("PostgresAdapter(%s).%s: server unavailable: %s", self._where, what, exc)
            return AdapterUnavailable(
                f"PostgresAdapter: PostgreSQL at {self._where} is unavailable during {what}: "
                f"{type(exc).__name__}: {exc}"
            )
        # The primary message only: a DETAIL line may quote row values (tokens).
        diag = getattr(exc, "diag", None)
        text = (diag.message_primary if diag is not None else None) or str(exc)
        logger.debug("PostgresAdapter(%s).%s failed: %s", self._where, what, text)
        return AdapterError(
            f"PostgresAdapter({self._where}).{what} failed: {type(exc).__name__}: {text}"
        )

    async def _one(
        self, what: str, query: Composed, params: Any = None, *, bad_input_is_none: bool = False
    ) -> DictRow | None:
        """Run one statement in its own transaction; its first row, or None."""
        return (await self._script(what, [(query, params)], bad_input_is_none=bad_input_is_none))[
            -1
        ]

    async def _script(
        self,
        what: str,
        statements: list[tuple[Composed, Any]],
        *,
        bad_input_is_none: bool = False,
    ) -> list[DictRow | None]:
        """Run *statements* in one transaction; the first row of each (or None)."""
        from psycopg.rows import dict_row

        psycopg = self._psycopg
        rows: list[DictRow | None] = []
        try:
            pool = await self._pool()
            conn: AsyncConnection[Any]
            async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                for query, params in statements:
                    await cur.execute(query, params)
                    rows.append(await cur.fetchone() if cur.description else None)
        except psycopg.DataError as exc:
            # An id that is not an integer for the SERIAL schema, say: no such row.
            if bad_input_is_none:
                logger.debug("PostgresAdapter.%s: input rejected by the server: %s", what, exc)
                return [None] * len(statements)
            raise self._failure(what, exc) from exc
        except psycopg.Error as exc:
            raise self._failure(what, exc) from exc
        return rows

    @staticmethod
    def _user(row: Mapping[str, Any] | None) -> Record | None:
        return user_from_row(row)

    @staticmethod
    def _account(row: Mapping[str, Any]) -> Record:
        data = dict(row)
        data.pop("id", None)
        return account_record(data)

    # -- schema ------------------------------------------------------------
    def schema_script(self) -> str:
        """The DDL :meth:`create_tables` runs, for this adapter's schema and table names."""
        return render_schema(self.schema, self.tables)

    async def create_tables(self) -> None:
        """Create the schema (if set) and the Auth.js tables unless they exist."""
        try:
            pool = await self._pool()
            async with pool.connection() as conn:
                await conn.execute(self._sql.SQL(self.schema_script()))
        except self._psycopg.Error as exc:
            raise self._failure("create_tables", exc) from exc

    # -- users -------------------------------------------------------------
    async def create_user(self, user: Record) -> Record:
        record = user_record(user)
        row = await self._one(
            "create_user",
            self._q(
                'INSERT INTO {users} (name, email, "emailVerified", image) '
                "VALUES (%s, %s, %s, %s) RETURNING *"
            ),
            (record["name"], record["email"], record["emailVerified"], record["image"]),
        )
        stored = self._user(row)
        if stored is None:  # pragma: no cover - INSERT ... RETURNING always returns
            raise AdapterError("PostgresAdapter.create_user: the INSERT returned no row")
        return stored

    async def get_user(self, id: str) -> Record | None:
        row = await self._one(
            "get_user",
            self._q("SELECT * FROM {users} WHERE id = %s"),
            (str(id),),
            bad_input_is_none=True,
        )
        return self._user(row)

    async def get_user_by_email(self, email: str) -> Record | None:
        row = await self._one(
            "get_user_by_email",
            self._q("SELECT * FROM {users} WHERE email = %s LIMIT 1"),
            (email,),
        )
        return self._user(row)

    async def get_user_by_account(
        self, *, provider: str, provider_account_id: str
    ) -> Record | None:
        row = await self._one(
            "get_user_by_account",
            self._q(
                'SELECT u.* FROM {users} u JOIN {accounts} a ON u.id = a."userId" '
                'WHERE a.provider = %s AND a."providerAccountId" = %s LIMIT 1'
            ),
            (provider, provider_account_id),
        )
        return self._user(row)

    async def update_user(self, user: Record) -> Record | None:
        changes = canonical(user)
        if changes.get("id") is None:
            raise AdapterError("PostgresAdapter.update_user: the user has no 'id'")
        uid = str(changes["id"])
        columns = [c for c in _USER_COLUMNS if c in changes]
        if not columns:
            return await self.get_user(uid)
        values = [
            utc(changes[c]) if c == "emailVerified" and changes[c] is not None else changes[c]
            for c in columns
        ]
        assignments = self._sql.SQL(", ").join(
            self._sql.SQL("{} = %s").format(self._sql.Identifier(c)) for c in columns
        )
        row = await self._one(
            "update_user",
            self._q(
                "UPDATE {users} SET {assignments} WHERE id = %s RETURNING *",
                assignments=assignments,
            ),
            (*values, uid),
            bad_input_is_none=True,
        )
        return self._user(row)

    async def delete_user(self, id: str) -> None:
        uid = (str(id),)
        await self._script(
            "delete_user",
            [
                (self._q('DELETE FROM {sessions} WHERE "userId" = %s'), uid),
                (self._q('DELETE FROM {accounts} WHERE "userId" = %s'), uid),
                (self._q("DELETE FROM {users} WHERE id = %s"), uid),
            ],
            bad_input_is_none=True,
        )

    # -- accounts ----------------------------------------------------------
    async def link_account(self, account: Record) -> Record:
        record = account_record(account)
        if not record["provider"] or not record["providerAccountId"] or not record["userId"]:
            raise AdapterError(
                "PostgresAdapter.link_account: the account needs provider, providerAccountId "
                "and userId"
            )
        columns = self._sql.SQL(", ").join(self._sql.Identifier(c) for c in ACCOUNT_FIELDS)
        marks = self._sql.SQL(", ").join(self._sql.Placeholder() for _ in ACCOUNT_FIELDS)
        key = (record["provider"], record["providerAccountId"])
        # One account per (provider, providerAccountId): linking again replaces it.
        rows = await self._script(
            "link_account",
            [
                (
                    self._q(
                        'DELETE FROM {accounts} WHERE provider = %s AND "providerAccountId" = %s'
                    ),
                    key,
                ),
                (
                    self._q(
                        "INSERT INTO {accounts} ({columns}) VALUES ({marks}) RETURNING *",
                        columns=columns,
                        marks=marks,
                    ),
                    tuple(record[c] for c in ACCOUNT_FIELDS),
                ),
            ],
        )
        row = rows[-1]
        return self._account(row) if row is not None else record

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Record | None:
        row = await self._one(
            "unlink_account",
            self._q(
                'DELETE FROM {accounts} WHERE provider = %s AND "providerAccountId" = %s '
                "RETURNING *"
            ),
            (provider, provider_account_id),
        )
        return self._account(row) if row is not None else None

    # -- sessions ----------------------------------------------------------
    async def create_session(
        self, *, session_token: str, user_id: str, expires: datetime
    ) -> Record:
        record = session_record(session_token, user_id, expires)
        row = await self._one(
            "create_session",
            self._q(
                'INSERT INTO {sessions} ("userId", expires, "sessionToken") VALUES (%s, %s, %s) '
                'RETURNING "userId", expires'
            ),
            (record["userId"], record["expires"], session_token),
        )
        if row is None:  # pragma: no cover - INSERT ... RETURNING always returns
            raise AdapterError("PostgresAdapter.create_session: the INSERT returned no row")
        return session_record(session_token, row["userId"], utc(row["expires"]))

    async def get_session_and_user(self, session_token: str) -> Record | None:
        row = await self._one(
            "get_session_and_user",
            self._q(
                'SELECT s."userId" AS {s_user}, s.expires AS {s_expires}, u.* '
                'FROM {sessions} s JOIN {users} u ON u.id = s."userId" '
                'WHERE s."sessionToken" = %s LIMIT 1',
                s_user=self._sql.Identifier(_S_USER),
                s_expires=self._sql.Identifier(_S_EXPIRES),
            ),
            (session_token,),
            bad_input_is_none=True,  # a token no row can hold (a NUL byte): unknown
        )
        if row is None:
            return None
        data = dict(row)
        session = session_record(session_token, data.pop(_S_USER), utc(data.pop(_S_EXPIRES)))
        user = self._user(data)
        return {"session": session, "user": user}

    async def update_session(
        self, *, session_token: str, expires: datetime | None = None, **extra: Any
    ) -> Record | None:
        # One UPDATE: a deleted row stays deleted (no upsert), and under row
        # locking a concurrent slide re-evaluates GREATEST against the newest
        # row version, so the latest expiry always survives.
        wanted = utc(expires) if expires is not None else None
        row = await self._one(
            "update_session",
            self._q(
                "UPDATE {sessions} SET "
                "expires = GREATEST(expires, COALESCE(%(expires)s::timestamptz, expires)), "
                '"userId" = COALESCE(%(user_id)s, "userId") '
                'WHERE "sessionToken" = %(token)s RETURNING "userId", expires'
            ),
            {"expires": wanted, "user_id": extra_user_id(extra), "token": session_token},
        )
        if row is None:
            return None
        return session_record(session_token, row["userId"], utc(row["expires"]))

    async def delete_session(self, session_token: str) -> None:
        await self._one(
            "delete_session",
            self._q('DELETE FROM {sessions} WHERE "sessionToken" = %s'),
            (session_token,),
            bad_input_is_none=True,
        )

    # -- verification tokens -----------------------------------------------
    async def create_verification_token(
        self, *, identifier: str, token: str, expires: datetime
    ) -> Record:
        when = utc(expires)
        await self._one(
            "create_verification_token",
            self._q(
                "INSERT INTO {tokens} (identifier, expires, token) VALUES (%s, %s, %s) "
                "ON CONFLICT (identifier, token) DO UPDATE SET expires = EXCLUDED.expires"
            ),
            (identifier, when, token),
        )
        return {"identifier": identifier, "token": token, "expires": when}

    async def use_verification_token(self, *, identifier: str, token: str) -> Record | None:
        row = await self._one(
            "use_verification_token",
            self._q(
                "DELETE FROM {tokens} WHERE identifier = %s AND token = %s "
                "RETURNING identifier, expires, token"
            ),
            (identifier, token),
        )
        if row is None:
            return None
        return {
            "identifier": row["identifier"],
            "token": row["token"],
            "expires": utc(row["expires"]),
        }

    async def aclose(self) -> None:
        """Close the pools this adapter opened (a ``pool=`` you passed stays open)."""
        await self._pools.aclose()

    def __repr__(self) -> str:
        return f"PostgresAdapter({self._where!r}, schema={self.schema!r})"
