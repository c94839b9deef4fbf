"""Sessions, cookies and checks shared by the Starlette, FastAPI and Quart tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import SECRET

from authsession import AuthConfig, AuthRuntime, jwt

NAME = "authjs.session-token"
ADA = {"sub": "1", "name": "Ada", "email": "ada@example.com", "picture": "https://x/a.png"}
ADMIN = {**ADA, "role": "admin", "permissions": ["read", "write"]}
EDITOR = {**ADA, "roles": ["editor"], "permissions": ["read"]}


def with_access(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    """A session callback exposing the token's role, roles and permissions, as apps do."""
    for key in ("role", "roles", "permissions"):
        if key in token:
            session["user"][key] = token[key]
    return session


def make_runtime(**options: Any) -> AuthRuntime:
    return AuthRuntime(AuthConfig(secret=SECRET, callbacks={"session": with_access}, **options))


def token(claims: dict[str, Any] = ADA) -> str:
    return jwt.encode(claims, SECRET, NAME, 3600)


def cookie(claims: dict[str, Any] = ADA) -> dict[str, str]:
    return {"Cookie": f"{NAME}={token(claims)}"}


HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
BAD_COOKIES = [
    "garbage",
    "a.b.c.d.e",
    token(ADA)[:-4] + "AAAA",  # tampered
    jwt.encode(ADA, "another-secret", NAME, 3600),
    "%%%\u00e9",
]


def raw_cookie(value: str) -> dict[str, bytes]:
    """A Cookie header carrying ``value`` as the session cookie, sent byte for byte."""
    return {"Cookie": f"{NAME}={value}".encode("latin-1")}


def callback_of(location: str) -> tuple[str, str]:
    """(path of the sign-in page, its callbackUrl) from a redirect's Location."""
    parts = urlsplit(location)
    return parts.path, parse_qs(parts.query)["callbackUrl"][0]


def session_cookies(set_cookie: list[str]) -> dict[str, str]:
    """name -> raw Set-Cookie header for the session cookie(s) among ``set_cookie``."""
    found = {}
    for header in set_cookie:
        name = header.split("=", 1)[0]
        if name.startswith(NAME):
            found[name] = header
    return found


def clears(header: str) -> bool:
    lowered = header.lower()
    return "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered
