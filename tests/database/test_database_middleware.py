"""Database sessions behind ``AuthSessionMiddleware``: what a browser sees.

ASGI (Starlette) and WSGI (Flask): the app reads the session the middleware
resolved; a due session's refreshed cookie and a sign-out's cleared cookie
reach the response's ``Set-Cookie`` headers.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

from flask import Flask, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from authsession import AuthSessionMiddleware, get_server_session, get_server_session_sync

from .conftest import COOKIE, MAX_AGE, UPDATE_AGE, USER, cookie_attrs, row, seed


def _set_cookie(headers: Any) -> dict[str, dict[str, str]]:
    values = (
        headers.get_list("set-cookie")
        if hasattr(headers, "get_list")
        else (
            headers.getlist("Set-Cookie")  # Werkzeug
        )
    )
    return {h.split("=", 1)[0]: cookie_attrs(h) for h in values}


def test_asgi_reads_slides_and_signs_out(adapter, make_runtime):
    rt = make_runtime()

    async def me(req: Request) -> JSONResponse:
        return JSONResponse(await get_server_session(req))

    async def sign_out(req: Request) -> JSONResponse:
        response = JSONResponse({"ok": True})
        await rt.sign_out(req, response)
        return response

    app = AuthSessionMiddleware(
        Starlette(routes=[Route("/me", me), Route("/out", sign_out, methods=["POST"])]), rt
    )
    fresh, _ = seed(adapter, age=60)
    due, _ = seed(adapter, age=UPDATE_AGE + 60)
    with TestClient(app) as client:
        plain = client.get("/me", headers={"cookie": f"{COOKIE}={fresh}"})
        assert plain.json()["user"]["email"] == USER["email"]
        assert "set-cookie" not in plain.headers

        slid = client.get("/me", headers={"cookie": f"{COOKIE}={due}"})
        cookie = _set_cookie(slid.headers)[COOKIE]
        assert cookie["value"] == due
        expiry = parsedate_to_datetime(cookie["expires"]).timestamp()
        assert abs(expiry - row(adapter, due)["expires"].timestamp()) < 1
        assert expiry > time.time() + MAX_AGE - 5

        out = client.post("/out", headers={"cookie": f"{COOKIE}={fresh}"})
        assert _set_cookie(out.headers)[COOKIE]["max-age"] == "0"
        assert row(adapter, fresh) is None
        again = client.get("/me", headers={"cookie": f"{COOKIE}={fresh}"})
        assert again.json() is None


def test_wsgi_flask_reads_slides_and_signs_out(adapter, make_runtime):
    rt = make_runtime()
    flask_app = Flask(__name__)

    @flask_app.get("/me")
    def me() -> Any:
        session = get_server_session_sync(request)
        return {"session": session}

    @flask_app.post("/out")
    def sign_out() -> Any:
        response = flask_app.make_response({"ok": True})
        rt.sign_out_sync(request, response)
        return response

    flask_app.wsgi_app = AuthSessionMiddleware(flask_app.wsgi_app, rt)  # type: ignore[method-assign]
    fresh, _ = seed(adapter, age=60)
    due, _ = seed(adapter, age=UPDATE_AGE + 60)
    client = flask_app.test_client()

    client.set_cookie(COOKIE, fresh)
    assert client.get("/me").json["session"]["user"]["name"] == USER["name"]

    client.set_cookie(COOKIE, due)
    slid = client.get("/me")
    assert _set_cookie(slid.headers)[COOKIE]["value"] == due
    assert row(adapter, due)["expires"].timestamp() > time.time() + MAX_AGE - 5

    client.set_cookie(COOKIE, fresh)
    out = client.post("/out")
    assert _set_cookie(out.headers)[COOKIE]["max-age"] == "0"
    assert row(adapter, fresh) is None
    client.set_cookie(COOKIE, fresh)
    assert client.get("/me").json["session"] is None
