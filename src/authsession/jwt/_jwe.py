"""Compact JWE with ``alg: dir``: the only shape Auth.js and NextAuth write.

Hand-written on ``cryptography`` primitives rather than through joserfc's
``decrypt_compact``: decoding is on the per-request path, and the general
implementation measured about 2.3x slower than these few primitive calls
(``benchmarks/jwt_decode.py`` prints both). joserfc stays the reference the
tests check this module against.

Only two content encryptions exist here, because Auth.js only ever uses them:
``A256CBC-HS512`` (RFC 7518 5.2.5, Auth.js v5's default) and ``A256GCM``
(NextAuth v4, and accepted by v5's decoder).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._errors import JWTDecodeError

CBC_HS512 = "A256CBC-HS512"
GCM = "A256GCM"
KEY_LENGTHS = {CBC_HS512: 64, GCM: 32}

# A header string is the same for every token made with one key, so parsing
# it once and reusing the result saves a base64 and a JSON decode per request.
# Only valid headers are kept, and only a few: an attacker sending endless
# distinct headers gets no memory from us.
_HEADER_CACHE: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_MAX = 64
# Compact JWEs from Auth.js are well under this; the bound keeps a hostile
# header from costing a large JSON parse.
_MAX_HEADER_CHARS = 1024
# What JSON.parse skips before a value (RFC 8259 section 2).
_JSON_WHITESPACE = " \t\n\r"
# The C scanner json.loads itself ends up in (not in the type stubs).
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# PKCS#7 padding of each length, indexed by that length.
_PADDINGS = [bytes([n]) * n for n in range(17)]
# Indexed by len % 4; a length of 1 mod 4 gets "===", which binascii refuses.
_PADDING = (b"", b"===", b"==", b"=")

# Per-key state for A256CBC-HS512, built once per derived key instead of per
# token: an HMAC-SHA512 keyed and ready to copy (saves the two key-block
# hashes HMAC starts with) and the AES algorithm object. Keys come from the
# memoised derivation in _keys, so there are only ever a few; the bound is a
# backstop.
_CBC_STATE: dict[bytes, tuple[Any, algorithms.AES]] = {}
_CBC_STATE_MAX = 64
# Per-thread CBC decryption contexts by key (see _cbc_decrypt): a cipher
# context is not safe to share between threads.
_CBC = threading.local()


def _b64url_decode_checked(data: str) -> bytes:
    """Decode unpadded base64url; padding, ``+``, ``/`` and non-ASCII text fail.

    Other stray characters are skipped, as ``base64.urlsafe_b64decode`` does.
    """
    try:
        raw = data.encode("ascii")
    except UnicodeEncodeError:
        raise JWTDecodeError("invalid base64url: non-ASCII characters") from None
    if raw.translate(None, _B64URL_ALPHABET):
        # Something outside the alphabet: take the careful path. Anything else
        # (the only case on the request path) goes straight to binascii, which
        # is what urlsafe_b64decode does after its Python-level checks.
        return _b64url_decode_odd(raw)
    try:
        return binascii.a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[len(raw) % 4])
    except binascii.Error:
        raise JWTDecodeError("invalid base64url") from None


if sys.version_info >= (3, 11):
    # ``+``, ``/`` and ``=`` become a character binascii's strict mode refuses.
    _TO_STRICT = bytes.maketrans(b"-_+/=", b"+/!!!")

    def b64url_decode(data: str) -> bytes:
        """``_b64url_decode_checked``, with the usual case in one strict binascii call.

        Strict mode refuses anything outside the alphabet or wrongly padded,
        which is what the separate alphabet scan was for (a fifth of the
        decode of a session cookie's ciphertext); whatever it refuses goes
        through the checked path, so the outcome is the same for any input.
        """
        try:
            return binascii.a2b_base64(
                data.encode("ascii").translate(_TO_STRICT) + _PADDING[len(data) % 4],
                strict_mode=True,
            )
        except (UnicodeEncodeError, binascii.Error):
            return _b64url_decode_checked(data)

else:  # pragma: no cover - exercised by CI's Python 3.10 run
    b64url_decode = _b64url_decode_checked


def _b64url_decode_odd(raw: bytes) -> bytes:
    if b"=" in raw or b"+" in raw or b"/" in raw:
        raise JWTDecodeError("invalid base64url: padding or non-url alphabet")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise JWTDecodeError("invalid base64url") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def loads_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object, or JWTDecodeError.

    Anything that does not start with ``{`` is refused before parsing: deeply
    nested arrays (``[[[[…``) would otherwise make the parser raise
    RecursionError, which no caller expects from a decoder. RecursionError is
    still caught for nesting inside an object.
    """
    if text[:1] != "{":
        if text.startswith("\ufeff"):
            # jose reads JSON with TextDecoder, which drops a leading BOM.
            text = text[1:]
        text = text.lstrip(_JSON_WHITESPACE)
        if text[:1] != "{":
            raise JWTDecodeError(f"{what} is not a JSON object")
    try:
        # json.loads minus its Python layers (type checks, two whitespace
        # regex matches): half its cost on a session payload. The scanner is
        # the one json.loads uses, so it parses exactly the same JSON.
        value, end = _scan_json(text, 0)
    except (ValueError, StopIteration):
        raise JWTDecodeError(f"{what} is not JSON") from None
    except RecursionError:
        raise JWTDecodeError(f"{what} is nested too deeply") from None
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        raise JWTDecodeError(f"{what} is not JSON")
    if not isinstance(value, dict):  # pragma: no cover - text starts with "{"
        raise JWTDecodeError(f"{what} is not a JSON object")
    return value


def parse_header(encoded: str) -> dict[str, Any]:
    """Parse and vet a protected header; raise JWTDecodeError for anything Auth.js would refuse."""
    cached = _HEADER_CACHE.get(encoded)
    if cached is not None:
        return cached
    if len(encoded) > _MAX_HEADER_CHARS:
        raise JWTDecodeError("protected header too large")
    try:
        text = b64url_decode(encoded).decode("utf-8")
    except UnicodeDecodeError:
        raise JWTDecodeError("protected header is not UTF-8 JSON") from None
    header = loads_object(text, "protected header")
    if header.get("alg") != "dir":
        raise JWTDecodeError(f"unsupported alg {header.get('alg')!r}: only 'dir' is accepted")
    enc = header.get("enc")
    if enc not in KEY_LENGTHS:
        raise JWTDecodeError(f"unsupported enc {enc!r}: expected {CBC_HS512} or {GCM}")
    if "zip" in header:
        raise JWTDecodeError("compressed JWEs ('zip' header) are not accepted")
    if "crit" in header:
        raise JWTDecodeError("'crit' header names extensions this decoder does not implement")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise JWTDecodeError("'kid' header is not a string")
    if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[encoded] = header
    return header


def split(token: str) -> tuple[str, str, str, str, str]:
    parts = token.split(".")
    if len(parts) != 5:
        raise JWTDecodeError(f"not a compact JWE: {len(parts)} segments instead of 5")
    header, encrypted_key, iv, ciphertext, tag = parts
    if encrypted_key:
        raise JWTDecodeError("'dir' JWE must have an empty encrypted key segment")
    return header, encrypted_key, iv, ciphertext, tag


def decrypt(enc: str, key: bytes, header_b64: str, iv_b64: str, ct_b64: str, tag_b64: str) -> bytes:
    """Authenticate and decrypt one compact JWE body; raise JWTDecodeError on any failure."""
    iv = b64url_decode(iv_b64)
    ciphertext = b64url_decode(ct_b64)
    tag = b64url_decode(tag_b64)
    aad = header_b64.encode("ascii")
    if enc == CBC_HS512:
        if len(iv) != 16 or len(tag) != 32 or not ciphertext or len(ciphertext) % 16:
            raise JWTDecodeError("malformed A256CBC-HS512 segments")
        state = _CBC_STATE.get(key)
        if state is None:
            state = _cbc_state(key)
        mac = state[0].copy()
        mac.update(b"".join((aad, iv, ciphertext, (len(aad) * 8).to_bytes(8, "big"))))
        if not hmac.compare_digest(mac.digest()[:32], tag):
            raise JWTDecodeError("authentication tag mismatch (wrong secret or salt, or tampered)")
        padded = _cbc_decrypt(key, state[1], iv, ciphertext)
        pad = padded[-1]
        # The tag already proved the ciphertext is ours, so a bad pad means a
        # buggy encoder rather than an attack; still refuse it.
        if not 1 <= pad <= 16 or padded[-pad:] != _PADDINGS[pad]:
            raise JWTDecodeError("invalid padding")
        return padded[:-pad]
    if len(iv) != 12 or len(tag) != 16:
        raise JWTDecodeError("malformed A256GCM segments")
    try:
        return AESGCM(key).decrypt(iv, ciphertext + tag, aad)
    except InvalidTag:
        raise JWTDecodeError(
            "authentication tag mismatch (wrong secret or salt, or tampered)"
        ) from None


def _cbc_decrypt(key: bytes, algorithm: algorithms.AES, iv: bytes, ciphertext: bytes) -> bytes:
    """AES-CBC decryption through one long-lived decryption context per key and thread.

    CBC decrypts each block as P_i = D(C_i) xor C_(i-1), with C_0 = IV. Fed
    ``IV || ciphertext``, a context still chained to whatever it decrypted
    last gives one block of noise (for the IV) and then exactly the
    plaintext, because the IV is the previous block of the first ciphertext
    block. So one context serves every token, where a context built per
    token (its IV is fixed at creation) cost a fifth of a whole decode. The
    context never buffers: padding is off and the input is whole blocks.
    Only called after the tag has been verified.
    """
    contexts: dict[bytes, Any] | None = getattr(_CBC, "contexts", None)
    if contexts is None:
        contexts = _CBC.contexts = {}
    context = contexts.get(key)
    if context is None:
        if len(contexts) >= _CBC_STATE_MAX:
            contexts.clear()
        context = contexts[key] = Cipher(algorithm, modes.CBC(bytes(16))).decryptor()
    plaintext: bytes = context.update(iv + ciphertext)[16:]
    return plaintext


def _cbc_state(key: bytes) -> tuple[Any, algorithms.AES]:
    if len(key) != KEY_LENGTHS[CBC_HS512]:
        raise JWTDecodeError("the key does not fit A256CBC-HS512 (64 bytes needed)")
    mac = hmac.new(key[:32], digestmod=hashlib.sha512)
    # With OpenSSL, hmac.HMAC wraps a C HMAC object with the same copy /
    # update / digest methods; calling it directly skips a Python layer on
    # each of those calls, every request.
    inner: Any = getattr(mac, "_hmac", None) or mac
    state = (inner, algorithms.AES(key[32:]))
    if len(_CBC_STATE) >= _CBC_STATE_MAX:
        _CBC_STATE.clear()
    _CBC_STATE[key] = state
    return state


def encrypt(enc: str, key: bytes, header: dict[str, Any], plaintext: bytes) -> str:
    """Produce a compact JWE string; the header is written in the given key order."""
    header_b64 = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    aad = header_b64.encode("ascii")
    if enc == CBC_HS512:
        iv = os.urandom(16)
        mac_key, enc_key = key[:32], key[32:]
        pad = 16 - len(plaintext) % 16
        encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(plaintext + bytes([pad]) * pad) + encryptor.finalize()
        al = (len(aad) * 8).to_bytes(8, "big")
        tag = hmac.new(mac_key, aad + iv + ciphertext + al, hashlib.sha512).digest()[:32]
    elif enc == GCM:
        iv = os.urandom(12)
        sealed = AESGCM(key).encrypt(iv, plaintext, aad)
        ciphertext, tag = sealed[:-16], sealed[-16:]
    else:
        raise ValueError(f"unsupported enc {enc!r}")
    return ".".join(
        (header_b64, "", b64url_encode(iv), b64url_encode(ciphertext), b64url_encode(tag))
    )
