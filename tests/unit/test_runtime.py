"""get_server_session / get_token over every input form, callbacks, config and writes."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from datetime import datetime

import pytest
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from tests.conftest import SECRET
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

import authsession
from authsession import (
    AuthConfig,
    AuthRuntime,
    AuthRuntimeNotConfigured,
    ConfigurationError,
    Session,
    get_server_session,
    get_server_session_sync,
    get_token,
    jwt,
)
from authsession.jwt import _jwe
from authsession.jwt import v4 as jwt_v4
from authsession.jwt._keys import v5_key

NAME = "authjs.session-token"
CLAIMS = {"name": "Ada", "email": "ada@example.com", "picture": "https://x/ada.png", "sub": "42"}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def token(claims=CLAIMS, secret=SECRET, salt=NAME, max_age=3600) -> str:
    return jwt.encode(claims, secret, salt, max_age)


def crafted(claims: dict, salt: str = NAME) -> str:
    """A v5 token with exactly these claims (encode() would stamp iat/exp itself)."""
    key, kid = v5_key(SECRET, salt, "A256CBC-HS512")
    header = {"alg": "dir", "enc": "A256CBC-HS512", "kid": kid}
    return _jwe.encrypt("A256CBC-HS512", key, header, json.dumps(claims).encode())


def cleared(set_cookie: str, name: str = NAME) -> bool:
    """Starlette writes an empty value as "", Werkzeug and Auth.js as nothing."""
    return (
        re.match(rf'^{re.escape(name)}=(""|);', set_cookie) is not None
        and "Max-Age=0" in set_cookie
    )


def config(**kw) -> AuthConfig:
    kw.setdefault("secret", SECRET)
    return AuthConfig(**kw)


def scope_for(cookie: str, scheme: str = "http") -> dict:
    return {
        "type": "http",
        "scheme": scheme,
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [(b"cookie", cookie.encode()), (b"host", b"testserver")],
    }


# -- the session shape ----------------------------------------------------------


def test_default_session_is_what_the_session_endpoint_returns():
    before = time.time()
    session = get_server_session_sync(f"{NAME}={token()}", config())
    assert isinstance(session, Session)
    assert list(session) == ["user", "expires"]
    assert session["user"] == {
        "name": "Ada",
        "email": "ada@example.com",
        "image": "https://x/ada.png",
    }
    assert ISO_MS.match(session.expires)
    expires = datetime.fromisoformat(session.expires.replace("Z", "+00:00")).timestamp()
    assert before + 2592000 - 1 <= expires <= time.time() + 2592000
    assert json.loads(json.dumps(session)) == {
        "user": dict(session.user),
        "expires": session.expires,
    }
    assert session.user.name == "Ada" and session["user"]["email"] == "ada@example.com"


def test_absent_claims_are_omitted_and_null_claims_kept():
    session = get_server_session_sync(f"{NAME}={token({'email': None, 'sub': '1'})}", config())
    assert json.dumps(session["user"]) == '{"email": null}'
    with pytest.raises(AttributeError, match="get"):
        session.user.name  # noqa: B018


def test_sessions_are_read_only_and_copyable():
    session = get_server_session_sync(f"{NAME}={token()}", config())
    with pytest.raises(TypeError, match="read-only"):
        session["user"]["name"] = "Eve"
    with pytest.raises(TypeError):
        session.update(x=1)
    copy = session.to_dict()
    copy["user"]["name"] = "Eve"
    assert session.user.name == "Ada"
    assert "Ada" not in repr(session)


def test_max_age_sets_expires():
    session = get_server_session_sync(f"{NAME}={token()}", config(max_age=60))
    expires = datetime.fromisoformat(session.expires.replace("Z", "+00:00")).timestamp()
    assert abs(expires - (time.time() + 60)) < 2


# -- input forms ----------------------------------------------------------------


def _starlette_request(cookie: str, scheme: str = "http") -> StarletteRequest:
    return StarletteRequest(scope_for(cookie, scheme))


def _werkzeug_request(cookie: str) -> WerkzeugRequest:
    return WerkzeugRequest(EnvironBuilder(headers={"Cookie": cookie}).get_environ())


class DjangoLikeRequest:
    def __init__(self, cookie: str) -> None:
        self.META = {"REQUEST_METHOD": "GET", "HTTP_COOKIE": cookie}
        self.COOKIES = {}


class HeadersOnly:
    def __init__(self, cookie: str) -> None:
        self.headers = {"Cookie": cookie}


FORMS = {
    "cookie header string": lambda c: c,
    "cookie header bytes": lambda c: c.encode(),
    "cookie mapping": lambda c: dict(p.split("=", 1) for p in c.split("; ")),
    "headers dict (lower)": lambda c: {"cookie": c},
    "headers dict (Title)": lambda c: {"Cookie": c, "Accept": "*/*"},
    "ASGI scope": lambda c: scope_for(c),
    "WSGI environ": lambda c: {"REQUEST_METHOD": "GET", "HTTP_COOKIE": c},
    "Starlette request": _starlette_request,
    "Starlette headers": lambda c: _starlette_request(c).headers,
    "Werkzeug request": _werkzeug_request,
    "Werkzeug headers": lambda c: _werkzeug_request(c).headers,
    "Django-like request": DjangoLikeRequest,
    "object with .headers": HeadersOnly,
    "(request, response) tuple": lambda c: (_starlette_request(c), StarletteResponse()),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_input_form_sync_and_async(form):
    cookie = f"theme=dark; {NAME}={token()}"
    source = FORMS[form](cookie)
    assert get_server_session_sync(source, config()).user.name == "Ada"
    assert asyncio.run(get_server_session(source, config())).user.name == "Ada"
    assert get_token(source, secret=SECRET)["sub"] == "42"


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_input_form_without_a_session(form):
    source = FORMS[form]("theme=dark; lang=en")
    assert get_server_session_sync(source, config()) is None
    assert get_token(source, secret=SECRET) is None


def test_none_input_without_middleware_is_empty():
    authsession.configure_auth_runtime(config())
    assert get_server_session_sync() is None
    assert asyncio.run(get_server_session()) is None


def test_bearer_token_when_no_cookie():
    tok = token()
    assert get_server_session_sync({"Authorization": f"Bearer {tok}"}, config()).user.name == "Ada"
    # Secure-salted and v4 tokens are recognised too
    secure = token(salt="__Secure-authjs.session-token")
    assert (
        get_server_session_sync({"authorization": f"Bearer {secure}"}, config()).user.name == "Ada"
    )
    v4 = jwt_v4.encode(CLAIMS, SECRET)
    assert get_server_session_sync({"authorization": f"Bearer {v4}"}, config()).user.name == "Ada"
    # cookie wins over the header
    other = token({"name": "Cookie"})
    source = {"cookie": f"{NAME}={other}", "authorization": f"Bearer {tok}"}
    assert get_server_session_sync(source, config()).user.name == "Cookie"
    for bad in ("Bearer", "Bearer ", "Basic abc", f"bearer {tok}", "Bearer %zz", "Bearer %E0%A4%A"):
        assert get_server_session_sync({"authorization": bad}, config()) is None


def test_v4_and_secure_and_chunked_cookies():
    v4 = jwt_v4.encode(CLAIMS, SECRET)
    assert get_server_session_sync(f"next-auth.session-token={v4}", config()).user.name == "Ada"
    sec = token(salt="__Secure-authjs.session-token")
    assert (
        get_server_session_sync(f"__Secure-authjs.session-token={sec}", config()).user.name == "Ada"
    )
    # a plain-salted token under the __Secure- name does not decode: the name is the salt
    assert get_server_session_sync(f"__Secure-authjs.session-token={token()}", config()) is None
    big = token({**CLAIMS, "blob": "x" * 6000})
    half = len(big) // 2
    header = f"{NAME}.1={big[half:]}; a=b; {NAME}.0={big[:half]}"
    assert get_server_session_sync(header, config()).user.name == "Ada"


def test_secure_cookie_setting_restricts_names():
    plain = f"{NAME}={token()}"
    assert get_server_session_sync(plain, config(secure_cookie=True)) is None
    assert get_server_session_sync(plain, config(secure_cookie=False)) is not None
    custom = f"my.session-token={token(salt='my.session-token')}"
    assert (
        get_server_session_sync(custom, config(cookie_name="my.session-token")).user.name == "Ada"
    )
    assert get_server_session_sync(plain, config(cookie_name="my.session-token")) is None


# -- bad input: None and a log line, never an exception, never the token in logs ----


BAD_COOKIES = {
    "garbage": "garbage",
    "empty": "",
    "truncated": lambda: token()[:-10],
    "tampered": lambda: token()[:-3] + ("AAA" if not token().endswith("AAA") else "BBB"),
    "wrong secret": lambda: token(secret="other-secret"),
    "wrong salt": lambda: token(salt="__Secure-authjs.session-token"),
    "expired": lambda: jwt.encode(CLAIMS, SECRET, NAME, max_age=-3600),
    "expired (crafted)": lambda: crafted({**CLAIMS, "exp": int(time.time()) - 60}),
    "oversized": "x" * 70000,
    "non-ascii": "é" * 20,
}


@pytest.mark.parametrize("kind", sorted(BAD_COOKIES))
def test_bad_cookies_give_none_and_a_helpful_log(kind, caplog):
    caplog.set_level(logging.INFO, "authsession")
    value = BAD_COOKIES[kind]
    value = value() if callable(value) else value
    cookie = f"{NAME}={value}"
    assert get_server_session_sync(cookie, config()) is None
    assert asyncio.run(get_server_session(cookie, config(max_age=99))) is None
    assert get_token(cookie, secret=SECRET) is None
    if value:
        assert "rejected" in caplog.text or "ignored" in caplog.text
        assert value not in caplog.text
    assert SECRET not in caplog.text


def test_expired_token_beyond_cached_lifetime():
    tok = jwt.encode(CLAIMS, SECRET, NAME, max_age=1)
    rt = AuthRuntime(config())
    assert rt.get_session_sync(f"{NAME}={tok}") is not None
    entry = rt.cache._lru[next(iter(rt.cache._lru))]
    assert entry.deadline <= time.monotonic() + 1.01  # never cached past the token's exp


# -- configuration ---------------------------------------------------------------


def test_secret_from_environment(monkeypatch):
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    assert get_server_session_sync(f"{NAME}={token()}", AuthConfig()).user.name == "Ada"
    monkeypatch.delenv("AUTH_SECRET")
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    assert AuthConfig().secrets == (SECRET,)
    monkeypatch.setenv("AUTH_SECRET", "a")
    monkeypatch.setenv("AUTH_SECRET_1", "b")
    monkeypatch.setenv("AUTH_SECRET_2", "c")
    assert AuthConfig().secrets == ("c", "b", "a")  # Auth.js order: newest first encrypts


def test_jwt_without_secret_fails_at_construction():
    with pytest.raises(ConfigurationError, match="AUTH_SECRET"):
        AuthConfig()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "cookie"}, "strategy"),
        ({"strategy": "database"}, "adapter"),
        ({"max_age": -1}, "max_age"),
        ({"max_age": 0}, "max_age"),
        ({"update_age": "1d"}, "update_age"),
        ({"secret": 42}, "secret"),
        ({"secret": ["ok", ""]}, "secret"),
        ({"cookie_name": "a b"}, "cookie_name"),
        # Never read (session cookies are found by "session-token"): refused
        # instead of every request being signed out without a word.
        ({"cookie_name": "mysession"}, "must contain 'session-token'.*'mysession.session-token'"),
        ({"secure_cookie": "yes"}, "secure_cookie"),
        ({"callbacks": {"signIn": print}}, "unknown callbacks"),
        ({"callbacks": {"session": 3}}, "callable"),
        ({"cache": {"size": 1}}, "unknown cache options"),
        ({"cache": {"max_entries": 0}}, "max_entries"),
        ({"cache": "big"}, "cache"),
    ],
)
def test_config_errors_name_the_setting(kwargs, match):
    kwargs.setdefault("secret", SECRET)
    with pytest.raises(ConfigurationError, match=match):
        AuthConfig(**kwargs)


def test_config_repr_hides_secrets_and_is_hashable():
    cfg = config(secret=["one-secret", "two-secret"])
    assert "one-secret" not in repr(cfg) and "2 redacted" in repr(cfg)
    assert hash(cfg) == hash(config(secret=["one-secret", "two-secret"]))


def test_not_configured_raises():
    with pytest.raises(AuthRuntimeNotConfigured, match="configure_auth_runtime"):
        get_server_session_sync("x=y")
    with pytest.raises(AuthRuntimeNotConfigured):
        asyncio.run(get_server_session())
    with pytest.raises(ConfigurationError):
        get_token(f"{NAME}={token()}")


def test_configured_runtime_is_the_default_and_reused():
    rt = authsession.configure_auth_runtime(config())
    cookie = f"{NAME}={token()}"
    assert get_server_session_sync(cookie).user.name == "Ada"
    assert get_server_session_sync(cookie).user.name == "Ada"
    assert rt.cache_stats()["hits"] == 1
    assert get_token(cookie)["sub"] == "42"  # secret from the configured runtime
    # the same config passed per call reuses one runtime (and its cache)
    cfg = config(max_age=123)
    get_server_session_sync(cookie, cfg)
    get_server_session_sync(cookie, config(max_age=123))
    assert authsession._api.runtime_for(cfg).cache_stats()["hits"] == 1
    assert get_server_session_sync(cookie, rt) is not None


def test_get_token_options():
    tok = token()
    assert get_token(f"{NAME}={tok}", raw=True) == tok  # raw needs no secret
    assert get_token(f"{NAME}={tok}", secret=["old", SECRET])["sub"] == "42"
    assert get_token(f"{NAME}={tok}", secret=SECRET, salt="wrong") is None
    assert get_token(f"{NAME}={tok}", secret=SECRET, secure_cookie=True) is None
    secure = token(salt="__Secure-authjs.session-token")
    assert get_token(f"__Secure-authjs.session-token={secure}", secret=SECRET, secure_cookie=True)
    assert get_token({"authorization": f"Bearer {tok}"}, secret=SECRET)["name"] == "Ada"
    v4 = jwt_v4.encode(CLAIMS, SECRET)
    assert get_token(f"next-auth.session-token={v4}", secret=SECRET)["name"] == "Ada"
    assert get_token(f"x.session-token={tok}", secret=SECRET, cookie_name="x.session-token") is None


# -- callbacks -------------------------------------------------------------------


def test_session_callback_plain_and_async_with_only_the_arguments_it_declares():
    def plain(session, token):
        session["user"]["id"] = token["sub"]
        return session

    async def asynchronous(*, session, token, **rest):
        assert rest["trigger"] is None and rest["user"] is None
        await asyncio.sleep(0)
        session["user"]["role"] = "admin"
        return session

    cookie = f"{NAME}={token()}"
    assert get_server_session_sync(cookie, config(callbacks={"session": plain})).user.id == "42"
    assert (
        asyncio.run(get_server_session(cookie, config(callbacks={"session": plain}))).user.id
        == "42"
    )
    assert (
        get_server_session_sync(cookie, config(callbacks={"session": asynchronous})).user.role
        == "admin"
    )
    assert (
        asyncio.run(
            get_server_session(cookie, config(callbacks={"session": asynchronous}))
        ).user.role
        == "admin"
    )


def test_jwt_callback_runs_before_session_and_can_end_it():
    class Callbacks:
        @staticmethod
        def jwt(token):
            return {**token, "name": token["name"].upper()}

    cookie = f"{NAME}={token()}"
    assert get_server_session_sync(cookie, config(callbacks=Callbacks())).user.name == "ADA"
    response = StarletteResponse()
    assert (
        get_server_session_sync(
            (_starlette_request(cookie), response), config(callbacks={"jwt": lambda token: None})
        )
        is None
    )
    assert cleared(response.headers["set-cookie"])  # Auth.js clears the cookie


def test_failing_callback_gives_none_logs_and_is_not_cached(caplog):
    calls = []

    def flaky(session):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return session

    cfg = config(callbacks={"session": flaky})
    cookie = f"{NAME}={token()}"
    assert get_server_session_sync(cookie, cfg) is None
    assert "RuntimeError: database down" in caplog.text
    assert get_server_session_sync(cookie, cfg).user.name == "Ada"


def test_callback_returning_wrong_type_is_an_error_not_a_crash(caplog):
    cfg = config(callbacks={"session": lambda session: "nope"})
    assert get_server_session_sync(f"{NAME}={token()}", cfg) is None
    assert "must return a dict" in caplog.text


# -- cache -----------------------------------------------------------------------


def test_cache_hits_and_negative_entries():
    rt = AuthRuntime(config())
    cookie = f"{NAME}={token()}"
    for _ in range(3):
        assert rt.get_session_sync(cookie) is not None
    for _ in range(3):
        assert rt.get_session_sync(f"{NAME}=bad") is None
    stats = rt.cache_stats()
    assert stats["hits"] == 4 and stats["misses"] == 2
    off = AuthRuntime(config(cache=False))
    off.get_session_sync(cookie)
    off.get_session_sync(cookie)
    assert off.cache_stats()["hits"] == 0


def test_single_flight_across_threads():
    calls = []
    gate = threading.Event()

    def slow(session):
        calls.append(1)
        gate.wait(2)
        return session

    rt = AuthRuntime(config(callbacks={"session": slow}))
    cookie = f"{NAME}={token()}"
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(rt.get_session_sync(cookie)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(r is not None and r.user.name == "Ada" for r in results)
    assert rt.cache_stats()["coalesced"] == 7


def test_single_flight_across_tasks():
    calls = []

    async def slow(session):
        calls.append(1)
        await asyncio.sleep(0.05)
        return session

    rt = AuthRuntime(config(callbacks={"session": slow}))
    cookie = f"{NAME}={token()}"

    async def main():
        return await asyncio.gather(*(rt.get_session(cookie) for _ in range(20)))

    results = asyncio.run(main())
    assert len(calls) == 1 and all(r.user.name == "Ada" for r in results)


def test_a_session_is_never_served_for_another_token():
    rt = AuthRuntime(config())
    a = rt.get_session_sync(f"{NAME}={token({'name': 'A'})}")
    b = rt.get_session_sync(f"{NAME}={token({'name': 'B'})}")
    assert (a.user.name, b.user.name) == ("A", "B")


# -- writing -----------------------------------------------------------------------


def test_tuple_response_receives_refreshed_cookie_when_token_is_old():
    now = int(time.time())
    old = crafted({**CLAIMS, "iat": now - 2 * 86400, "exp": now + 3600, "jti": "j"})
    for response in (StarletteResponse(), WerkzeugResponse()):
        session = get_server_session_sync((_starlette_request(f"{NAME}={old}"), response), config())
        assert session.user.name == "Ada"
        set_cookie = response.headers["set-cookie"]
        new_value = set_cookie.split(";")[0].split("=", 1)[1]
        assert new_value != old
        assert "HttpOnly" in set_cookie and "Path=/" in set_cookie
        assert "samesite=lax" in set_cookie.lower()
        refreshed = jwt.decode(new_value, SECRET, NAME)
        assert refreshed["sub"] == "42" and refreshed["iat"] >= int(time.time()) - 1


def test_fresh_token_writes_nothing():
    response = StarletteResponse()
    get_server_session_sync((_starlette_request(f"{NAME}={token()}"), response), config())
    assert "set-cookie" not in response.headers


def test_sign_in_update_and_sign_out_jwt():
    rt = AuthRuntime(
        config(
            callbacks={
                "jwt": lambda token, trigger, session: (
                    {**token, **(session or {})} if trigger == "update" else token
                )
            }
        )
    )
    response = StarletteResponse()
    value = rt.sign_in_sync({"id": 7, "name": "Ada", "email": "a@x", "image": "i"}, response)
    assert jwt.decode(value, SECRET, NAME)["sub"] == "7"
    assert response.headers["set-cookie"].startswith(f"{NAME}={value};")
    cookie = f"{NAME}={value}"
    assert rt.get_session_sync(cookie).user.image == "i"

    response = StarletteResponse()
    updated = rt.update_session_sync(cookie, {"name": "Grace"}, response)
    assert updated.user.name == "Grace"
    new_cookie = response.headers["set-cookie"].split(";")[0]
    assert rt.get_session_sync(new_cookie).user.name == "Grace"

    response = StarletteResponse()
    asyncio.run(rt.sign_out(new_cookie, response))
    assert cleared(response.headers["set-cookie"])
    assert rt.cache_stats()["invalidations"] >= 1


def test_sign_in_secure_from_https_request_and_chunked():
    rt = AuthRuntime(config())
    response = WerkzeugResponse()
    value = rt.sign_in_sync({"id": 1, "name": "x" * 5000}, response, request=scope_for("", "https"))
    cookies = response.headers.getlist("Set-Cookie")
    assert [c.split("=")[0] for c in cookies] == [
        "__Secure-authjs.session-token.0",
        "__Secure-authjs.session-token.1",
    ]
    assert all("Secure" in c for c in cookies)
    joined = "; ".join(c.split(";")[0] for c in cookies)
    assert rt.get_session_sync(joined).user.name == "x" * 5000
    assert jwt.decode(value, SECRET, "__Secure-authjs.session-token")["sub"] == "1"


def test_sign_in_clears_chunks_and_whole_cookies_it_no_longer_uses() -> None:
    runtime = AuthRuntime(AuthConfig(secret=SECRET))
    old = {f"{NAME}.0": "a", f"{NAME}.1": "b", f"{NAME}.2": "c", "theme": "dark"}
    sink: list[tuple[str, str]] = []
    runtime.sign_in_sync({"id": "1", "name": "Ada"}, sink, request=old)
    headers = [h for _, h in sink]
    assert headers[0].startswith(f"{NAME}=ey")
    cleared = sorted(h.split("=")[0] for h in headers[1:])
    assert cleared == [f"{NAME}.0", f"{NAME}.1", f"{NAME}.2"]
    assert all("Max-Age=0" in h for h in headers[1:])

    sink.clear()
    runtime.sign_in_sync(
        {"id": "1", "name": "G" * 6000}, sink, request={NAME: "old", f"{NAME}.5": "x"}
    )
    written = [h.split("=")[0] for _, h in sink if "Max-Age=0" not in h]
    cleared = [h.split("=")[0] for _, h in sink if "Max-Age=0" in h]
    assert written == [f"{NAME}.{i}" for i in range(len(written))] and len(written) >= 2
    assert sorted(cleared) == sorted([NAME, f"{NAME}.5"])


@pytest.mark.parametrize(
    "callback",
    [
        lambda session, token: {**session, "sub": token["sub"]},
        lambda token, session: {**session, "sub": token["sub"]},
        lambda session, token, extra="kept": {**session, "sub": token["sub"], "extra": extra},
        lambda session, *, token: {**session, "sub": token["sub"]},
        lambda *, session, token: {**session, "sub": token["sub"]},
        lambda **kw: {**kw["session"], "sub": kw["token"]["sub"]},
    ],
)
def test_session_callback_receives_keywords_whatever_its_signature(callback) -> None:
    runtime = AuthRuntime(AuthConfig(secret=SECRET, cache=False, callbacks={"session": callback}))
    session = runtime.get_session_sync({NAME: token()})
    assert session["sub"] == "42"
    assert session.get("extra", "kept") == "kept"
