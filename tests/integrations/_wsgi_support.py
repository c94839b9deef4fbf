"""Tokens and callbacks shared by the Flask and Django integration tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import SECRET

from authsession import jwt

NAME = "authjs.session-token"
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def token(**claims: Any) -> str:
    base = {"name": "Ada", "email": "ada@example.com", "sub": "1"}
    return jwt.encode({**base, **claims}, SECRET, NAME, 3600)


class Callbacks:
    """Auth.js's usual RBAC callbacks, counting session resolutions."""

    def __init__(self) -> None:
        self.calls = 0

    def jwt(
        self, token: dict[str, Any], user: Any = None, trigger: Any = None, session: Any = None
    ) -> dict[str, Any]:
        """Keep the role a sign-in gives; apply ``update()`` data."""
        if user and "role" in user:
            token["role"] = user["role"]
        if trigger == "update" and isinstance(session, dict):
            token.update(session)
        return token

    def session(self, session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        """Carry role and permissions from the token."""
        self.calls += 1
        for key in ("role", "permissions"):
            if key in token:
                session["user"][key] = token[key]
        return session
