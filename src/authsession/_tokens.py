"""Finding the session token in a request and decoding it with the right codec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from ._cookies import MAX_SESSION_CHARS, CookieName, FoundCookie, find_session_cookie
from ._inputs import RequestView
from .jwt import _jwe, decode_with
from .jwt import v4 as jwt_v4
from .jwt._errors import JWTDecodeError
from .jwt._keys import v5_ring


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``, percent-decoded as Auth.js does."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    parts = authorization.split(" ")
    raw = parts[1] if len(parts) > 1 else ""
    if not raw or len(raw) > MAX_SESSION_CHARS:
        return None
    if "%" not in raw:
        return raw
    try:
        return unquote(raw, errors="strict") if _valid_escapes(raw) else None
    except UnicodeDecodeError:
        return None


def _valid_escapes(raw: str) -> bool:
    # decodeURIComponent throws on a '%' not followed by two hex digits;
    # Auth.js then treats the token as invalid, and so do we.
    index = raw.find("%")
    while index != -1:
        pair = raw[index + 1 : index + 3]
        if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
            return False
        index = raw.find("%", index + 3)
    return True


def find_token(view: RequestView, candidates: tuple[CookieName, ...]) -> FoundCookie | None:
    """The session cookie if present, else an ``Authorization: Bearer`` token."""
    cookies: Mapping[str, str] = view.cookies
    if cookies:
        found = find_session_cookie(cookies, candidates)
        if found is not None:
            return found
    token = bearer_token(view.authorization)
    if token is None:
        return None
    return FoundCookie(None, token, ())


def decode_found(
    found: FoundCookie, secrets: tuple[str, ...], candidates: tuple[CookieName, ...]
) -> tuple[dict[str, Any], CookieName]:
    """Decode a found token; returns the claims and the cookie name whose codec fit."""
    spec = found.spec
    if spec is not None:
        if spec.version == 4:
            return jwt_v4.decode_with(found.value, secrets), spec
        return decode_with(found.value, secrets, spec.name), spec
    return _decode_bearer(found.value, secrets, candidates)


def _decode_bearer(
    token: str, secrets: tuple[str, ...], candidates: tuple[CookieName, ...]
) -> tuple[dict[str, Any], CookieName]:
    """A Bearer token names no cookie, so its salt is found from its ``kid``."""
    header = _jwe.parse_header(_jwe.split(token)[0])
    kid = header.get("kid")
    v5_names = [c for c in candidates if c.version == 5]
    v4_names = [c for c in candidates if c.version == 4]
    if kid is not None:
        for spec in v5_names:
            if kid in v5_ring(secrets, spec.name, header["enc"]).by_kid:
                return decode_with(token, secrets, spec.name), spec
        raise JWTDecodeError("no secret and cookie name match the Bearer token's 'kid'")
    error: JWTDecodeError | None = None
    if header["enc"] == _jwe.GCM and v4_names:
        try:
            return jwt_v4.decode_with(token, secrets), v4_names[0]
        except JWTDecodeError as exc:
            error = exc
    if v5_names:
        return decode_with(token, secrets, v5_names[0].name), v5_names[0]
    raise error or JWTDecodeError("no cookie name to derive the Bearer token's key from")
