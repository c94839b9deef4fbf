"""Which sign-outs are remembered: only tokens proven live, whatever the strategy.

A sign-out route takes any cookie. Remembering whatever it is given would let
anyone push real revocations out of the bounded denylist (``max_revoked``) by
signing out random cookies, after which a stolen copy of a signed-out cookie
works again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
from tests.conftest import SECRET

from authsession import AuthConfig, AuthRuntime, jwt
from authsession._cache import LIVE_MEMORY, token_key
from authsession._cookies import FoundCookie
from authsession._proxy_config import ProxyConfig
from authsession._time import iso_ms
from authsession.adapters import MemoryAdapter

NAME = "authjs.session-token"
VICTIM = "victim-token-value"


def proxy_runtime(**cache: Any) -> AuthRuntime:
    """Proxy mode against an upstream that knows one session: ``VICTIM``'s."""

    def upstream(request: httpx.Request) -> httpx.Response:
        live = f"{NAME}={VICTIM}" in request.headers.get("cookie", "")
        body = {"user": {"name": "victim"}, "expires": iso_ms(time.time() + 3600)}
        return httpx.Response(200, json=body if live else None)

    return AuthRuntime(
        ProxyConfig(
            upstream_url="https://upstream.test",
            transport=httpx.MockTransport(upstream),
            retries=0,
            cache=cache,
        )
    )


def flood(rt: AuthRuntime, count: int) -> None:
    """An anonymous client posting random cookies to the app's sign-out route."""
    for _ in range(count):
        rt.sign_out_sync({NAME: secrets.token_hex(16)})


# -- proxy ----------------------------------------------------------------------


def test_random_proxy_cookies_signed_out_do_not_flush_a_real_revocation():
    rt = proxy_runtime(max_revoked=3)
    victim = {NAME: VICTIM}
    try:
        assert rt.get_session_sync(victim) is not None
        rt.sign_out_sync(victim)
        assert rt.get_session_sync(victim) is None
        flood(rt, 20)
        stats = rt.cache_stats()
        assert stats["revocations"] == 1 and stats["revoked"] == 1
        # the stolen copy of the signed-out cookie is still refused
        assert rt.get_session_sync(victim) is None
        assert asyncio.run(rt.get_session(victim)) is None
    finally:
        rt.close()


def test_a_proxy_token_resolved_with_the_cache_off_is_still_refused_after_sign_out():
    rt = proxy_runtime(enabled=False, max_revoked=3)
    victim = {NAME: VICTIM}
    try:
        assert rt.get_session_sync(victim) is not None  # resolved live, not cached
        rt.sign_out_sync(victim)
        flood(rt, 10)
        assert rt.get_session_sync(victim) is None
        assert rt.cache_stats()["revoked"] == 1
    finally:
        rt.close()


def test_a_proxy_token_never_seen_live_is_only_dropped():
    rt = proxy_runtime()
    try:
        # A real session, but this process never resolved it: nothing proves
        # it live, so the sign-out cannot tell it from a random cookie.
        rt.sign_out_sync({NAME: VICTIM})
        assert rt.cache_stats()["revoked"] == 0
        # ... unless the caller says it resolved live
        found = FoundCookie(None, VICTIM, ())
        rt.invalidation.revoke(found, live=True)
        assert rt.cache.is_revoked(token_key(VICTIM))
    finally:
        rt.close()


def test_live_memory_is_bounded():
    rt = proxy_runtime(enabled=False)
    try:
        cache = rt.cache
        with cache._lock:
            for i in range(LIVE_MEMORY + 10):
                cache._note_live(i.to_bytes(32, "big"))
        assert cache._live is not None and len(cache._live) == LIVE_MEMORY
        assert not cache.was_live((0).to_bytes(32, "big"))
        assert cache.was_live((LIVE_MEMORY + 9).to_bytes(32, "big"))
    finally:
        rt.close()


# -- jwt ------------------------------------------------------------------------


def test_jwt_sign_outs_remember_only_tokens_that_decode():
    rt = AuthRuntime(AuthConfig(secret=SECRET, cache={"max_revoked": 2}))
    header = f"{NAME}={rt.sign_in_sync({'id': '1', 'name': 'Ada'})}"
    expired = jwt.encode({"name": "Old"}, SECRET, NAME, max_age=-3600)
    rt.sign_out_sync(header)
    flood(rt, 10)
    rt.sign_out_sync({NAME: expired})  # no longer a session: nothing to refuse
    other_secret = jwt.encode({"name": "Eve"}, "x" * 32, NAME, max_age=3600)
    rt.sign_out_sync({NAME: other_secret})
    stats = rt.cache_stats()
    assert stats["revocations"] == 1 and stats["revoked"] == 1
    assert rt.get_session_sync(header) is None
    # the caller may veto: live=False never refuses, even a decodable token
    value = rt.sign_in_sync({"id": "2", "name": "Bob"})
    rt.invalidation.revoke(FoundCookie(None, value, ()), live=False)
    assert rt.get_session_sync({"authorization": f"Bearer {value}"}) is not None


# -- database -------------------------------------------------------------------


def test_database_sign_outs_delete_the_row_and_keep_the_denylist_empty():
    adapter = MemoryAdapter()
    rt = AuthRuntime(AuthConfig(strategy="database", adapter=adapter, cache={"max_revoked": 2}))
    try:
        token = rt.sign_in_sync({"id": "1", "name": "Ada", "email": "ada@example.com"})
        victim = {NAME: token}
        assert rt.get_session_sync(victim) is not None
        rt.sign_out_sync(victim)
        flood(rt, 5)
        stats = rt.cache_stats()
        assert stats["revocations"] == 0 and stats["revoked"] == 0
        assert stats["size"] == 0  # the cached session went
        assert rt.get_session_sync(victim) is None  # refused by the missing row
    finally:
        rt.close()
