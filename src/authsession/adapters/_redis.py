"""``RedisAdapter``: the Auth.js adapter on Redis (redis-py asyncio).

redis is imported when an adapter is constructed, never at package import
(extra ``authsession[redis]``).

Key layout (``P`` = ``prefix``, ``"authsession:"`` by default), following
``@auth/upstash-redis-adapter`` with ``baseKeyPrefix = P``; values are JSON
with datetimes as ISO 8601 UTC strings (``...T...123Z``)::

    P user:<id>                                  user JSON
    P user:email:<email>                         user id
    P user:account:<provider>:<providerAccountId> account JSON
    P user:account-by-user-id:<id>               SET of account keys   (upstash: a string at
                                                 user:account:by-user-id:<id>)
    P user:session:<sessionToken>                session JSON {sessionToken, userId, expires},
                                                 expiring at `expires` (PXAT)
    P user:session-by-user-id:<id>               SET of session tokens (upstash: a string at
                                                 user:session:by-user-id:<id>)
    P user:token:<identifier>:<token>            verification token JSON, expiring at `expires`

The two per-user indexes live outside the ``user:session:`` and
``user:account:`` namespaces on purpose: a session token comes from a cookie,
and no token may name anything but a session (upstash's
``user:session:by-user-id:<id>`` is exactly what the token
``by-user-id:<id>`` would address).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from ._interface import AdapterError, AdapterUnavailable, Record
from ._perloop import PerLoop
from ._records import (
    account_record,
    canonical,
    epoch_ms,
    extra_user_id,
    iso,
    new_id,
    session_record,
    stored_time,
    user_record,
    utc,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("authsession.adapters")

# Extend (never shorten) and/or re-own a session, atomically; never create one.
# KEYS[1] session key. ARGV: [1] new expires ISO ('' = keep), [2] its epoch ms,
# [3] new user id ('' = keep), [4] by-user set prefix, [5] session token.
# Fixed-width ISO 8601 UTC strings order like the times they name.
_UPDATE_SESSION = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local s = cjson.decode(raw)
local changed = false
local extended = false
if ARGV[1] ~= '' and (type(s['expires']) ~= 'string' or ARGV[1] > s['expires']) then
  s['expires'] = ARGV[1]
  changed = true
  extended = true
end
if ARGV[3] ~= '' and ARGV[3] ~= tostring(s['userId']) then
  redis.call('SREM', ARGV[4] .. tostring(s['userId']), ARGV[5])
  redis.call('SADD', ARGV[4] .. ARGV[3], ARGV[5])
  s['userId'] = ARGV[3]
  changed = true
end
if not changed then return raw end
local out = cjson.encode(s)
if extended then
  redis.call('SET', KEYS[1], out, 'PXAT', ARGV[2])
else
  redis.call('SET', KEYS[1], out, 'KEEPTTL')
end
return out
"""


def _import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("RedisAdapter needs redis-py: pip install 'authsession[redis]'") from exc
    return redis


def describe_url(url: str) -> str:
    """``redis://host:port/db`` of a URL, for messages: never the password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 6379
    except ValueError:
        return "<unparsable url>"
    return f"{parts.scheme}://{host}:{port}{parts.path or ''}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"cannot store a {type(value).__name__} in Redis JSON")


def _text(value: str | bytes) -> str:
    """A reply as text, whether or not the client decodes responses."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), default=_json_default, ensure_ascii=False, separators=(",", ":"))


class RedisAdapter:
    """The Auth.js adapter on Redis.

    ``RedisAdapter(url)`` (``redis://``, ``rediss://``, ``unix://``) makes a
    ``redis.asyncio`` client on first use -- one per event loop, as its
    connections are loop-bound -- and ``aclose()`` closes it. Pass
    ``client=`` to use a client you own (it must decode responses to ``str``;
    it is never closed here); its connections belong to the loop that uses
    it, so the database strategy calls such an adapter on the caller's loop
    (``bound_to_caller_loop``): the async API only. All keys start with
    ``prefix``; the layout is in
    this module's docstring and ``docs/adapters.md``. ``timeout`` bounds
    connecting and each reply; a failed command is retried ``retries`` times
    after a short backoff (50 ms, capped at 500 ms).

    Semantics the database strategy relies on (see :class:`Adapter`): session
    keys expire with the session (``PXAT expires``), so an expired session is
    None here rather than an expired row; ``update_session`` is one Lua script
    that returns None for a missing key (a sign-out is never undone), keeps
    the later of the stored and the new ``expires`` and moves the key's
    expiry with it; ``delete_session`` of a missing token is a no-op. A server
    that is down raises :class:`AdapterUnavailable`; the next call reconnects.
    Verification tokens expire at their ``expires`` too.
    Multi-key scripts address keys they compute, so Redis Cluster is not
    supported.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "authsession:",
        client: Redis | None = None,
        timeout: float = 5.0,
        retries: int = 1,
    ) -> None:
        self._redis = _import_redis()
        if url is None and client is None:
            raise ConfigurationError(
                "RedisAdapter needs a url (e.g. 'redis://127.0.0.1:6379/0') or client="
            )
        self._url = url
        self._own_client = client
        self._timeout = timeout
        self._retries = retries
        self.prefix = prefix
        self._where = describe_url(url) if url is not None else "<client>"
        self._clients: PerLoop[Redis] = PerLoop(
            self._open_client, self._close_client, describe=f"RedisAdapter: Redis at {self._where}"
        )

    @property
    def bound_to_caller_loop(self) -> bool:
        """True with ``client=``: that client's connections belong to the loop that
        uses it, so the database strategy calls this adapter on the caller's
        loop (async API only)."""
        return self._own_client is not None

    # -- keys --------------------------------------------------------------
    def _user_key(self, uid: str) -> str:
        return f"{self.prefix}user:{uid}"

    def _email_key(self, email: str) -> str:
        return f"{self.prefix}user:email:{email}"

    def _account_key(self, provider: str, provider_account_id: str) -> str:
        return f"{self.prefix}user:account:{provider}:{provider_account_id}"

    def _accounts_of(self, uid: str) -> str:
        return f"{self.prefix}user:account-by-user-id:{uid}"

    def _session_key(self, token: str) -> str:
        return f"{self.prefix}user:session:{token}"

    def _sessions_prefix(self) -> str:
        return f"{self.prefix}user:session-by-user-id:"

    def _token_key(self, identifier: str, token: str) -> str:
        return f"{self.prefix}user:token:{identifier}:{token}"

    # -- plumbing ----------------------------------------------------------
    async def _open_client(self) -> Redis:
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        # redis-py's default retries with backoff up to seconds; a session read
        # would rather fail fast (the strategy treats it as "no session").
        client: Redis = self._redis.asyncio.Redis.from_url(
            self._url,
            decode_responses=True,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), self._retries),
        )
        return client

    @staticmethod
    async def _close_client(client: Redis) -> None:
        await client.aclose()

    async def _client(self) -> Redis:
        if self._own_client is not None:
            return self._own_client
        return await self._clients.get()

    def _failure(self, what: str, exc: Exception) -> AdapterError:
        errors = self._redis.exceptions
        if isinstance(exc, (errors.ConnectionError, errors.TimeoutError, OSError)):
            logger.debug("RedisAdapter(%s).%s: server unavailable: %s", self._where, what, exc)
            return AdapterUnavailable(
                f"RedisAdapter: Redis at {self._where} is unavailable during {what}: "
                f"{type(exc).__name__}: {exc}"
            )
        logger.debug("RedisAdapter(%s).%s failed: %s", self._where, what, exc)
        return AdapterError(
            f"RedisAdapter({self._where}).{what} failed: {type(exc).__name__}: {exc}"
        )

    def _errors(self) -> tuple[type[Exception], ...]:
        return (self._redis.exceptions.RedisError, OSError)

    @staticmethod
    def _user(raw: str | bytes | None) -> Record | None:
        if raw is None:
            return None
        data = json.loads(raw)
        data["emailVerified"] = stored_time(data.get("emailVerified"))
        return user_record(data)

    @staticmethod
    def _session(raw: str | bytes | None, token: str) -> Record | None:
        if raw is None:
            return None
        data = json.loads(raw)
        return session_record(token, data["userId"], utc(data["expires"]))

    # -- users -------------------------------------------------------------
    async def create_user(self, user: Record) -> Record:
        record = user_record(user)
        if record["id"] is None:
            record["id"] = new_id()
        try:
            client = await self._client()
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(self._user_key(record["id"]), _dumps(record))
                if record["email"] is not None:
                    pipe.set(self._email_key(record["email"]), record["id"])
                await pipe.execute()
        except self._errors() as exc:
            raise self._failure("create_user", exc) from exc
        return record

    async def get_user(self, id: str) -> Record | None:
        try:
            client = await self._client()
            raw = await client.get(self._user_key(str(id)))
        except self._errors() as exc:
            raise self._failure("get_user", exc) from exc
        return self._user(raw)

    async def get_user_by_email(self, email: str) -> Record | None:
        try:
            client = await self._client()
            uid = await client.get(self._email_key(email))
            raw = await client.get(self._user_key(_text(uid))) if uid is not None else None
        except self._errors() as exc:
            raise self._failure("get_user_by_email", exc) from exc
        return self._user(raw)

    async def get_user_by_account(
        self, *, provider: str, provider_account_id: str
    ) -> Record | None:
        try:
            client = await self._client()
            account = await client.get(self._account_key(provider, provider_account_id))
            if account is None:
                return None
            raw = await client.get(self._user_key(str(json.loads(account)["userId"])))
        except self._errors() as exc:
            raise self._failure("get_user_by_account", exc) from exc
        return self._user(raw)

    async def update_user(self, user: Record) -> Record | None:
        changes = canonical(user)
        if changes.get("id") is None:
            raise AdapterError("RedisAdapter.update_user: the user has no 'id'")
        uid = str(changes["id"])
        key = self._user_key(uid)
        try:
            client = await self._client()
            # Optimistic: WATCH the user, retry if someone else wrote it meanwhile.
            async with client.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(key)
                        stored = self._user(await pipe.get(key))
                        if stored is None:
                            await pipe.unwatch()  # type: ignore[no-untyped-call]
                            return None
                        merged = user_record({**stored, **changes, "id": uid})
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.set(key, _dumps(merged))
                        if stored["email"] != merged["email"]:
                            if stored["email"] is not None:
                                pipe.delete(self._email_key(stored["email"]))
                            if merged["email"] is not None:
                                pipe.set(self._email_key(merged["email"]), uid)
                        await pipe.execute()
                        return merged
                    except self._redis.exceptions.WatchError:
                        continue
        except self._errors() as exc:
            raise self._failure("update_user", exc) from exc

    async def delete_user(self, id: str) -> None:
        uid = str(id)
        try:
            client = await self._client()
            user = self._user(await client.get(self._user_key(uid)))
            accounts = await client.smembers(self._accounts_of(uid))
            tokens = await client.smembers(self._sessions_prefix() + uid)
            doomed = [self._user_key(uid), self._accounts_of(uid), self._sessions_prefix() + uid]
            doomed += [_text(key) for key in accounts]
            for token in map(_text, tokens):
                # The set may hold tokens since moved to another user; keep those.
                session = self._session(await client.get(self._session_key(token)), token)
                if session is not None and session["userId"] == uid:
                    doomed.append(self._session_key(token))
            email = user["email"] if user is not None else None
            if email is not None and await client.get(self._email_key(email)) in (
                uid,
                uid.encode(),
            ):
                doomed.append(self._email_key(email))
            await client.delete(*doomed)
        except self._errors() as exc:
            raise self._failure("delete_user", exc) from exc

    # -- accounts ----------------------------------------------------------
    async def link_account(self, account: Record) -> Record:
        record = account_record(account)
        if not record["provider"] or not record["providerAccountId"] or not record["userId"]:
            raise AdapterError(
                "RedisAdapter.link_account: the account needs provider, providerAccountId "
                "and userId"
            )
        key = self._account_key(record["provider"], record["providerAccountId"])
        try:
            client = await self._client()
            previous = await client.get(key)
            async with client.pipeline(transaction=True) as pipe:
                if previous is not None:
                    pipe.srem(self._accounts_of(str(json.loads(previous)["userId"])), key)
                pipe.set(key, _dumps(record))
                pipe.sadd(self._accounts_of(record["userId"]), key)
                await pipe.execute()
        except self._errors() as exc:
            raise self._failure("link_account", exc) from exc
        return record

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Record | None:
        key = self._account_key(provider, provider_account_id)
        try:
            client = await self._client()
            raw = await client.getdel(key)
            if raw is None:
                return None
            account = account_record(json.loads(raw))
            await client.srem(self._accounts_of(account["userId"]), key)
        except self._errors() as exc:
            raise self._failure("unlink_account", exc) from exc
        return account

    # -- sessions ----------------------------------------------------------
    async def create_session(
        self, *, session_token: str, user_id: str, expires: datetime
    ) -> Record:
        record = session_record(session_token, user_id, expires)
        value = _dumps(
            {
                "sessionToken": session_token,
                "userId": record["userId"],
                "expires": record["expires"],
            }
        )
        try:
            client = await self._client()
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(self._session_key(session_token), value, pxat=epoch_ms(record["expires"]))
                pipe.sadd(self._sessions_prefix() + record["userId"], session_token)
                await pipe.execute()
        except self._errors() as exc:
            raise self._failure("create_session", exc) from exc
        return record

    async def get_session_and_user(self, session_token: str) -> Record | None:
        try:
            client = await self._client()
            session = self._session(
                await client.get(self._session_key(session_token)), session_token
            )
            if session is None:
                return None
            user = self._user(await client.get(self._user_key(session["userId"])))
        except self._errors() as exc:
            raise self._failure("get_session_and_user", exc) from exc
        if user is None:
            return None
        return {"session": session, "user": user}

    async def update_session(
        self, *, session_token: str, expires: datetime | None = None, **extra: Any
    ) -> Record | None:
        wanted = utc(expires) if expires is not None else None
        owner = extra_user_id(extra)
        args = [
            iso(wanted) if wanted is not None else "",
            str(epoch_ms(wanted)) if wanted is not None else "0",
            owner if owner is not None else "",
            self._sessions_prefix(),
            session_token,
        ]
        try:
            client = await self._client()
            raw = await client.eval(_UPDATE_SESSION, 1, self._session_key(session_token), *args)
        except self._errors() as exc:
            raise self._failure("update_session", exc) from exc
        return self._session(raw, session_token)

    async def delete_session(self, session_token: str) -> None:
        key = self._session_key(session_token)
        try:
            client = await self._client()
            raw = await client.getdel(key)
            if raw is not None:
                await client.srem(
                    self._sessions_prefix() + str(json.loads(raw)["userId"]), session_token
                )
        except self._errors() as exc:
            raise self._failure("delete_session", exc) from exc

    # -- verification tokens -----------------------------------------------
    async def create_verification_token(
        self, *, identifier: str, token: str, expires: datetime
    ) -> Record:
        when = utc(expires)
        record = {"identifier": identifier, "token": token, "expires": when}
        try:
            client = await self._client()
            await client.set(
                self._token_key(identifier, token), _dumps(record), pxat=epoch_ms(when)
            )
        except self._errors() as exc:
            raise self._failure("create_verification_token", exc) from exc
        return record

    async def use_verification_token(self, *, identifier: str, token: str) -> Record | None:
        try:
            client = await self._client()
            raw = await client.getdel(self._token_key(identifier, token))
        except self._errors() as exc:
            raise self._failure("use_verification_token", exc) from exc
        if raw is None:
            return None
        data = json.loads(raw)
        return {
            "identifier": data["identifier"],
            "token": data["token"],
            "expires": utc(data["expires"]),
        }

    async def aclose(self) -> None:
        """Close the clients this adapter made (a ``client=`` you passed stays open)."""
        await self._clients.aclose()

    def __repr__(self) -> str:
        return f"RedisAdapter({self._where!r}, prefix={self.prefix!r})"
