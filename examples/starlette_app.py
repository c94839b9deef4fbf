"""A small Starlette app that reads and writes Auth.js sessions with authsession.

Run it with ``python3 dev.py example`` (or ``python examples/starlette_app.py``)
and open http://127.0.0.1:8000. Set AUTH_SECRET to your Next.js app's secret
and the session cookie that app sets on the same host is read here too.
"""

from __future__ import annotations

import html
import json
import os
import sys
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

import authsession

# A fixed development secret keeps the example runnable with no set-up; a
# real deployment sets AUTH_SECRET (the same value as the Auth.js app's).
DEV_SECRET = "authsession-example-secret-change-me"
runtime = authsession.configure_auth_runtime(
    authsession.AuthConfig(secret=os.environ.get("AUTH_SECRET") or DEV_SECRET)
)


async def home(request: Request) -> Response:
    session = await authsession.get_server_session(request)
    if session is None:
        body = (
            "<p>Not signed in.</p>"
            '<form action="/sign-in" method="post">'
            '<input name="name" placeholder="Your name" required> <button>Sign in</button></form>'
        )
    else:
        body = (
            f"<p>Signed in as <b>{html.escape(str(session.user.get('name')))}</b>.</p>"
            f"<pre>{html.escape(json.dumps(session, indent=2))}</pre>"
            '<p><a href="/api/auth/session">/api/auth/session</a> · '
            '<form action="/sign-out" method="post" style="display:inline">'
            "<button>Sign out</button></form></p>"
        )
    page = "<!doctype html><title>authsession example</title><h1>authsession</h1>"
    return HTMLResponse(page + body)


async def session_json(request: Request) -> Response:
    # The same JSON Auth.js's GET /api/auth/session returns (null when signed out).
    response = JSONResponse(None)
    session = await authsession.get_server_session((request, response))
    response.body = response.render(session)
    response.headers["content-length"] = str(len(response.body))
    return response


async def sign_in(request: Request) -> Response:
    # A urlencoded form read by hand keeps the example free of python-multipart.
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    name = (form.get("name") or [""])[0].strip()[:100] or "Guest"
    response = RedirectResponse("/", status_code=303)
    await runtime.sign_in(
        {"id": name.lower(), "name": name, "email": f"{name.lower()}@example.com"},
        response,
        request=request,
    )
    return response


async def sign_out(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    await runtime.sign_out(request, response)
    return response


app = Starlette(
    routes=[
        Route("/", home),
        Route("/api/auth/session", session_json),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    uvicorn.run(app, host="127.0.0.1", port=port)
