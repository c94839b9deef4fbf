"""``ProxyConfig``: proxy mode's settings, validated when built (no httpx here).

Proxy mode asks an upstream Auth.js app for the session (``GET
{upstream_url}{base_path}/session``) instead of decoding the cookie locally, so
it needs no secret. Every setting is checked here, at start-up, so that a typo
in a URL is an error at ``configure_auth_proxy_runtime`` and not a silent
"signed out" on every request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from ._cache import CacheOptions
from ._config import DEFAULT_MAX_AGE, check_cookie_name
from ._errors import ConfigurationError

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2
MAX_TIMEOUT = 300.0
MAX_RETRIES = 10

# RFC 9110 token characters: what a header name may contain.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the proxy builds itself: a static value there would either leak one
# cookie to every user (Cookie) or break the request framing.
_RESERVED_HEADERS = frozenset({"cookie", "content-length", "transfer-encoding", "connection"})
# What a header value may not contain: anything outside printable ASCII, space
# and tab. httpx encodes values as ASCII; RFC 9110 allows no control character
# (h11 refuses some, e.g. \x0b, and upstream servers may refuse the others).
_HEADER_VALUE_BAD = re.compile(r"[^\t\x20-\x7e]")
# "https://", "htps:/": what shown_url keeps in front of a redacted userinfo.
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/+")


def _seconds(name: str, value: object, *, low: float, high: float, low_inclusive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high:
        bound = ">=" if low_inclusive else ">"
        raise ConfigurationError(f"{name} must be {bound} {low:g} and <= {high:g}, got {value!r}")
    return float(value)


def _whole(name: str, value: object, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"{name} must be a whole number from {low} to {high}, got {value!r}"
        )
    return value


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _userinfo(url: str) -> str:
    """What a message must not show: everything between the scheme and the
    last ``@`` ("" when there is no ``@``).

    Found without parsing, because it is needed for URLs that failed to parse,
    and it covers userinfo ``urlsplit`` would not see (``svc:pass@host``
    without a scheme, a password with ``/`` or ``#`` in it). A path with an
    ``@`` is over-redacted: harmless in an error message.
    """
    at = url.rfind("@")
    if at < 0:
        return ""
    scheme = _SCHEME_PREFIX.match(url)
    start = scheme.end() if scheme is not None and scheme.end() <= at else 0
    return url[start:at]


def _redacted(text: str, userinfo: str) -> str:
    return text.replace(userinfo, "***") if userinfo else text


def check_upstream_url(url: object, allow_insecure_http: bool) -> str:
    """The upstream origin (and optional path prefix), without a trailing slash."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            f"upstream_url must be the Auth.js app's base URL, e.g. 'https://app.example.com', "
            f"got {url!r}"
        )
    url = url.strip()
    # Every message below shows the URL redacted: a configuration error ends up
    # in start-up logs and crash reports, and the URL may carry a password.
    userinfo = _userinfo(url)
    shown = repr(_redacted(url, userinfo))
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        # Some of urllib's messages quote the netloc, userinfo included.
        raise ConfigurationError(
            f"upstream_url {shown} is not a valid URL: {_redacted(str(exc), userinfo)}"
        ) from None
    # Credentials first: whatever else is wrong, the fix starts with moving
    # them out of the URL, and this message needs no URL at all.
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "upstream_url must not carry credentials (user:password@); send them with "
            "headers={'Authorization': ...} instead, so they stay out of logs"
        )
    try:
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        # Neither the URL nor urllib's message (it quotes the port): what reads
        # as a port may be a password whose '@' urlsplit did not see.
        raise ConfigurationError(
            f"upstream_url is not a valid URL: the port after "
            f"{parts.scheme}://{parts.hostname or ''}: must be a number from 0 to 65535"
        ) from None
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"upstream_url must start with https:// (or http:// on loopback), got {shown}"
        )
    if not parts.hostname:
        raise ConfigurationError(f"upstream_url {shown} has no host")
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"upstream_url must not have a query or fragment, got {shown}; "
            "the session path is built from base_path"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigurationError(
            f"upstream_url {shown} is plain http to a non-loopback host: session cookies would "
            "cross the network unencrypted. Use https, or pass allow_insecure_http=True if the "
            "network between the services is private (e.g. a container network)"
        )
    del port
    return url.rstrip("/")


def check_base_path(base_path: object) -> str:
    if not isinstance(base_path, str) or not base_path.startswith("/"):
        raise ConfigurationError(
            f"base_path must be a path starting with '/', e.g. '/api/auth', got {base_path!r}"
        )
    if any(c in base_path for c in "?# \t\r\n"):
        raise ConfigurationError(f"base_path must be a plain path, got {base_path!r}")
    return base_path.rstrip("/")


def check_headers(headers: object) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"headers must be a mapping of header name to value, got {type(headers).__name__}"
        )
    pairs: list[tuple[str, str]] = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ConfigurationError(f"headers: {name!r} is not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigurationError(
                f"headers: {name!r} is set by authsession itself (the Cookie header carries "
                "only the request's own session cookies) and cannot be given statically"
            )
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise ConfigurationError(
                f"headers: the value of {name!r} must be a string without line breaks"
            )
        bad = _HEADER_VALUE_BAD.search(value)
        if bad is not None:
            # Accepted here, such a value would fail every request (with the
            # value in h11's error message). The value (often an API key) is
            # not shown, only where it goes wrong.
            kind = "a non-ASCII" if ord(bad.group()) > 0x7F else "a control"
            raise ConfigurationError(
                f"headers: the value of {name!r} has {kind} character at position "
                f"{bad.start()}; header values must be printable ASCII (encode anything "
                "else, e.g. base64 or percent-encoding, as the upstream expects)"
            )
        pairs.append((name, value))
    return tuple(pairs)


@dataclass(frozen=True, kw_only=True)
class ProxyConfig:
    """How proxy mode reaches the upstream Auth.js app. Immutable and hashable.

    ``headers`` are static extras sent with every upstream call (an internal API
    key, ``X-Forwarded-Proto``); ``transport`` is an httpx transport (tests,
    mTLS). ``retries`` applies to connection failures only; ``breaker_threshold``
    consecutive failed resolutions open the circuit for ``breaker_cooldown``
    seconds. ``forward_set_cookie`` relays the session cookie the upstream
    re-issues to the client. ``cookie_name`` / ``secure_cookie`` restrict which
    session cookies are read, as in ``AuthConfig``.
    """

    upstream_url: str
    base_path: str = "/api/auth"
    headers: Mapping[str, str] | tuple[tuple[str, str], ...] | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    cache: CacheOptions | Mapping[str, Any] | bool | None = None
    transport: Any = None
    forward_set_cookie: bool = True
    # Also sign out at the upstream (Auth.js's CSRF-protected POST {base}/signout):
    # a database upstream then deletes the session row.
    sign_out_upstream: bool = False
    allow_insecure_http: bool = False
    cookie_name: str | None = None
    secure_cookie: bool | None = None
    # The upstream's session maxAge (Auth.js default: 30 days). Only bounds how
    # long this process refuses a token it signed out; sessions themselves
    # expire when the upstream says.
    max_age: int = DEFAULT_MAX_AGE
    breaker_threshold: int = 5
    breaker_cooldown: float = 5.0
    backoff_base: float = 0.05
    backoff_max: float = 1.0
    session_url: str = field(init=False)
    strategy: Literal["proxy"] = field(init=False, default="proxy")
    # Proxy mode decodes nothing, so it holds no secret; get_token() callers
    # fall back to AUTH_SECRET as they would without a runtime.
    secrets: tuple[str, ...] = field(init=False, default=(), repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.allow_insecure_http, bool):
            raise ConfigurationError(
                f"allow_insecure_http must be True or False, got {self.allow_insecure_http!r}"
            )
        upstream = check_upstream_url(self.upstream_url, self.allow_insecure_http)
        base_path = check_base_path(self.base_path)
        set_(self, "upstream_url", upstream)
        set_(self, "base_path", base_path)
        set_(self, "session_url", f"{upstream}{base_path}/session")
        headers = self.headers
        set_(
            self, "headers", check_headers(dict(headers) if isinstance(headers, tuple) else headers)
        )
        _seconds("timeout", self.timeout, low=0, high=MAX_TIMEOUT, low_inclusive=False)
        _whole("retries", self.retries, low=0, high=MAX_RETRIES)
        _whole("max_age", self.max_age, low=1, high=10 * 365 * 24 * 3600)
        _whole("breaker_threshold", self.breaker_threshold, low=1, high=10_000)
        _seconds("breaker_cooldown", self.breaker_cooldown, low=0, high=3600, low_inclusive=False)
        _seconds("backoff_base", self.backoff_base, low=0, high=60, low_inclusive=True)
        _seconds("backoff_max", self.backoff_max, low=0, high=300, low_inclusive=True)
        for flag in ("forward_set_cookie", "sign_out_upstream"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigurationError(
                    f"{flag} must be True or False, got {getattr(self, flag)!r}"
                )
        check_cookie_name(self.cookie_name)
        if self.secure_cookie not in (None, True, False):
            raise ConfigurationError(
                f"secure_cookie must be True, False or None (both), got {self.secure_cookie!r}"
            )
        transport = self.transport
        if transport is not None and not callable(getattr(transport, "handle_request", None)):
            has_async = callable(getattr(transport, "handle_async_request", None))
            raise ConfigurationError(
                "transport must be an httpx transport with handle_request() (httpx.HTTPTransport"
                "(...), or httpx.MockTransport for tests, which serves both sync and async); "
                + (
                    "an async-only transport cannot serve the sync API"
                    if has_async
                    else f"got {type(transport).__name__}"
                )
            )
        set_(self, "cache", CacheOptions.from_user(self.cache))

    @property
    def cache_options(self) -> CacheOptions:
        """``cache`` as normalised at construction."""
        return cast(CacheOptions, self.cache)

    @property
    def header_pairs(self) -> tuple[tuple[str, str], ...]:
        """``headers`` as normalised at construction."""
        return cast(tuple[tuple[str, str], ...], self.headers)

    @property
    def timeout_seconds(self) -> float:
        return float(self.timeout)

    def __repr__(self) -> str:
        # Header values are often API keys: show the names only.
        names = [name for name, _ in self.header_pairs]
        return (
            f"ProxyConfig(session_url={self.session_url!r}, headers={names!r}, "
            f"timeout={self.timeout!r}, retries={self.retries!r}, "
            f"forward_set_cookie={self.forward_set_cookie!r})"
        )


def proxy_mode_unsupported(config: ProxyConfig, operation: str) -> NotImplementedError:
    """The error for a write in proxy mode: the upstream owns the sessions."""
    base = f"{config.upstream_url}{config.base_path}"
    return NotImplementedError(
        f"{operation}() is not available in proxy mode: sessions are written by the upstream "
        f"Auth.js app ({base}); sign users in and update sessions there (e.g. send the user "
        f"to {base}/signin). sign_out() works: it clears the cookies and forgets the session "
        "in this process"
    )
