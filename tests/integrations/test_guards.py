"""authsession.guards: the access rules every integration applies."""

from __future__ import annotations

import pytest

from authsession import Session
from authsession.guards import (
    Denial,
    check,
    denial_response,
    permissions_of,
    roles_of,
    validate_session,
    wants_html,
)

ADMIN = Session(
    {"user": {"name": "A", "role": "admin", "permissions": ["read", "write"]}, "expires": "x"}
)
EDITOR = Session({"user": {"name": "E", "roles": ["editor", "viewer"]}, "expires": "x"})
PLAIN = Session({"user": {"name": "P"}, "expires": "x"})


def test_roles_and_permissions_are_read_from_user() -> None:
    assert roles_of(ADMIN) == {"admin"}
    assert roles_of(EDITOR) == {"editor", "viewer"}
    assert roles_of({"user": {"role": "a", "roles": "b"}}) == {"a", "b"}
    assert roles_of(PLAIN) == set() and roles_of(None) == set()
    assert roles_of({"user": {"roles": [1, None, "ok"]}}) == {"ok"}
    assert permissions_of(ADMIN) == {"read", "write"}
    assert permissions_of({"user": "not a mapping"}) == set()


def test_validate_session_rules() -> None:
    assert validate_session(PLAIN)
    assert not validate_session(None)
    assert validate_session(None, require_auth=False)
    # A role or permission requirement implies a signed-in user.
    assert not validate_session(None, require_auth=False, require_role="admin")
    assert validate_session(ADMIN, require_role="admin")
    assert validate_session(EDITOR, require_role=["admin", "editor"])  # any of
    assert not validate_session(EDITOR, require_role="admin")
    assert validate_session(ADMIN, require_permission=["read", "write"])  # all of
    assert not validate_session(ADMIN, require_permission=["read", "delete"])
    assert not validate_session(PLAIN, require_permission="read")
    with pytest.raises(ValueError, match="at least one role"):
        validate_session(ADMIN, require_role=[])


def test_check_explains_401_and_403() -> None:
    assert check(None) == Denial(401, "sign-in required")
    denial = check(EDITOR, require_role=["admin", "owner"])
    assert denial is not None and denial.status == 403
    assert denial.reason == "requires role admin or owner"
    assert check(ADMIN, require_permission=["delete", "read"]) == Denial(
        403, "requires permission delete"
    )


def test_wants_html_only_for_browser_navigation() -> None:
    assert wants_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    assert not wants_html("application/json")
    assert not wants_html("*/*")
    assert not wants_html(None)
    assert not wants_html("application/json, text/html")


def test_denial_responses() -> None:
    html = denial_response(Denial(401, "sign-in required"), html=True, callback_url="/a?b=1&c=2")
    assert html.status == 303
    assert html.headers == (("location", "/api/auth/signin?callbackUrl=%2Fa%3Fb%3D1%26c%3D2"),)
    custom = denial_response(
        Denial(401, "x"), html=True, callback_url="https://app/x", sign_in_url="/login?next=1"
    )
    assert dict(custom.headers)["location"] == "/login?next=1&callbackUrl=https%3A%2F%2Fapp%2Fx"
    api = denial_response(Denial(401, "sign-in required"), html=False, callback_url="/")
    assert (api.status, api.json) == (401, {"error": "unauthorized", "message": "sign-in required"})
    assert dict(api.headers)["www-authenticate"].startswith("Bearer")
    forbidden = denial_response(Denial(403, "requires role admin"), html=False, callback_url="/")
    assert (forbidden.status, forbidden.json["error"]) == (403, "forbidden")
    page = denial_response(Denial(403, "requires role admin"), html=True, callback_url="/")
    assert (page.status, page.text) == (403, "requires role admin")
