"""authsession explain: the reasons it gives for each way a cookie fails."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import SECRET

from authsession import jwt
from authsession._cli import main
from authsession._explain import explain
from authsession.jwt import v4 as jwt_v4

NAME = "authjs.session-token"


def token(claims=None, salt=NAME, max_age=3600) -> str:
    return jwt.encode(claims or {"name": "Ada", "sub": "1"}, SECRET, salt, max_age)


def text(result) -> str:
    return "\n".join(result.lines)


def test_good_cookie_resolves_and_token_is_never_printed() -> None:
    value = token()
    result = explain(f"theme=dark; {NAME}={value}", [SECRET])
    assert result.ok and result.claims["name"] == "Ada"
    assert "a session resolves" in text(result)
    assert value not in text(result)


def test_no_cookie_names_related_cookies() -> None:
    result = explain("theme=dark; next-auth.sessionid=1", [SECRET])
    assert not result.ok
    assert "nobody is signed in" in text(result)
    assert "next-auth.sessionid" in text(result)


def test_wrong_secret_and_wrong_name_are_told_apart() -> None:
    wrong_secret = explain(f"{NAME}={token()}", ["another-secret"])
    assert "different AUTH_SECRET" in text(wrong_secret)
    renamed = explain(f"__Secure-{NAME}={token()}", [SECRET])
    assert f"it decrypts as {NAME}" in text(renamed)


def test_expired_token() -> None:
    value = token(max_age=-3600)
    result = explain(f"{NAME}={value}", [SECRET])
    assert not result.ok
    assert "expired" in text(result) and "sign in again" in text(result)


def test_chunk_gap_is_reported() -> None:
    value = token()
    header = f"{NAME}.0={value[:100]}; {NAME}.2={value[100:]}"
    result = explain(header, [SECRET])
    assert not result.ok
    assert "missing [1]" in text(result)


def test_v4_cookie_and_bearer() -> None:
    v4 = jwt_v4.encode({"name": "Old"}, SECRET)
    assert explain(f"next-auth.session-token={v4}", [SECRET]).claims["name"] == "Old"
    result = explain("", [SECRET], authorization=f"Bearer {token()}")
    assert result.ok and "Authorization: Bearer" in text(result)


def test_garbage_and_missing_secret() -> None:
    assert "not a JWE" in text(explain(f"{NAME}=garbage", [SECRET]))
    assert "no secret given" in text(explain(f"{NAME}={token()}", []))


def test_cli_exit_status(capsys, monkeypatch) -> None:
    assert main(["explain", f"{NAME}={token()}", "--secret", SECRET, "--claims"]) == 0
    out = capsys.readouterr().out
    assert '"name": "Ada"' in out
    monkeypatch.setenv("AUTH_SECRET", "wrong")
    assert main(["explain", f"Cookie: {NAME}={token()}"]) == 1
    assert "different AUTH_SECRET" in capsys.readouterr().out


def test_cli_reads_stdin() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "authsession", "explain", "-", "--secret", SECRET],
        input=f"{NAME}={token()}",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
