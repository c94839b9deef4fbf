"""A Quart service reading the sessions of an Auth.js (Next.js) front end.

    GET  /               public: who is signed in, if anyone
    GET  /api/me         the session, exactly as Auth.js's /api/auth/session (401 if none)
    GET  /api/admin      admins only (403 for everyone else)
    POST /api/sign-out   clears the session cookie

Run it with ``python examples/quart_app.py [PORT]`` (or any ASGI server:
``uvicorn quart_app:app``) and the same ``AUTH_SECRET`` as the Auth.js app;
``ADMIN_EMAILS`` (comma-separated) names the users who get ``role: "admin"``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from quart import Quart

from authsession.quart import AuthSession, current_session, login_required, role_required

# A fixed development secret keeps the example runnable with no set-up; a
# real deployment sets AUTH_SECRET (the same value as the Auth.js app's).
DEV_SECRET = "authsession-example-secret-change-me"
ADMIN_EMAILS = frozenset(
    email.strip().lower() for email in os.environ.get("ADMIN_EMAILS", "").split(",") if email
)


def add_role(session: dict[str, Any]) -> dict[str, Any]:
    # Roles live in this service, not in the front end's cookie: the session
    # callback adds them, as an Auth.js session callback would.
    email = str(session["user"].get("email") or "").lower()
    if email in ADMIN_EMAILS:
        session["user"]["role"] = "admin"
    return session


app = Quart(__name__)
app.json.sort_keys = False  # keep Auth.js's key order in JSON responses
auth = AuthSession(
    app, secret=os.environ.get("AUTH_SECRET") or DEV_SECRET, callbacks={"session": add_role}
)


@app.get("/")
async def home() -> Any:
    if not current_session:
        return {"signedIn": False, "message": "Sign in on the front end, then call /api/me."}
    name = current_session.user.get("name") or "there"
    return {"signedIn": True, "message": f"Hello, {name}!"}


@app.get("/api/me")
@login_required
async def me() -> Any:
    return dict(current_session)


@app.get("/api/admin")
@role_required("admin")
async def admin() -> Any:
    return {"admin": True, "email": current_session.user.get("email")}


@app.post("/api/sign-out")
async def sign_out() -> Any:
    await auth.sign_out()
    return {"signedOut": True}


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    uvicorn.run(app, host="127.0.0.1", port=port)
