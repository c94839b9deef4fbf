"""authsession.django: the middleware (sync and async), guards, helpers, and the
generic AuthSessionMiddleware around Django's own WSGI and ASGI handlers.

This module is also the tests' ROOT_URLCONF (see conftest.DJANGO_SETTINGS).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from starlette.testclient import TestClient
from tests.conftest import SECRET
from tests.integrations._wsgi_support import HTML, NAME, Callbacks, token
from werkzeug.test import Client as WsgiClient

import authsession
import authsession.django as integration
from authsession import (
    AuthConfig,
    AuthRuntime,
    AuthSessionMiddleware,
    Session,
    get_server_session_sync,
    jwt,
)
from authsession.django import (
    aget_auth_session,
    asign_in,
    asign_out,
    aupdate_session,
    login_required,
    permission_required,
    role_required,
    sign_in,
    sign_out,
    update_session,
)


def settings_with(callbacks: Callbacks | None = None, **options: Any) -> dict[str, Any]:
    callbacks = callbacks or Callbacks()
    return {
        "secret": SECRET,
        "sign_in_url": "/login",
        "cache": False,
        "callbacks": {"jwt": callbacks.jwt, "session": callbacks.session},
        **options,
    }


# -- views (this module is the URLconf) ---------------------------------------


def public(request: Any) -> JsonResponse:
    session = request.auth_session
    assert session is None or isinstance(session, Session)
    # The no-argument API sees the same request, resolved once.
    assert get_server_session_sync() is session
    return JsonResponse({"signed_in": session is not None, "is_none": session is None})


@login_required
def me(request: Any) -> JsonResponse:
    return JsonResponse(request.auth_session)


@login_required
async def ame(request: Any) -> JsonResponse:
    session = await aget_auth_session(request)
    return JsonResponse(session)


@role_required("admin", "owner")
def admin(request: Any) -> JsonResponse:
    return JsonResponse({"admin": request.auth_session.user.name})


@permission_required("read", "export")
async def reports(request: Any) -> JsonResponse:
    return JsonResponse({"ok": True})


@login_required(sign_in_url="https://front.example/sign-in?x=1")
def custom(request: Any) -> HttpResponse:
    return HttpResponse("secret")


@method_decorator(login_required, name="dispatch")
class Profile(View):
    def get(self, request: Any) -> HttpResponse:
        return HttpResponse(request.auth_session.user.email)


def page(request: Any) -> HttpResponse:
    from django.template import engines

    template = engines["django"].from_string(
        "{% if request.auth_session %}Hi {{ request.auth_session.user.name }}{% else %}anon{% endif %}"
    )
    return HttpResponse(template.render(request=request))


def _user(request: Any) -> dict[str, Any]:
    user = {"id": "7", "name": request.POST["name"], "email": "g@example.com"}
    if request.POST.get("role"):
        user["role"] = request.POST["role"]
    return user


def do_sign_in(request: Any) -> HttpResponse:
    if request.POST.get("direct"):
        response = HttpResponse("in")
        sign_in(request, _user(request), response)
        return response
    sign_in(request, _user(request))  # onto whatever response the view returns
    return HttpResponse("in")


async def ado_sign_in(request: Any) -> HttpResponse:
    await asign_in(request, _user(request))
    return HttpResponse("in")


def do_sign_out(request: Any) -> JsonResponse:
    if request.POST.get("direct"):
        response = JsonResponse({"after": None})
        sign_out(request, response)
        return response
    sign_out(request)
    return JsonResponse({"after": request.auth_session is None})


async def ado_sign_out(request: Any) -> JsonResponse:
    await asign_out(request)
    return JsonResponse({"after": request.auth_session is None})


def rename(request: Any) -> JsonResponse:
    session = update_session(request, {"name": "Grace"})
    return JsonResponse({"returned": session.user.name, "current": request.auth_session.user.name})


async def arename(request: Any) -> JsonResponse:
    session = await aupdate_session(request, {"name": "Grace"})
    return JsonResponse({"returned": session.user.name, "current": request.auth_session.user.name})


def own_cookie(request: Any) -> HttpResponse:
    response = HttpResponse("mine")
    response.set_cookie(NAME, "set-by-the-view")
    return response


def from_environ(request: Any) -> JsonResponse:
    session = request.environ.get("authsession")
    return JsonResponse({"environ": session and session.user.name, "attr": _attr(request)})


async def from_scope(request: Any) -> JsonResponse:
    session = request.scope.get("authsession")
    return JsonResponse({"scope": session and session.user.name, "attr": _attr(request)})


def _attr(request: Any) -> Any:
    session = getattr(request, "auth_session", "unset")
    return session if session in (None, "unset") else session.user.name


urlpatterns = [
    path("public", public),
    path("me", me),
    path("ame", ame),
    path("admin", admin),
    path("reports", reports),
    path("custom", custom),
    path("profile", Profile.as_view()),
    path("page", page),
    path("sign-in", do_sign_in),
    path("asign-in", ado_sign_in),
    path("sign-out", do_sign_out),
    path("asign-out", ado_sign_out),
    path("rename", rename),
    path("arename", arename),
    path("own-cookie", own_cookie),
    path("environ", from_environ),
    path("scope", from_scope),
]


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def _django(django_settings: Any) -> Any:
    # Each test's settings runtime is built afresh (its cache too).
    integration._settings.reset(setting="AUTHSESSION")
    yield
    integration._settings.reset(setting="AUTHSESSION")


def client(value: str | None = None, **cookies: str) -> Any:
    from django.test import Client

    c = Client()
    if value is not None:
        c.cookies[NAME] = value
    for name, v in cookies.items():
        c.cookies[name] = v
    return c


def async_client(value: str | None = None) -> Any:
    from django.test import AsyncClient

    c = AsyncClient()
    if value is not None:
        c.cookies[NAME] = value
    return c


def session_cookies(response: Any) -> dict[str, Any]:
    return {name: m for name, m in response.cookies.items() if name.startswith(NAME)}


def override(**settings: Any) -> Any:
    from django.test import override_settings

    return override_settings(**settings)


# -- reading (sync middleware) --------------------------------------------------


def test_request_auth_session_present_and_absent() -> None:
    assert client(token()).get("/public").json() == {"signed_in": True, "is_none": False}
    assert client().get("/public").json() == {"signed_in": False, "is_none": True}
    me = client(token()).get("/me")
    assert me.status_code == 200
    assert me.json()["user"] == {"name": "Ada", "email": "ada@example.com"}
    assert me.json()["expires"].endswith("Z")
    assert client(token()).get("/page").content == b"Hi Ada"
    assert client().get("/page").content == b"anon"
    assert client(token()).get("/profile").content == b"ada@example.com"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bad_cookies_are_signed_out_never_500() -> None:
    good = token()
    for value in ("garbage", good[:-4], good + "x", "A" * 70_000, "%zz"):
        assert client(value).get("/public").json() == {"signed_in": False, "is_none": True}
        assert client(value).get("/me").status_code == 401
    chunks = {f"{NAME}.0": good[:100], f"{NAME}.7": good[100:]}  # a gap: not a token
    assert client(None, **chunks).get("/public").json()["signed_in"] is False


def test_a_failing_callback_reads_as_signed_out() -> None:
    def broken(session: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("callback bug")

    with override(AUTHSESSION={"secret": SECRET, "callbacks": {"session": broken}}):
        response = client(token()).get("/public")
    assert response.status_code == 200
    assert response.json()["signed_in"] is False


def test_resolved_once_per_request() -> None:
    callbacks = Callbacks()
    with override(AUTHSESSION=settings_with(callbacks)):
        client(token()).get("/me")
    assert callbacks.calls == 1


# -- async middleware -------------------------------------------------------------


async def test_async_middleware_and_async_views() -> None:
    callbacks = Callbacks()
    with override(AUTHSESSION=settings_with(callbacks)):
        response = await async_client(token()).get("/ame")
        assert response.status_code == 200
        assert response.json()["user"]["name"] == "Ada"
        assert callbacks.calls == 1
        # A sync view behind the async middleware (Django runs it in a thread).
        assert (await async_client(token()).get("/public")).json()["signed_in"] is True
        assert (await async_client().get("/ame")).status_code == 401
        assert (await async_client("garbage").get("/public")).json()["signed_in"] is False


async def test_async_sign_in_update_and_sign_out() -> None:
    with override(AUTHSESSION=settings_with()):
        c = async_client()
        response = await c.post("/asign-in", {"name": "Lin"})
        assert NAME in session_cookies(response)
        assert (await c.get("/ame")).json()["user"]["name"] == "Lin"
        response = await c.post("/arename")
        assert response.json() == {"returned": "Grace", "current": "Grace"}
        assert (await c.get("/ame")).json()["user"]["name"] == "Grace"
        response = await c.post("/asign-out")
        assert response.json() == {"after": True}
        assert session_cookies(response)[NAME]["max-age"] == 0
        assert (await c.get("/ame")).status_code == 401


# -- guards -----------------------------------------------------------------------


def test_login_required_json_401_for_api_clients() -> None:
    for accept in (None, "application/json", "*/*"):
        headers = {"HTTP_ACCEPT": accept} if accept else {}
        response = client().get("/me", **headers)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"error": "unauthorized", "message": "sign-in required"}
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_login_required_redirects_browsers_with_callback_url() -> None:
    response = client().get("/me?tab=2&x=a%20b", HTTP_ACCEPT=HTML)
    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert location.path == "/login"  # settings.AUTHSESSION["sign_in_url"]
    assert parse_qs(location.query) == {"callbackUrl": ["http://testserver/me?tab=2&x=a%20b"]}
    # A decorator's own sign_in_url wins; with no setting, Auth.js's page.
    location = client().get("/custom", HTTP_ACCEPT=HTML)["Location"]
    assert (
        location == "https://front.example/sign-in?x=1&callbackUrl=http%3A%2F%2Ftestserver%2Fcustom"
    )
    with override(AUTHSESSION={"secret": SECRET}):
        location = client().get("/me", HTTP_ACCEPT=HTML)["Location"]
    assert location == "/api/auth/signin?callbackUrl=http%3A%2F%2Ftestserver%2Fme"
    # Class-based views through method_decorator.
    assert client().get("/profile", HTTP_ACCEPT=HTML).status_code == 303


def test_role_and_permission_required() -> None:
    with override(AUTHSESSION=settings_with()):
        assert client().get("/admin").status_code == 401
        plain = client(token()).get("/admin")
        assert plain.status_code == 403
        assert plain.json() == {"error": "forbidden", "message": "requires role admin or owner"}
        browser = client(token()).get("/admin", HTTP_ACCEPT=HTML)
        assert browser.status_code == 403 and b"requires role" in browser.content
        assert client(token(role="owner")).get("/admin").json() == {"admin": "Ada"}

        partial = client(token(permissions=["read"])).get("/reports")
        assert partial.status_code == 403
        assert partial.json()["message"] == "requires permission export"
        full = client(token(permissions=["export", "read"])).get("/reports")
        assert full.json() == {"ok": True}


def test_guard_factories_refuse_empty_or_non_string_names() -> None:
    with pytest.raises(TypeError):
        role_required()
    with pytest.raises(TypeError):
        permission_required(["read"])  # type: ignore[arg-type]


# -- writing ----------------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True])
def test_sign_in_sets_a_cookie_the_next_request_reads(direct: bool) -> None:
    with override(AUTHSESSION=settings_with()):
        c = client()
        data = {"name": "Grace", "role": "admin", **({"direct": "1"} if direct else {})}
        response = c.post("/sign-in", data)
        cookie = session_cookies(response)[NAME]
        assert cookie["httponly"] and cookie["path"] == "/" and cookie["samesite"] == "Lax"
        assert cookie["expires"] and not cookie["secure"]
        claims = jwt.decode(cookie.value, SECRET, NAME)
        assert (claims["name"], claims["sub"], claims["role"]) == ("Grace", "7", "admin")
        assert c.get("/admin").json() == {"admin": "Grace"}  # the client kept the cookie


def test_https_sign_in_uses_the_secure_cookie_name() -> None:
    response = client().post("/sign-in", {"name": "Sec"}, secure=True)
    (name,) = session_cookies_any(response)
    assert name == "__Secure-" + NAME
    assert response.cookies[name]["secure"]


def session_cookies_any(response: Any) -> list[str]:
    return [name for name in response.cookies if "session-token" in name]


@pytest.mark.parametrize("direct", [False, True])
def test_large_session_is_chunked_and_sign_out_clears_every_chunk(direct: bool) -> None:
    c = client()
    big = "G" * 6000
    response = c.post("/sign-in", {"name": big})
    names = sorted(session_cookies(response))
    assert len(names) >= 2 and names == [f"{NAME}.{i}" for i in range(len(names))]
    assert c.get("/me").json()["user"]["name"] == big

    response = c.post("/sign-out", {"direct": "1"} if direct else {})
    if not direct:
        assert response.json() == {"after": True}
    cleared = session_cookies(response)
    assert sorted(cleared) == names
    assert all(m.value == "" and m["max-age"] == 0 for m in cleared.values())
    assert "1970" in cleared[names[0]]["expires"]
    assert c.get("/me").status_code == 401


def test_update_session_rewrites_the_cookie() -> None:
    with override(AUTHSESSION=settings_with()):
        c = client(token())
        response = c.post("/rename")
        assert response.json() == {"returned": "Grace", "current": "Grace"}
        assert jwt.decode(c.cookies[NAME].value, SECRET, NAME)["name"] == "Grace"
        assert c.get("/me").json()["user"]["name"] == "Grace"


def test_sliding_refresh_is_written_unless_the_view_set_the_cookie() -> None:
    with override(AUTHSESSION=settings_with(update_age=0)):
        response = client(token()).get("/me")
        refreshed = session_cookies(response)[NAME].value
        assert jwt.decode(refreshed, SECRET, NAME)["name"] == "Ada"
        mine = client(token()).get("/own-cookie")
        assert session_cookies(mine)[NAME].value == "set-by-the-view"


def test_sign_in_without_middleware_or_response_is_a_clear_error() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import RequestFactory

    request = RequestFactory().post("/sign-in", {"name": "x"})
    with pytest.raises(ImproperlyConfigured, match="MIDDLEWARE"):
        sign_in(request, {"name": "x"})
    response = HttpResponse()
    sign_in(request, {"id": "1", "name": "x"}, response)
    assert jwt.decode(response.cookies[NAME].value, SECRET, NAME)["name"] == "x"


# -- configuration ------------------------------------------------------------------


def test_process_runtime_when_settings_hold_no_config() -> None:
    with override(AUTHSESSION={"sign_in_url": "/in"}):
        with pytest.raises(authsession.AuthRuntimeNotConfigured):
            client(token()).get("/public")
        authsession.configure_auth_runtime(AuthConfig(secret=SECRET))
        assert client(token()).get("/public").json()["signed_in"] is True
        assert client().get("/me", HTTP_ACCEPT=HTML)["Location"].startswith("/in?")
    runtime = AuthRuntime(AuthConfig(secret=SECRET))
    with override(AUTHSESSION=runtime):
        assert client(token()).get("/public").json()["signed_in"] is True


def test_bad_settings_fail_when_the_middleware_loads() -> None:
    from django.core.exceptions import ImproperlyConfigured

    for bad, match in (
        ({"secrett": SECRET}, "neither an AuthConfig field"),
        ({"secret": SECRET, "max_age": -1}, "max_age"),
        ("secret", "must be a dict"),
        ({"secret": SECRET, "sign_in_url": ""}, "sign_in_url"),
    ):
        with override(AUTHSESSION=bad), pytest.raises(ImproperlyConfigured, match=match):
            client().get("/public")


def test_get_auth_session_without_the_django_middleware() -> None:
    from django.test import RequestFactory

    request = RequestFactory().get("/", HTTP_COOKIE=f"{NAME}={token()}")
    assert integration.get_auth_session(request).user.name == "Ada"
    assert request.auth_session.user.name == "Ada"


# -- the generic middleware around Django's handlers ------------------------------------


def test_generic_middleware_wraps_the_wsgi_handler() -> None:
    from django.core.wsgi import get_wsgi_application

    callbacks = Callbacks()
    runtime = AuthRuntime(
        AuthConfig(
            secret=SECRET, cache=False, update_age=0, callbacks={"session": callbacks.session}
        )
    )
    # Alone: the session is in request.environ.
    with override(MIDDLEWARE=[]):
        app = AuthSessionMiddleware(get_wsgi_application(), runtime)
    wsgi = WsgiClient(app)
    wsgi.set_cookie(NAME, token())
    response = wsgi.get("/environ")
    assert json.loads(response.get_data()) == {"environ": "Ada", "attr": "unset"}
    # The generic middleware writes the sliding refresh on the way out.
    assert any(h.startswith(NAME + "=") for h in response.headers.getlist("Set-Cookie"))
    # Guards work from the environ too.
    assert wsgi.get("/me").status_code == 200
    assert WsgiClient(app).get("/me").status_code == 401
    # The helpers write through the generic middleware's cookie sink.
    assert json.loads(wsgi.post("/sign-out").get_data()) == {"after": True}
    assert wsgi.get_cookie(NAME) is None

    # With the Django middleware too: one resolution, shared, one Set-Cookie.
    callbacks.calls = 0
    app = AuthSessionMiddleware(get_wsgi_application(), runtime)
    wsgi = WsgiClient(app)
    wsgi.set_cookie(NAME, token())
    response = wsgi.get("/environ")
    assert json.loads(response.get_data()) == {"environ": "Ada", "attr": "Ada"}
    assert callbacks.calls == 1
    assert len([h for h in response.headers.getlist("Set-Cookie") if h.startswith(NAME)]) == 1
    # Sign-out inside Django clears the cookie through the generic middleware.
    response = wsgi.post("/sign-out")
    assert json.loads(response.get_data()) == {"after": True}
    assert wsgi.get_cookie(NAME) is None


def test_generic_middleware_wraps_the_asgi_handler() -> None:
    from django.core.asgi import get_asgi_application

    callbacks = Callbacks()
    runtime = AuthRuntime(
        AuthConfig(secret=SECRET, cache=False, callbacks={"session": callbacks.session})
    )
    with override(MIDDLEWARE=[]):
        app = AuthSessionMiddleware(get_asgi_application(), runtime)
    signed_in = TestClient(app, cookies={NAME: token()})
    assert signed_in.get("/scope").json() == {"scope": "Ada", "attr": "unset"}
    anonymous = TestClient(app)
    assert anonymous.get("/scope").json() == {"scope": None, "attr": "unset"}
    assert anonymous.get("/ame").status_code == 401

    # With the Django middleware inside as well: it reuses the scope's result.
    callbacks.calls = 0
    app = AuthSessionMiddleware(get_asgi_application(), runtime)
    signed_in = TestClient(app, cookies={NAME: token()})
    assert signed_in.get("/scope").json() == {"scope": "Ada", "attr": "Ada"}
    assert signed_in.get("/ame").json()["user"]["name"] == "Ada"
    assert callbacks.calls == 2  # once per request, not once per layer


def test_runtime_sign_out_onto_a_django_response() -> None:
    """The documented `(request, response)` writing form with a Django HttpResponse."""
    from django.test import RequestFactory

    runtime = AuthRuntime(AuthConfig(secret=SECRET))
    request = RequestFactory().get("/", HTTP_COOKIE=f"{NAME}={token()}")
    response = HttpResponse("bye")
    runtime.sign_out_sync(request, response)
    morsel = response.cookies[NAME]
    assert morsel.value == "" and morsel["max-age"] == 0
    fresh = HttpResponse()
    runtime.sign_in_sync({"id": "1", "name": "Ada"}, fresh)
    assert jwt.decode(fresh.cookies[NAME].value, SECRET, NAME)["name"] == "Ada"
