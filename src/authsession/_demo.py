"""``authsession demo``: a small site with database sessions on embedded SQLite.

Everything here is what an application would write itself: a WSGI app
(Werkzeug, a core dependency, so the demo needs no extra install) wrapped in
``AuthSessionMiddleware``, the ``database`` strategy on ``SQLiteAdapter``,
sign-in / update / sign-out through the runtime, and the session JSON at
``/api/auth/session`` exactly as Auth.js serves it. Sessions live in the
SQLite file, so they survive a restart; an Auth.js app pointed at the same
schema would see the same users and sessions.
"""

from __future__ import annotations

import html
import json
import logging
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from ._bridge import run_sync
from ._config import AuthConfig
from ._middleware import AuthSessionMiddleware
from ._runtime import AuthRuntime
from .adapters import SQLiteAdapter

log = logging.getLogger("authsession.demo")

_PAGE = """<!doctype html><meta charset="utf-8"><title>authsession demo</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}}
pre{{background:#f4f4f4;padding:1rem;overflow:auto}}input{{font:inherit}}</style>
<h1>authsession demo</h1>{body}
<p><small>Database sessions on SQLite ({db}). <a href="/api/auth/session">/api/auth/session</a>
returns the JSON Auth.js's endpoint returns.</small></p>"""


def build_demo_app(db_path: str, *, secure_cookie: bool = False) -> Any:
    """The demo as a WSGI app (used by the command and its tests)."""
    adapter = SQLiteAdapter(db_path)
    runtime = AuthRuntime(
        AuthConfig(
            strategy="database",
            adapter=adapter,
            max_age=7 * 24 * 3600,
            update_age=3600,
            secure_cookie=secure_cookie,
            callbacks={"session": _add_user_id},
        )
    )
    urls = Map(
        [
            Rule("/", endpoint="home", methods=["GET"]),
            Rule("/sign-in", endpoint="sign_in", methods=["POST"]),
            Rule("/update", endpoint="update", methods=["POST"]),
            Rule("/sign-out", endpoint="sign_out", methods=["POST"]),
            Rule("/api/auth/session", endpoint="session", methods=["GET"]),
        ]
    )

    def home(request: Request) -> Response:
        session = request.environ.get("authsession")
        if session is None:
            body = (
                "<p>Nobody is signed in.</p>"
                '<form method="post" action="/sign-in">'
                '<input name="name" placeholder="Name" required> '
                '<input name="email" type="email" placeholder="Email" required> '
                "<button>Sign in</button></form>"
            )
        else:
            user = session.user
            body = (
                f"<p>Signed in as <b>{html.escape(str(user.get('name')))}</b> "
                f"({html.escape(str(user.get('email')))}).</p>"
                f"<pre>{html.escape(json.dumps(session, indent=2))}</pre>"
                '<form method="post" action="/update">'
                '<input name="name" placeholder="New name" required> '
                "<button>Rename</button></form>"
                '<form method="post" action="/sign-out"><button>Sign out</button></form>'
            )
        page = _PAGE.format(body=body, db=html.escape(db_path))
        return Response(page, content_type="text/html; charset=utf-8")

    def sign_in(request: Request) -> Response:
        name = request.form.get("name", "").strip()[:100]
        email = request.form.get("email", "").strip()[:200]
        response = redirect("/", 303)
        if name and email:
            # The database strategy finds the user by email or creates it.
            runtime.sign_in_sync({"name": name, "email": email}, response, request=request)
        return response

    def update(request: Request) -> Response:
        name = request.form.get("name", "").strip()[:100]
        response = redirect("/", 303)
        session = request.environ.get("authsession")
        if name and session is not None:
            run_sync(adapter.update_user({"id": session.user["id"], "name": name}))
            runtime.update_session_sync(request, {"name": name}, response)
        return response

    def sign_out(request: Request) -> Response:
        response = redirect("/", 303)
        runtime.sign_out_sync(request, response)
        return response

    def session_json(request: Request) -> Response:
        session = request.environ.get("authsession")
        return Response(json.dumps(session), content_type="application/json")

    views = {
        "home": home,
        "sign_in": sign_in,
        "update": update,
        "sign_out": sign_out,
        "session": session_json,
    }

    @Request.application
    def app(request: Request) -> Response:
        try:
            endpoint, _ = urls.bind_to_environ(request.environ).match()
        except (NotFound, MethodNotAllowed) as exc:
            return exc.get_response(request.environ)
        except HTTPException as exc:  # pragma: no cover - other routing errors
            return exc.get_response(request.environ)
        return views[str(endpoint)](request)

    return AuthSessionMiddleware(app, runtime, protocol="wsgi")


def _add_user_id(session: dict[str, Any], user: dict[str, Any] | None) -> dict[str, Any]:
    # The default session keeps name/email/image only, as Auth.js's does;
    # the demo adds the id, the way an Auth.js app's session callback would.
    if user is not None:
        session["user"]["id"] = user["id"]
    return session


def serve(host: str, port: int, db_path: str) -> None:
    from werkzeug.serving import run_simple

    app = build_demo_app(db_path)
    print(f"authsession demo on http://{host}:{port}/  (sessions in {db_path}; Ctrl-C stops)")
    run_simple(host, port, app, threaded=True)
