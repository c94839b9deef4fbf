"""The command line: decode and secret, in-process and as a real console script."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

from authsession import jwt
from authsession._cli import main
from authsession.jwt import v4 as jwt_v4

SECRET = "cli-secret"


def test_decode_prints_claims(capsys):
    token = jwt.encode({"name": "Ada"}, SECRET, "authjs.session-token")
    assert main(["decode", token, "--secret", SECRET]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "Ada"


def test_decode_salt_v4_env_and_stdin(capsys, monkeypatch):
    secure = jwt.encode({"name": "S"}, SECRET, "__Secure-authjs.session-token")
    assert (
        main(["decode", secure, "--secret", SECRET, "--salt", "__Secure-authjs.session-token"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["name"] == "S"
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    assert main(["decode", jwt_v4.encode({"name": "four"}, SECRET), "--v4"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "four"
    monkeypatch.setattr(
        sys,
        "stdin",
        __import__("io").StringIO(
            jwt.encode({"name": "in"}, SECRET, "authjs.session-token") + "\n"
        ),
    )
    assert main(["decode", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "in"


def test_decode_failures_exit_nonzero_with_reason(capsys, monkeypatch):
    monkeypatch.delenv("AUTH_SECRET", raising=False)
    token = jwt.encode({"name": "Ada"}, SECRET, "authjs.session-token")
    assert main(["decode", token, "--secret", "wrong"]) == 1
    err = capsys.readouterr().err
    assert "wrong secret or salt" in err and token not in err
    assert main(["decode", token]) == 2
    assert "AUTH_SECRET" in capsys.readouterr().err


def test_secret_is_32_random_bytes(capsys):
    assert main(["secret"]) == 0
    first = capsys.readouterr().out.strip()
    main(["secret"])
    assert len(base64.b64decode(first)) == 32 and first != capsys.readouterr().out.strip()


def test_python_dash_m_runs():
    out = subprocess.run(
        [sys.executable, "-m", "authsession", "secret"], capture_output=True, text=True, check=True
    )
    assert len(base64.b64decode(out.stdout.strip())) == 32
