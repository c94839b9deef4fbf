"""authsession.flask: the extension, current_session, guards and cookie helpers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, render_template_string
from tests.conftest import SECRET
from tests.integrations._wsgi_support import HTML, NAME, Callbacks, token

import authsession
from authsession import (
    AuthConfig,
    AuthRuntime,
    ConfigurationError,
    Session,
    get_server_session_sync,
    jwt,
)
from authsession.flask import (
    AuthSession,
    current_session,
    get_current_session,
    login_required,
    permission_required,
    role_required,
    sign_in,
    sign_out,
    update_session,
)

TEMPLATE = "{% if current_session %}Hi {{ current_session.user.name }}{% else %}anon{% endif %}"


def make_app(**options: Any) -> tuple[Flask, AuthRuntime, Callbacks]:
    counter = Callbacks()
    runtime = AuthRuntime(
        AuthConfig(
            secret=SECRET,
            cache=options.pop("cache", False),
            update_age=options.pop("update_age", 86400),
            callbacks={"session": counter.session, "jwt": counter.jwt},
        )
    )
    app = Flask(__name__)
    AuthSession(app, runtime, **options)

    @app.get("/public")
    def public() -> Any:
        session = get_current_session()
        # The no-argument API sees the same request, resolved once.
        assert get_server_session_sync() is session
        return {"signed_in": bool(current_session), "is_none": session is None}

    @app.get("/me")
    @login_required
    def me() -> Any:
        assert isinstance(get_current_session(), Session)
        return dict(current_session)  # type: ignore[arg-type]

    @app.get("/page")
    def page() -> Any:
        return render_template_string(TEMPLATE)

    @app.get("/admin")
    @role_required("admin", "owner")
    def admin() -> Any:
        return {"admin": current_session.user.name}  # type: ignore[union-attr]

    @app.get("/reports")
    @permission_required("read", "export")
    def reports() -> Any:
        return {"ok": True}

    @app.get("/custom")
    @login_required(sign_in_url="https://front.example/login?lang=en")
    def custom() -> Any:
        return "secret"

    @app.get("/async")
    @login_required
    async def async_view() -> Any:
        return {"name": current_session.user.name}  # type: ignore[union-attr]

    @app.post("/sign-in")
    def do_sign_in() -> Any:
        from flask import request

        user = {"id": "7", "name": request.form["name"], "email": "g@example.com"}
        if request.form.get("role"):
            user["role"] = request.form["role"]
        if request.form.get("direct"):
            response = app.make_response("in")
            sign_in(user, response)
            return response
        sign_in(user)  # onto whatever response the view returns
        return "in"

    @app.post("/sign-out")
    def do_sign_out() -> Any:
        sign_out()
        return {"after": get_current_session() is None}

    @app.post("/rename")
    def rename() -> Any:
        session = update_session({"name": "Grace"})
        return {"returned": session.user.name, "current": current_session.user.name}  # type: ignore[union-attr]

    return app, runtime, counter


def client_with(app: Flask, value: str | None = None, name: str = NAME) -> Any:
    client = app.test_client()
    if value is not None:
        client.set_cookie(name, value)
    return client


def session_set_cookies(response: Any) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(NAME)]


# -- reading -----------------------------------------------------------------


def test_current_session_in_views_and_templates() -> None:
    app, _, _ = make_app()
    signed_in = client_with(app, token())
    assert signed_in.get("/public").json == {"signed_in": True, "is_none": False}
    me = signed_in.get("/me")
    assert me.status_code == 200
    assert me.json["user"] == {"name": "Ada", "email": "ada@example.com"}
    assert me.json["expires"].endswith("Z")
    assert signed_in.get("/page").text == "Hi Ada"

    anonymous = client_with(app)
    assert anonymous.get("/public").json == {"signed_in": False, "is_none": True}
    assert anonymous.get("/page").text == "anon"


def test_current_session_is_falsy_outside_a_request() -> None:
    assert not current_session
    with pytest.raises(RuntimeError):
        get_current_session()


@pytest.mark.filterwarnings("ignore:The 'authjs.session-token' cookie is too large")
def test_bad_cookies_are_signed_out_never_500() -> None:
    app, _, _ = make_app()
    good = token()
    for value in ("garbage", good[:-4], good + "x", "A" * 70_000, "%zz.%%"):
        client = client_with(app, value)
        assert client.get("/public").json == {"signed_in": False, "is_none": True}
        assert client.get("/me").status_code == 401
        assert client.get("/page").text == "anon"


def test_lazy_mode_resolves_only_when_asked() -> None:
    app, _, counter = make_app(lazy=True)

    @app.get("/quiet")
    def quiet() -> str:
        return "quiet"

    client = client_with(app, token())
    assert client.get("/quiet").text == "quiet"
    assert counter.calls == 0
    assert client.get("/page").text == "Hi Ada"
    assert counter.calls == 1  # one resolution, however often the request reads it


def test_async_view_with_guard() -> None:
    app, _, _ = make_app()
    assert client_with(app, token()).get("/async").json == {"name": "Ada"}
    assert client_with(app).get("/async").status_code == 401


# -- guards ------------------------------------------------------------------


def test_login_required_json_401_for_api_clients() -> None:
    app, _, _ = make_app()
    for accept in (None, "application/json", "*/*"):
        headers = {"Accept": accept} if accept else {}
        response = client_with(app).get("/me", headers=headers)
        assert response.status_code == 401
        assert response.json == {"error": "unauthorized", "message": "sign-in required"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_login_required_redirects_browsers_with_callback_url() -> None:
    app, _, _ = make_app()
    response = client_with(app).get("/me?tab=2&x=a%20b", headers={"Accept": HTML})
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/api/auth/signin"
    assert parse_qs(location.query) == {"callbackUrl": ["http://localhost/me?tab=2&x=a%20b"]}

    # The extension's sign_in_url, and a decorator's own, win in that order.
    app2, _, _ = make_app(sign_in_url="/login")
    location = client_with(app2).get("/me", headers={"Accept": HTML}).headers["Location"]
    assert location == "/login?callbackUrl=http%3A%2F%2Flocalhost%2Fme"
    location = client_with(app2).get("/custom", headers={"Accept": HTML}).headers["Location"]
    assert location == (
        "https://front.example/login?lang=en&callbackUrl=http%3A%2F%2Flocalhost%2Fcustom"
    )


def test_role_required() -> None:
    app, _, _ = make_app()
    assert client_with(app).get("/admin").status_code == 401
    plain = client_with(app, token()).get("/admin")
    assert plain.status_code == 403
    assert plain.json == {"error": "forbidden", "message": "requires role admin or owner"}
    # A browser that is signed in but lacks the role gets 403 too, not a redirect.
    browser = client_with(app, token()).get("/admin", headers={"Accept": HTML})
    assert browser.status_code == 403 and "requires role" in browser.text
    assert client_with(app, token(role="owner")).get("/admin").json == {"admin": "Ada"}


def test_permission_required_needs_all() -> None:
    app, _, _ = make_app()
    some = client_with(app, token(permissions=["read"])).get("/reports")
    assert some.status_code == 403
    assert some.json["message"] == "requires permission export"
    every = client_with(app, token(permissions=["read", "export", "x"])).get("/reports")
    assert every.json == {"ok": True}


def test_guard_factories_refuse_empty_or_non_string_names() -> None:
    with pytest.raises(TypeError):
        role_required()
    with pytest.raises(TypeError):
        permission_required(["read"])  # type: ignore[arg-type]


# -- writing -----------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True])
def test_sign_in_sets_a_cookie_the_next_request_reads(direct: bool) -> None:
    app, _, _ = make_app()
    client = client_with(app)
    data = {"name": "Grace", "role": "admin", **({"direct": "1"} if direct else {})}
    response = client.post("/sign-in", data=data)
    assert response.status_code == 200
    (header,) = session_set_cookies(response)
    assert "HttpOnly" in header and "Path=/" in header and "SameSite=Lax" in header
    claims = jwt.decode(client.get_cookie(NAME).value, SECRET, NAME)
    assert (claims["name"], claims["sub"], claims["role"]) == ("Grace", "7", "admin")
    assert client.get("/admin").json == {"admin": "Grace"}


def test_large_session_is_chunked_and_sign_out_clears_every_chunk() -> None:
    app, _, _ = make_app()
    client = client_with(app)
    big = "G" * 6000
    response = client.post("/sign-in", data={"name": big})
    names = sorted(h.split("=", 1)[0] for h in session_set_cookies(response))
    assert len(names) >= 2 and names == [f"{NAME}.{i}" for i in range(len(names))]
    assert client.get_cookie(NAME) is None
    assert client.get("/me").json["user"]["name"] == big

    response = client.post("/sign-out")
    assert response.json == {"after": True}
    cleared = session_set_cookies(response)
    assert sorted(h.split("=", 1)[0] for h in cleared) == names
    assert all("Max-Age=0" in h or "1970" in h for h in cleared)
    assert all(client.get_cookie(name) is None for name in names)
    assert client.get("/me").status_code == 401


def test_update_session_rewrites_the_cookie() -> None:
    app, _, _ = make_app()
    client = client_with(app, token())
    response = client.post("/rename")
    assert response.json == {"returned": "Grace", "current": "Grace"}
    assert jwt.decode(client.get_cookie(NAME).value, SECRET, NAME)["name"] == "Grace"
    assert client.get("/me").json["user"]["name"] == "Grace"


def test_sliding_refresh_reaches_the_flask_response() -> None:
    app, _, _ = make_app(update_age=0)
    response = client_with(app, token()).get("/me")
    (header,) = session_set_cookies(response)
    value = header.split(";", 1)[0].split("=", 1)[1]
    assert jwt.decode(value, SECRET, NAME)["name"] == "Ada"

    app, _, _ = make_app(update_age=0, write_cookies=False)
    assert session_set_cookies(client_with(app, token()).get("/me")) == []


# -- configuration -----------------------------------------------------------


def test_app_factory_config_from_app_config_and_process_runtime() -> None:
    extension = AuthSession(sign_in_url="/login")

    def create(config: Any = None) -> Flask:
        app = Flask("factory")
        if config is not None:
            app.config["AUTHSESSION"] = config
        extension.init_app(app)

        @app.get("/")
        @login_required
        def index() -> Any:
            return current_session.user.name  # type: ignore[union-attr]

        return app

    app = create({"secret": SECRET})
    assert app.extensions["authsession"] is extension
    assert client_with(app, token()).get("/").text == "Ada"
    with app.app_context():
        assert extension.runtime.config.secrets == (SECRET,)

    # No config anywhere: the process runtime, looked up per request.
    app = create()
    authsession.configure_auth_runtime(AuthConfig(secret=SECRET))
    assert client_with(app, token()).get("/").text == "Ada"

    with pytest.raises(ConfigurationError, match="AuthConfig field"):
        create({"secrett": SECRET})
    with pytest.raises(ConfigurationError, match="already set up"):
        extension.init_app(app)


def test_options_are_validated_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        AuthSession(Flask("x"), strategy="jwt")
    with pytest.raises(ConfigurationError, match="not both"):
        AuthSession(Flask("x"), AuthConfig(secret=SECRET), secret=SECRET)


def test_app_without_the_extension_is_a_clear_error() -> None:
    app = Flask("bare")

    @app.get("/")
    def index() -> Any:
        return "yes" if current_session else "no"

    app.testing = True
    with pytest.raises(ConfigurationError, match="AuthSession"):
        app.test_client().get("/")


def test_request_context_without_the_middleware_still_resolves() -> None:
    """``app.test_request_context`` skips wsgi_app: the extension resolves on demand."""
    app, _, _ = make_app()
    with app.test_request_context("/", headers={"Cookie": f"{NAME}={token()}"}):
        assert current_session.user.name == "Ada"  # type: ignore[union-attr]
    with app.test_request_context("/"):
        assert get_current_session() is None
