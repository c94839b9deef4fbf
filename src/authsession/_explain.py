"""``authsession explain``: why does this request have no session?

Walks the same steps as resolution — find the cookie, join its chunks,
decrypt, check the claims — and says in words where it stops, with the most
likely fix. It never prints the token; claims are printed because the person
running it holds the secret anyway.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._cookies import (
    MAX_CHUNKS,
    MAX_SESSION_CHARS,
    SECURE_PREFIX,
    CookieName,
    candidate_names,
    find_session_cookie,
    parse_session_cookies,
)
from ._inputs import RequestView
from ._tokens import decode_found, find_token
from .jwt import _jwe
from .jwt import decode_with as decode_v5
from .jwt import v4 as jwt_v4
from .jwt._errors import JWTDecodeError

_CHUNK = re.compile(r"^(?P<base>.+)\.(?P<index>\d+)$")


@dataclass
class Explanation:
    ok: bool = False
    lines: list[str] = field(default_factory=list)
    claims: dict[str, Any] | None = None

    def say(self, text: str) -> None:
        self.lines.append(text)


def _all_cookie_names(header: str) -> list[str]:
    names = []
    for part in header.split(";"):
        name, sep, _ = part.partition("=")
        if sep and name.strip():
            names.append(name.strip())
    return names


def _chunk_report(cookies: dict[str, str], base: str, out: Explanation) -> None:
    indexes = sorted(
        int(m.group("index"))
        for name in cookies
        if (m := _CHUNK.match(name)) and m.group("base") == base
    )
    if not indexes:
        return
    out.say(f"{base} is split into {len(indexes)} chunk(s): indexes {indexes}")
    expected = list(range(len(indexes)))
    if indexes != expected:
        missing = sorted(set(range(max(indexes) + 1)) - set(indexes))
        out.say(
            f"  chunks are not contiguous from .0 (missing {missing}): only the run "
            "starting at .0 is joined; a token with a lost chunk cannot decrypt anyway "
            "(a proxy or a cookie size limit probably dropped one)"
        )
    if len(indexes) > MAX_CHUNKS:
        out.say(f"  more than {MAX_CHUNKS} chunks: refused as oversized")
    total = sum(len(cookies[f"{base}.{i}"]) for i in indexes)
    if total > MAX_SESSION_CHARS:
        out.say(f"  {total} characters in all, over the {MAX_SESSION_CHARS} limit: refused")


def _other_salts(token: str, secrets: tuple[str, ...], tried: str) -> list[str]:
    """Cookie names whose key opens this token (it was issued under another name)."""
    fits = []
    for spec in candidate_names(None, None):
        if spec.name == tried:
            continue
        try:
            if spec.version == 4:
                jwt_v4.decode_with(token, secrets)
            else:
                decode_v5(token, secrets, spec.name)
        except JWTDecodeError as exc:
            if "expired" in exc.reason or "not yet valid" in exc.reason:
                fits.append(spec.name)
            continue
        fits.append(spec.name)
    return fits


def explain(
    cookie_header: str,
    secrets: Sequence[str],
    *,
    authorization: str | None = None,
    cookie_name: str | None = None,
    secure_cookie: bool | None = None,
    now: float | None = None,
) -> Explanation:
    out = Explanation()
    secrets = tuple(secrets)
    candidates: tuple[CookieName, ...] = candidate_names(cookie_name, secure_cookie)
    names = _all_cookie_names(cookie_header)
    cookies = parse_session_cookies(cookie_header)
    wanted = ", ".join(c.name for c in candidates)
    out.say(f"cookies sent: {', '.join(names) if names else '(none)'}")
    out.say(f"session cookie names looked for, in order: {wanted}")

    found_names = list(cookies)
    if not cookies and not authorization:
        out.say("no session-token cookie and no Authorization header: nobody is signed in")
        near = [n for n in names if "session" in n.lower() or "auth" in n.lower()]
        if near:
            out.say(
                f"  cookies that look related but are not session tokens: {', '.join(near)}; "
                "if one holds the session, pass its name with --cookie-name"
            )
        return out
    for spec in candidates:
        _chunk_report(cookies, spec.name, out)
    found = find_session_cookie(cookies, candidates) if cookies else None
    if found is None and cookies:
        present = ", ".join(found_names) or "(none)"
        out.say(f"session-token cookies present ({present}) but none usable under the names above")
        if any(n.startswith(SECURE_PREFIX) for n in cookies) and secure_cookie is False:
            out.say("  a __Secure- cookie was sent but secure_cookie=False excludes it")
        if any(not n.startswith(SECURE_PREFIX) for n in cookies) and secure_cookie is True:
            out.say("  a plain cookie was sent but secure_cookie=True only reads __Secure- names")
    view = RequestView(cookies=cookies, authorization=authorization)
    found = find_token(view, candidates)
    if found is None:
        if authorization:
            out.say("Authorization header present but not a usable 'Bearer <token>'")
        return out
    source = found.spec.name if found.spec else "Authorization: Bearer"
    out.say(f"token read from {source} ({len(found.value)} characters)")
    if found.spec is not None and len(found.names) > 1:
        out.say(f"  cookies belonging to it: {', '.join(found.names)}")
    if not secrets:
        out.say("no secret given (--secret or AUTH_SECRET): cannot decrypt")
        return out
    try:
        header = _jwe.parse_header(_jwe.split(found.value)[0])
        out.say(
            "JWE header: "
            + ", ".join(f"{k}={header[k]!r}" for k in ("alg", "enc", "kid") if k in header)
        )
    except JWTDecodeError as exc:
        out.say(f"not a JWE the way Auth.js writes it: {exc.reason}")
        out.say(
            "  (with the database strategy the cookie is an opaque session token looked up "
            "in the database, not a JWE: this command checks jwt-strategy cookies)"
        )
        return out
    try:
        claims, spec = decode_found(found, secrets, candidates)
    except JWTDecodeError as exc:
        out.say(f"decryption failed: {exc.reason}")
        if "expired" in exc.reason:
            out.say("  the session ended: sign in again (or raise max_age when issuing)")
        elif found.spec is not None:
            others = _other_salts(found.value, secrets, found.spec.name)
            if others:
                out.say(
                    f"  it decrypts as {', '.join(others)}: the value was issued under another "
                    "cookie name (the name is the key's salt); copy it under its own name"
                )
            else:
                out.say(
                    f"  none of the {len(secrets)} secret(s) opens it: the Auth.js app uses a "
                    "different AUTH_SECRET, or the secret that issued it was rotated out"
                )
        return out
    now = time.time() if now is None else now
    out.claims = claims
    exp = claims.get("exp")
    if isinstance(exp, (int, float)):
        out.say(f"token valid: expires in {int(exp - now)} s (exp={int(exp)})")
    else:
        out.say("token valid: it carries no 'exp' claim")
    out.say(f"decoded with the {spec.name} key; a session resolves from this cookie")
    out.ok = True
    return out
