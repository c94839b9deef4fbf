"""The ``database`` strategy: the cookie holds a random token, the store holds the session.

Mirrors Auth.js's session endpoint (``@auth/core`` ``lib/actions/session.ts``)
for ``session: { strategy: "database" }``:

* ``getSessionAndUser(token)``; an unknown token is no session;
* a session whose ``expires`` is in the past is deleted ("pruned") and is no
  session;
* once ``expires - maxAge + updateAge <= now`` the row slides:
  ``updateSession({sessionToken, expires: now + maxAge})`` and the cookie is
  written again with the new ``Expires`` (same token);
* the default session is ``{"user": {name, email, image}, "expires":
  <the row's expires>}``, then the ``session`` callback sees it with ``user=``
  (the stored user), ``trigger=`` and ``new_session=``.

Two deliberate differences, both because a resource server reads the cookie
on every request rather than on the occasional ``/api/auth/session`` poll:
the cookie is re-sent only when the row slides (Auth.js re-sends it on every
poll), so cookie and row always expire together; and the ``session`` callback
receives the default session shape above, where Auth.js currently passes the
raw row spread with the user -- which carries the session token itself, and
which Auth.js marks for removal -- so a callback returning ``session``
unchanged cannot leak the token into a response.

Adapter calls run on the sync bridge's background loop (see
``adapter_call``): async adapters keep their connection pools on one loop no
matter which loop or thread asked. The exception is an adapter around the
application's own client (``bound_to_caller_loop``): it runs on the caller's
loop, for the async API only. Plain (non-async) adapter methods run in worker
threads. Adapter failures never raise out of a read; they read as "no
session", logged once per outage (``AdapterHealth``). A cookie value no
sign-in could have issued is no session without a store round trip
(``plausible_token``).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from ._bridge import Steps, bridge_loop, maybe_await
from ._cache import Entry
from ._config import AuthConfig
from ._cookies import CookieName, CookieWrite, FoundCookie, chunk_cookies, clear_cookies
from ._errors import AccountNotLinked, ConfigurationError
from ._session import Session, session_from_callback
from ._time import iso_ms, parse_iso, to_datetime

log = logging.getLogger("authsession")
T = TypeVar("T")

#: What the strategy calls on an adapter; ``AuthConfig`` checks these exist.
REQUIRED_METHODS = (
    "get_session_and_user",
    "update_session",
    "delete_session",
    "create_session",
    "create_user",
    "get_user",
)

#: Random bytes in a new session token (Auth.js's default, ``crypto.randomUUID()``,
#: has 122 random bits; 32 bytes is 256, written as 43 URL-safe characters).
TOKEN_BYTES = 32


#: The longest session token looked up in the store. Auth.js's are 36 (a UUID),
#: ours 43; ``@auth/pg-adapter``'s column is VARCHAR(255).
MAX_TOKEN_LENGTH = 512

# What sign-in issues, here (URL-safe base64) and in Auth.js apps sharing the
# store (UUIDs, or whatever ``generateSessionToken`` makes -- typically hex,
# base64url or dotted): anything else is no session without asking the store.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_.\-]+", re.ASCII)


def new_session_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def plausible_token(token: str) -> bool:
    """Whether *token* could have been issued by a sign-in (and so is worth a lookup).

    A crafted cookie (a NUL byte, ``:``, kilobytes of text) would otherwise
    reach the store, where it can fail as if the store were down (PostgreSQL
    rejects NUL) or name a key that is not a session.
    """
    return 0 < len(token) <= MAX_TOKEN_LENGTH and _TOKEN_SHAPE.fullmatch(token) is not None


def hash_token(token: str) -> str:
    """What ``hash_tokens=True`` stores in place of the token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# --------------------------------------------------------------------------- #
# Sans-I/O: the arithmetic and shapes of Auth.js's database sessions
# --------------------------------------------------------------------------- #


def as_utc(value: object) -> datetime:
    """A session's ``expires`` as an aware UTC datetime (naive values are UTC)."""
    if isinstance(value, str):
        value = parse_iso(value.strip())
    if not isinstance(value, datetime):
        raise TypeError(
            f"the adapter returned a session whose 'expires' is a {type(value).__name__}, "
            "not a datetime"
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def is_expired(expires: datetime, now: float) -> bool:
    """Auth.js: ``session.expires.valueOf() < Date.now()``."""
    return expires.timestamp() < now


def slide_due(expires: datetime, now: float, max_age: int, update_age: int) -> bool:
    """Auth.js: ``expires - maxAge + updateAge <= now`` (the row was extended at
    ``expires - maxAge``; it is extended again ``updateAge`` after that)."""
    return expires.timestamp() - max_age + update_age <= now


def default_session(user: Mapping[str, Any], expires: datetime) -> dict[str, Any]:
    """Auth.js's default ``session`` callback output for a database session.

    A field the user record lacks stays absent (JavaScript's ``undefined``
    vanishes from JSON); a stored NULL stays ``None`` (``null``).
    """
    shown = {name: user[name] for name in ("name", "email", "image") if name in user}
    return {"user": shown, "expires": iso_ms(expires.timestamp())}


def jsonable(value: Any) -> Any:
    """``value`` as ``JSON.stringify`` would see it: datetimes as ``toISOString()``.

    A callback may copy stored values (``emailVerified``) into the session;
    Auth.js serialises a ``Date`` as its ISO string, so the Session does too.
    """
    if isinstance(value, datetime):
        return iso_ms(as_utc(value).timestamp())
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


# --------------------------------------------------------------------------- #
# Calling the adapter: one loop for its I/O, one warning per outage
# --------------------------------------------------------------------------- #


def _is_async(func: Callable[..., Any]) -> bool:
    # An object with an ``async def __call__`` counts as async too.
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(type(func).__call__)


async def _invoke(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    if _is_async(func):
        return await func(**kwargs)
    # A plain method is blocking I/O for all we know (a sync driver): it runs
    # in a worker thread, so one slow call never holds up the loop -- and with
    # it every other adapter call and every sync caller.
    result = await asyncio.to_thread(func, **kwargs)
    if inspect.isawaitable(result):  # a plain function that handed back a coroutine
        result = await result
    return result


async def adapter_call(func: Callable[..., Any], **kwargs: Any) -> Any:
    """Run an adapter method on the bridge loop, whichever loop awaits this.

    The rule: **adapter I/O always happens on authsession's bridge loop** (the
    one background loop the sync API already uses). Async drivers such as
    psycopg's pool or redis.asyncio bind connections to the loop that opened
    them; running every call on one long-lived loop means an adapter shared by
    the async API (on the app's loop, or on a new loop per ``asyncio.run``
    or per test) and the sync API (Flask/WSGI threads) keeps one pool that is
    never touched from a foreign loop. The cost is one thread hop per adapter
    call from async code, which the session cache makes rare. Plain (non-async)
    adapter methods are accepted and run in worker threads (``asyncio.to_thread``).

    The exception is an adapter built around a client the caller made
    (``bound_to_caller_loop``, see :func:`caller_loop_call`).
    """
    bridge = bridge_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is bridge:
        return await _invoke(func, kwargs)
    future = asyncio.run_coroutine_threadsafe(_invoke(func, kwargs), bridge)
    if running is None:  # awaited outside any loop: not expected, but do not hang
        return future.result()
    return await asyncio.wrap_future(future)


def bound_to_caller_loop(adapter: object) -> bool:
    """Whether *adapter* wraps a client or pool the application made (and so owns
    the loop it runs on): ``RedisAdapter(client=...)``, ``PostgresAdapter(pool=...)``,
    or any adapter with ``bound_to_caller_loop = True``."""
    return getattr(adapter, "bound_to_caller_loop", False) is True


async def caller_loop_call(func: Callable[..., Any], adapter_name: str, **kwargs: Any) -> Any:
    """Run an adapter method on the loop awaiting this (for caller-bound adapters).

    A client the application made lives on the application's loop, so the
    bridge loop must not touch it; the sync API, which has only the bridge
    loop, cannot use such an adapter and says so with a
    :class:`ConfigurationError`: a setup mistake, which the strategy lets
    through (an error naming the fix) instead of counting it as an outage.
    """
    if asyncio.get_running_loop() is bridge_loop():
        raise ConfigurationError(
            f"the sync API (get_server_session_sync, sign_in_sync, ...) cannot use "
            f"{adapter_name} built around a client or pool you passed in (client=/pool=): "
            "that client belongs to your event loop. Use the async API with it, or give "
            "the adapter a URL/DSN (RedisAdapter(url), PostgresAdapter(dsn)) so it keeps "
            "its own connections"
        )
    return await _invoke(func, kwargs)


class AdapterHealth:
    """Turns adapter failures into one warning per outage, and notes recovery.

    An outage starts at the first failed call after a success and ends at the
    next successful call; the warning names the adapter and the error type and
    message (with the token redacted), and recovery is logged at INFO with how
    long it lasted. Calls in between log at DEBUG, so a database that is down
    for an hour costs one warning, not one per request.
    """

    def __init__(self, adapter_name: str) -> None:
        self.adapter_name = adapter_name
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self.failures = 0  # calls failed in the current outage
        self.outages = 0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, operation: str, exc: BaseException, redact: tuple[str, ...]) -> None:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
                self.failures = 0
                self.outages += 1
            self.failures += 1
        message = _redacted(str(exc), redact)
        if first:
            log.warning(
                "authsession: the %s adapter failed in %s (%s: %s); database sessions "
                "read as signed out until it answers again (logged once per outage)",
                self.adapter_name,
                operation,
                type(exc).__name__,
                message,
            )
        else:
            log.debug(
                "authsession: %s adapter still failing in %s (%s)",
                self.adapter_name,
                operation,
                type(exc).__name__,
            )

    def succeeded(self) -> None:
        if self._down_since is None:  # the common case: no lock
            return
        with self._lock:
            since, failures = self._down_since, self.failures
            self._down_since = None
            self.failures = 0
        if since is not None:
            log.info(
                "authsession: the %s adapter answers again after %.1fs (%d failed calls)",
                self.adapter_name,
                time.monotonic() - since,
                failures,
            )


def _redacted(text: str, secrets_: tuple[str, ...]) -> str:
    for value in secrets_:
        if value:
            text = text.replace(value, "<redacted>")
    if len(text) > 300:
        text = text[:300] + "..."
    return text


class _Fault:
    """Marker: the adapter failed (already logged)."""


_FAULT = _Fault()


@dataclass(frozen=True, slots=True)
class _Live:
    """A live session as read (and slid, when due)."""

    user: dict[str, Any]
    expires: datetime  # as read: what the session JSON shows, like Auth.js
    valid_until: datetime  # after a slide: the row's new expiry
    writes: tuple[CookieWrite, ...]


@dataclass(frozen=True, slots=True)
class _Gone:
    """No session: unknown, malformed, expired (pruned), deleted during the slide,
    or a fault."""

    writes: tuple[CookieWrite, ...] = ()
    fault: bool = False


# --------------------------------------------------------------------------- #
# The strategy
# --------------------------------------------------------------------------- #


class DatabaseStrategy:
    def __init__(self, config: AuthConfig, candidates: tuple[CookieName, ...]) -> None:
        self.config = config
        self.candidates = candidates
        self.adapter = config.adapter
        self.callbacks = config.callback_set
        self.cache_ttl = config.cache_options.ttl
        self.negative_ttl = config.cache_options.negative_ttl
        self.hash_tokens = config.hash_tokens
        self.adapter_name = type(self.adapter).__name__
        self.health = AdapterHealth(self.adapter_name)
        # An adapter around the application's own client runs on the caller's
        # loop; every other adapter on the bridge loop (see adapter_call).
        self.caller_loop = bound_to_caller_loop(self.adapter)

    def stored_token(self, token: str) -> str:
        """The ``sessionToken`` the store holds for a cookie's token."""
        return hash_token(token) if self.hash_tokens else token

    def _call(self, operation: str, **kwargs: Any) -> Awaitable[Any]:
        func = getattr(self.adapter, operation)
        if self.caller_loop:
            return caller_loop_call(func, self.adapter_name, **kwargs)
        return adapter_call(func, **kwargs)

    def _require(self, purpose: str, *operations: str) -> None:
        missing = [op for op in operations if not callable(getattr(self.adapter, op, None))]
        if missing:
            raise ConfigurationError(
                f"{purpose} needs the adapter methods {', '.join(operations)}; "
                f"{self.adapter_name} lacks {', '.join(missing)}"
            )

    def _malformed(self, token: str) -> None:
        log.info(
            "authsession: a %d-character session token that no sign-in issues (characters "
            "outside A-Z a-z 0-9 - _ . or over %d long) was read as no session without "
            "asking the %s adapter",
            len(token),
            MAX_TOKEN_LENGTH,
            self.adapter_name,
        )

    def _failed(self, operation: str, exc: BaseException, token: str) -> _Fault:
        self.health.failed(operation, exc, (token, self.stored_token(token)))
        return _FAULT

    # -- reading -------------------------------------------------------------

    def _load(self, found: FoundCookie, now: float) -> Steps[_Live | _Gone]:
        """Look the token up, prune it if expired, slide it if due."""
        token = found.value
        if not plausible_token(token):
            self._malformed(token)
            return _Gone()  # cached as no session, like an unknown token
        stored = self.stored_token(token)
        try:
            row = yield self._call("get_session_and_user", session_token=stored)
        except ConfigurationError:
            raise  # a setup mistake (sync API on a caller-bound adapter), not an outage
        except Exception as exc:
            self._failed("get_session_and_user", exc, token)
            return _Gone(fault=True)
        self.health.succeeded()
        if row is None:
            return _Gone()
        session_row, user = _unpack(row)
        expires = as_utc(session_row.get("expires"))
        if is_expired(expires, now):
            try:
                yield self._call("delete_session", session_token=stored)
            except Exception as exc:
                self._failed("delete_session", exc, token)
            # Expired is final: the row is gone (or will be pruned next
            # time), so the cookie is dead everywhere and may be cleared.
            return _Gone(tuple(clear_cookies(found.names)))
        valid_until = expires
        writes: tuple[CookieWrite, ...] = ()
        config = self.config
        if slide_due(expires, now, config.max_age, config.update_age):
            try:
                updated = yield self._call(
                    "update_session",
                    session_token=stored,
                    expires=to_datetime(now + config.max_age),
                )
            except Exception as exc:
                self._failed("update_session", exc, token)
                return _Gone(fault=True)
            if updated is None:
                # Deleted between the read and the update (a sign-out won the
                # race): update_session never recreates a row, and neither do we.
                return _Gone()
            if isinstance(updated, Mapping) and updated.get("expires") is not None:
                valid_until = as_utc(updated["expires"])
            else:
                valid_until = to_datetime(now + config.max_age)
            if found.spec is not None:  # a Bearer token has no cookie to refresh
                writes = tuple(chunk_cookies(found.spec.name, token, valid_until, found.names))
        return _Live(dict(user), expires, valid_until, writes)

    def resolve(self, found: FoundCookie) -> Steps[Entry]:
        """Steps from a found token to a cache entry (a session, or no session)."""
        now = time.time()
        loaded = yield from self._load(found, now)
        if isinstance(loaded, _Gone):
            if loaded.fault:
                # Not cached at all: the next request asks the store again, so
                # sessions come back the moment it does.
                return Entry(None, 0.0)
            return Entry(None, time.monotonic() + self.negative_ttl, loaded.writes)
        session = yield from self._build_session(loaded)
        if session is None:
            return Entry(None, time.monotonic() + self.negative_ttl)
        lifetime = min(self.cache_ttl, loaded.valid_until.timestamp() - now)
        return Entry(session, time.monotonic() + lifetime, loaded.writes)

    def _build_session(
        self, live: _Live, trigger: str | None = None, new_session: Any = None
    ) -> Steps[Session | None]:
        session: Any = default_session(live.user, live.expires)
        callback = self.callbacks.session
        if callback is not None:
            session = yield from maybe_await(
                callback.call(
                    session=session,
                    token=None,
                    user=live.user,
                    trigger=trigger,
                    new_session=new_session,
                )
            )
        return session_from_callback(session, jsonable)

    # -- writing -------------------------------------------------------------

    def sign_in(
        self,
        user: Mapping[str, Any],
        spec: CookieName,
        account: Any = None,
        profile: Any = None,
        is_new_user: bool = False,
    ) -> Steps[tuple[str, list[CookieWrite]] | None]:
        """Find or create the user, store a new session, return its token and cookie.

        Who signs in follows Auth.js's ``handleLoginOrRegister`` when
        ``account`` is given, and the credentials-style lookup when it is not
        (see :meth:`_find_or_create_user`).

        Every call makes a new random token (never reusing one the request
        presented), so a fixed token cannot be planted before sign-in.
        Adapter errors propagate: the caller must know no session was made.
        """
        stored_user = yield from self._find_or_create_user(user, account)
        now = time.time()
        token = new_session_token()
        expires = to_datetime(now + self.config.max_age)
        yield self._call(
            "create_session",
            session_token=self.stored_token(token),
            user_id=str(stored_user["id"]),
            expires=expires,
        )
        self.health.succeeded()
        return token, chunk_cookies(spec.name, token, expires, ())

    def _find_or_create_user(
        self, user: Mapping[str, Any], account: Any
    ) -> Steps[Mapping[str, Any]]:
        if account is None:
            return (yield from self._credentials_user(user))
        fields = _account_fields(account)
        if fields["type"] == "email":
            return (yield from self._email_user(user))
        return (yield from self._provider_user(user, fields))

    def _credentials_user(self, user: Mapping[str, Any]) -> Steps[Mapping[str, Any]]:
        """No ``account`` (a credentials-style sign-in: the application itself
        vouches for who this is): the user with ``user["id"]``, else the user with
        that email (when the adapter has ``get_user_by_email``), else a new user."""
        if user.get("id") is not None:
            existing = yield self._call("get_user", id=str(user["id"]))
            if existing is not None:
                return dict(existing)
        email = user.get("email")
        if email and callable(getattr(self.adapter, "get_user_by_email", None)):
            existing = yield self._call("get_user_by_email", email=email)
            if existing is not None:
                return dict(existing)
        return (yield from self._create_user(dict(user)))

    def _email_user(self, user: Mapping[str, Any]) -> Steps[Mapping[str, Any]]:
        """Auth.js's email (magic link) sign-in: the address was just proven, so
        the user with that email is marked verified, or a verified user is made.
        No account is linked."""
        self._require("sign_in(account={'type': 'email', ...})", "get_user_by_email", "update_user")
        email = user.get("email")
        if not isinstance(email, str) or not email:
            raise ValueError("sign_in: an email sign-in (account type 'email') needs user['email']")
        verified = to_datetime(time.time())
        existing = yield self._call("get_user_by_email", email=email)
        if existing is not None:
            updated = yield self._call(
                "update_user", user={"id": str(existing["id"]), "emailVerified": verified}
            )
            return dict(updated if isinstance(updated, Mapping) else existing)
        fresh = {key: value for key, value in user.items() if key != "id"}
        return (yield from self._create_user({**fresh, "emailVerified": verified}))

    def _provider_user(
        self, user: Mapping[str, Any], account: Mapping[str, Any]
    ) -> Steps[Mapping[str, Any]]:
        """Auth.js's OAuth/OIDC/WebAuthn sign-in: the user that provider account is
        linked to; else, if a user already has this email, refuse
        (:class:`AccountNotLinked`) unless ``allow_dangerous_email_account_linking``
        (never for WebAuthn, as in Auth.js) -- then link the account to them;
        else create a user and link the account to it."""
        self._require(
            "sign_in(account=...)", "get_user_by_account", "get_user_by_email", "link_account"
        )
        provider = account["provider"]
        linked = yield self._call(
            "get_user_by_account",
            provider=provider,
            provider_account_id=account["providerAccountId"],
        )
        if linked is not None:
            return dict(linked)
        email = user.get("email")
        same_email = (yield self._call("get_user_by_email", email=email)) if email else None
        if same_email is not None:
            dangerous = self.config.allow_dangerous_email_account_linking
            if account["type"] == "webauthn" or not dangerous:
                log.info(
                    "authsession: sign-in through %r refused: that %s account is linked to "
                    "no user, and another user already has its email address",
                    provider,
                    account["type"],
                )
                raise AccountNotLinked(
                    f"sign_in: the {provider!r} account is not linked to any user, and "
                    "another user already has the same email address; linking them is "
                    "refused (Auth.js's OAuthAccountNotLinked). Sign that user in another "
                    "way and link the account then, or set "
                    "AuthConfig(allow_dangerous_email_account_linking=True) if the "
                    "provider verifies email addresses"
                )
            stored: Mapping[str, Any] = dict(same_email)
        else:
            # The store assigns the id (Auth.js gives a new user a random UUID,
            # never the provider's id).
            fresh = {key: value for key, value in user.items() if key != "id"}
            stored = yield from self._create_user(fresh)
        yield self._call("link_account", account={**account, "userId": str(stored["id"])})
        return stored

    def _create_user(self, user: dict[str, Any]) -> Steps[Mapping[str, Any]]:
        created = yield self._call("create_user", user=user)
        if not isinstance(created, Mapping) or created.get("id") is None:
            raise TypeError(f"{self.adapter_name}.create_user returned no 'id'")
        return dict(created)

    def sign_out(self, found: FoundCookie) -> Steps[None]:
        """Delete the session row. A failure is logged, never raised: the caller
        still clears the cookies, as Auth.js does."""
        token = found.value
        if not plausible_token(token):
            return None  # no sign-in issued it, so no row holds it
        try:
            yield self._call("delete_session", session_token=self.stored_token(token))
        except ConfigurationError:
            raise
        except Exception as exc:
            self._failed("delete_session", exc, token)
            log.error(
                "authsession: sign-out could not delete the session from the %s adapter "
                "(%s); the cookie was cleared, but the stored session stays valid until it "
                "expires",
                type(self.adapter).__name__,
                type(exc).__name__,
            )
            return None
        self.health.succeeded()
        return None

    def update(
        self, found: FoundCookie, data: Any
    ) -> Steps[tuple[Session | None, list[CookieWrite], str | None]]:
        """Auth.js ``update()``: the session callback sees ``trigger="update"`` and
        ``new_session=data``; the row slides by the same rule as a read. The
        token is unchanged, so the runtime only drops the cached entry."""
        now = time.time()
        loaded = yield from self._load(found, now)
        if isinstance(loaded, _Gone):
            return None, list(loaded.writes), None
        session = yield from self._build_session(loaded, trigger="update", new_session=data)
        return session, list(loaded.writes), None


#: Account types ``sign_in(account=...)`` handles, as Auth.js's handleLoginOrRegister.
ACCOUNT_TYPES = ("oauth", "oidc", "email", "webauthn")


def _account_fields(account: Any) -> dict[str, Any]:
    """*account* (Auth.js names; ``provider_account_id``/``user_id`` accepted)
    checked the way Auth.js checks it before linking anything."""
    if not isinstance(account, Mapping):
        raise TypeError(f"sign_in: account must be a dict, got {type(account).__name__}")
    fields = dict(account)
    for snake, camel in (("provider_account_id", "providerAccountId"), ("user_id", "userId")):
        if snake in fields:
            fields.setdefault(camel, fields.pop(snake))
    fields.pop("userId", None)  # set to the user the account ends up linked to
    kind, provider = fields.get("type"), fields.get("provider")
    account_id = fields.get("providerAccountId")
    if kind not in ACCOUNT_TYPES:
        raise ValueError(
            f"sign_in: account['type'] must be one of {', '.join(ACCOUNT_TYPES)} "
            f"(got {kind!r}); for a credentials-style sign-in pass no account"
        )
    if not isinstance(provider, str) or not provider:
        raise ValueError("sign_in: account['provider'] must be the provider's id, e.g. 'github'")
    if isinstance(account_id, int) and not isinstance(account_id, bool):
        account_id = fields["providerAccountId"] = str(account_id)
    if not isinstance(account_id, str) or not account_id:
        raise ValueError(
            "sign_in: account['providerAccountId'] must be the user's id at the provider"
        )
    return fields


def _unpack(row: Any) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    if isinstance(row, Mapping):
        session_row, user = row.get("session"), row.get("user")
        if isinstance(session_row, Mapping) and isinstance(user, Mapping):
            return session_row, user
    raise TypeError(
        "get_session_and_user must return {'session': {...}, 'user': {...}} or None, "
        f"got a {type(row).__name__}"
    )
