"""A small Flask service behind an Auth.js (Next.js) front end, using authsession.

Run it with ``python examples/flask_app.py [port]`` and open http://127.0.0.1:5000.
Set AUTH_SECRET to the front end's secret: the session cookie it sets on the
same site is then read here, and ``/api/me`` returns exactly what the front
end's ``/api/auth/session`` does.

Routes: ``/`` (public), ``/api/me`` (signed-in users; JSON 401 for API
clients, a redirect to sign in for browsers), ``/admin`` (role ``admin``;
403 otherwise), ``POST /sign-out``. ``POST /sign-in`` stands in for the front
end's sign-in so the example works on its own; ADMIN_EMAILS (comma-separated,
default ``admin@example.com``) decides who gets the ``admin`` role.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, redirect, render_template_string, request

from authsession import AuthConfig
from authsession.flask import (
    AuthSession,
    current_session,
    login_required,
    role_required,
    sign_in,
    sign_out,
)

# A fixed development secret keeps the example runnable with no set-up; a
# real deployment sets AUTH_SECRET (the same value as the Auth.js app's).
DEV_SECRET = "authsession-example-secret-change-me"
ADMIN_EMAILS = {
    email.strip().lower()
    for email in os.environ.get("ADMIN_EMAILS", "admin@example.com").split(",")
    if email.strip()
}


def jwt_callback(token: dict[str, Any], user: Any = None) -> dict[str, Any]:
    # Auth.js's role pattern: decide the role once, at sign-in, and keep it in
    # the token. (A Next.js front end does the same in its own jwt callback.)
    if user is not None:
        token["role"] = "admin" if str(token.get("email", "")).lower() in ADMIN_EMAILS else "user"
    return token


def session_callback(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    # Expose the role to views and guards; tokens without one (a front end
    # that assigns no roles) give exactly Auth.js's default session.
    if "role" in token:
        session["user"]["role"] = token["role"]
    return session


app = Flask(__name__)
# Keep the session's keys in Auth.js's order: {"user": ..., "expires": ...}.
app.json.sort_keys = False  # type: ignore[attr-defined]
auth = AuthSession(
    app,
    AuthConfig(
        secret=os.environ.get("AUTH_SECRET") or DEV_SECRET,
        callbacks={"jwt": jwt_callback, "session": session_callback},
    ),
    # Browsers that need to sign in come back here with ?callbackUrl=...
    sign_in_url="/",
)

PAGE = """<!doctype html><title>authsession · Flask</title><h1>authsession · Flask</h1>
{% if current_session %}
  <p>Signed in as <b>{{ current_session.user.name }}</b>
     {% if current_session.user.role %}({{ current_session.user.role }}){% endif %}.</p>
  <p><a href="/api/me">/api/me</a> · <a href="/admin">/admin</a></p>
  <form action="/sign-out" method="post"><button>Sign out</button></form>
{% else %}
  <p>Not signed in.</p>
  <form action="/sign-in" method="post">
    <input name="name" placeholder="Your name" required>
    <input type="hidden" name="callbackUrl" value="{{ callback_url }}">
    <button>Sign in</button>
  </form>
{% endif %}"""


def same_site(url: str) -> str:
    """``url`` if it points into this site, else ``/`` (no open redirects)."""
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return "/"
    path = parts.path if parts.path.startswith("/") and not parts.path.startswith("//") else "/"
    return path + (f"?{parts.query}" if parts.query else "")


@app.get("/")
def home() -> str:
    return render_template_string(
        PAGE, callback_url=same_site(request.args.get("callbackUrl", "/"))
    )


@app.get("/api/me")
@login_required
def me() -> Any:
    # The same JSON as the front end's GET /api/auth/session.
    return dict(current_session)  # type: ignore[arg-type]


@app.get("/admin")
@role_required("admin")
def admin() -> Any:
    return {"message": f"Welcome to the admin area, {current_session.user.name}."}  # type: ignore[union-attr]


@app.post("/sign-in")
def do_sign_in() -> Any:
    name = request.form.get("name", "").strip()[:100] or "Guest"
    slug = "".join(c for c in name.lower() if c.isalnum()) or "guest"
    sign_in({"id": slug, "name": name, "email": f"{slug}@example.com"})
    return redirect(same_site(request.form.get("callbackUrl", "/")), 303)


@app.post("/sign-out")
def do_sign_out() -> Any:
    sign_out()
    return redirect("/", 303)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
