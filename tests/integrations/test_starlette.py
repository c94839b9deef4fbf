"""authsession.starlette: middleware set-up, request.user / @requires, route guards, writes."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from tests.conftest import SECRET

import authsession
from authsession import AuthConfig, AuthSessionMiddleware, jwt
from authsession.guards import roles_of
from authsession.starlette import (
    AuthSessionBackend,
    SessionUser,
    auth_middleware,
    default_scopes,
    get_session,
    install,
    require_session,
    requires_permission,
    requires_role,
    sign_in,
    sign_out,
    update_session,
)

from ._asgi_support import (
    ADA,
    ADMIN,
    BAD_COOKIES,
    EDITOR,
    HTML,
    NAME,
    callback_of,
    clears,
    cookie,
    make_runtime,
    raw_cookie,
    session_cookies,
)


async def whoami(request: Request) -> Response:
    session = await get_session(request)
    return JSONResponse({"scope": request.scope.get("authsession"), "session": session})


async def user_view(request: Request) -> Response:
    user = request.user
    return JSONResponse(
        {
            "authenticated": user.is_authenticated,
            "display_name": user.display_name,
            "identity": user.identity,
            "scopes": request.auth.scopes,
            "email": user.email if user.is_authenticated else None,
        }
    )


@requires("authenticated")
async def starlette_requires(request: Request) -> Response:
    return PlainTextResponse("in")


@requires(["authenticated", "role:admin"])
async def starlette_requires_admin(request: Request) -> Response:
    return PlainTextResponse("admin")


@require_session
async def private(request: Request) -> Response:
    session = await get_session(request)
    assert session is not None
    return JSONResponse(session)


@require_session(sign_in_url="https://app.example.com/login?from=py", redirect_html=True)
async def private_custom(request: Request) -> Response:
    return PlainTextResponse("ok")


@require_session(redirect_html=False)
async def private_api(request: Request) -> Response:
    return PlainTextResponse("ok")


@requires_role("admin", "owner")
async def admin(request: Request) -> Response:
    return PlainTextResponse("admin")


@requires_permission("read", "write")
async def writer(request: Request) -> Response:
    return PlainTextResponse("writer")


@requires_role("admin")
def sync_admin(request: Request) -> Response:
    return PlainTextResponse("sync admin")


class Reports(HTTPEndpoint):
    @require_session
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("reports")


@require_session
async def ws_private(websocket: WebSocket) -> None:
    await websocket.accept()
    session = await get_session(websocket)
    assert session is not None
    await websocket.send_json(session)
    await websocket.close()


ROUTES = [
    Route("/whoami", whoami),
    Route("/user", user_view),
    Route("/requires", starlette_requires),
    Route("/requires-admin", starlette_requires_admin),
    Route("/private", private),
    Route("//evil.example/private", private),
    Route("/private-custom", private_custom),
    Route("/private-api", private_api),
    Route("/admin", admin),
    Route("/writer", writer),
    Route("/sync-admin", sync_admin),
    Route("/reports", Reports),
    WebSocketRoute("/ws", ws_private),
]


@pytest.fixture
def client() -> TestClient:
    app = Starlette(routes=ROUTES, middleware=auth_middleware(make_runtime()))
    with TestClient(app) as client:
        yield client


# -- set-up forms ----------------------------------------------------------------


@pytest.mark.parametrize(
    "form", ["Middleware(AuthSessionMiddleware)", "auth_middleware", "install"]
)
def test_every_setup_form_puts_the_session_in_scope(form: str) -> None:
    rt = make_runtime()
    if form == "Middleware(AuthSessionMiddleware)":
        app = Starlette(routes=ROUTES, middleware=[Middleware(AuthSessionMiddleware, rt)])
    elif form == "auth_middleware":
        app = Starlette(routes=ROUTES, middleware=auth_middleware(rt))
    else:
        app = Starlette(routes=ROUTES)
        install(app, rt)
    with TestClient(app) as client:
        signed = client.get("/whoami", headers=cookie()).json()
        anonymous = client.get("/whoami").json()
    assert signed["scope"]["user"] == {
        "name": "Ada",
        "email": "ada@example.com",
        "image": "https://x/a.png",
    }
    assert signed["session"] == signed["scope"]
    assert anonymous == {"scope": None, "session": None}


def test_middleware_form_accepts_config_options() -> None:
    app = Starlette(
        routes=ROUTES, middleware=[Middleware(AuthSessionMiddleware, secret=SECRET, lazy=True)]
    )
    with TestClient(app) as client:
        body = client.get("/whoami", headers=cookie()).json()
    assert body["session"]["user"]["name"] == "Ada"


def test_guards_work_with_only_a_configured_runtime() -> None:
    authsession.configure_auth_runtime(AuthConfig(secret=SECRET))
    with TestClient(Starlette(routes=ROUTES)) as client:
        assert client.get("/private", headers=cookie()).json()["user"]["name"] == "Ada"
        assert client.get("/private").status_code == 401


# -- request.user and @requires --------------------------------------------------


def test_request_user_for_signed_in_and_anonymous(client: TestClient) -> None:
    ada = client.get("/user", headers=cookie(ADMIN)).json()
    assert ada == {
        "authenticated": True,
        "display_name": "Ada",
        "identity": "ada@example.com",
        "scopes": ["authenticated", "role:admin", "permission:read", "permission:write"],
        "email": "ada@example.com",
    }
    nobody = client.get("/user").json()
    assert nobody == {
        "authenticated": False,
        "display_name": "",
        "identity": "",
        "scopes": [],
        "email": None,
    }


def test_starlette_requires_uses_session_scopes(client: TestClient) -> None:
    assert client.get("/requires").status_code == 403
    assert client.get("/requires", headers=cookie()).text == "in"
    assert client.get("/requires-admin", headers=cookie()).status_code == 403
    assert client.get("/requires-admin", headers=cookie(ADMIN)).text == "admin"


def test_session_user_reads_user_fields() -> None:
    user = SessionUser(authsession.Session({"user": {"name": "E", "roles": ["a", "b"]}}))
    assert user.name == "E"
    assert user.roles == {"a", "b"} and user.permissions == frozenset()
    with pytest.raises(AttributeError, match="no 'email'"):
        _ = user.email
    assert "E" not in repr(user)  # no personal data in logs


def test_custom_scopes() -> None:
    def plain(session: Any) -> list[str]:
        # Unprefixed role names, plus one every signed-in user gets.
        return ["authenticated", *sorted(roles_of(session)), "staff"]

    app = Starlette(routes=ROUTES, middleware=auth_middleware(make_runtime(), scopes=plain))
    with TestClient(app) as client:
        scopes = client.get("/user", headers=cookie(ADMIN)).json()["scopes"]
    assert scopes == ["authenticated", "admin", "staff"]
    assert default_scopes(authsession.Session({"user": {"roles": ["b", "a"]}})) == [
        "authenticated",
        "role:a",
        "role:b",
    ]


async def test_backend_without_the_session_middleware_resolves_itself() -> None:
    from starlette.requests import HTTPConnection

    authsession.configure_auth_runtime(AuthConfig(secret=SECRET))
    scope = {
        "type": "http",
        "path": "/",
        "query_string": b"",
        "headers": [(b"cookie", f"{NAME}={jwt.encode(ADA, SECRET, NAME, 60)}".encode())],
    }
    creds, user = await AuthSessionBackend().authenticate(HTTPConnection(scope))
    assert creds.scopes == ["authenticated"] and user.display_name == "Ada"
    scope["headers"] = []
    assert await AuthSessionBackend().authenticate(HTTPConnection(scope)) is None


# -- guards ----------------------------------------------------------------------


def test_signed_out_api_call_gets_401_json(client: TestClient) -> None:
    response = client.get("/private", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "message": "sign-in required"}
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_signed_out_browser_is_redirected_with_callback_url(client: TestClient) -> None:
    response = client.get("/private?tab=2&x=%C3%A9", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    page, callback = callback_of(response.headers["location"])
    assert page == "/api/auth/signin"
    # The full URL, as Auth.js v5 sends it (its redirect callback checks the origin).
    assert callback == "http://testserver/private?tab=2&x=%C3%A9"
    # A double slash in the path stays a path on this host.
    response = client.get(
        "http://testserver//evil.example/private", headers=HTML, follow_redirects=False
    )
    assert callback_of(response.headers["location"])[1] == "http://testserver//evil.example/private"


def test_custom_sign_in_url_keeps_its_query(client: TestClient) -> None:
    response = client.get("/private-custom", headers=HTML, follow_redirects=False)
    location = response.headers["location"]
    assert location.startswith("https://app.example.com/login?from=py&callbackUrl=")
    assert callback_of(location)[1] == "http://testserver/private-custom"


def test_redirect_html_false_answers_browsers_with_401(client: TestClient) -> None:
    response = client.get("/private-api", headers=HTML, follow_redirects=False)
    assert response.status_code == 401


def test_signed_in_passes_the_guard(client: TestClient) -> None:
    response = client.get("/private", headers=cookie())
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "ada@example.com"
    assert client.get("/reports", headers=cookie()).text == "reports"
    assert client.get("/reports").status_code == 401


def test_roles_any_of_and_permissions_all_of(client: TestClient) -> None:
    assert client.get("/admin", headers=cookie(ADMIN)).text == "admin"
    owner = {**ADA, "roles": ["owner"]}
    assert client.get("/admin", headers=cookie(owner)).text == "admin"
    denied = client.get("/admin", headers=cookie(EDITOR))
    assert denied.status_code == 403
    assert denied.json() == {"error": "forbidden", "message": "requires role admin or owner"}
    assert "www-authenticate" not in denied.headers
    assert client.get("/admin").status_code == 401

    assert client.get("/writer", headers=cookie(ADMIN)).text == "writer"
    partial = client.get("/writer", headers=cookie(EDITOR))
    assert partial.status_code == 403
    assert partial.json()["message"] == "requires permission write"


def test_browser_forbidden_gets_403_text_not_a_redirect(client: TestClient) -> None:
    response = client.get("/admin", headers={**HTML, **cookie(EDITOR)}, follow_redirects=False)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "requires role admin or owner"


def test_sync_endpoint_guard(client: TestClient) -> None:
    assert client.get("/sync-admin", headers=cookie(ADMIN)).text == "sync admin"
    assert client.get("/sync-admin", headers=cookie()).status_code == 403
    assert client.get("/sync-admin").status_code == 401


def test_websocket_guard_admits_or_closes_with_policy_violation(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers=cookie()) as ws:
        assert ws.receive_json()["user"]["name"] == "Ada"
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws") as ws:
        ws.receive_json()
    assert closed.value.code == 1008


def test_requirements_are_checked_when_decorating() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        requires_role()
    with pytest.raises(ValueError, match="at least one permission"):
        requires_permission()
    with pytest.raises(ValueError, match="non-empty strings"):
        requires_role("admin", "")


def test_guard_on_a_function_without_a_request_is_a_clear_error() -> None:
    @require_session
    async def nothing() -> None: ...

    import asyncio

    with pytest.raises(TypeError, match="take a Request or WebSocket"):
        asyncio.run(nothing())


@pytest.mark.parametrize("bad", BAD_COOKIES)
def test_bad_cookies_are_signed_out_never_500(client: TestClient, bad: str) -> None:
    headers = raw_cookie(bad)
    assert client.get("/whoami", headers=headers).json() == {"scope": None, "session": None}
    assert client.get("/user", headers=headers).json()["authenticated"] is False
    assert client.get("/private", headers=headers).status_code == 401
    assert client.get("/requires", headers=headers).status_code == 403


# -- writing sessions ------------------------------------------------------------


async def do_sign_in(request: Request) -> Response:
    token = await sign_in(request, {"id": "7", "name": "Grace", "email": "g@example.com"})
    return PlainTextResponse(token)


async def do_sign_in_explicit(request: Request) -> Response:
    response = PlainTextResponse("in")
    await sign_in(request, {"id": "7", "name": "Grace"}, response)
    return response


async def do_sign_out(request: Request) -> Response:
    await sign_out(request)
    return JSONResponse({"after": await get_session(request)})


async def do_update(request: Request) -> Response:
    session = await update_session(request, {"name": "Ada L."})
    return JSONResponse(session)


WRITE_ROUTES = [
    Route("/sign-in", do_sign_in, methods=["POST"]),
    Route("/sign-in-explicit", do_sign_in_explicit, methods=["POST"]),
    Route("/sign-out", do_sign_out, methods=["POST"]),
    Route("/update", do_update, methods=["POST"]),
    Route("/whoami", whoami),
]


def rename_on_update(token: dict[str, Any], trigger: Any = None, session: Any = None) -> dict:
    if trigger == "update" and session:
        token["name"] = session["name"]
    return token


def test_sign_in_and_sign_out_set_and_clear_cookies() -> None:
    rt = make_runtime()
    app = Starlette(routes=WRITE_ROUTES, middleware=auth_middleware(rt))
    with TestClient(app) as client:
        response = client.post("/sign-in")
        assert response.status_code == 200
        written = session_cookies(response.headers.get_list("set-cookie"))
        assert list(written) == [NAME]
        assert "HttpOnly" in written[NAME] and "SameSite=Lax" in written[NAME]
        assert jwt.decode(response.text, SECRET, NAME)["name"] == "Grace"
        # The client's jar now holds the cookie: the next request is signed in.
        assert client.get("/whoami").json()["session"]["user"]["name"] == "Grace"

        out = client.post("/sign-out")
        assert out.json() == {"after": None}
        cleared = session_cookies(out.headers.get_list("set-cookie"))
        assert clears(cleared[NAME])
        assert client.get("/whoami").json()["session"] is None


def test_update_session_rewrites_the_cookie() -> None:
    config = AuthConfig(secret=SECRET, callbacks={"jwt": rename_on_update})
    app = Starlette(routes=WRITE_ROUTES, middleware=auth_middleware(config))
    with TestClient(app) as client:
        response = client.post("/update", headers=cookie())
        assert response.json()["user"]["name"] == "Ada L."
        new = session_cookies(response.headers.get_list("set-cookie"))[NAME]
        value = new.split(";", 1)[0].split("=", 1)[1]
        assert jwt.decode(value, SECRET, NAME)["name"] == "Ada L."


def test_writes_without_the_middleware_need_a_response() -> None:
    authsession.configure_auth_runtime(AuthConfig(secret=SECRET))
    app = Starlette(routes=WRITE_ROUTES)
    with TestClient(app, raise_server_exceptions=True) as client:
        explicit = client.post("/sign-in-explicit")
        assert NAME in session_cookies(explicit.headers.get_list("set-cookie"))
        with pytest.raises(RuntimeError, match="pass response="):
            client.post("/sign-in")
