"""examples/django_app.py under a real WSGI server (waitress), read with a real Auth.js cookie."""

from __future__ import annotations

from typing import Any

import pytest
from tests.examples._real_servers import AuthJsSignIn, Browser
from tests.examples._wsgi_contract import WsgiExampleContract

pytestmark = pytest.mark.interop


class TestDjangoExample(WsgiExampleContract):
    example = "django_app.py"
    attribute = "application"

    def post_form(self, browser: Browser, path: str, data: dict[str, str] | None = None) -> Any:
        """A form post the way the page makes it: with Django's CSRF token."""
        if "csrftoken" not in browser.jar:
            browser.get("/")
        return browser.post(
            path, data=data or {}, headers={"X-CSRFToken": browser.jar["csrftoken"]}
        )

    def test_sign_out_needs_the_csrf_token(self, browser: Browser, alice: AuthJsSignIn) -> None:
        browser.jar.update(alice.cookies)
        assert browser.post("/sign-out").status_code == 403
        assert browser.session_cookies() == alice.cookies
