"""authsession against a real Auth.js server (``Auth()`` from ``@auth/core``).

A real Credentials sign-in produces the cookies; authsession must turn them
into exactly the JSON the server's own ``/api/auth/session`` returns, and the
server must accept what authsession writes.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest

import authsession
import authsession.jwt
from authsession import AuthConfig, AuthRuntime, Session

from ._harness import (
    BIG_CLAIM,
    SECRET,
    SECURE_SESSION_COOKIE,
    SESSION_COOKIE,
    AuthJsServer,
    JwtTool,
    SignInResult,
    apply_set_cookies,
    cookie_header,
    get_session,
    get_session_json,
    parse_set_cookie,
    session_cookie_value,
    sign_in,
)

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
THIRTY_DAYS = 30 * 24 * 60 * 60
EXPIRES_SLACK = 5.0  # seconds between the server's and authsession's "now"


def expected_user(username: str) -> dict[str, str]:
    return {
        "name": username,
        "email": f"{username}@example.com",
        "image": f"https://example.com/{username}.png",
    }


def parse_expires(value: Any) -> datetime:
    assert isinstance(value, str), value
    assert ISO_MS_Z.match(value), f"expires {value!r} is not ISO 8601 with ms and Z"
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def assert_expires_now_plus(value: Any, max_age: int = THIRTY_DAYS) -> datetime:
    when = parse_expires(value)
    delta = (when - datetime.now(timezone.utc)).total_seconds()
    assert abs(delta - max_age) <= EXPIRES_SLACK, (value, delta)
    return when


def session_json(session: Session) -> Any:
    """What authsession would put on the wire for this session."""
    assert isinstance(session, Session)
    assert isinstance(session, dict)
    return json.loads(json.dumps(dict(session)))


def assert_same_session(py: Any, server: Any) -> None:
    """Equal JSON except ``expires``, which both compute as now + maxAge."""
    assert server is not None, "the Auth.js server returned no session"
    assert py is not None, "authsession returned no session"
    py_rest = {k: v for k, v in py.items() if k != "expires"}
    server_rest = {k: v for k, v in server.items() if k != "expires"}
    assert py_rest == server_rest
    assert set(py) == set(server)
    py_when = assert_expires_now_plus(py["expires"])
    server_when = assert_expires_now_plus(server["expires"])
    assert abs((py_when - server_when).total_seconds()) <= EXPIRES_SLACK
    # Same key order too (JSON-identical, not merely equal).
    assert list(py) == list(server)
    assert list(py["user"]) == list(server["user"])


def set_cookie_for(result: SignInResult, name: str):
    matches = [parse_set_cookie(h) for h in result.set_cookie if h.startswith(name + "=")]
    assert len(matches) == 1, result.set_cookie
    return matches[0]


def assert_session_cookie_attributes(cookie, *, secure: bool) -> None:
    attrs = cookie.attributes
    assert attrs.get("path") == "/"
    assert "httponly" in attrs
    assert attrs.get("samesite", "").lower() == "lax"
    assert ("secure" in attrs) is secure
    assert "expires" in attrs  # Auth.js writes Expires=..., not Max-Age
    assert "max-age" not in attrs
    assert "domain" not in attrs


# --------------------------------------------------------------------------- #
# Sign-ins, one per server configuration
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def plain_signin(authjs_plain: AuthJsServer) -> SignInResult:
    return sign_in(authjs_plain.base_url, "alice")


@pytest.fixture(scope="module")
def secure_signin(authjs_secure: AuthJsServer) -> SignInResult:
    return sign_in(authjs_secure.base_url, "bob")


@pytest.fixture(scope="module")
def chunked_signin(authjs_chunked: AuthJsServer) -> SignInResult:
    return sign_in(authjs_chunked.base_url, "carol")


def copy_sub_to_user_id(session: dict, token: dict, **kw: Any) -> dict:
    session["user"]["id"] = token["sub"]
    return session


# --------------------------------------------------------------------------- #
# Plain cookies
# --------------------------------------------------------------------------- #


def test_signin_sets_plain_session_cookie(plain_signin: SignInResult) -> None:
    assert SESSION_COOKIE in plain_signin.cookies
    assert not any(name.startswith(SESSION_COOKIE + ".") for name in plain_signin.cookies)
    assert not any(name.startswith("__") for name in plain_signin.cookies)
    assert_session_cookie_attributes(set_cookie_for(plain_signin, SESSION_COOKIE), secure=False)


async def test_plain_session_matches_server(
    authjs_plain: AuthJsServer, plain_signin: SignInResult
) -> None:
    session = await authsession.get_server_session(plain_signin.cookies, AuthConfig(secret=SECRET))
    server = get_session_json(authjs_plain.base_url, plain_signin.cookies)
    assert server["user"] == expected_user("alice")
    assert_same_session(session_json(session), server)
    assert session.user.name == "alice"
    assert session["user"]["email"] == "alice@example.com"
    assert session.expires == session["expires"]


async def test_plain_session_from_cookie_header_and_headers(
    authjs_plain: AuthJsServer, plain_signin: SignInResult
) -> None:
    config = AuthConfig(secret=SECRET)
    header = cookie_header(plain_signin.jar)  # csrf and callback-url cookies too
    server = get_session_json(authjs_plain.base_url, plain_signin.jar)
    for source in (header, {"cookie": header}):
        session = await authsession.get_server_session(source, config)
        assert_same_session(session_json(session), server)
    sync_session = authsession.get_server_session_sync(plain_signin.cookies, config)
    assert_same_session(session_json(sync_session), server)


def test_plain_get_token_matches_authjs_decode(
    jwt_tool: JwtTool, plain_signin: SignInResult
) -> None:
    token = authsession.get_token(plain_signin.cookies, secret=SECRET)
    assert isinstance(token, dict)
    raw = plain_signin.cookies[SESSION_COOKIE]
    assert token == jwt_tool.decode(raw, SECRET, SESSION_COOKIE)
    assert {"sub", "name", "email", "picture", "iat", "exp", "jti"} <= set(token)
    assert token["sub"] == "user-alice"
    assert token["name"] == "alice"
    assert token["email"] == "alice@example.com"
    assert token["picture"] == "https://example.com/alice.png"
    assert token["exp"] - token["iat"] == THIRTY_DAYS
    assert authsession.get_token(plain_signin.cookies, secret=SECRET, raw=True) == raw


async def test_server_refreshed_cookie_still_matches(
    authjs_plain: AuthJsServer, plain_signin: SignInResult
) -> None:
    """/api/auth/session re-issues the cookie; the re-issued one must read the same."""
    res = get_session(authjs_plain.base_url, plain_signin.cookies)
    refreshed: dict[str, str] = {}
    apply_set_cookies(refreshed, res.set_cookie)
    assert refreshed[SESSION_COOKIE] != plain_signin.cookies[SESSION_COOKIE]
    session = await authsession.get_server_session(refreshed, AuthConfig(secret=SECRET))
    assert_same_session(session_json(session), res.json)


async def test_no_cookie_is_null_on_both_sides(authjs_plain: AuthJsServer) -> None:
    res = get_session(authjs_plain.base_url, {})
    assert res.status == 200
    assert res.text == "null"
    assert res.json is None
    assert await authsession.get_server_session({}, AuthConfig(secret=SECRET)) is None


async def test_tampered_cookie_is_null_on_both_sides(
    authjs_plain: AuthJsServer, plain_signin: SignInResult
) -> None:
    value = plain_signin.cookies[SESSION_COOKIE]
    bad = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    cookies = {SESSION_COOKIE: bad}
    res = get_session(authjs_plain.base_url, cookies)
    assert res.json is None
    # Auth.js clears the broken cookie.
    cleared = [parse_set_cookie(h) for h in res.set_cookie]
    assert any(c.name == SESSION_COOKIE and c.deletes for c in cleared), res.set_cookie
    assert await authsession.get_server_session(cookies, AuthConfig(secret=SECRET)) is None


async def test_wrong_secret_gives_no_session(plain_signin: SignInResult) -> None:
    config = AuthConfig(secret="not-the-secret")
    assert await authsession.get_server_session(plain_signin.cookies, config) is None


async def test_rotated_secret_list_reads_authjs_cookie(
    authjs_plain: AuthJsServer, plain_signin: SignInResult
) -> None:
    config = AuthConfig(secret=["a-newer-secret", SECRET])
    session = await authsession.get_server_session(plain_signin.cookies, config)
    assert_same_session(
        session_json(session), get_session_json(authjs_plain.base_url, plain_signin.cookies)
    )


# --------------------------------------------------------------------------- #
# Chunked cookies (AUTH_BIG_CLAIM=6000)
# --------------------------------------------------------------------------- #


def test_signin_sets_chunked_cookies(chunked_signin: SignInResult) -> None:
    names = set(chunked_signin.cookies)
    assert f"{SESSION_COOKIE}.0" in names
    assert f"{SESSION_COOKIE}.1" in names
    assert SESSION_COOKIE not in names
    for name in names:
        if name.startswith(SESSION_COOKIE):
            assert_session_cookie_attributes(set_cookie_for(chunked_signin, name), secure=False)
            assert len(chunked_signin.cookies[name]) <= 4096 - 160


async def test_chunked_session_matches_server(
    authjs_chunked: AuthJsServer, chunked_signin: SignInResult
) -> None:
    config = AuthConfig(secret=SECRET, callbacks={"session": copy_sub_to_user_id})
    session = await authsession.get_server_session(chunked_signin.cookies, config)
    server = get_session_json(authjs_chunked.base_url, chunked_signin.cookies)
    assert server["user"] == {**expected_user("carol"), "id": "user-carol"}
    assert_same_session(session_json(session), server)


async def test_chunked_session_in_shuffled_order(
    authjs_chunked: AuthJsServer, chunked_signin: SignInResult
) -> None:
    """Chunks are joined by index, not by the order they arrive in."""
    shuffled = dict(reversed(list(chunked_signin.cookies.items())))
    config = AuthConfig(secret=SECRET, callbacks={"session": copy_sub_to_user_id})
    session = await authsession.get_server_session(shuffled, config)
    assert_same_session(session_json(session), get_session_json(authjs_chunked.base_url, shuffled))


def test_chunked_get_token(jwt_tool: JwtTool, chunked_signin: SignInResult) -> None:
    token = authsession.get_token(chunked_signin.cookies, secret=SECRET)
    assert isinstance(token, dict)
    joined = session_cookie_value(chunked_signin.cookies, SESSION_COOKIE)
    assert token == jwt_tool.decode(joined, SECRET, SESSION_COOKIE)
    assert token["blob"] == "x" * BIG_CLAIM
    assert token["sub"] == "user-carol"
    assert authsession.get_token(chunked_signin.cookies, secret=SECRET, raw=True) == joined


# --------------------------------------------------------------------------- #
# __Secure- cookies (useSecureCookies: true)
# --------------------------------------------------------------------------- #


def test_signin_sets_secure_session_cookie(secure_signin: SignInResult) -> None:
    assert SECURE_SESSION_COOKIE in secure_signin.cookies
    assert SESSION_COOKIE not in secure_signin.cookies
    assert_session_cookie_attributes(
        set_cookie_for(secure_signin, SECURE_SESSION_COOKIE), secure=True
    )
    # useSecureCookies also renames the csrf cookie to __Host-.
    assert "__Host-authjs.csrf-token" in secure_signin.jar


@pytest.mark.parametrize("secure_cookie", [True, None], ids=["explicit", "auto"])
async def test_secure_session_matches_server(
    authjs_secure: AuthJsServer, secure_signin: SignInResult, secure_cookie: bool | None
) -> None:
    config = AuthConfig(secret=SECRET, secure_cookie=secure_cookie)
    session = await authsession.get_server_session(secure_signin.cookies, config)
    server = get_session_json(authjs_secure.base_url, secure_signin.cookies)
    assert server["user"] == expected_user("bob")
    assert_same_session(session_json(session), server)


@pytest.mark.parametrize("secure_cookie", [True, None], ids=["explicit", "auto"])
def test_secure_get_token(
    jwt_tool: JwtTool, secure_signin: SignInResult, secure_cookie: bool | None
) -> None:
    token = authsession.get_token(secure_signin.cookies, secret=SECRET, secure_cookie=secure_cookie)
    raw = secure_signin.cookies[SECURE_SESSION_COOKIE]
    assert token == jwt_tool.decode(raw, SECRET, SECURE_SESSION_COOKIE)
    assert token["sub"] == "user-bob"


async def test_secure_cookie_is_not_read_with_plain_salt(secure_signin: SignInResult) -> None:
    """The __Secure- token is encrypted with the __Secure- salt: renaming it breaks it."""
    renamed = {SESSION_COOKIE: secure_signin.cookies[SECURE_SESSION_COOKIE]}
    assert await authsession.get_server_session(renamed, AuthConfig(secret=SECRET)) is None


# --------------------------------------------------------------------------- #
# The reverse direction: authsession writes, Auth.js reads
# --------------------------------------------------------------------------- #


def _claims(username: str) -> dict[str, str]:
    return {
        "sub": f"user-{username}",
        "name": username,
        "email": f"{username}@example.com",
        "picture": f"https://example.com/{username}.png",
    }


def test_python_minted_cookie_read_by_server(authjs_plain: AuthJsServer) -> None:
    token = authsession.jwt.encode(_claims("dave"), SECRET, SESSION_COOKIE)
    server = get_session_json(authjs_plain.base_url, {SESSION_COOKIE: token})
    assert server is not None
    assert server["user"] == expected_user("dave")
    assert_expires_now_plus(server["expires"])


def test_python_minted_secure_cookie_read_by_server(authjs_secure: AuthJsServer) -> None:
    token = authsession.jwt.encode(_claims("erin"), SECRET, SECURE_SESSION_COOKIE)
    server = get_session_json(authjs_secure.base_url, {SECURE_SESSION_COOKIE: token})
    assert server is not None
    assert server["user"] == expected_user("erin")


def test_python_minted_cookie_with_rotated_secrets_read_by_server(
    authjs_plain: AuthJsServer,
) -> None:
    token = authsession.jwt.encode(_claims("fay"), [SECRET, "retired"], SESSION_COOKIE)
    assert get_session_json(authjs_plain.base_url, {SESSION_COOKIE: token})["user"] == (
        expected_user("fay")
    )


def test_server_rejects_python_cookie_under_wrong_name(authjs_secure: AuthJsServer) -> None:
    token = authsession.jwt.encode(_claims("gus"), SECRET, SESSION_COOKIE)
    assert get_session_json(authjs_secure.base_url, {SECURE_SESSION_COOKIE: token}) is None


def _response_set_cookies(response: Any) -> list[str]:
    return [
        value.decode("latin-1")
        for key, value in response.raw_headers
        if key.lower() == b"set-cookie"
    ]


async def test_runtime_sign_in_cookies_read_by_server(authjs_plain: AuthJsServer) -> None:
    from starlette.responses import Response

    runtime = AuthRuntime(AuthConfig(secret=SECRET))
    response = Response()
    user = {"id": "user-hal", **expected_user("hal")}
    await runtime.sign_in(user, response)
    jar: dict[str, str] = {}
    apply_set_cookies(jar, _response_set_cookies(response))
    assert SESSION_COOKIE in jar
    server = get_session_json(authjs_plain.base_url, jar)
    assert server is not None
    assert server["user"] == expected_user("hal")
    session = await runtime.get_session(jar)
    assert_same_session(session_json(session), server)


async def test_runtime_sign_in_chunked_cookies_read_by_server(
    authjs_chunked: AuthJsServer,
) -> None:
    from starlette.responses import Response

    def add_blob(token: dict, user: dict | None = None, **kw: Any) -> dict:
        if user:
            token["blob"] = "x" * BIG_CLAIM
        return token

    runtime = AuthRuntime(
        AuthConfig(secret=SECRET, callbacks={"jwt": add_blob, "session": copy_sub_to_user_id})
    )
    response = Response()
    await runtime.sign_in({"id": "user-ivy", **expected_user("ivy")}, response)
    headers = _response_set_cookies(response)
    jar: dict[str, str] = {}
    apply_set_cookies(jar, headers)
    assert f"{SESSION_COOKIE}.0" in jar
    assert f"{SESSION_COOKIE}.1" in jar
    for header in headers:
        cookie = parse_set_cookie(header)
        if cookie.name.startswith(SESSION_COOKIE) and not cookie.deletes:
            assert_session_cookie_attributes(cookie, secure=False)
    server = get_session_json(authjs_chunked.base_url, jar)
    assert server is not None
    assert server["user"] == {**expected_user("ivy"), "id": "user-ivy"}
    session = await runtime.get_session(jar)
    assert_same_session(session_json(session), server)
