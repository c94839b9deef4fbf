"""NextAuth v4 (``next-auth/jwt``) token encoding and decoding.

v4 tokens are compact JWEs with ``alg: dir`` and ``enc: A256GCM``; the
32-byte key is HKDF-SHA256 of the secret with an empty salt and the info
string ``NextAuth.js Generated Encryption Key``. There is no ``kid`` and no
secret rotation in v4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _jwe
from ._claims import DEFAULT_MAX_AGE, MAX_TOKEN_CHARS, parse_claims, stamp_claims
from ._errors import JWTDecodeError
from ._keys import v4_key

__all__ = ["JWTDecodeError", "decode", "encode"]


def encode(
    token: Mapping[str, Any], secret: str, max_age: int = DEFAULT_MAX_AGE, *, salt: str = ""
) -> str:
    """Issue a token ``next-auth/jwt``'s ``decode`` accepts."""
    key = v4_key(_check_secret(secret), salt)
    header = {"alg": "dir", "enc": _jwe.GCM}
    return _jwe.encrypt(_jwe.GCM, key, header, stamp_claims(token, max_age))


def decode(token: str, secret: str, *, salt: str = "") -> dict[str, Any]:
    """Decrypt and check a NextAuth v4 token; raise ``JWTDecodeError`` with the reason."""
    if not isinstance(token, str) or not token:
        raise JWTDecodeError("empty token")
    if len(token) > MAX_TOKEN_CHARS:
        raise JWTDecodeError(f"token longer than {MAX_TOKEN_CHARS} characters")
    header_b64, _, iv, ciphertext, tag = _jwe.split(token)
    header = _jwe.parse_header(header_b64)
    if header["enc"] != _jwe.GCM:
        raise JWTDecodeError(f"NextAuth v4 tokens use A256GCM, not {header['enc']}")
    key = v4_key(_check_secret(secret), salt)
    return parse_claims(_jwe.decrypt(_jwe.GCM, key, header_b64, iv, ciphertext, tag))


def _check_secret(secret: object) -> str:
    if not isinstance(secret, str) or not secret:
        raise ValueError("secret must be a non-empty string (NextAuth v4 has no secret lists)")
    return secret


def decode_with(token: str, secrets: tuple[str, ...]) -> dict[str, Any]:
    """``decode`` trying each secret in turn (v4 tokens carry no ``kid`` to pick one)."""
    error: JWTDecodeError | None = None
    for secret in secrets:
        try:
            return decode(token, secret)
        except JWTDecodeError as exc:
            error = exc
            if "tag mismatch" not in exc.reason:
                break  # malformed or expired: another secret will not help
    raise error or JWTDecodeError("no secret")
