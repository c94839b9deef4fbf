"""Session / AttrDict / FrozenList: read-only all the way down, JSON-identical, redacted reprs."""

from __future__ import annotations

import copy
import json
import pickle
import sys

import pytest
from tests.conftest import SECRET

from authsession import AuthConfig, AuthRuntime, Session, jwt
from authsession._session import AttrDict
from authsession.guards import permissions_of, roles_of, validate_session

NAME = "authjs.session-token"
DATA = {
    "user": {
        "name": "Alice Smith",
        "email": "alice@example.com",
        "roles": ["viewer", "editor"],
        "permissions": ["read"],
        "accounts": [{"provider": "github", "scopes": ["repo"]}],
    },
    "matrix": [[1, 2], [3]],
    "expires": "2030-01-01T00:00:00.000Z",
}
MUTATIONS = {
    "append": lambda lst: lst.append("admin"),
    "extend": lambda lst: lst.extend(["admin"]),
    "insert": lambda lst: lst.insert(0, "admin"),
    "setitem": lambda lst: lst.__setitem__(0, "admin"),
    "setslice": lambda lst: lst.__setitem__(slice(0, 1), ["admin"]),
    "delitem": lambda lst: lst.__delitem__(0),
    "pop": lambda lst: lst.pop(),
    "remove": lambda lst: lst.remove("viewer"),
    "clear": lambda lst: lst.clear(),
    "sort": lambda lst: lst.sort(),
    "reverse": lambda lst: lst.reverse(),
    "iadd": lambda lst: lst.__iadd__(["admin"]),
    "imul": lambda lst: lst.__imul__(2),
}


@pytest.mark.parametrize("how", sorted(MUTATIONS))
def test_lists_in_a_session_refuse_every_in_place_change(how: str) -> None:
    session = Session(DATA)
    with pytest.raises(TypeError, match=r"read-only.*to_dict"):
        MUTATIONS[how](session.user.roles)
    assert session.user.roles == ["viewer", "editor"]


def test_nested_lists_and_dicts_inside_lists_are_frozen_too() -> None:
    session = Session(DATA)
    with pytest.raises(TypeError):
        session.matrix[0].append(9)
    with pytest.raises(TypeError):
        session.user.accounts[0]["provider"] = "x"
    with pytest.raises(TypeError):
        session.user.accounts[0].scopes.append("admin")
    assert session.to_dict() == DATA


def test_tuples_from_callbacks_keep_their_type_but_not_mutable_contents() -> None:
    session = Session({"pair": ({"a": [1]}, "x")})
    assert type(session.pair) is tuple
    with pytest.raises(TypeError):
        session.pair[0]["a"] = 2
    with pytest.raises(TypeError):
        session.pair[0].a.append(2)


def test_frozen_lists_still_read_and_serialise_like_lists() -> None:
    session = Session(DATA)
    roles = session.user.roles
    assert isinstance(roles, list)
    assert roles == ["viewer", "editor"] and roles != ["viewer"]
    assert roles[0] == "viewer" and roles[-1] == "editor" and len(roles) == 2
    assert list(roles) == ["viewer", "editor"] and "editor" in roles
    assert sorted(roles) == ["editor", "viewer"]
    assert roles + ["admin"] == ["viewer", "editor", "admin"]  # noqa: RUF005 - what views write
    # Slices and concatenations are new, ordinary lists a view may change.
    mine = roles[:]
    mine.append("admin")
    assert type(mine) is list and roles == ["viewer", "editor"]
    assert json.dumps(session) == json.dumps(DATA)
    assert json.dumps(session, indent=2, sort_keys=True) == json.dumps(
        DATA, indent=2, sort_keys=True
    )


def test_to_dict_returns_plain_mutable_lists_all_the_way_down() -> None:
    plain = Session(DATA).to_dict()
    assert plain == DATA
    assert type(plain["user"]["roles"]) is list
    assert type(plain["matrix"][0]) is list
    assert type(plain["user"]["accounts"][0]) is dict
    assert type(plain["user"]["accounts"][0]["scopes"]) is list
    plain["user"]["roles"].append("admin")  # no TypeError
    plain["matrix"][0].append(9)


def test_copy_and_pickle_keep_lists_frozen() -> None:
    session = Session(DATA)
    assert copy.copy(session.user.roles) is session.user.roles
    assert copy.deepcopy(session) is session
    restored = pickle.loads(pickle.dumps(session))
    assert restored == session and isinstance(restored.user.roles, list)
    with pytest.raises(TypeError):
        restored.user.roles.append("admin")


def test_a_list_changed_by_one_request_is_not_seen_by_the_next() -> None:
    runtime = AuthRuntime(
        AuthConfig(
            secret=SECRET,
            callbacks={
                "session": lambda session, token: {
                    **session,
                    "user": {**session["user"], "roles": list(token.get("roles", []))},
                }
            },
        )
    )
    cookie = {NAME: jwt.encode({"name": "bob", "roles": ["viewer"]}, SECRET, NAME)}
    first = runtime.get_session_sync(dict(cookie))
    assert first is not None
    with pytest.raises(TypeError):
        first.user.roles.append("admin")
    later = runtime.get_session_sync(dict(cookie))
    assert later is not None and later.user.roles == ["viewer"]
    assert not validate_session(later, require_role="admin")
    assert validate_session(later, require_role="viewer")


def test_guards_read_roles_and_permissions_from_frozen_lists() -> None:
    session = Session(DATA)
    assert roles_of(session) == {"viewer", "editor"}
    assert permissions_of(session) == {"read"}
    assert validate_session(session, require_role=["admin", "editor"], require_permission="read")
    assert not validate_session(session, require_permission=["read", "write"])


def test_nested_dict_and_list_reprs_show_shape_not_personal_data() -> None:
    session = Session(DATA)
    for shown in (
        repr(session.user),
        str(session.user),
        f"{session.user}",
        repr(session.user.accounts),
        repr(session.user.roles),
    ):
        assert "alice" not in shown.lower() and "viewer" not in shown
    assert repr(session.user) == (
        "AttrDict(keys=['accounts', 'email', 'name', 'permissions', 'roles'])"
    )
    assert repr(session.user.roles) == "FrozenList(len=2)"
    assert "Alice" not in repr(session) and "expires" in repr(session)


def test_reprs_do_not_fail_on_odd_keys_from_callbacks() -> None:
    assert repr(AttrDict({1: "a", "b": 2})) == "AttrDict(keys=['1', 'b'])"  # type: ignore[dict-item]
    assert "keys=['1', 'b']" in repr(Session({1: "a", "b": 2}))  # type: ignore[dict-item]


def test_attribute_reads_keys_after_the_dicts_own_names() -> None:
    # Keys read as attributes; a key named like a dict method does not hide
    # the method (json.dumps calls .items()); a subclass's own methods win too.
    class Tagged(Session):
        __slots__ = ()

        def label(self) -> str:
            return "own"

    data = {"user": {"name": "Ada", "items": [1], "get": "g"}, "label": "key", "expires": "x"}
    session = Tagged(data)
    assert session.user.name == "Ada"
    assert callable(session.user.items) and session.user["items"] == [1]
    assert session.user.get("get") == "g"
    assert session.label() == "own"
    assert json.loads(json.dumps(session)) == data
    assert isinstance(session.user, AttrDict) and session.__class__ is Tagged
    with pytest.raises(AttributeError, match=r"has no key 'nope'; use \.get"):
        _ = session.user.nope
    assert getattr(session, "nope", None) is None
    assert not hasattr(session, "__dict__")


def test_iso_ms_matches_javascript_toisostring_through_its_memos():
    """iso_ms remembers the last second and the last millisecond: every call,
    repeated, neighbouring or going back in time, must still format its own
    timestamp (truncated to the millisecond, like a JS Date)."""
    from datetime import datetime, timezone

    from authsession._time import iso_ms

    def expected(ts: float) -> str:
        millis = int(ts * 1000)
        moment = datetime.fromtimestamp(millis // 1000, tz=timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"

    base = 1_795_000_000.0
    stamps = [
        base,
        base,
        base + 0.0004,
        base + 0.001,
        base + 0.999,
        base + 1.0,
        base,
        base - 86400.5,
    ]
    stamps += [base + i * 0.0007 for i in range(3000)]
    for ts in stamps:
        assert iso_ms(ts) == expected(ts), ts
    assert iso_ms(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(-0.001) == "1969-12-31T23:59:59.999Z"  # the millisecond before the epoch
    assert iso_ms(1.2345) == "1970-01-01T00:00:01.234Z"


def test_iso_ms_first_call_in_a_fresh_process_formats_any_millisecond():
    """The memo's starting value must not pass for a real millisecond (it once
    made the first iso_ms(-0.001) of a process return "")."""
    import subprocess

    code = "from authsession._time import iso_ms; print(iso_ms(-0.001))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1969-12-31T23:59:59.999Z"
