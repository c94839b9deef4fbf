"""Payload parsing and the time checks jose applies in ``jwtDecrypt``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ._errors import JWTDecodeError
from ._jwe import loads_object

CLOCK_TOLERANCE = 15  # seconds, as Auth.js passes to jose
DEFAULT_MAX_AGE = 30 * 24 * 60 * 60
# The cookie reader caps a session at 64 KB of cookies; a Bearer token or a
# direct call gets the same bound so no path decrypts more than that.
MAX_TOKEN_CHARS = 64 * 1024


# JSON numbers decode to exactly int or float; bool (an int subclass) is not one.
_NUMBERS = frozenset({int, float})


def parse_claims(plaintext: bytes, now: float | None = None) -> dict[str, Any]:
    try:
        # jose reads the payload as strict UTF-8 (a leading BOM dropped) before
        # JSON.parse; decoding here first also skips json's encoding sniffing.
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise JWTDecodeError("payload is not JSON") from None
    claims = loads_object(text, "payload")
    if now is None:
        now = time.time()
    exp = claims.get("exp")
    if exp is not None:
        if type(exp) not in _NUMBERS:
            raise JWTDecodeError("'exp' claim is not a number")
        if exp <= now - CLOCK_TOLERANCE:
            raise JWTDecodeError("token expired")
    nbf = claims.get("nbf")
    if nbf is not None:
        if type(nbf) not in _NUMBERS:
            raise JWTDecodeError("'nbf' claim is not a number")
        if nbf > now + CLOCK_TOLERANCE:
            raise JWTDecodeError("token not yet valid ('nbf' in the future)")
    iat = claims.get("iat")
    if iat is not None and type(iat) not in _NUMBERS:
        raise JWTDecodeError("'iat' claim is not a number")
    return claims


def stamp_claims(token: Mapping[str, Any], max_age: int, now: int | None = None) -> bytes:
    """The payload jose's EncryptJWT writes: the token, then iat, exp and jti.

    Keys already in the token keep their position and take the new value,
    exactly as JavaScript object assignment does, so the JSON matches.
    """
    if now is None:
        now = int(time.time())
    claims = dict(token)
    claims["iat"] = now
    claims["exp"] = now + max_age
    claims["jti"] = str(uuid.uuid4())
    return json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
