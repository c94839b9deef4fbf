"""Which cookie values are looked up in the store at all.

Sign-in issues URL-safe base64 tokens here and UUIDs in Auth.js apps sharing
the store; anything else -- a NUL byte, ``:``, spaces, kilobytes -- is no
session without a store round trip: logged at INFO (never the value), cached
as "no session" like an unknown token, and never counted as an adapter
outage.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from authsession._bridge import run_sync
from authsession._database_strategy import MAX_TOKEN_LENGTH, new_session_token, plausible_token

from .conftest import COOKIE, USER, CountingAdapter, RuntimeFactory, seed


@pytest.mark.parametrize(
    "token",
    [
        new_session_token(),
        str(uuid.uuid4()),  # Auth.js's default
        uuid.uuid4().hex,
        "abc.def-ghi_jkl",
        "x" * MAX_TOKEN_LENGTH,
    ],
)
def test_issued_token_shapes_are_looked_up(token: str) -> None:
    assert plausible_token(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "\x00evil",
        "by-user-id:1",
        "a b",
        "tok\n",
        "é" * 10,
        "x" * (MAX_TOKEN_LENGTH + 1),
        "a/b",
        "a+b=",
        "١٢٣",
    ],
)
def test_other_values_are_not(token: str) -> None:
    assert not plausible_token(token)


def test_a_crafted_token_is_no_session_without_asking_the_store(
    adapter: Any, make_runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    counting = CountingAdapter(adapter)
    rt = make_runtime(adapter=counting)
    caplog.set_level(logging.INFO, logger="authsession")
    for _ in range(3):
        assert rt.get_session_sync(f"{COOKIE}=%00evil") is None
    assert counting.total == 0
    assert rt.cache_stats()["hits"] >= 2  # remembered as no session
    assert rt.strategy.health.outages == 0
    (record,) = [r for r in caplog.records if "no sign-in issues" in r.getMessage()]
    assert record.levelno == logging.INFO and "evil" not in record.getMessage()


def test_an_authjs_uuid_token_still_reads(adapter: Any, make_runtime: RuntimeFactory) -> None:
    token, _ = seed(adapter, token=str(uuid.uuid4()))
    assert make_runtime().get_session_sync({COOKIE: token}).user.email == USER["email"]


def test_hash_tokens_checks_the_cookie_value(adapter: Any, make_runtime: RuntimeFactory) -> None:
    rt = make_runtime(hash_tokens=True)
    token = rt.sign_in_sync(dict(USER))
    assert rt.get_session_sync({COOKIE: token}) is not None
    assert rt.get_session_sync({COOKIE: token + "\x00"}) is None


def test_sign_out_and_update_with_a_crafted_token_touch_nothing(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    counting = CountingAdapter(adapter)
    rt = make_runtime(adapter=counting)
    response: list[tuple[str, str]] = []
    rt.sign_out_sync({COOKIE: "by-user-id:1"}, response)
    assert any(key == "set-cookie" and COOKIE in value for key, value in response)  # cleared
    assert rt.update_session_sync({COOKIE: "by-user-id:1"}, {"x": 1}) is None
    assert counting.total == 0
    assert run_sync(adapter.get_session_and_user("by-user-id:1")) is None
