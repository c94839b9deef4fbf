"""``AuthConfig``: every setting, validated when it is built, not at the first request."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from ._cache import CacheOptions
from ._callbacks import Callbacks
from ._cookies import _MARKER
from ._errors import ConfigurationError

DEFAULT_MAX_AGE = 30 * 24 * 60 * 60
DEFAULT_UPDATE_AGE = 24 * 60 * 60


def secrets_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Secrets the way Auth.js v5 reads them, then NextAuth v4's variable.

    Auth.js builds ``[AUTH_SECRET_3, AUTH_SECRET_2, AUTH_SECRET_1, AUTH_SECRET]``
    from whichever are set (the first encrypts); NEXTAUTH_SECRET is the v4 name.
    """
    env = os.environ if env is None else env
    secrets = [env[f"AUTH_SECRET_{i}"] for i in (3, 2, 1) if env.get(f"AUTH_SECRET_{i}")]
    if env.get("AUTH_SECRET"):
        secrets.append(env["AUTH_SECRET"])
    if not secrets and env.get("NEXTAUTH_SECRET"):
        secrets.append(env["NEXTAUTH_SECRET"])
    return tuple(secrets)


def _check_adapter(adapter: object) -> None:
    from ._database_strategy import REQUIRED_METHODS

    missing = [name for name in REQUIRED_METHODS if not callable(getattr(adapter, name, None))]
    if missing:
        raise ConfigurationError(
            f"adapter={type(adapter).__name__!s} is not an Auth.js adapter: it lacks "
            f"{', '.join(missing)}; use one of authsession.adapters (MemoryAdapter, "
            "SQLiteAdapter, PostgresAdapter, RedisAdapter) or implement those coroutines"
        )


def _non_negative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a whole number of seconds >= 0, got {value!r}")
    return value


def check_cookie_name(name: object) -> None:
    """``cookie_name`` must be a cookie name the readers can find.

    Session cookies are picked out of a ``Cookie`` header (or a parsed
    mapping) by the ``session-token`` in their names (``_cookies._MARKER``),
    before any configuration is known, as every Auth.js and NextAuth name
    has it. A name without it would never be read, so it is refused here
    rather than leaving every request signed out without a word.
    """
    if name is None:
        return
    if not isinstance(name, str) or not name or any(c in name for c in " ;,=\t\r\n"):
        raise ConfigurationError(f"cookie_name must be a plain cookie name, got {name!r}")
    if _MARKER not in name:
        raise ConfigurationError(
            f"cookie_name must contain '{_MARKER}', as every Auth.js and NextAuth "
            f"name does (authsession finds session cookies by it), got {name!r}; "
            f"rename the cookie in Auth.js's cookies.sessionToken.name too, e.g. "
            f"'{name}.{_MARKER}'"
        )


@dataclass(frozen=True, kw_only=True)
class AuthConfig:
    """How sessions are read and written. Immutable and hashable by value.

    ``secret`` may be one string or a list (rotation: the first encrypts, any
    decrypts). Left out, it comes from ``AUTH_SECRET`` (and ``AUTH_SECRET_1..3``)
    or ``NEXTAUTH_SECRET``. The ``jwt`` strategy without any secret is an
    error here, at construction.
    """

    secret: str | Sequence[str] | None = None
    strategy: Literal["jwt", "database"] = "jwt"
    adapter: Any = None
    max_age: int = DEFAULT_MAX_AGE
    update_age: int = DEFAULT_UPDATE_AGE
    cookie_name: str | None = None
    secure_cookie: bool | None = None
    callbacks: Any = None
    cache: CacheOptions | Mapping[str, Any] | bool | None = None
    # database strategy: store SHA-256(token) instead of the token, so a leaked
    # sessions table holds no usable cookie. Auth.js stores tokens as they are:
    # leave this off when an Auth.js app shares the database.
    hash_tokens: bool = False
    # database strategy, sign_in(account=...): link a new provider account to
    # an existing user with the same email (Auth.js's per-provider
    # allowDangerousEmailAccountLinking). Off: such a sign-in raises
    # AccountNotLinked. Only for providers that verify email addresses.
    allow_dangerous_email_account_linking: bool = False
    secrets: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.strategy not in ("jwt", "database"):
            raise ConfigurationError(f"strategy must be 'jwt' or 'database', got {self.strategy!r}")
        secrets = self._normalize_secret(self.secret)
        if not secrets:
            secrets = secrets_from_env()
        if self.strategy == "jwt" and not secrets:
            raise ConfigurationError(
                "the jwt strategy needs a secret: pass AuthConfig(secret=...) or set "
                "AUTH_SECRET (the same value as your Auth.js app's AUTH_SECRET); "
                "`authsession secret` prints a new one"
            )
        set_(self, "secrets", secrets)
        if isinstance(self.secret, list):
            set_(self, "secret", tuple(self.secret))  # keep the config hashable
        if self.strategy == "database" and self.adapter is None:
            raise ConfigurationError(
                "strategy='database' needs adapter=, e.g. "
                "authsession.adapters.SQLiteAdapter('sessions.db')"
            )
        if self.strategy == "database":
            _check_adapter(self.adapter)
        if not isinstance(self.hash_tokens, bool):
            raise ConfigurationError(f"hash_tokens must be True or False, got {self.hash_tokens!r}")
        if not isinstance(self.allow_dangerous_email_account_linking, bool):
            raise ConfigurationError(
                "allow_dangerous_email_account_linking must be True or False, got "
                f"{self.allow_dangerous_email_account_linking!r}"
            )
        max_age = _non_negative_int("max_age", self.max_age)
        if max_age == 0:
            raise ConfigurationError("max_age must be at least 1 second")
        _non_negative_int("update_age", self.update_age)
        check_cookie_name(self.cookie_name)
        if self.secure_cookie not in (None, True, False):
            raise ConfigurationError(
                f"secure_cookie must be True, False or None (auto), got {self.secure_cookie!r}"
            )
        set_(self, "callbacks", Callbacks.from_user(self.callbacks))
        set_(self, "cache", CacheOptions.from_user(self.cache))

    @property
    def cache_options(self) -> CacheOptions:
        """``cache`` as normalised at construction."""
        return cast(CacheOptions, self.cache)

    @property
    def callback_set(self) -> Callbacks:
        """``callbacks`` as normalised at construction."""
        return cast(Callbacks, self.callbacks)

    @staticmethod
    def _normalize_secret(secret: object) -> tuple[str, ...]:
        if secret is None:
            return ()
        items = (secret,) if isinstance(secret, str) else secret
        if not isinstance(items, (list, tuple)):
            raise ConfigurationError(
                f"secret must be a string or a list of strings, got {type(secret).__name__}"
            )
        for item in items:
            if not isinstance(item, str) or not item:
                raise ConfigurationError("secret: every entry must be a non-empty string")
        return tuple(items)

    def __repr__(self) -> str:
        # Never print secrets.
        return (
            f"AuthConfig(strategy={self.strategy!r}, secrets=<{len(self.secrets)} redacted>, "
            f"adapter={type(self.adapter).__name__ if self.adapter else None}, "
            f"max_age={self.max_age}, update_age={self.update_age}, "
            f"cookie_name={self.cookie_name!r}, secure_cookie={self.secure_cookie!r})"
        )
