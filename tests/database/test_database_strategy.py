"""The database strategy's behaviour, on MemoryAdapter and SQLiteAdapter.

What a user relies on: a stored session reads as Auth.js's session JSON; an
unknown token is no session; an expired one is pruned; ``update_age`` slides
the row and refreshes the cookie; sign-in makes a new token every time;
sign-out deletes the row, clears every cookie chunk and drops the cache;
``update`` runs the callback with ``trigger="update"``; ``hash_tokens``
keeps raw tokens out of the store.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from authsession import AuthConfig, AuthRuntime, ConfigurationError
from authsession._bridge import run_sync
from authsession._cache import token_key
from authsession._database_strategy import hash_token, slide_due
from authsession._time import iso_ms
from authsession.adapters import MemoryAdapter

from .conftest import (
    COOKIE,
    MAX_AGE,
    UPDATE_AGE,
    USER,
    CountingAdapter,
    cookie_attrs,
    expires_for_age,
    row,
    seed,
    set_cookies,
)


def cookie_expiry(header: str) -> datetime:
    return parsedate_to_datetime(cookie_attrs(header)["expires"])


# -- configuration ------------------------------------------------------------


def test_database_needs_an_adapter_but_no_secret():
    config = AuthConfig(strategy="database", adapter=MemoryAdapter())
    assert config.secrets == ()
    assert AuthRuntime(config).strategy.__class__.__name__ == "DatabaseStrategy"
    with pytest.raises(ConfigurationError, match="adapter"):
        AuthConfig(strategy="database")


def test_a_non_adapter_is_rejected_with_what_it_lacks():
    with pytest.raises(ConfigurationError, match="get_session_and_user") as info:
        AuthConfig(strategy="database", adapter=object())
    assert "MemoryAdapter" in str(info.value)  # points at the fix


def test_hash_tokens_must_be_a_bool():
    with pytest.raises(ConfigurationError, match="hash_tokens"):
        AuthConfig(strategy="database", adapter=MemoryAdapter(), hash_tokens="yes")  # type: ignore[arg-type]


# -- reading --------------------------------------------------------------------


def test_stored_session_reads_as_authjs_session_json(adapter, make_runtime):
    token, _ = seed(adapter, age=10)
    expires = row(adapter, token)["expires"]
    session = make_runtime().get_session_sync({COOKIE: token})
    assert json.loads(json.dumps(session)) == {
        "user": {"name": USER["name"], "email": USER["email"], "image": USER["image"]},
        "expires": iso_ms(expires.timestamp()),
    }
    assert session.user.email == USER["email"]


def test_stored_nulls_stay_null(adapter, make_runtime):
    token, _ = seed(adapter, user={"email": "nobody@example.com"})
    session = make_runtime().get_session_sync({COOKIE: token})
    assert session["user"] == {"name": None, "email": "nobody@example.com", "image": None}


def test_unknown_token_is_no_session_and_is_remembered_briefly(adapter, make_runtime):
    counting = CountingAdapter(adapter)
    rt = make_runtime(adapter=counting)
    response: list[tuple[str, str]] = []
    assert rt.get_session_sync(({COOKIE: "no-such-token"}, response)) is None
    assert rt.get_session_sync({COOKIE: "no-such-token"}) is None
    assert counting.calls["get_session_and_user"] == 1  # negative entry
    assert response == []  # an unknown token is not cleared (see docs/database.md)


def test_expired_session_is_pruned_and_its_cookie_cleared(adapter, make_runtime):
    token, _ = seed(adapter, age=MAX_AGE + 5)
    response: list[tuple[str, str]] = []
    assert make_runtime().get_session_sync(({COOKIE: token}, response)) is None
    assert row(adapter, token) is None
    cleared = cookie_attrs(set_cookies(response)[COOKIE])
    assert cleared["value"] == "" and cleared["max-age"] == "0"


def test_fresh_session_does_not_slide(adapter, make_runtime):
    counting = CountingAdapter(adapter)
    token, _ = seed(adapter, age=UPDATE_AGE - 60)
    before = row(adapter, token)["expires"]
    response: list[tuple[str, str]] = []
    assert make_runtime(adapter=counting).get_session_sync(({COOKIE: token}, response))
    assert counting.calls["update_session"] == 0
    assert response == []
    assert row(adapter, token)["expires"] == before


def test_due_session_slides_and_refreshes_the_cookie(adapter, make_runtime):
    token, _ = seed(adapter, age=UPDATE_AGE + 60)
    old = row(adapter, token)["expires"]
    response: list[tuple[str, str]] = []
    started = time.time()
    session = make_runtime().get_session_sync(({COOKIE: token}, response))
    new = row(adapter, token)["expires"]
    assert started + MAX_AGE - 1 <= new.timestamp() <= time.time() + MAX_AGE + 1
    header = set_cookies(response)[COOKIE]
    attrs = cookie_attrs(header)
    assert attrs["value"] == token  # same token, new expiry
    assert abs((cookie_expiry(header) - new).total_seconds()) < 1
    assert "httponly" in attrs and attrs["path"] == "/" and attrs["samesite"] == "Lax"
    # Auth.js answers the sliding request with the expiry it read.
    assert session["expires"] == iso_ms(old.timestamp())


def test_slide_rule_is_authjs_formula():
    now = 1_000_000.0
    expires = datetime.fromtimestamp(now + MAX_AGE - UPDATE_AGE, tz=timezone.utc)
    assert slide_due(expires, now, MAX_AGE, UPDATE_AGE)  # "<=": due exactly at the boundary
    later = datetime.fromtimestamp(now + MAX_AGE - UPDATE_AGE + 1, tz=timezone.utc)
    assert not slide_due(later, now, MAX_AGE, UPDATE_AGE)


def test_update_age_zero_slides_on_every_resolution(adapter, make_runtime):
    counting = CountingAdapter(adapter)
    token, _ = seed(adapter, age=1)
    rt = make_runtime(adapter=counting, update_age=0, cache=False)
    for _ in range(3):
        assert rt.get_session_sync({COOKIE: token})
    assert counting.calls["update_session"] == 3


def test_cached_reads_do_not_touch_the_store(adapter, make_runtime):
    counting = CountingAdapter(adapter)
    token, _ = seed(adapter)
    rt = make_runtime(adapter=counting)
    for _ in range(5):
        assert rt.get_session_sync({COOKIE: token})
    assert counting.calls["get_session_and_user"] == 1
    assert rt.cache_stats()["hits"] == 4


def test_cache_entry_ends_with_the_session(adapter, make_runtime):
    token, _ = seed(adapter, expires=expires_for_age(MAX_AGE - 2))  # 2 s left
    rt = make_runtime(cache={"ttl": 300})
    assert rt.get_session_sync({COOKIE: token})
    entry = rt.cache.get(token_key(token))
    assert entry is not None and entry.deadline - time.monotonic() <= 2.0


def test_bearer_token_reads_and_slides_without_cookies(adapter, make_runtime):
    token, _ = seed(adapter, age=UPDATE_AGE + 60)
    response: list[tuple[str, str]] = []
    session = make_runtime().get_session_sync(({"authorization": f"Bearer {token}"}, response))
    assert session is not None
    assert response == []
    assert row(adapter, token)["expires"].timestamp() > time.time() + MAX_AGE - 5


def test_v4_cookie_name_slides_under_its_own_name(adapter, make_runtime):
    token, _ = seed(adapter, age=UPDATE_AGE + 60)
    response: list[tuple[str, str]] = []
    assert make_runtime().get_session_sync(({"next-auth.session-token": token}, response))
    assert list(set_cookies(response)) == ["next-auth.session-token"]


# -- callbacks ------------------------------------------------------------------


def test_session_callback_receives_the_stored_user(adapter, make_runtime):
    seen: dict[str, Any] = {}

    def session_cb(session, user, token, trigger, new_session):
        seen.update(session=session, user=user, token=token, trigger=trigger, new=new_session)
        return {
            **session,
            "user": {**session["user"], "id": user["id"]},
            "verified": user["emailVerified"],
        }

    verified = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    token, stored = seed(adapter, user={**USER, "emailVerified": verified})
    session = make_runtime(callbacks={"session": session_cb}).get_session_sync({COOKIE: token})
    assert seen["user"]["id"] == stored["id"] and seen["user"]["email"] == USER["email"]
    assert seen["token"] is None and seen["trigger"] is None and seen["new"] is None
    # The session handed to the callback is the default shape, never the row
    # (which would carry the session token).
    assert set(seen["session"]) == {"user", "expires"}
    assert token not in json.dumps(session)
    assert session.user.id == stored["id"]
    # A datetime serialises the way JSON.stringify writes a Date.
    assert session["verified"] == "2024-05-01T12:00:00.123Z"


async def test_async_session_callback(adapter, make_runtime):
    async def session_cb(session, user):
        await asyncio.sleep(0)
        return {"user": {"id": user["id"]}, "expires": session["expires"]}

    token, stored = seed(adapter)
    session = await make_runtime(callbacks={"session": session_cb}).get_session({COOKIE: token})
    assert session == {"user": {"id": stored["id"]}, "expires": session["expires"]}


def test_session_callback_returning_none_is_no_session(adapter, make_runtime):
    token, _ = seed(adapter)
    rt = make_runtime(callbacks={"session": lambda session: None})
    assert rt.get_session_sync({COOKIE: token}) is None


# -- sign-in ----------------------------------------------------------------------


def test_sign_in_stores_a_session_and_writes_its_cookie(adapter, make_runtime):
    rt = make_runtime()
    response: list[tuple[str, str]] = []
    started = time.time()
    token = rt.sign_in_sync(dict(USER), response)
    header = set_cookies(response)[COOKIE]
    assert cookie_attrs(header)["value"] == token
    stored = row(adapter, token)
    assert stored is not None
    assert abs(stored["expires"].timestamp() - (started + MAX_AGE)) < 2
    assert abs((cookie_expiry(header) - stored["expires"]).total_seconds()) < 1
    assert len(token) >= 43  # 256 random bits
    session = rt.get_session_sync({COOKIE: token})
    assert session.user.name == USER["name"]


def test_sign_in_makes_a_new_token_every_time(adapter, make_runtime):
    rt = make_runtime()
    first_response: list[tuple[str, str]] = []
    first = rt.sign_in_sync(dict(USER), first_response)
    # Signing in again while presenting the first token never reuses it.
    second = rt.sign_in_sync(dict(USER), [], request={COOKIE: first})
    assert first != second
    one, two = (
        run_sync(adapter.get_session_and_user(first)),
        run_sync(adapter.get_session_and_user(second)),
    )
    # The same user (found by email), two sessions.
    assert one["user"]["id"] == two["user"]["id"]


def test_sign_in_finds_the_user_by_id(adapter, make_runtime):
    stored = run_sync(adapter.create_user({**USER, "email": "other@example.com"}))
    token = make_runtime().sign_in_sync({"id": stored["id"], "name": "ignored"})
    found = run_sync(adapter.get_session_and_user(token))
    assert found["user"]["id"] == stored["id"] and found["user"]["email"] == "other@example.com"


def test_sign_in_with_a_cookie_secure_name_on_https(adapter, make_runtime):
    response: list[tuple[str, str]] = []
    make_runtime(secure_cookie=True).sign_in_sync(dict(USER), response)
    (name,) = set_cookies(response)
    assert name == "__Secure-" + COOKIE
    assert "secure" in cookie_attrs(set_cookies(response)[name])


async def test_async_sign_in(adapter, make_runtime):
    rt = make_runtime()
    token = await rt.sign_in(dict(USER))
    assert (await rt.get_session({COOKIE: token})).user.email == USER["email"]


# -- sign-out ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_sign_out_deletes_the_row_clears_chunks_and_drops_the_cache(adapter, make_runtime, mode):
    rt = make_runtime()
    token = rt.sign_in_sync(dict(USER))
    assert rt.get_session_sync({COOKIE: token})  # now cached
    cookies = {COOKIE: token, COOKIE + ".0": "stale", COOKIE + ".1": "stale"}
    response: list[tuple[str, str]] = []
    if mode == "sync":
        rt.sign_out_sync(cookies, response)
    else:
        asyncio.run(rt.sign_out(cookies, response))
    assert row(adapter, token) is None
    cleared = set_cookies(response)
    assert set(cleared) == {COOKIE, COOKIE + ".0", COOKIE + ".1"}
    assert all(cookie_attrs(h)["max-age"] == "0" for h in cleared.values())
    assert rt.cache_stats()["invalidations"] >= 1
    assert rt.get_session_sync({COOKIE: token}) is None


def test_sign_out_without_a_session_still_clears_the_cookie(make_runtime):
    response: list[tuple[str, str]] = []
    make_runtime().sign_out_sync({}, response)
    assert cookie_attrs(set_cookies(response)[COOKIE])["max-age"] == "0"


# -- update -----------------------------------------------------------------------


def test_update_runs_the_callback_with_trigger_update(adapter, make_runtime):
    calls: list[tuple[Any, Any]] = []

    def session_cb(session, user, trigger, new_session):
        calls.append((trigger, new_session))
        if trigger == "update":
            return {**session, "user": {**session["user"], "name": new_session["name"]}}
        return session

    token, _ = seed(adapter, age=UPDATE_AGE + 60)
    rt = make_runtime(callbacks={"session": session_cb})
    before = rt.get_session_sync({COOKIE: token})
    response: list[tuple[str, str]] = []
    updated = rt.update_session_sync({COOKIE: token}, {"name": "Grace"}, response)
    assert updated.user.name == "Grace"
    assert calls[-1] == ("update", {"name": "Grace"})
    # The update does not stick in the cache: the next read runs the callback
    # without a trigger, as the next /api/auth/session poll would.
    after = rt.get_session_sync({COOKIE: token})
    assert after.user.name == before.user.name == USER["name"]
    assert calls[-1] == (None, None)


def test_update_slides_a_due_session(adapter, make_runtime):
    token, _ = seed(adapter, age=UPDATE_AGE + 60)
    response: list[tuple[str, str]] = []
    assert make_runtime().update_session_sync({COOKIE: token}, {"x": 1}, response)
    assert row(adapter, token)["expires"].timestamp() > time.time() + MAX_AGE - 5
    assert cookie_attrs(set_cookies(response)[COOKIE])["value"] == token


def test_update_of_an_unknown_session_is_none(make_runtime):
    assert make_runtime().update_session_sync({COOKIE: "nope"}, {"x": 1}) is None


# -- hash_tokens ------------------------------------------------------------------


def test_hash_tokens_stores_only_the_digest(adapter, make_runtime):
    rt = make_runtime(hash_tokens=True)
    response: list[tuple[str, str]] = []
    token = rt.sign_in_sync(dict(USER), response)
    assert cookie_attrs(set_cookies(response)[COOKIE])["value"] == token  # raw in the cookie
    assert row(adapter, token) is None  # ... never in the store
    digest = hash_token(token)
    assert digest == __import__("hashlib").sha256(token.encode()).hexdigest()
    assert row(adapter, digest) is not None
    assert rt.get_session_sync({COOKIE: token}).user.email == USER["email"]
    # Presenting the stored value as a cookie gets nothing: a leaked table is useless.
    assert rt.get_session_sync({COOKIE: digest}) is None
    rt.sign_out_sync({COOKIE: token})
    assert row(adapter, digest) is None


def test_hash_tokens_slides_and_prunes_by_digest(adapter, make_runtime):
    due, _ = seed(adapter, token=hash_token("due-token"), age=UPDATE_AGE + 60)
    gone, _ = seed(adapter, token=hash_token("old-token"), age=MAX_AGE + 60)
    rt = make_runtime(hash_tokens=True)
    response: list[tuple[str, str]] = []
    assert rt.get_session_sync(({COOKIE: "due-token"}, response))
    assert cookie_attrs(set_cookies(response)[COOKIE])["value"] == "due-token"
    assert row(adapter, due)["expires"].timestamp() > time.time() + MAX_AGE - 5
    assert rt.get_session_sync({COOKIE: "old-token"}) is None
    assert row(adapter, gone) is None


def test_a_session_deleted_elsewhere_disappears_after_the_cache_ttl(adapter, make_runtime):
    token, _ = seed(adapter)
    rt = make_runtime(cache={"ttl": 0.2})
    assert rt.get_session_sync({COOKIE: token})
    run_sync(adapter.delete_session(token))  # e.g. the Auth.js app signed the user out
    deadline = time.monotonic() + 5
    while rt.get_session_sync({COOKIE: token}) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
