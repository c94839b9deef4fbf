"""Run an example app under a real uvicorn server and check it against real Auth.js.

``ExampleContract`` holds the tests every ASGI example (FastAPI, Quart)
must pass; a test module subclasses it naming its example file. The Auth.js
side is ``tests/interop``'s harness: a real ``Auth()`` handler under node
signs users in, and the example must answer with the session JSON that the
server's own ``/api/auth/session`` returns. Without node the tests skip
(locally) or fail (``CI=true``), per the harness's rules.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
import uvicorn
from tests.examples._real_servers import assert_same_session
from tests.interop._harness import (
    SECRET,
    SESSION_COOKIE,
    AuthJsServer,
    SignInResult,
    apply_set_cookies,
    cookie_header,
    ensure_node_modules,
    get_session_json,
    parse_set_cookie,
    sign_in,
)

try:  # the venv ships httpx2; plain httpx works too
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START_TIMEOUT = 20.0


def load_example(filename: str, env: dict[str, str]) -> Any:
    """Import ``examples/<filename>`` with ``env`` set while it reads its settings."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    name = f"authsession_example_{Path(filename).stem}"
    try:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / filename)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # Quart finds its root path through sys.modules
        spec.loader.exec_module(module)
        return module
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before the server starts: no port race
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class ExampleContract:
    """The behaviour every ASGI example promises, tested over real HTTP."""

    example: ClassVar[str]

    @pytest.fixture(scope="class")
    @classmethod
    def authjs(cls) -> Iterator[AuthJsServer]:
        ensure_node_modules()
        with AuthJsServer(SECRET) as server:
            yield server

    @pytest.fixture(scope="class")
    @classmethod
    def base_url(cls) -> Iterator[str]:
        module = load_example(
            cls.example, {"AUTH_SECRET": SECRET, "ADMIN_EMAILS": "root@example.com"}
        )
        with serve(module.app) as url:
            yield url

    @pytest.fixture(scope="class")
    @classmethod
    def alice(cls, authjs: AuthJsServer) -> SignInResult:
        return sign_in(authjs.base_url, "alice")

    @pytest.fixture(scope="class")
    @classmethod
    def root(cls, authjs: AuthJsServer) -> SignInResult:
        return sign_in(authjs.base_url, "root")

    @staticmethod
    def get(url: str, cookies: dict[str, str] | None = None, **headers: str) -> httpx.Response:
        if cookies:
            headers["Cookie"] = cookie_header(cookies)
        with httpx.Client(follow_redirects=False, timeout=30) as client:
            return client.get(url, headers=headers)

    def test_public_route(self, base_url: str, alice: SignInResult) -> None:
        assert self.get(base_url + "/").json()["signedIn"] is False
        signed = self.get(base_url + "/", alice.jar).json()
        assert signed == {"signedIn": True, "message": "Hello, alice!"}

    def test_api_me_matches_authjs_session(
        self, base_url: str, authjs: AuthJsServer, alice: SignInResult
    ) -> None:
        response = self.get(base_url + "/api/me", alice.jar)
        assert response.status_code == 200
        assert_same_session(response.json(), get_session_json(authjs.base_url, alice.jar))

    def test_bearer_token_reads_the_same_session(
        self, base_url: str, authjs: AuthJsServer, alice: SignInResult
    ) -> None:
        token = alice.cookies[SESSION_COOKIE]
        response = self.get(base_url + "/api/me", Authorization=f"Bearer {token}")
        assert_same_session(response.json(), get_session_json(authjs.base_url, alice.jar))

    def test_signed_out_api_and_browser(self, base_url: str) -> None:
        api = self.get(base_url + "/api/me", Accept="application/json")
        assert api.status_code == 401
        assert "unauthorized" in api.text
        assert api.headers["www-authenticate"].startswith("Bearer")
        browser = self.get(base_url + "/api/me?x=1", Accept="text/html")
        assert browser.status_code == 303
        back = quote(f"{base_url}/api/me?x=1", safe="")
        assert browser.headers["location"] == f"/api/auth/signin?callbackUrl={back}"

    def test_admin_route(
        self, base_url: str, authjs: AuthJsServer, alice: SignInResult, root: SignInResult
    ) -> None:
        assert self.get(base_url + "/api/admin", alice.jar).status_code == 403
        assert self.get(base_url + "/api/admin").status_code == 401
        admin = self.get(base_url + "/api/admin", root.jar)
        assert admin.status_code == 200
        assert admin.json() == {"admin": True, "email": "root@example.com"}
        # The example's session callback adds the role on top of Auth.js's session.
        ours = self.get(base_url + "/api/me", root.jar).json()
        server = get_session_json(authjs.base_url, root.jar)
        assert ours["user"] == {**server["user"], "role": "admin"}

    def test_sign_out_clears_the_cookie(self, base_url: str, alice: SignInResult) -> None:
        jar = dict(alice.jar)
        with httpx.Client(timeout=30) as client:
            out = client.post(base_url + "/api/sign-out", headers={"Cookie": cookie_header(jar)})
        assert out.status_code == 200
        cleared = [parse_set_cookie(h) for h in out.headers.get_list("set-cookie")]
        assert any(c.name == SESSION_COOKIE and c.deletes for c in cleared), cleared
        apply_set_cookies(jar, out.headers.get_list("set-cookie"))
        assert SESSION_COOKIE not in jar
        assert self.get(base_url + "/api/me", jar).status_code == 401

    def test_garbage_cookie_is_signed_out_not_an_error(self, base_url: str) -> None:
        jar = {SESSION_COOKIE: "garbage" * 50}
        assert self.get(base_url + "/", jar).json()["signedIn"] is False
        assert self.get(base_url + "/api/me", jar).status_code == 401
