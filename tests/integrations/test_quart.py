"""authsession.quart: the AuthSession extension, current_session, guards, sign-in/out."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart, Response, jsonify, websocket
from quart.testing import WebsocketResponseError
from tests.conftest import SECRET

import authsession
from authsession import AuthConfig, jwt
from authsession.quart import (
    AuthSession,
    current_session,
    get_session,
    login_required,
    permission_required,
    role_required,
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


def build_app(auth: AuthSession) -> Quart:
    app = Quart(__name__)
    auth.init_app(app)

    @app.get("/whoami")
    async def whoami() -> Any:
        session = await get_session()
        return jsonify(
            {
                "proxy": dict(current_session) if current_session else None,
                "session": session,
                "truthy": bool(current_session),
            }
        )

    @app.get("/me")
    @login_required
    async def me() -> Any:
        return jsonify(dict(current_session))

    @app.get("/page")
    @login_required(sign_in_url="/login")
    async def page() -> Any:
        return f"hello {current_session.user.name}"

    @app.get("/sync")
    @login_required
    def sync_view() -> Any:
        return "sync ok"

    @app.get("/admin")
    @role_required("admin")
    async def admin() -> Any:
        return {"admin": current_session.user.name}

    @app.get("/writer")
    @permission_required("read", "write", redirect_html=False)
    async def writer() -> Any:
        return {"writer": True}

    @app.post("/sign-in")
    async def sign_in() -> Any:
        token = await auth.sign_in({"id": "7", "name": "Grace", "email": "g@example.com"})
        return {"token": token}

    @app.post("/sign-in-response")
    async def sign_in_response() -> Any:
        response = Response("", 303, {"location": "/"})
        await auth.sign_in({"id": "7", "name": "Grace"}, response)
        return response

    @app.post("/sign-out")
    async def sign_out() -> Any:
        await auth.sign_out()
        return {"after": await get_session()}

    @app.post("/update")
    async def update() -> Any:
        return jsonify(await auth.update_session({"name": "Ada L."}))

    @app.websocket("/ws")
    @login_required
    async def ws() -> None:
        await websocket.accept()
        await websocket.send_json(dict(current_session))

    return app


@pytest.fixture
def app() -> Quart:
    return build_app(AuthSession(runtime_or_config=make_runtime()))


async def test_session_present_and_absent(app: Quart) -> None:
    client = app.test_client()
    signed = await (await client.get("/whoami", headers=cookie())).get_json()
    assert signed["session"]["user"] == {
        "name": "Ada",
        "email": "ada@example.com",
        "image": "https://x/a.png",
    }
    assert signed["proxy"] == signed["session"] and signed["truthy"] is True
    anonymous = await (await client.get("/whoami")).get_json()
    assert anonymous == {"proxy": None, "session": None, "truthy": False}


async def test_extension_options_and_app_factory_form() -> None:
    auth = AuthSession(secret=SECRET, lazy=True)  # no app yet: init_app later
    app = build_app(auth)
    assert app.extensions["authsession"] is auth
    body = await (await app.test_client().get("/whoami", headers=cookie())).get_json()
    assert body["proxy"]["user"]["name"] == "Ada"  # lazy: resolved on first use
    with pytest.raises(TypeError, match="not both"):
        AuthSession(None, make_runtime(), secret=SECRET)


async def test_configured_runtime_is_used_without_arguments() -> None:
    authsession.configure_auth_runtime(AuthConfig(secret=SECRET))
    app = build_app(AuthSession())
    response = await app.test_client().get("/me", headers=cookie())
    assert (await response.get_json())["user"]["name"] == "Ada"


async def test_current_session_outside_a_request_is_falsy() -> None:
    assert not current_session
    assert await get_session() is None


async def test_login_required_json_401_and_browser_redirect(app: Quart) -> None:
    client = app.test_client()
    api = await client.get("/me", headers={"Accept": "application/json"})
    assert api.status_code == 401
    assert await api.get_json() == {"error": "unauthorized", "message": "sign-in required"}
    assert api.headers["WWW-Authenticate"].startswith("Bearer")

    browser = await client.get("/me", headers=HTML, query_string={"tab": "a b"})
    assert browser.status_code == 303
    assert callback_of(browser.headers["Location"]) == (
        "/api/auth/signin",
        "http://localhost/me?tab=a+b",
    )
    custom = await client.get("/page", headers=HTML)
    assert callback_of(custom.headers["Location"]) == ("/login", "http://localhost/page")

    ok = await client.get("/page", headers={**HTML, **cookie()})
    assert ok.status_code == 200 and await ok.get_data(as_text=True) == "hello Ada"
    assert await (await client.get("/sync", headers=cookie())).get_data(as_text=True) == "sync ok"
    assert (await client.get("/sync")).status_code == 401


async def test_extension_defaults_apply_to_guards() -> None:
    app = build_app(
        AuthSession(runtime_or_config=make_runtime(), sign_in_url="/signin", redirect_html=False)
    )
    client = app.test_client()
    assert (await client.get("/me", headers=HTML)).status_code == 401
    app2 = build_app(AuthSession(runtime_or_config=make_runtime(), sign_in_url="/signin"))
    redirect = await app2.test_client().get("/me", headers=HTML)
    assert callback_of(redirect.headers["Location"]) == ("/signin", "http://localhost/me")


async def test_roles_and_permissions(app: Quart) -> None:
    client = app.test_client()
    assert await (await client.get("/admin", headers=cookie(ADMIN))).get_json() == {"admin": "Ada"}
    denied = await client.get("/admin", headers=cookie(EDITOR))
    assert denied.status_code == 403
    assert await denied.get_json() == {"error": "forbidden", "message": "requires role admin"}
    assert (await client.get("/admin")).status_code == 401

    assert (await client.get("/writer", headers=cookie(ADMIN))).status_code == 200
    partial = await client.get("/writer", headers={**HTML, **cookie(EDITOR)})
    assert partial.status_code == 403
    assert (await partial.get_json())["message"] == "requires permission write"
    # A browser that is signed in but not allowed is told so, not redirected.
    html_denied = await client.get("/admin", headers={**HTML, **cookie(EDITOR)})
    assert html_denied.status_code == 403
    assert await html_denied.get_data(as_text=True) == "requires role admin"


def test_empty_requirements_fail_at_definition() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        role_required()
    with pytest.raises(ValueError, match="at least one permission"):
        permission_required()
    with pytest.raises(ValueError, match="non-empty strings"):
        role_required("")


async def test_websocket_guard(app: Quart) -> None:
    client = app.test_client()
    async with client.websocket("/ws", headers=cookie()) as ws:
        assert (await ws.receive_json())["user"]["name"] == "Ada"
    with pytest.raises(WebsocketResponseError) as refused:
        async with client.websocket("/ws") as ws:
            await ws.receive_json()
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize("bad", BAD_COOKIES)
async def test_bad_cookies_are_signed_out_never_500(app: Quart, bad: str) -> None:
    client = app.test_client()
    headers = {"Cookie": raw_cookie(bad)["Cookie"].decode("latin-1")}
    whoami = await client.get("/whoami", headers=headers)
    assert whoami.status_code == 200
    assert (await whoami.get_json())["session"] is None
    assert (await client.get("/me", headers=headers)).status_code == 401


async def test_sign_in_sign_out_and_update(app: Quart) -> None:
    client = app.test_client()
    signed = await client.post("/sign-in")
    written = session_cookies(signed.headers.getlist("Set-Cookie"))
    assert list(written) == [NAME]
    token = (await signed.get_json())["token"]
    assert jwt.decode(token, SECRET, NAME)["name"] == "Grace"
    me = await client.get("/me", headers={"Cookie": f"{NAME}={token}"})
    assert (await me.get_json())["user"] == {"name": "Grace", "email": "g@example.com"}

    explicit = await client.post("/sign-in-response")
    assert explicit.status_code == 303
    assert NAME in session_cookies(explicit.headers.getlist("Set-Cookie"))

    out = await client.post("/sign-out", headers={"Cookie": f"{NAME}={token}"})
    assert await out.get_json() == {"after": None}
    assert clears(session_cookies(out.headers.getlist("Set-Cookie"))[NAME])


async def test_update_session() -> None:
    def rename(token: dict, trigger: Any = None, session: Any = None) -> dict:
        if trigger == "update":
            token["name"] = session["name"]
        return token

    app = build_app(AuthSession(secret=SECRET, callbacks={"jwt": rename}))
    response = await app.test_client().post("/update", headers=cookie())
    assert (await response.get_json())["user"]["name"] == "Ada L."
    new = session_cookies(response.headers.getlist("Set-Cookie"))[NAME]
    assert jwt.decode(new.split(";")[0].split("=", 1)[1], SECRET, NAME)["name"] == "Ada L."


async def test_writes_outside_a_request_are_a_clear_error(app: Quart) -> None:
    auth = app.extensions["authsession"]
    with pytest.raises(RuntimeError, match="request or websocket context"):
        await auth.sign_out()
