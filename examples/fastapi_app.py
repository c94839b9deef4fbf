"""A FastAPI service reading the sessions of an Auth.js (Next.js) front end.

The front end signs users in; this API reads the same session cookie (or a
``Authorization: Bearer`` token carrying it) and answers:

    GET  /               public: who is signed in, if anyone
    GET  /api/me         the session, exactly as Auth.js's /api/auth/session (401 if none)
    GET  /api/admin      admins only (403 for everyone else)
    POST /api/sign-out   clears the session cookie

Run it with ``python examples/fastapi_app.py [PORT]`` and the same
``AUTH_SECRET`` as the Auth.js app; ``ADMIN_EMAILS`` (comma-separated) names
the users who get ``role: "admin"`` in their session.
"""

import os
import sys
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from authsession import AuthConfig, AuthSessionMiddleware, Session
from authsession.fastapi import RequiredSession, SessionActionsDep, SessionDep, require_role

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


config = AuthConfig(
    secret=os.environ.get("AUTH_SECRET") or DEV_SECRET, callbacks={"session": add_role}
)
app = FastAPI(title="authsession FastAPI example")
app.add_middleware(AuthSessionMiddleware, config)


@app.get("/")
async def home(session: SessionDep) -> dict[str, Any]:
    if session is None:
        return {"signedIn": False, "message": "Sign in on the front end, then call /api/me."}
    return {"signedIn": True, "message": f"Hello, {session.user.get('name') or 'there'}!"}


@app.get("/api/me")
async def me(session: RequiredSession) -> dict[str, Any]:
    return session


@app.get("/api/admin")
async def admin(session: Annotated[Session, Depends(require_role("admin"))]) -> dict[str, Any]:
    return {"admin": True, "email": session.user.get("email")}


@app.post("/api/sign-out")
async def sign_out(actions: SessionActionsDep) -> dict[str, Any]:
    await actions.sign_out()
    return {"signedOut": True}


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    uvicorn.run(app, host="127.0.0.1", port=port)
