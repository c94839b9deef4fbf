"""Auth.js v5 (``@auth/core/jwt``) token encoding and decoding.

Tokens are compact JWEs: ``alg: dir``, ``enc: A256CBC-HS512`` (``A256GCM``
also decodes), the key derived with HKDF-SHA256 from the secret with the
cookie name as salt, and ``kid`` set to the key's thumbprint so a list of
secrets can rotate. ``authsession.jwt.v4`` holds the NextAuth v4 format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _jwe
from ._claims import CLOCK_TOLERANCE, DEFAULT_MAX_AGE, MAX_TOKEN_CHARS, parse_claims, stamp_claims
from ._errors import JWTDecodeError
from ._keys import normalize_secrets, v5_ring

__all__ = [
    "CLOCK_TOLERANCE",
    "DEFAULT_MAX_AGE",
    "JWTDecodeError",
    "decode",
    "encode",
    "thumbprint",
]

Secret = str | Sequence[str]

# (header, salt, secrets) -> (enc, key) for decode_with; bounded like the
# header cache, so endless distinct headers cost no memory.
_PICKED: dict[tuple[str, str, tuple[str, ...]], tuple[str, bytes]] = {}
_PICKED_MAX = 64


def encode(
    token: Mapping[str, Any], secret: Secret, salt: str, max_age: int = DEFAULT_MAX_AGE
) -> str:
    """Issue a token Auth.js v5 decodes: the first secret encrypts.

    ``salt`` is the session cookie's name (``authjs.session-token`` or
    ``__Secure-authjs.session-token``), as Auth.js uses it.
    """
    ring = v5_ring(normalize_secrets(secret), _check_salt(salt), _jwe.CBC_HS512)
    header = {"alg": "dir", "enc": _jwe.CBC_HS512, "kid": ring.first_kid}
    return _jwe.encrypt(_jwe.CBC_HS512, ring.first, header, stamp_claims(token, max_age))


def decode(token: str, secret: Secret, salt: str) -> dict[str, Any]:
    """Decrypt and check an Auth.js v5 token; raise ``JWTDecodeError`` with the reason."""
    return decode_with(token, normalize_secrets(secret), _check_salt(salt))


def decode_with(token: str, secrets: tuple[str, ...], salt: str) -> dict[str, Any]:
    """``decode`` for callers that already normalised their secrets (the request path)."""
    if not isinstance(token, str) or not token:
        raise JWTDecodeError("empty token")
    if len(token) > MAX_TOKEN_CHARS:
        raise JWTDecodeError(f"token longer than {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 5 or parts[1]:
        _jwe.split(token)  # raises with the reason
    header_b64, _, iv, ciphertext, tag = parts
    # Every token one key wrote has the same header, so its (enc, key) pick
    # is remembered; only picks that succeeded are, and only a few of them.
    memo = (header_b64, salt, secrets)
    picked = _PICKED.get(memo)
    if picked is None:
        header = _jwe.parse_header(header_b64)
        enc: str = header["enc"]
        picked = (enc, v5_ring(secrets, salt, enc).select(header.get("kid")))
        if len(_PICKED) >= _PICKED_MAX:
            _PICKED.clear()
        _PICKED[memo] = picked
    return parse_claims(_jwe.decrypt(picked[0], picked[1], header_b64, iv, ciphertext, tag))


def thumbprint(secret: str, salt: str) -> str:
    """The ``kid`` Auth.js v5 writes for this secret and salt."""
    return v5_ring((secret,), _check_salt(salt), _jwe.CBC_HS512).first_kid


def _check_salt(salt: object) -> str:
    if not isinstance(salt, str) or not salt:
        raise ValueError("salt is required: the session cookie name, e.g. 'authjs.session-token'")
    return salt
