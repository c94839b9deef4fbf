"""Property tests: no input, however malformed, gets past the documented outcomes.

`jwt.decode` raises only `JWTDecodeError`; `get_server_session*`, `get_token`
and the middleware return None / a normal response for anything a client can
send. Hypothesis explores the shapes; the mutations start from a valid token
so the decoder's deeper branches are reached, not only the first check.
"""

from __future__ import annotations

import asyncio
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import SECRET

from authsession import AuthConfig, AuthRuntime, AuthSessionMiddleware, get_token, jwt
from authsession.jwt import JWTDecodeError
from authsession.jwt import v4 as jwt_v4

NAME = "authjs.session-token"
RUNTIME = AuthRuntime(AuthConfig(secret=SECRET, cache=False))
GOOD = jwt.encode({"name": "Ada", "sub": "1"}, SECRET, NAME)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

b64ish = st.text(alphabet=string.ascii_letters + string.digits + "-_.=+/%", max_size=600)


@st.composite
def mutated_token(draw: Any) -> str:
    """A valid token with one segment replaced, cut, extended or a character flipped."""
    token = GOOD
    kind = draw(st.sampled_from(["flip", "cut", "segment", "append", "dots"]))
    if kind == "flip":
        i = draw(st.integers(0, len(token) - 1))
        c = draw(st.characters(codec="ascii"))
        return token[:i] + c + token[i + 1 :]
    if kind == "cut":
        return token[: draw(st.integers(0, len(token) - 1))]
    if kind == "segment":
        parts = token.split(".")
        parts[draw(st.integers(0, 4))] = draw(b64ish)
        return ".".join(parts)
    if kind == "append":
        return token + draw(b64ish)
    return ".".join(draw(st.lists(b64ish, min_size=0, max_size=7)))


@FAST
@given(st.one_of(mutated_token(), b64ish, st.text(max_size=300)))
def test_decode_raises_only_jwt_decode_error(token: str) -> None:
    for decode in (lambda: jwt.decode(token, SECRET, NAME), lambda: jwt_v4.decode(token, SECRET)):
        try:
            claims = decode()
        except JWTDecodeError as exc:
            assert exc.reason
        else:
            # Only the untouched token (or one whose change is not in the
            # authenticated bytes, like base64 padding bits) may decode.
            assert claims["name"] == "Ada"


cookie_names = st.sampled_from(
    [
        NAME,
        f"__Secure-{NAME}",
        "next-auth.session-token",
        f"{NAME}.0",
        f"{NAME}.1",
        f"{NAME}.x",
        "other",
    ]
)


@FAST
@given(
    st.lists(st.tuples(cookie_names, st.one_of(mutated_token(), st.text(max_size=200))), max_size=6)
)
def test_session_and_token_never_raise_for_cookie_headers(pairs: list[tuple[str, str]]) -> None:
    header = "; ".join(f"{n}={v}" for n, v in pairs)
    session = RUNTIME.get_session_sync(header)
    assert session is None or session.user.name == "Ada"
    token = get_token(header, secret=SECRET)
    assert token is None or token["name"] == "Ada"
    # The same cookies as a headers mapping resolve the same way (expires
    # is now + max_age at each resolution, so compare the user).
    again = RUNTIME.get_session_sync({"cookie": header})
    assert (again and again.user) == (session and session.user)


@FAST
@given(st.binary(max_size=400), st.binary(max_size=200))
def test_middleware_answers_any_raw_header_bytes(cookie: bytes, authorization: bytes) -> None:
    statuses: list[int] = []
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["authsession"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def receive() -> Any:
        return {"type": "http.request"}

    scope = {
        "type": "http",
        "scheme": "http",
        "headers": [(b"cookie", cookie), (b"authorization", authorization)],
    }
    asyncio.run(AuthSessionMiddleware(app, RUNTIME)(scope, receive, send))
    assert statuses == [200]
    assert seen == [None]

    environ = {
        "REQUEST_METHOD": "GET",
        "wsgi.url_scheme": "http",
        "HTTP_COOKIE": cookie.decode("latin-1"),
        "HTTP_AUTHORIZATION": authorization.decode("latin-1"),
    }

    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(environ["authsession"])
        start_response("200 OK", [])
        return []

    AuthSessionMiddleware(wsgi, RUNTIME)(
        environ, lambda status, headers, exc=None: statuses.append(int(status[:3]))
    )
    assert statuses == [200, 200]
    assert seen == [None, None]
