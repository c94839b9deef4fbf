"""Token wire compatibility with the real ``@auth/core/jwt`` and ``next-auth/jwt``."""

from __future__ import annotations

import time

import pytest

import authsession.jwt
import authsession.jwt.v4
from authsession.jwt import JWTDecodeError

from ._harness import SECURE_SESSION_COOKIE, SESSION_COOKIE, JwtTool, JwtToolError

SALTS = [SESSION_COOKIE, SECURE_SESSION_COOKIE]

CLAIMS = {
    "sub": "user-123",
    "name": "Zoë Ünïcode 🚀",
    "email": "zoe@example.com",
    "picture": "https://example.com/zoe.png",
    "role": "admin",
    "nested": {"permissions": ["read", "write"], "n": 3, "ok": True, "none": None},
}


def _assert_std_claims(payload: dict, max_age: int) -> None:
    now = int(time.time())
    assert isinstance(payload["iat"], int)
    assert isinstance(payload["exp"], int)
    assert abs(payload["iat"] - now) <= 5
    assert payload["exp"] - payload["iat"] == max_age
    assert isinstance(payload["jti"], str)
    assert payload["jti"]


# --------------------------------------------------------------------------- #
# Auth.js v5
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("salt", SALTS)
def test_v5_node_encode_python_decode(jwt_tool: JwtTool, secret: str, salt: str) -> None:
    token = jwt_tool.encode(CLAIMS, secret, salt, max_age=3600)
    node_payload = jwt_tool.decode(token, secret, salt)
    py_payload = authsession.jwt.decode(token, secret, salt)
    assert py_payload == node_payload
    assert {k: py_payload[k] for k in CLAIMS} == CLAIMS
    _assert_std_claims(py_payload, 3600)


@pytest.mark.parametrize("salt", SALTS)
def test_v5_python_encode_node_decode(jwt_tool: JwtTool, secret: str, salt: str) -> None:
    token = authsession.jwt.encode(CLAIMS, secret, salt, max_age=7200)
    node_payload = jwt_tool.decode(token, secret, salt)
    assert node_payload == authsession.jwt.decode(token, secret, salt)
    assert {k: node_payload[k] for k in CLAIMS} == CLAIMS
    _assert_std_claims(node_payload, 7200)


def test_v5_default_max_age_is_30_days(jwt_tool: JwtTool, secret: str) -> None:
    py_token = authsession.jwt.encode({"sub": "a"}, secret, SESSION_COOKIE)
    node_token = jwt_tool.encode({"sub": "a"}, secret, SESSION_COOKIE)
    for token in (py_token, node_token):
        payload = jwt_tool.decode(token, secret, SESSION_COOKIE)
        assert payload["exp"] - payload["iat"] == 30 * 24 * 60 * 60


@pytest.mark.parametrize("salt", SALTS)
def test_v5_header_and_kid_match_authjs(jwt_tool: JwtTool, secret: str, salt: str) -> None:
    py_header = jwt_tool.header(authsession.jwt.encode({"sub": "a"}, secret, salt))
    node_header = jwt_tool.header(jwt_tool.encode({"sub": "a"}, secret, salt))
    assert py_header == node_header
    assert py_header["alg"] == "dir"
    assert py_header["enc"] == "A256CBC-HS512"
    _, kid = jwt_tool.derive(secret, salt)
    assert py_header["kid"] == kid


def test_v5_kid_depends_on_salt_and_secret(jwt_tool: JwtTool, secret: str) -> None:
    kids = {
        jwt_tool.header(authsession.jwt.encode({}, s, salt))["kid"]
        for s in (secret, secret + "-other")
        for salt in SALTS
    }
    assert len(kids) == 4


@pytest.mark.parametrize("salt", SALTS)
def test_v5_wrong_salt_rejected_both_ways(jwt_tool: JwtTool, secret: str, salt: str) -> None:
    other = SECURE_SESSION_COOKIE if salt == SESSION_COOKIE else SESSION_COOKIE
    with pytest.raises(JWTDecodeError):
        authsession.jwt.decode(jwt_tool.encode({"sub": "a"}, secret, salt), secret, other)
    with pytest.raises(JwtToolError):
        jwt_tool.decode(authsession.jwt.encode({"sub": "a"}, secret, salt), secret, other)


def test_v5_wrong_secret_rejected_both_ways(jwt_tool: JwtTool, secret: str) -> None:
    with pytest.raises(JWTDecodeError):
        authsession.jwt.decode(jwt_tool.encode({"sub": "a"}, secret), "nope", SESSION_COOKIE)
    with pytest.raises(JwtToolError):
        jwt_tool.decode(authsession.jwt.encode({"sub": "a"}, secret, SESSION_COOKIE), "nope")


# -- rotation -------------------------------------------------------------- #


@pytest.mark.parametrize("salt", SALTS)
def test_v5_rotation_python_encodes_with_first_secret(jwt_tool: JwtTool, salt: str) -> None:
    token = authsession.jwt.encode(CLAIMS, ["new", "old"], salt)
    for secrets in (["old", "new"], ["new"], "new"):
        assert jwt_tool.decode(token, secrets, salt)["sub"] == CLAIMS["sub"]
    with pytest.raises(JwtToolError):
        jwt_tool.decode(token, ["old"], salt)
    # Auth.js picks the key by kid; so must the header we write.
    assert jwt_tool.header(token)["kid"] == jwt_tool.derive("new", salt)[1]


@pytest.mark.parametrize("salt", SALTS)
def test_v5_rotation_node_old_secret_python_decodes(jwt_tool: JwtTool, salt: str) -> None:
    token = jwt_tool.encode(CLAIMS, "old", salt)
    payload = authsession.jwt.decode(token, ["new", "old"], salt)
    assert payload == jwt_tool.decode(token, "old", salt)
    assert authsession.jwt.decode(token, ["old", "new"], salt) == payload
    with pytest.raises(JWTDecodeError):
        authsession.jwt.decode(token, ["new"], salt)


def test_v5_rotation_node_list_encode_python_decode(jwt_tool: JwtTool) -> None:
    token = jwt_tool.encode({"sub": "r"}, ["new", "old"], SESSION_COOKIE)
    assert authsession.jwt.decode(token, ["old", "new"], SESSION_COOKIE)["sub"] == "r"
    assert authsession.jwt.decode(token, "new", SESSION_COOKIE)["sub"] == "r"


# -- A256GCM and kid-less tokens ------------------------------------------- #


@pytest.mark.parametrize("salt", SALTS)
@pytest.mark.parametrize("with_kid", [True, False], ids=["kid", "no-kid"])
def test_v5_a256gcm_token_decodes(
    jwt_tool: JwtTool, secret: str, salt: str, with_kid: bool
) -> None:
    key, kid = jwt_tool.derive(secret, salt, "A256GCM")
    token = jwt_tool.encrypt_raw(CLAIMS, key, enc="A256GCM", kid=kid if with_kid else None)
    header = jwt_tool.header(token)
    assert header["enc"] == "A256GCM"
    assert ("kid" in header) is with_kid
    node_payload = jwt_tool.decode(token, secret, salt)  # Auth.js itself accepts it
    assert authsession.jwt.decode(token, secret, salt) == node_payload
    if with_kid:
        assert authsession.jwt.decode(token, ["other", secret], salt) == node_payload


def test_v5_a256cbc_token_without_kid_decodes(jwt_tool: JwtTool, secret: str) -> None:
    key, _ = jwt_tool.derive(secret, SESSION_COOKIE, "A256CBC-HS512")
    token = jwt_tool.encrypt_raw({"sub": "nokid"}, key, enc="A256CBC-HS512")
    assert "kid" not in jwt_tool.header(token)
    assert jwt_tool.decode(token, secret)["sub"] == "nokid"
    assert authsession.jwt.decode(token, secret, SESSION_COOKIE)["sub"] == "nokid"


# -- expiry and clock tolerance -------------------------------------------- #


def test_v5_expired_beyond_tolerance_rejected_like_authjs(jwt_tool: JwtTool, secret: str) -> None:
    token = jwt_tool.encode({"sub": "late"}, secret, max_age=-60)
    with pytest.raises(JwtToolError):
        jwt_tool.decode(token, secret)
    with pytest.raises(JWTDecodeError):
        authsession.jwt.decode(token, secret, SESSION_COOKIE)


def test_v5_expired_within_tolerance_accepted_like_authjs(jwt_tool: JwtTool, secret: str) -> None:
    token = jwt_tool.encode({"sub": "late"}, secret, max_age=-5)
    assert jwt_tool.decode(token, secret)["sub"] == "late"
    assert authsession.jwt.decode(token, secret, SESSION_COOKIE)["sub"] == "late"


def test_v5_big_token_roundtrips(jwt_tool: JwtTool, secret: str) -> None:
    claims = {"sub": "big", "blob": "x" * 6000}
    token = jwt_tool.encode(claims, secret)
    assert authsession.jwt.decode(token, secret, SESSION_COOKIE)["blob"] == claims["blob"]
    token = authsession.jwt.encode(claims, secret, SESSION_COOKIE)
    assert jwt_tool.decode(token, secret)["blob"] == claims["blob"]


# --------------------------------------------------------------------------- #
# NextAuth v4
# --------------------------------------------------------------------------- #


def test_v4_node_encode_python_decode(jwt_tool: JwtTool, secret: str) -> None:
    token = jwt_tool.encode(CLAIMS, secret, lib="v4", max_age=3600)
    header = jwt_tool.header(token)
    assert header == {"alg": "dir", "enc": "A256GCM"}
    node_payload = jwt_tool.decode(token, secret, lib="v4")
    py_payload = authsession.jwt.v4.decode(token, secret)
    assert py_payload == node_payload
    assert {k: py_payload[k] for k in CLAIMS} == CLAIMS
    _assert_std_claims(py_payload, 3600)


def test_v4_python_encode_node_decode(jwt_tool: JwtTool, secret: str) -> None:
    token = authsession.jwt.v4.encode(CLAIMS, secret, max_age=7200)
    assert jwt_tool.header(token)["enc"] == "A256GCM"
    node_payload = jwt_tool.decode(token, secret, lib="v4")
    assert node_payload == authsession.jwt.v4.decode(token, secret)
    assert {k: node_payload[k] for k in CLAIMS} == CLAIMS
    _assert_std_claims(node_payload, 7200)


def test_v4_wrong_secret_rejected_both_ways(jwt_tool: JwtTool, secret: str) -> None:
    with pytest.raises(JWTDecodeError):
        authsession.jwt.v4.decode(jwt_tool.encode({"sub": "a"}, secret, lib="v4"), "nope")
    with pytest.raises(JwtToolError):
        jwt_tool.decode(authsession.jwt.v4.encode({"sub": "a"}, secret), "nope", lib="v4")


def test_v4_and_v5_tokens_are_not_interchangeable(jwt_tool: JwtTool, secret: str) -> None:
    v4_token = jwt_tool.encode({"sub": "a"}, secret, lib="v4")
    v5_token = jwt_tool.encode({"sub": "a"}, secret)
    with pytest.raises(JWTDecodeError):
        authsession.jwt.decode(v4_token, secret, SESSION_COOKIE)
    with pytest.raises(JWTDecodeError):
        authsession.jwt.v4.decode(v5_token, secret)
