"""authsession.jwt and authsession.jwt.v4: formats, rotation, and every kind of bad token."""

from __future__ import annotations

import base64
import hashlib
import json
import string
import sys
import time

import pytest
from joserfc import jwe
from joserfc.jwk import OctKey

from authsession import jwt
from authsession.jwt import JWTDecodeError, _jwe
from authsession.jwt import v4 as jwt_v4
from authsession.jwt._keys import hkdf_sha256, v4_key, v5_key

SALT = "authjs.session-token"
SECURE_SALT = "__Secure-authjs.session-token"
SECRET = "s3cr3t"
USER = {"name": "Ada", "email": "ada@example.com", "picture": "https://x/ada.png", "sub": "42"}
REGISTRY = jwe.JWERegistry(algorithms=["dir", "A256CBC-HS512", "A256GCM"])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def make(header: dict, payload: object, key: bytes, enc: str = "A256CBC-HS512") -> str:
    """A token with an arbitrary header/payload, encrypted with a real key."""
    return _jwe.encrypt(enc, key, header, json.dumps(payload).encode())


# -- format -------------------------------------------------------------------


def test_v5_round_trip_adds_iat_exp_jti_after_the_claims():
    before = int(time.time())
    token = jwt.encode(USER, SECRET, SALT, max_age=60)
    claims = jwt.decode(token, SECRET, SALT)
    assert list(claims) == ["name", "email", "picture", "sub", "iat", "exp", "jti"]
    assert claims["iat"] >= before and claims["exp"] == claims["iat"] + 60
    assert len(claims["jti"]) == 36


def test_v5_header_is_dir_cbc_hs512_with_thumbprint_kid():
    token = jwt.encode(USER, SECRET, SALT)
    key = hkdf_sha256(SECRET, SALT, f"Auth.js Generated Encryption Key ({SALT})", 64)
    # RFC 7638 thumbprint over {"k","kty"}, hashed with SHA-512 for a 512-bit key (as jose does)
    canonical = json.dumps({"k": b64(key), "kty": "oct"}, separators=(",", ":")).encode()
    kid = b64(hashlib.sha512(canonical).digest())
    assert header_of(token) == {"alg": "dir", "enc": "A256CBC-HS512", "kid": kid}
    assert jwt.thumbprint(SECRET, SALT) == kid


def test_v5_key_is_hkdf_with_cookie_name_salt():
    info = f"Auth.js Generated Encryption Key ({SALT})"
    assert v5_key(SECRET, SALT, "A256CBC-HS512")[0] == hkdf_sha256(SECRET, SALT, info, 64)
    gcm_key, gcm_kid = v5_key(SECRET, SALT, "A256GCM")
    assert gcm_key == hkdf_sha256(SECRET, SALT, info, 32)
    canonical = json.dumps({"k": b64(gcm_key), "kty": "oct"}, separators=(",", ":")).encode()
    assert gcm_kid == b64(hashlib.sha256(canonical).digest())


def test_v5_tokens_decrypt_with_joserfc_and_back():
    key, _ = v5_key(SECRET, SALT, "A256CBC-HS512")
    ours = jwt.encode(USER, SECRET, SALT)
    plain = jwe.decrypt_compact(ours, OctKey.import_key(key), registry=REGISTRY).plaintext
    assert json.loads(plain)["sub"] == "42"
    theirs = jwe.encrypt_compact(
        {"alg": "dir", "enc": "A256CBC-HS512"},
        json.dumps(USER),
        OctKey.import_key(key),
        registry=REGISTRY,
    )
    assert jwt.decode(theirs, SECRET, SALT) == USER


def test_v5_decodes_a256gcm_tokens():
    key, kid = v5_key(SECRET, SALT, "A256GCM")
    token = jwe.encrypt_compact(
        {"alg": "dir", "enc": "A256GCM", "kid": kid},
        json.dumps(USER),
        OctKey.import_key(key),
        registry=REGISTRY,
    )
    assert jwt.decode(token, SECRET, SALT) == USER


def test_v4_round_trip_and_joserfc_interop():
    token = jwt_v4.encode(USER, SECRET)
    assert header_of(token) == {"alg": "dir", "enc": "A256GCM"}
    assert jwt_v4.decode(token, SECRET)["email"] == "ada@example.com"
    key = v4_key(SECRET)
    assert key == hkdf_sha256(SECRET, "", "NextAuth.js Generated Encryption Key", 32)
    theirs = jwe.encrypt_compact(
        {"alg": "dir", "enc": "A256GCM"},
        json.dumps(USER),
        OctKey.import_key(key),
        registry=REGISTRY,
    )
    assert jwt_v4.decode(theirs, SECRET) == USER


def test_non_ascii_claims_survive():
    token = jwt.encode({"name": "Zoë 日本"}, SECRET, SALT)
    assert jwt.decode(token, SECRET, SALT)["name"] == "Zoë 日本"


# -- rotation -----------------------------------------------------------------


def test_first_secret_encrypts_any_decrypts_by_kid():
    token = jwt.encode(USER, ["new", "old"], SALT)
    assert header_of(token)["kid"] == jwt.thumbprint("new", SALT)
    assert jwt.decode(token, ["other", "new"], SALT)["sub"] == "42"
    old_token = jwt.encode(USER, "old", SALT)
    assert jwt.decode(old_token, ["new", "old"], SALT)["sub"] == "42"
    with pytest.raises(JWTDecodeError, match="kid"):
        jwt.decode(old_token, ["new"], SALT)


def test_token_without_kid_uses_first_secret_only():
    key, _ = v5_key("first", SALT, "A256CBC-HS512")
    token = make({"alg": "dir", "enc": "A256CBC-HS512"}, USER, key)
    assert jwt.decode(token, ["first", "second"], SALT) == USER
    with pytest.raises(JWTDecodeError, match="tag mismatch"):
        jwt.decode(token, ["second", "first"], SALT)


# -- time ---------------------------------------------------------------------


def test_expiry_has_15_second_tolerance():
    key, kid = v5_key(SECRET, SALT, "A256CBC-HS512")
    header = {"alg": "dir", "enc": "A256CBC-HS512", "kid": kid}
    now = int(time.time())
    assert jwt.decode(make(header, {"exp": now - 10}, key), SECRET, SALT)
    with pytest.raises(JWTDecodeError, match="expired"):
        jwt.decode(make(header, {"exp": now - 20}, key), SECRET, SALT)
    with pytest.raises(JWTDecodeError, match="expired"):
        jwt.decode(make(header, {"exp": now - 3600}, key), SECRET, SALT)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"nbf": 10**10}, "not yet valid"),
        ({"exp": "soon"}, "'exp' claim is not a number"),
        ({"exp": True}, "'exp' claim is not a number"),
        ({"iat": "x"}, "'iat' claim is not a number"),
        ({"nbf": None, "exp": None}, None),
    ],
)
def test_claim_checks(claims, reason):
    key, kid = v5_key(SECRET, SALT, "A256CBC-HS512")
    token = make({"alg": "dir", "enc": "A256CBC-HS512", "kid": kid}, claims, key)
    if reason is None:
        assert jwt.decode(token, SECRET, SALT) == claims
    else:
        with pytest.raises(JWTDecodeError, match=reason):
            jwt.decode(token, SECRET, SALT)


# -- bad tokens: every kind raises JWTDecodeError with a reason ----------------


def _valid() -> str:
    return jwt.encode(USER, SECRET, SALT)


def _flip(segment: str) -> str:
    return ("A" if segment[0] != "A" else "B") + segment[1:]


def _replace(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def _with_header(header: dict) -> str:
    key, _ = v5_key(SECRET, SALT, "A256CBC-HS512")
    return make(header, USER, key)


BAD = {
    "empty": lambda: "",
    "garbage": lambda: "not-a-token",
    "four segments": lambda: ".".join(_valid().split(".")[:4]),
    "six segments": lambda: _valid() + ".x",
    "truncated ciphertext": lambda: _replace(_valid(), 3, _valid().split(".")[3][:-8]),
    "truncated tag": lambda: _valid()[:-5],
    "tampered ciphertext": lambda: _replace(_valid(), 3, _flip(_valid().split(".")[3])),
    "tampered tag": lambda: _replace(_valid(), 4, _flip(_valid().split(".")[4])),
    "tampered iv": lambda: _replace(_valid(), 2, _flip(_valid().split(".")[2])),
    "tampered header": lambda: _replace(
        _valid(),
        0,
        b64(
            json.dumps(
                {"alg": "dir", "enc": "A256CBC-HS512", "kid": header_of(_valid())["kid"], "x": 1}
            ).encode()
        ),
    ),
    "non-empty encrypted key": lambda: _replace(_valid(), 1, "AAAA"),
    "bad base64": lambda: _replace(_valid(), 3, "!!!!"),
    "padded base64": lambda: _replace(_valid(), 2, _valid().split(".")[2] + "=="),
    "non-ascii": lambda: _valid() + "é",
    "header not json": lambda: _replace(_valid(), 0, b64(b"{nope")),
    "header not object": lambda: _replace(_valid(), 0, b64(b"[1]")),
    "alg A256KW": lambda: _with_header({"alg": "A256KW", "enc": "A256CBC-HS512"}),
    "alg none": lambda: _with_header({"alg": "none", "enc": "A256CBC-HS512"}),
    "missing alg": lambda: _with_header({"enc": "A256CBC-HS512"}),
    "unknown enc": lambda: _replace(
        _valid(), 0, b64(json.dumps({"alg": "dir", "enc": "A128CBC-HS256"}).encode())
    ),
    "zip header": lambda: _with_header({"alg": "dir", "enc": "A256CBC-HS512", "zip": "DEF"}),
    "crit header": lambda: _with_header(
        {"alg": "dir", "enc": "A256CBC-HS512", "crit": ["exp"], "exp": 1}
    ),
    "kid not a string": lambda: _with_header({"alg": "dir", "enc": "A256CBC-HS512", "kid": 7}),
    "oversized": lambda: "a" * (64 * 1024 + 1),
    "payload not an object": lambda: make(
        {"alg": "dir", "enc": "A256CBC-HS512"}, [1, 2], v5_key(SECRET, SALT, "A256CBC-HS512")[0]
    ),
    "huge header": lambda: _replace(
        _valid(),
        0,
        b64(json.dumps({"alg": "dir", "enc": "A256CBC-HS512", "p": "x" * 2000}).encode()),
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_tokens_raise_decode_error_with_reason(kind):
    with pytest.raises(JWTDecodeError) as info:
        jwt.decode(BAD[kind](), SECRET, SALT)
    assert info.value.reason
    assert SECRET not in info.value.reason


def test_wrong_secret_and_wrong_salt():
    token = _valid()
    with pytest.raises(JWTDecodeError, match="kid"):
        jwt.decode(token, "other", SALT)
    with pytest.raises(JWTDecodeError, match="kid"):
        jwt.decode(token, SECRET, SECURE_SALT)


def test_gcm_tampering_and_v4_wrong_secret():
    token = jwt_v4.encode(USER, SECRET)
    with pytest.raises(JWTDecodeError, match="tag mismatch"):
        jwt_v4.decode(token, "other")
    with pytest.raises(JWTDecodeError):
        jwt_v4.decode(_replace(token, 3, _flip(token.split(".")[3])), SECRET)
    with pytest.raises(JWTDecodeError, match="A256GCM"):
        jwt_v4.decode(_valid(), SECRET)


def test_decode_requires_salt_and_secret():
    with pytest.raises(ValueError, match="salt"):
        jwt.decode(_valid(), SECRET, "")
    with pytest.raises(ValueError, match="secret"):
        jwt.encode(USER, [], SALT)


def test_cbc_decrypt_matches_cryptography_for_every_length_and_thread() -> None:
    """The reused CBC contexts decrypt like a fresh CBC context per token, token after token, from many threads."""
    import os
    import threading

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from authsession.jwt import _jwe

    key = os.urandom(64)
    algorithm = algorithms.AES(key[32:])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for length in range(0, 200, 7):
                iv = os.urandom(16)
                plain = os.urandom(length // 16 * 16 + 16)
                enc = Cipher(algorithm, modes.CBC(iv)).encryptor()
                ciphertext = enc.update(plain) + enc.finalize()
                assert _jwe._cbc_decrypt(key, algorithm, iv, ciphertext) == plain
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# -- hostile nesting: RecursionError never escapes the decoder ---------------------

# Deep nesting inside 1024 base64url characters, the header bound: 767 bytes.
DEEP_HEADERS = {
    "array": b"[" * 767,
    "array after whitespace": b" \n" + b"[" * 765,
    "array inside an object": b'{"a":' + b"[" * 762,
}


def _near_the_recursion_limit(call):
    """Run ``call`` with the stack about 100 frames short of the limit, as deep
    as a request can be in a large app (middleware stacks, ORMs, templates)."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back

    def down(n: int):
        return down(n - 1) if n else call()

    return down(max(0, sys.getrecursionlimit() - 100 - depth))


def _with_raw_header(raw: bytes) -> str:
    return b64(raw) + "..AAAAAAAAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"


@pytest.mark.parametrize("kind", sorted(DEEP_HEADERS))
def test_deeply_nested_header_raises_decode_error_at_any_stack_depth(kind):
    token = _with_raw_header(DEEP_HEADERS[kind])
    assert len(token.split(".")[0]) <= 1024
    for decode in (
        lambda: jwt.decode(token, SECRET, SALT),
        lambda: jwt_v4.decode(token, SECRET),
    ):
        with pytest.raises(JWTDecodeError, match="protected header is"):
            decode()
        with pytest.raises(JWTDecodeError, match="protected header is"):
            _near_the_recursion_limit(decode)


def test_headers_jose_accepts_still_decode():
    """jose reads the header with TextDecoder (drops a BOM) and JSON.parse (skips
    whitespace): the "must start with {" check allows both."""
    key, kid = v5_key(SECRET, SALT, "A256CBC-HS512")
    header = json.dumps({"alg": "dir", "enc": "A256CBC-HS512", "kid": kid})
    for raw in (("\ufeff" + header).encode(), (" \r\n\t" + header).encode()):
        token = _encrypt_with_raw_header(key, raw, json.dumps(USER).encode())
        assert jwt.decode(token, SECRET, SALT) == USER


def _encrypt_with_raw_header(
    key: bytes, raw_header: bytes, plaintext: bytes, *, padded: bool = False
) -> str:
    """_jwe.encrypt, but with the header bytes exactly as given (and, with
    ``padded=True``, the plaintext already padded, correctly or not)."""
    import hmac
    import os

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    header_b64 = b64(raw_header)
    aad = header_b64.encode()
    iv = os.urandom(16)
    if not padded:
        pad = 16 - len(plaintext) % 16
        plaintext += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key[32:]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    al = (len(aad) * 8).to_bytes(8, "big")
    tag = hmac.new(key[:32], aad + iv + ciphertext + al, hashlib.sha512).digest()[:32]
    return ".".join((header_b64, "", b64(iv), b64(ciphertext), b64(tag)))


# A payload can only be this deep with the key (it is encrypted and
# authenticated), but whoever holds it must still get a JWTDecodeError.
DEEP_PAYLOADS = {
    "array": b"[" * 40_000,
    "array inside an object": b'{"a":' + b"[" * 40_000,
}


@pytest.mark.parametrize("kind", sorted(DEEP_PAYLOADS))
def test_deeply_nested_payload_raises_decode_error(kind):
    v5, kid = v5_key(SECRET, SALT, "A256CBC-HS512")
    token = _jwe.encrypt(
        "A256CBC-HS512", v5, {"alg": "dir", "enc": "A256CBC-HS512", "kid": kid}, DEEP_PAYLOADS[kind]
    )
    with pytest.raises(JWTDecodeError, match="payload is"):
        jwt.decode(token, SECRET, SALT)
    v4 = _jwe.encrypt(
        "A256GCM", v4_key(SECRET), {"alg": "dir", "enc": "A256GCM"}, DEEP_PAYLOADS[kind]
    )
    with pytest.raises(JWTDecodeError, match="payload is"):
        jwt_v4.decode(v4, SECRET)


JSON_TEXTS = [
    '{"a":1}',
    '{"a":1}  \n\t\r',
    ' \n{"a":[1,2,{"b":null}]}',
    "\ufeff{}",
    "\ufeff \t{}",
    '{"a":1}x',
    '{"a":1} {"b":2}',
    '{"a":1}\u00a0',  # not JSON whitespace: JSON.parse refuses it
    '{"a":',
    '{"a":1,}',
    "{'a':1}",
    '{"a":NaN}',
    '{"a":"\\ud800"}',
    '{"a":1}\x00',
    "",
    "   ",
    "[1]",
    '"{}"',
    "\ufeff\ufeff{}",
]


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_loads_object_parses_exactly_what_json_loads_does(text):
    """The payload parser skips json.loads's Python layers: it must accept and
    refuse the same texts (after the BOM and the must-be-an-object rules)."""
    body = text[1:] if text.startswith("\ufeff") else text
    try:
        expected = json.loads(body)
    except ValueError:
        expected = None
    if not body.lstrip(" \t\n\r").startswith("{") or not isinstance(expected, dict):
        expected = None
    if expected is None:
        with pytest.raises(JWTDecodeError, match="payload is"):
            _jwe.loads_object(text, "payload")
    else:
        assert _jwe.loads_object(text, "payload") == expected


def test_b64url_decode_fast_path_agrees_with_the_checked_one():
    """Every string gets the same bytes or the same refusal from the one-call
    strict decode as from the alphabet-checked one it short-cuts."""
    import random

    rng = random.Random(20261129)
    alphabet = string.ascii_letters + string.digits + "-_"
    odd = "=+/ .!\n\u00e9\ud800"

    def outcome(decode, text):
        try:
            return decode(text)
        except JWTDecodeError as exc:
            return ("refused", exc.reason)

    texts = ["", "A", "AA", "AAA", "AAAA", "-_-_", "AA==", "A+/A", "QUJD\n"]
    for _ in range(20_000):
        length = rng.randrange(0, 40)
        chars = [rng.choice(alphabet) for _ in range(length)]
        if rng.random() < 0.3 and length:
            chars[rng.randrange(length)] = rng.choice(odd)
        texts.append("".join(chars))
    for text in texts:
        assert outcome(_jwe.b64url_decode, text) == outcome(_jwe._b64url_decode_checked, text), text
    assert _jwe.b64url_decode("-_8") == b"\xfb\xff"


@pytest.mark.parametrize("last", [0, 17, 255, 3])
def test_authenticated_payload_with_bad_padding_is_refused(last):
    """A ciphertext with a valid tag but broken PKCS#7 padding (a buggy
    encoder holding the key) is refused with a reason, not sliced blindly."""
    key, kid = v5_key(SECRET, SALT, "A256CBC-HS512")
    header = json.dumps({"alg": "dir", "enc": "A256CBC-HS512", "kid": kid}).encode()
    plaintext = json.dumps(USER).encode()
    padded = plaintext + b"\x00" * (-len(plaintext) % 16 or 16)
    # The last byte says `last`; for 3, the two bytes before it disagree.
    padded = padded[:-1] + bytes([last])
    token = _encrypt_with_raw_header(key, header, padded, padded=True)
    with pytest.raises(JWTDecodeError, match="invalid padding"):
        jwt.decode(token, SECRET, SALT)


def test_key_pick_memo_stays_bounded_and_never_answers_for_another_secret():
    """decode_with remembers (enc, key) per (header, salt, secrets): a process
    decoding for many secrets keeps at most the bound, and a remembered pick
    never lets a token decode under secrets that did not make it."""
    from authsession.jwt import _PICKED, _PICKED_MAX, decode_with

    tokens = [
        (f"secret-{i}", jwt.encode(USER, f"secret-{i}", SALT)) for i in range(_PICKED_MAX * 2)
    ]
    for secret, token in tokens:
        assert decode_with(token, (secret,), SALT)["sub"] == USER["sub"]
        assert len(_PICKED) <= _PICKED_MAX
    secret, token = tokens[-1]
    decode_with(token, (secret,), SALT)  # remembered
    with pytest.raises(JWTDecodeError, match="kid"):
        decode_with(token, ("another secret",), SALT)
    with pytest.raises(JWTDecodeError):
        decode_with(token, (secret,), "__Secure-" + SALT)
