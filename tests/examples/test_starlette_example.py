"""The example app signs in, reads the session like Auth.js's endpoint, and signs out."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from authsession import jwt

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "starlette_app.py"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def example(monkeypatch):
    monkeypatch.setenv("AUTH_SECRET", "example-test-secret")
    spec = importlib.util.spec_from_file_location("starlette_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sign_in_session_and_sign_out(example):
    client = TestClient(example.app)
    assert client.get("/api/auth/session").json() is None
    assert "Not signed in" in client.get("/").text

    response = client.post("/sign-in", data={"name": "Ada"}, follow_redirects=False)
    assert response.status_code == 303
    cookie = client.cookies.get("authjs.session-token")
    assert jwt.decode(cookie, "example-test-secret", "authjs.session-token")["name"] == "Ada"

    session = client.get("/api/auth/session").json()
    assert session["user"] == {"name": "Ada", "email": "ada@example.com"}
    assert ISO_MS.match(session["expires"])
    assert "Signed in as <b>Ada</b>" in client.get("/").text

    client.post("/sign-out")
    assert client.get("/api/auth/session").json() is None


def test_garbage_cookie_is_signed_out_not_an_error(example):
    client = TestClient(example.app, cookies={"authjs.session-token": "garbage" * 100})
    assert client.get("/").status_code == 200
    assert client.get("/api/auth/session").json() is None
