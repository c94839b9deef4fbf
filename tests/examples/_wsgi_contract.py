"""The behaviour every WSGI example promises (Flask, Django), tested over real HTTP.

A test module subclasses ``WsgiExampleContract`` with the example's file and
the name of its WSGI callable; ``post_form`` is how the example's own page
posts a form (Django adds its CSRF token). The ASGI examples have the same
kind of contract in ``_live_server.ExampleContract``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.examples._real_servers import (
    EXAMPLES,
    AuthJsSignIn,
    Browser,
    assert_same_session,
    authjs_sign_in,
    serve,
)

HTML = "text/html,application/xhtml+xml,*/*;q=0.8"


class WsgiExampleContract:
    example: ClassVar[str]  # file name under examples/
    attribute: ClassVar[str]  # the WSGI callable in it

    @pytest.fixture(scope="class")
    @classmethod
    def alice(cls) -> AuthJsSignIn:
        return authjs_sign_in("alice")

    @pytest.fixture(scope="class")
    @classmethod
    def base_url(cls, alice: AuthJsSignIn) -> Iterator[str]:
        env = {"AUTH_SECRET": alice.secret, "ADMIN_EMAILS": "admin@example.com"}
        with serve(EXAMPLES / cls.example, cls.attribute, env) as url:
            yield url

    @pytest.fixture
    def browser(self, base_url: str) -> Iterator[Browser]:
        b = Browser(base_url)
        yield b
        b.close()

    def post_form(self, browser: Browser, path: str, data: dict[str, str] | None = None) -> Any:
        """A form post the way the example's page makes it."""
        return browser.post(path, data=data or {})

    def test_authjs_cookie_reads_as_the_authjs_session(
        self, browser: Browser, alice: AuthJsSignIn
    ) -> None:
        browser.jar.update(alice.cookies)
        me = browser.get("/api/me")
        assert me.status_code == 200
        assert me.headers["content-type"] == "application/json"
        assert alice.session["user"]["name"] == "alice"
        assert_same_session(me.json(), alice.session)
        assert "Signed in as <b>alice</b>" in browser.get("/").text
        # A front-end user without a role is kept out of the admin area.
        denied = browser.get("/admin")
        assert denied.status_code == 403
        assert denied.json() == {"error": "forbidden", "message": "requires role admin"}

    def test_signed_out_api_call_and_browser_navigation(
        self, browser: Browser, base_url: str
    ) -> None:
        api = browser.get("/api/me")
        assert api.status_code == 401
        assert api.json()["error"] == "unauthorized"
        page = browser.get("/api/me?tab=1", headers={"Accept": HTML})
        assert page.status_code == 303
        location = urlsplit(page.headers["location"])
        assert location.path == "/"
        assert parse_qs(location.query) == {"callbackUrl": [f"{base_url}/api/me?tab=1"]}
        assert "Not signed in" in browser.get("/").text

    def test_sign_in_as_admin_then_sign_out(self, browser: Browser) -> None:
        response = self.post_form(browser, "/sign-in", {"name": "Admin", "callbackUrl": "/admin"})
        assert response.status_code == 303 and response.headers["location"] == "/admin"
        assert set(browser.session_cookies()) == {"authjs.session-token"}
        assert browser.get("/admin").json() == {"message": "Welcome to the admin area, Admin."}
        assert browser.get("/api/me").json()["user"]["role"] == "admin"

        response = self.post_form(browser, "/sign-out")
        assert response.status_code == 303
        assert browser.session_cookies() == {}
        assert browser.get("/api/me").status_code == 401

    def test_sign_out_clears_the_authjs_cookie(self, browser: Browser, alice: AuthJsSignIn) -> None:
        browser.jar.update(alice.cookies)
        assert self.post_form(browser, "/sign-out").status_code == 303
        assert browser.session_cookies() == {}

    def test_bad_cookie_is_signed_out_not_an_error(
        self, browser: Browser, alice: AuthJsSignIn
    ) -> None:
        value = alice.cookies["authjs.session-token"]
        for bad in ("garbage", value[:-5], value + "x"):
            browser.jar["authjs.session-token"] = bad
            assert browser.get("/").status_code == 200
            assert browser.get("/api/me").status_code == 401
