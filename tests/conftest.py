"""Shared fixtures: a clean runtime and environment for every test."""

from __future__ import annotations

import pytest

import authsession

SECRET = "test-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch):
    for name in (
        "AUTH_SECRET",
        "AUTH_SECRET_1",
        "AUTH_SECRET_2",
        "AUTH_SECRET_3",
        "NEXTAUTH_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    authsession.reset_auth_runtime()
    yield
    authsession.reset_auth_runtime()
