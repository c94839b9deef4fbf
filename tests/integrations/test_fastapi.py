"""authsession.fastapi: SessionDep, RequiredSession, role/permission rules, SessionActions."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tests.conftest import SECRET

import authsession
from authsession import AuthConfig, AuthSessionMiddleware, Session, jwt
from authsession.fastapi import (
    RequiredSession,
    SessionActionsDep,
    SessionDenied,
    SessionDep,
    require_permission,
    require_role,
    require_session,
)

from ._asgi_support import (
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

Admin = Annotated[Session, Depends(require_role("admin"))]


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami(session: SessionDep) -> Any:
        return {"session": session}

    @app.get("/me")
    async def me(session: RequiredSession) -> Any:
        return session

    @app.get("/page")
    async def page(session: Annotated[Session, Depends(require_session(redirect_html=True))]):
        return PlainTextResponse(f"hello {session.user.name}")

    @app.get("/api-only")
    async def api_only(
        session: Annotated[Session, Depends(require_session(redirect_html=False))],
    ) -> Any:
        return {"ok": True}

    @app.get("/admin")
    async def admin(session: Admin) -> Any:
        return {"admin": session.user.name}

    @app.get("/writer", dependencies=[Depends(require_permission("read", "write"))])
    async def writer() -> Any:
        return {"writer": True}

    @app.get("/sync")
    def sync_route(session: SessionDep) -> Any:
        return {"name": session.user.name if session else None}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, session: RequiredSession) -> None:
        await websocket.accept()
        await websocket.send_json(session)
        await websocket.close()

    @app.websocket("/ws-open")
    async def ws_open(websocket: WebSocket, session: SessionDep) -> None:
        await websocket.accept()
        await websocket.send_json({"session": session})
        await websocket.close()

    @app.post("/sign-in")
    async def sign_in(actions: SessionActionsDep) -> Any:
        token = await actions.sign_in({"id": "7", "name": "Grace", "email": "g@example.com"})
        return {"token": token}

    @app.post("/sign-in-redirect")
    async def sign_in_redirect(actions: SessionActionsDep) -> Any:
        from fastapi.responses import RedirectResponse

        response = RedirectResponse("/", status_code=303)
        await actions.sign_in({"id": "7", "name": "Grace"}, response)
        return response

    @app.post("/sign-out")
    async def sign_out(actions: SessionActionsDep) -> Any:
        await actions.sign_out()
        return {"ok": True}

    @app.post("/update")
    async def update(actions: SessionActionsDep, name: str) -> Any:
        return await actions.update({"name": name})

    return app


@pytest.fixture
def client() -> TestClient:
    app = build_app()
    app.add_middleware(AuthSessionMiddleware, make_runtime())
    with TestClient(app) as client:
        yield client


@pytest.fixture
def bare_client() -> TestClient:
    """No middleware: every dependency resolves through the configured runtime."""
    authsession.configure_auth_runtime(make_runtime().config)
    with TestClient(build_app()) as client:
        yield client


# -- reading ---------------------------------------------------------------------


@pytest.mark.parametrize("which", ["client", "bare_client"])
def test_session_dep_present_and_absent(which: str, request: pytest.FixtureRequest) -> None:
    client: TestClient = request.getfixturevalue(which)
    signed = client.get("/whoami", headers=cookie()).json()["session"]
    assert signed["user"] == {"name": "Ada", "email": "ada@example.com", "image": "https://x/a.png"}
    assert signed["expires"].endswith("Z")
    assert client.get("/whoami").json() == {"session": None}
    assert client.get("/sync", headers=cookie()).json() == {"name": "Ada"}


def test_session_dep_reuses_the_middleware_result() -> None:
    calls = []

    def counting(session: dict, token: dict) -> dict:
        calls.append(1)
        return session

    app = build_app()
    app.add_middleware(
        AuthSessionMiddleware,
        AuthConfig(secret=SECRET, callbacks={"session": counting}, cache=False),
    )
    with TestClient(app) as client:
        assert client.get("/me", headers=cookie()).status_code == 200
    assert len(calls) == 1


def test_without_middleware_a_refreshed_cookie_reaches_the_response() -> None:
    authsession.configure_auth_runtime(AuthConfig(secret=SECRET, update_age=0))
    with TestClient(build_app()) as client:
        response = client.get("/whoami", headers=cookie())
    refreshed = session_cookies(response.headers.get_list("set-cookie"))
    assert NAME in refreshed and not clears(refreshed[NAME])


# -- rules -------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["client", "bare_client"])
def test_signed_out_api_gets_401_json_with_www_authenticate(
    which: str, request: pytest.FixtureRequest
) -> None:
    client: TestClient = request.getfixturevalue(which)
    response = client.get("/me", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json() == {"detail": {"error": "unauthorized", "message": "sign-in required"}}
    assert response.headers["www-authenticate"] == 'Bearer realm="authsession"'


def test_signed_out_browser_is_redirected_to_sign_in(client: TestClient) -> None:
    response = client.get("/page?next=1", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert callback_of(response.headers["location"]) == (
        "/api/auth/signin",
        "http://testserver/page?next=1",
    )
    assert client.get("/page", headers={**HTML, **cookie()}).text == "hello Ada"
    # Opting out: a browser gets the 401 too.
    assert client.get("/api-only", headers=HTML, follow_redirects=False).status_code == 401


def test_roles_and_permissions(client: TestClient) -> None:
    assert client.get("/admin", headers=cookie(ADMIN)).json() == {"admin": "Ada"}
    denied = client.get("/admin", headers=cookie(EDITOR))
    assert denied.status_code == 403
    assert denied.json() == {"detail": {"error": "forbidden", "message": "requires role admin"}}
    assert "www-authenticate" not in denied.headers
    assert client.get("/admin").status_code == 401

    assert client.get("/writer", headers=cookie(ADMIN)).json() == {"writer": True}
    partial = client.get("/writer", headers=cookie(EDITOR))
    assert partial.status_code == 403
    assert partial.json()["detail"]["message"] == "requires permission write"


def test_forbidden_browser_gets_403_not_a_redirect(client: TestClient) -> None:
    response = client.get("/admin", headers={**HTML, **cookie(EDITOR)}, follow_redirects=False)
    assert response.status_code == 403
    assert response.json() == {"detail": "requires role admin"}


def test_session_denied_carries_the_plan_for_custom_handlers() -> None:
    app = build_app()
    app.add_middleware(AuthSessionMiddleware, make_runtime())

    @app.exception_handler(SessionDenied)
    async def own_shape(request: Any, exc: SessionDenied) -> JSONResponse:
        return JSONResponse(
            {"code": exc.denial.error, "why": exc.denial.reason},
            exc.plan.status,
            headers=dict(exc.plan.headers),
        )

    with TestClient(app) as client:
        response = client.get("/admin", headers=cookie())
    assert response.status_code == 403
    assert response.json() == {"code": "forbidden", "why": "requires role admin"}


def test_websocket_required_session(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers=cookie()) as ws:
        assert ws.receive_json()["user"]["name"] == "Ada"
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws") as ws:
        ws.receive_json()
    assert closed.value.code == 1008
    with client.websocket_connect("/ws-open") as ws:
        assert ws.receive_json() == {"session": None}


def test_empty_requirements_fail_at_definition() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        require_role()
    with pytest.raises(ValueError, match="at least one permission"):
        require_permission()


@pytest.mark.parametrize("bad", BAD_COOKIES)
def test_bad_cookies_are_signed_out_never_500(client: TestClient, bad: str) -> None:
    assert client.get("/whoami", headers=raw_cookie(bad)).json() == {"session": None}
    assert client.get("/me", headers=raw_cookie(bad)).status_code == 401
    assert client.get("/admin", headers=raw_cookie(bad)).status_code == 401


# -- writing -----------------------------------------------------------------------


@pytest.mark.parametrize("which", ["client", "bare_client"])
def test_sign_in_and_sign_out_through_actions(which: str, request: pytest.FixtureRequest) -> None:
    client: TestClient = request.getfixturevalue(which)
    response = client.post("/sign-in")
    written = session_cookies(response.headers.get_list("set-cookie"))
    assert list(written) == [NAME]
    assert jwt.decode(response.json()["token"], SECRET, NAME)["name"] == "Grace"
    assert client.get("/me").json()["user"] == {"name": "Grace", "email": "g@example.com"}

    out = client.post("/sign-out")
    assert out.json() == {"ok": True}
    assert clears(session_cookies(out.headers.get_list("set-cookie"))[NAME])
    assert client.get("/me").status_code == 401


@pytest.mark.parametrize("which", ["client", "bare_client"])
def test_sign_in_onto_a_returned_response(which: str, request: pytest.FixtureRequest) -> None:
    client: TestClient = request.getfixturevalue(which)
    response = client.post("/sign-in-redirect", follow_redirects=False)
    assert response.status_code == 303
    assert NAME in session_cookies(response.headers.get_list("set-cookie"))


def test_update_through_actions() -> None:
    def rename(token: dict, trigger: Any = None, session: Any = None) -> dict:
        if trigger == "update":
            token["name"] = session["name"]
        return token

    app = build_app()
    app.add_middleware(AuthSessionMiddleware, AuthConfig(secret=SECRET, callbacks={"jwt": rename}))
    with TestClient(app) as client:
        updated = client.post("/update", params={"name": "Ada L."}, headers=cookie())
        assert updated.json()["user"]["name"] == "Ada L."
        new = session_cookies(updated.headers.get_list("set-cookie"))[NAME]
        value = new.split(";", 1)[0].split("=", 1)[1]
        assert jwt.decode(value, SECRET, NAME)["name"] == "Ada L."
        again = client.get("/me", headers={"Cookie": f"{NAME}={value}"})
        assert again.json()["user"]["name"] == "Ada L."


def test_importing_authsession_imports_no_framework_integration() -> None:
    import subprocess
    import sys

    code = (
        "import sys, authsession, authsession.guards\n"
        "leaves = ('fastapi', 'quart', 'authsession.fastapi', 'authsession.quart',"
        " 'authsession.starlette', 'starlette.authentication')\n"
        "print([m for m in leaves if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
