"""The ``jwt`` strategy: the session lives in the encrypted cookie itself.

Mirrors Auth.js's session endpoint: decode, run the ``jwt`` callback, build
``{"user": {name, email, image}, "expires": now + max_age}``, run the
``session`` callback. Where Auth.js re-encodes the cookie on every
``/api/auth/session`` call, a server that reads the cookie on every request
re-encodes it only once the token is ``update_age`` old, the sliding rule
Auth.js applies to database sessions.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping
from typing import Any

from ._bridge import Steps, maybe_await
from ._cache import Entry
from ._config import AuthConfig
from ._cookies import CookieName, CookieWrite, FoundCookie, chunk_cookies, clear_cookies
from ._errors import ConfigurationError
from ._session import Session, session_from_callback
from ._time import iso_ms, to_datetime
from ._tokens import decode_found
from .jwt import encode as encode_v5
from .jwt import v4 as jwt_v4
from .jwt._errors import JWTDecodeError

log = logging.getLogger("authsession")


def default_token(user: Mapping[str, Any]) -> dict[str, Any]:
    """The token Auth.js starts from at sign-in (absent fields stay absent, as in JSON)."""
    token: dict[str, Any] = {}
    for source, target in (("name", "name"), ("email", "email"), ("image", "picture")):
        if source in user:
            token[target] = user[source]
    if user.get("id") is not None:
        token["sub"] = str(user["id"])
    return token


def default_session(token: Mapping[str, Any], expires: str) -> dict[str, Any]:
    """The session Auth.js builds from a token before the ``session`` callback."""
    # Written out rather than looped over (source, target) pairs: this runs
    # on every uncached request.
    user: dict[str, Any] = {}
    if "name" in token:
        user["name"] = token["name"]
    if "email" in token:
        user["email"] = token["email"]
    if "picture" in token:
        user["image"] = token["picture"]
    return {"user": user, "expires": expires}


# Exact types on purpose: JSON numbers decode to int or float, and a bool
# (an int subclass) is not a timestamp.
_NUMBERS = frozenset({int, float})
# A Session's own .get goes through its attribute hook on Python < 3.12.
_dict_get = dict.get
_new_entry = tuple.__new__


class JwtStrategy:
    def __init__(self, config: AuthConfig, candidates: tuple[CookieName, ...]) -> None:
        self.config = config
        self.candidates = candidates
        self.secrets = config.secrets
        self.callbacks = config.callback_set
        self.update_age = config.update_age
        self.max_age = config.max_age
        self.cache_ttl = config.cache_options.ttl
        self.negative_ttl = config.cache_options.negative_ttl

    # -- reading -------------------------------------------------------------

    def resolve(self, found: FoundCookie) -> Steps[Entry]:
        """Steps from a found token to a cache entry (session or a remembered refusal)."""
        now = time.time()
        try:
            claims, spec = decode_found(found, self.secrets, self.candidates)
        except JWTDecodeError as exc:
            log.info(
                "authsession: %s rejected: %s",
                found.spec.name if found.spec else "Bearer token",
                exc.reason,
            )
            return Entry(None, time.monotonic() + self.negative_ttl)
        token = claims
        if self.callbacks.jwt is not None:
            changed = yield from self._run_jwt_callback(claims)
            if changed is None:
                # Auth.js: a jwt callback returning null ends the session and
                # clears its cookies.
                return Entry(
                    None, time.monotonic() + self.negative_ttl, tuple(clear_cookies(found.names))
                )
            token = changed
        # The session step is inlined (not `yield from _build_session`): this
        # is the cold path of every request, and each generator layer costs.
        expires_at: float | None = now + self.max_age
        expires = iso_ms(now + self.max_age)
        built: Any = default_session(token, expires)
        callback = self.callbacks.session
        if callback is not None:
            if callback.session_token:  # def session(session, token): the usual shape
                built = callback.func(built, token)
            else:
                built = callback.call(
                    session=built, token=token, user=None, trigger=None, new_session=None
                )
            if type(built) is not dict and inspect.isawaitable(built):
                built = yield built
        session = session_from_callback(built)
        writes: tuple[CookieWrite, ...] = ()
        if found.spec is not None:  # a cookie (a Bearer token is not written back)
            # Re-issued once `update_age` old; a token without a plain-number
            # `iat` (absent, or a bool) at once.
            iat: Any = token.get("iat")
            if type(iat) not in _NUMBERS or now - iat >= self.update_age:
                writes = tuple(self.cookie_writes(token, spec, now, found.names))
        # The cache bounds an entry by the session's expiry; tell it when
        # that is unless the session callback chose another `expires`.
        if session is None or _dict_get(session, "expires") is not expires:
            expires_at = None
        # How long the entry may be reused: the cache TTL, never past the token's exp.
        lifetime = self.cache_ttl
        exp: Any = token.get("exp")
        if type(exp) in _NUMBERS and exp - now < lifetime:
            lifetime = exp - now
        # tuple.__new__ skips the named tuple's Python-level __new__.
        return _new_entry(Entry, (session, time.monotonic() + lifetime, writes, None, expires_at))

    def _run_jwt_callback(
        self, token: dict[str, Any], **extra: Any
    ) -> Steps[dict[str, Any] | None]:
        callback = self.callbacks.jwt
        if callback is None:
            return token
        result = yield from maybe_await(
            callback.call(
                token=token,
                user=extra.get("user"),
                account=extra.get("account"),
                profile=extra.get("profile"),
                trigger=extra.get("trigger"),
                is_new_user=extra.get("is_new_user"),
                session=extra.get("session"),
            )
        )
        if result is None:
            return None
        if not isinstance(result, Mapping):
            raise TypeError(
                f"the jwt callback must return a dict or None, not {type(result).__name__}"
            )
        return dict(result)

    def _build_session(
        self, token: Mapping[str, Any], now: float, **extra: Any
    ) -> Steps[Session | None]:
        session = default_session(token, iso_ms(now + self.config.max_age))
        callback = self.callbacks.session
        if callback is not None:
            session = yield from maybe_await(
                callback.call(
                    session=session,
                    token=token,
                    user=None,
                    trigger=extra.get("trigger"),
                    new_session=extra.get("new_session"),
                )
            )
        return session_from_callback(session)

    # -- writing -------------------------------------------------------------

    def encode(self, token: Mapping[str, Any], spec: CookieName) -> str:
        if not self.secrets:
            raise ConfigurationError("writing a jwt session needs a secret")
        if spec.version == 4:
            return jwt_v4.encode(token, self.secrets[0], self.config.max_age)
        return encode_v5(token, self.secrets, spec.name, self.config.max_age)

    def cookie_writes(
        self, token: Mapping[str, Any], spec: CookieName, now: float, existing: tuple[str, ...]
    ) -> list[CookieWrite]:
        value = self.encode(token, spec)
        return chunk_cookies(spec.name, value, to_datetime(now + self.config.max_age), existing)

    def sign_in(
        self,
        user: Mapping[str, Any],
        spec: CookieName,
        account: Any = None,
        profile: Any = None,
        is_new_user: bool = False,
    ) -> Steps[tuple[str, list[CookieWrite]] | None]:
        now = time.time()
        token = yield from self._run_jwt_callback(
            default_token(user),
            user=dict(user),
            account=account,
            profile=profile,
            is_new_user=is_new_user,
            trigger="signUp" if is_new_user else "signIn",
        )
        if token is None:
            return None
        value = self.encode(token, spec)
        expires = to_datetime(now + self.config.max_age)
        return value, chunk_cookies(spec.name, value, expires, ())

    def update(
        self, found: FoundCookie, data: Any
    ) -> Steps[tuple[Session | None, list[CookieWrite], str | None]]:
        """Auth.js's ``update()``: the jwt callback sees ``trigger="update"`` and the data."""
        now = time.time()
        claims, spec = decode_found(found, self.secrets, self.candidates)
        token = yield from self._run_jwt_callback(claims, trigger="update", session=data)
        if token is None:
            return None, clear_cookies(found.names), None
        session = yield from self._build_session(token, now)
        if found.spec is None:  # Bearer: nothing to write back
            return session, [], None
        value = self.encode(token, spec)
        expires = to_datetime(now + self.config.max_age)
        return session, chunk_cookies(spec.name, value, expires, found.names), value
