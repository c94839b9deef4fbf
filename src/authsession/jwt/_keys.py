"""Key derivation for Auth.js v5 and NextAuth v4, computed once per input.

HKDF runs a few microseconds and the thumbprint a few more: cheap once, but
not per request. Everything here is memoised on (secret, salt, enc), so the
request path only pays a cache lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwk

from ._errors import JWTDecodeError
from ._jwe import KEY_LENGTHS, b64url_encode

# Enough for every (secret, salt, enc) a process plausibly uses: a few
# secrets in rotation times two cookie names times two encryptions.
_CACHE_SIZE = 256


def hkdf_sha256(secret: str, salt: str, info: str, length: int) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=salt.encode(),
        info=info.encode(),
    ).derive(secret.encode())


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Keys for one salt and enc across a list of secrets (first one encrypts)."""

    first: bytes
    first_kid: str
    by_kid: dict[str, bytes]

    def select(self, kid: str | None) -> bytes:
        # Auth.js: a token without a kid is tried with the first secret only.
        if kid is None:
            return self.first
        key = self.by_kid.get(kid)
        if key is None:
            raise JWTDecodeError("no secret matches the token's 'kid' (wrong secret or salt)")
        return key


@functools.lru_cache(maxsize=_CACHE_SIZE)
def v5_key(secret: str, salt: str, enc: str) -> tuple[bytes, str]:
    """Auth.js v5's derived key and its ``kid`` (the key's RFC 7638 thumbprint)."""
    length = KEY_LENGTHS[enc]
    key = hkdf_sha256(secret, salt, f"Auth.js Generated Encryption Key ({salt})", length)
    # jose hashes the thumbprint with SHA-(key bits): SHA-512 for the 64-byte
    # CBC-HS512 key, SHA-256 for the 32-byte GCM key.
    jwk_dict = {"kty": "oct", "k": b64url_encode(key)}
    kid = jwk.thumbprint(jwk_dict, "sha512" if length == 64 else "sha256")
    return key, kid


@functools.lru_cache(maxsize=_CACHE_SIZE)
def v5_ring(secrets: tuple[str, ...], salt: str, enc: str) -> KeyRing:
    by_kid: dict[str, bytes] = {}
    for secret in reversed(secrets):  # earlier secrets win a (vanishingly unlikely) kid clash
        key, kid = v5_key(secret, salt, enc)
        by_kid[kid] = key
    first, first_kid = v5_key(secrets[0], salt, enc)
    return KeyRing(first=first, first_kid=first_kid, by_kid=by_kid)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def v4_key(secret: str, salt: str = "") -> bytes:
    info = "NextAuth.js Generated Encryption Key" + (f" ({salt})" if salt else "")
    return hkdf_sha256(secret, salt, info, 32)


def normalize_secrets(secret: str | Sequence[str] | None) -> tuple[str, ...]:
    """A secret or a list of secrets as a non-empty tuple of non-empty strings."""
    if isinstance(secret, str):
        secrets: tuple[str, ...] = (secret,)
    elif secret is None:
        secrets = ()
    else:
        secrets = tuple(secret)
    if not secrets:
        raise ValueError("a secret is required: pass secret= or set AUTH_SECRET")
    for item in secrets:
        if not isinstance(item, str) or not item:
            raise ValueError("each secret must be a non-empty string")
    return secrets
