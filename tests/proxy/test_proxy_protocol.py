"""The sans-I/O half of proxy mode: the request built, replies read, breaker, backoff."""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote

import pytest

from authsession import jwt
from authsession._cookies import CHUNK_SIZE, CookieName, FoundCookie, candidate_names
from authsession._proxy_protocol import (
    Reply,
    UpstreamHealth,
    backoff_delay,
    build_request,
    forwarded_cookies,
    interpret,
    parse_set_cookie,
    reissued_token,
    relayed_writes,
    session_cookie_matcher,
)
from authsession.jwt import v4 as jwt_v4
from authsession.jwt._jwe import b64url_encode, parse_header

from .conftest import session_body

SECRET = "s" * 32

CANDIDATES = candidate_names(None, None)
V5 = next(c for c in CANDIDATES if c.name == "authjs.session-token")
SECURE_V4 = next(c for c in CANDIDATES if c.name == "__Secure-next-auth.session-token")


def cookie_pairs(header: str) -> list[tuple[str, str]]:
    return [tuple(part.split("=", 1)) for part in header.split("; ")]  # type: ignore[misc]


def test_a_whole_cookie_is_forwarded_under_its_own_name_only() -> None:
    found = FoundCookie(SECURE_V4, "abc", (SECURE_V4.name,))
    assert forwarded_cookies(found, CANDIDATES) == [(SECURE_V4.name, "abc")]


def test_chunks_are_forwarded_as_chunks_in_auth_js_layout() -> None:
    value = "x" * CHUNK_SIZE + "y" * 10
    found = FoundCookie(V5, value, (V5.name + ".0", V5.name + ".1"))
    sent = forwarded_cookies(found, CANDIDATES)
    assert [name for name, _ in sent] == [V5.name + ".0", V5.name + ".1"]
    assert "".join(v for _, v in sent) == value
    # Even a short value that arrived chunked keeps the chunk name.
    short = FoundCookie(V5, "abc", (V5.name + ".0",))
    assert forwarded_cookies(short, CANDIDATES) == [(V5.name + ".0", "abc")]


V5_NAMES = ["__Secure-authjs.session-token", "authjs.session-token"]
V4_NAMES = ["__Secure-next-auth.session-token", "next-auth.session-token"]


def header_of(token: str) -> dict[str, object]:
    return parse_header(token.split(".")[0])


def names_sent(token: str, candidates: tuple[CookieName, ...] = CANDIDATES) -> list[str]:
    return [name for name, _ in forwarded_cookies(FoundCookie(None, token, ()), candidates)]


def test_a_bearer_token_goes_under_the_names_of_the_version_that_wrote_it() -> None:
    v5 = jwt.encode({"sub": "1"}, SECRET, "authjs.session-token")
    v4 = jwt_v4.encode({"sub": "1"}, SECRET)
    assert "kid" in header_of(v5) and "kid" not in header_of(v4)
    assert names_sent(v5) == V5_NAMES
    assert names_sent(v4) == V4_NAMES
    # An early v5 token: A256CBC-HS512 without a kid (v4 only ever wrote A256GCM).
    cbc = b64url_encode(b'{"alg":"dir","enc":"A256CBC-HS512"}') + "..iv.ct.tag"
    assert names_sent(cbc) == V5_NAMES
    # Not a JWE (a database session token, a custom encode): could be either.
    for other in ("9f1c2d3e-aaaa-bbbb-cccc-000000000000", "a.b.c.d.e", "x" * 40):
        assert names_sent(other) == [c.name for c in CANDIDATES]
    # Only the configured names, whatever the token says.
    assert names_sent(v4, candidate_names(None, False)) == ["next-auth.session-token"]
    only = candidate_names("custom.session-token", None)
    assert names_sent(v4, only) == names_sent("tok", only) == ["custom.session-token"]


def test_a_large_bearer_token_is_sent_chunked_under_two_names_not_four() -> None:
    token = jwt.encode({"sub": "1", "big": "x" * 6000}, SECRET, "authjs.session-token")
    sent = forwarded_cookies(FoundCookie(None, token, ()), CANDIDATES)
    assert {name.rsplit(".", 1)[0] for name, _ in sent} == set(V5_NAMES)
    for base in V5_NAMES:
        assert "".join(v for name, v in sent if name.startswith(base + ".")) == token


def test_request_headers_static_extras_accept_and_an_encoded_cookie() -> None:
    found = FoundCookie(V5, 'a;b "c"\r\n%', (V5.name,))
    request = build_request("https://up/api/auth/session", (("X-Key", "k"),), found, CANDIDATES)
    headers = dict(request.headers)
    assert headers["X-Key"] == "k"
    assert headers["accept"] == "application/json"
    cookie = headers["cookie"]
    assert ";" not in cookie.split("=", 1)[1] and "\r" not in cookie and " " not in cookie
    name, value = cookie.split("=", 1)
    assert name == V5.name and unquote(value) == found.value
    custom_accept = build_request("u", (("Accept", "*/*"),), found, CANDIDATES)
    assert [n for n, _ in custom_accept.headers].count("accept") == 0


def test_set_cookie_parsing_keeps_attributes() -> None:
    write = parse_set_cookie(
        "__Secure-authjs.session-token=abc%2Fd; Path=/; Domain=.example.com; "
        "Expires=Thu, 01 Jan 2099 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict"
    )
    assert write is not None
    assert (write.name, write.value, write.path, write.domain) == (
        "__Secure-authjs.session-token",
        "abc%2Fd",
        "/",
        ".example.com",
    )
    assert write.secure and write.httponly and write.samesite == "strict"
    assert write.expires is not None and write.expires.year == 2099
    header = write.header_value()
    assert "Domain=.example.com" in header and "Secure" in header
    deletion = parse_set_cookie("authjs.session-token=; Path=/; Max-Age=0; HttpOnly")
    assert deletion is not None and deletion.max_age == 0 and deletion.value == ""
    assert parse_set_cookie("garbage") is None


def test_only_session_cookies_are_relayed() -> None:
    matches = session_cookie_matcher(CANDIDATES)
    headers = [
        "authjs.csrf-token=abc%7Cdef; Path=/; HttpOnly; SameSite=Lax",
        "authjs.callback-url=http%3A%2F%2Fx; Path=/; HttpOnly; SameSite=Lax",
        "authjs.session-token.0=part0; Path=/; HttpOnly; SameSite=Lax",
        "authjs.session-token.1=part1; Path=/; HttpOnly; SameSite=Lax",
        "authjs.session-token=; Path=/; Max-Age=0",
        "authjs.session-tokenX=sneaky; Path=/",
        "theme=dark; Path=/",
    ]
    writes = relayed_writes(headers, matches)
    assert [w.name for w in writes] == [
        "authjs.session-token.0",
        "authjs.session-token.1",
        "authjs.session-token",
    ]
    assert reissued_token(writes, CANDIDATES) == "part0part1"


def reply(body: object, status: int = 200, set_cookies: tuple[str, ...] = ()) -> Reply:
    return Reply(status, set_cookies, json.dumps(body).encode())


def test_interpret_a_session() -> None:
    body = session_body("bob")
    outcome = interpret(reply(body), None)
    assert outcome.kind == "session"
    assert outcome.session == body
    assert outcome.expires_at is not None


@pytest.mark.parametrize("body", [None, {}])
def test_interpret_no_session(body: object) -> None:
    assert interpret(reply(body), None).kind == "none"
    assert interpret(Reply(200, (), b""), None).kind == "none"


@pytest.mark.parametrize(
    ("given", "kind"),
    [
        (Reply(error="ConnectError: refused"), "failure"),
        (reply(session_body(), status=500), "failure"),
        (reply(session_body(), status=503), "failure"),
        (reply(session_body(), status=302), "failure"),
        # A 4xx refuses this request (an oversized cookie at a front proxy):
        # "no session" for it, not an outage.
        (reply(None, status=400), "none"),
        (reply(session_body(), status=401), "none"),
        (reply(session_body(), status=404), "none"),
        (reply(None, status=431), "none"),
        (reply(None, status=499), "none"),
        (Reply(200, (), b"<html>not json</html>"), "failure"),
        (Reply(200, (), b"\xff\xfe"), "failure"),
        (reply([session_body()]), "failure"),
        (reply("a string"), "failure"),
        (reply({"user": {"name": "x"}}), "failure"),
        (reply({"user": {"name": "x"}, "expires": 12}), "failure"),
        (reply({"user": {"name": "x"}, "expires": "soon"}), "failure"),
        (reply({"user": {"name": "x"}, "expires": "2099-01-01T00:00:00"}), "failure"),
        (reply(session_body(expires_in=-5)), "none"),
        (Reply(200, (), b"{}", truncated=True), "failure"),
    ],
)
def test_interpret_everything_else(given: Reply, kind: str) -> None:
    assert interpret(given, None).kind == kind


def test_failures_relay_no_cookies() -> None:
    matches = session_cookie_matcher(CANDIDATES)
    clear = ("authjs.session-token=; Path=/; Max-Age=0",)
    assert interpret(reply(None, 500, clear), matches).writes == ()
    assert [w.name for w in interpret(reply(None, 200, clear), matches).writes] == [
        "authjs.session-token"
    ]
    assert interpret(reply(None, 200, clear), None).writes == ()


def test_backoff_grows_is_capped_and_jittered() -> None:
    assert backoff_delay(0, 0.1, 5, rng=lambda: 0.0) == pytest.approx(0.05)
    assert backoff_delay(0, 0.1, 5, rng=lambda: 1.0) == pytest.approx(0.1)
    assert backoff_delay(3, 0.1, 5, rng=lambda: 1.0) == pytest.approx(0.8)
    assert backoff_delay(10, 0.1, 1.0, rng=lambda: 1.0) == pytest.approx(1.0)
    assert 0.4 <= backoff_delay(3, 0.1, 5) <= 0.8


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_fails_fast_half_opens_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    health = UpstreamHealth("https://up/api/auth/session", 3, 5.0, 30.0, clock)
    caplog.set_level(logging.DEBUG, "authsession")
    for _ in range(3):
        assert health.admit()
        health.record(False, "ConnectError: refused")
    assert health.state == "open"
    assert not health.admit()
    clock.now += 4.9
    assert not health.admit()
    clock.now += 0.2
    assert health.admit()  # the one trial
    assert health.state == "half-open"
    assert not health.admit()  # everyone else still fails fast
    health.record(False, "ConnectError: refused")
    assert health.state == "open" and not health.admit()
    clock.now += 5.1
    assert health.admit()
    health.record(True)
    assert health.state == "closed" and health.admit()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one warning per outage"
    assert "recovered after 4" in caplog.text


def test_a_lost_trial_is_written_off() -> None:
    clock = Clock()
    health = UpstreamHealth("u", 1, 1.0, 10.0, clock)
    health.record(False, "x")
    clock.now += 1.5
    assert health.admit()
    assert not health.admit()
    health.abandon()  # the trial was cancelled: let the next request try
    assert health.admit()
    clock.now += 10.5  # and one that never reports is written off
    assert health.admit()


def test_a_new_outage_warns_again(caplog: pytest.LogCaptureFixture) -> None:
    health = UpstreamHealth("u", 5, 1.0, 10.0)
    caplog.set_level(logging.WARNING, "authsession")
    health.record(False, "a")
    health.record(False, "b")
    health.record(True)
    health.record(False, "c")
    assert len(caplog.records) == 2
