"""Session cookie names, chunk joining and splitting, Set-Cookie attributes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from authsession._cookies import (
    CHUNK_SIZE,
    MAX_CHUNKS,
    MAX_SESSION_CHARS,
    candidate_names,
    chunk_cookies,
    clear_cookies,
    find_session_cookie,
    parse_session_cookies,
)

NAMES = candidate_names(None, None)
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_auto_names_read_secure_and_plain_v5_then_v4():
    assert [n.name for n in NAMES] == [
        "__Secure-authjs.session-token",
        "authjs.session-token",
        "__Secure-next-auth.session-token",
        "next-auth.session-token",
    ]
    assert [n.version for n in NAMES] == [5, 5, 4, 4]
    assert [n.name for n in candidate_names(None, False)] == [
        "authjs.session-token",
        "next-auth.session-token",
    ]
    assert [n.name for n in candidate_names("my.session-token", None)] == ["my.session-token"]
    assert candidate_names("__Secure-next-auth.session-token", None)[0].version == 4


def test_parse_keeps_only_session_cookies_first_occurrence_wins():
    header = 'theme=dark; authjs.session-token=abc; authjs.session-token=later; other="x"; authjs.session-token.0="q%41"'
    assert parse_session_cookies(header) == {
        "authjs.session-token": "abc",
        "authjs.session-token.0": "qA",
    }
    assert parse_session_cookies("theme=dark; lang=en") == {}
    assert parse_session_cookies("authjs.session-token") == {}
    # malformed percent-encoding keeps the raw value, like the `cookie` package
    assert parse_session_cookies("authjs.session-token=%E0%A4%A") == {
        "authjs.session-token": "%E0%A4%A"
    }


def test_chunks_join_by_index_whatever_the_header_order():
    header = "authjs.session-token.2=CC; authjs.session-token.0=AA; x=1; authjs.session-token.1=BB"
    found = find_session_cookie(parse_session_cookies(header), NAMES)
    assert found is not None and found.value == "AABBCC"
    assert set(found.names) == {
        "authjs.session-token.0",
        "authjs.session-token.1",
        "authjs.session-token.2",
    }
    # ten chunks sort numerically, not as strings
    many = {f"authjs.session-token.{i}": str(i) for i in range(11)}
    assert find_session_cookie(many, NAMES).value == "012345678910"


def test_secure_name_preferred_and_v4_found():
    found = find_session_cookie(
        {"authjs.session-token": "plain", "__Secure-authjs.session-token": "sec"}, NAMES
    )
    assert found.value == "sec" and found.spec.secure
    found = find_session_cookie({"next-auth.session-token": "v4"}, NAMES)
    assert found.spec.version == 4
    assert find_session_cookie({"authjs.session-token": ""}, NAMES) is None
    assert find_session_cookie({"authjs.session-token.1": "x"}, NAMES) is None


def test_oversized_values_and_too_many_chunks_are_refused(caplog):
    big = {"authjs.session-token": "a" * (MAX_SESSION_CHARS + 1)}
    assert find_session_cookie(big, NAMES) is None
    chunks = {f"authjs.session-token.{i}": "a" * 4000 for i in range(17)}
    assert find_session_cookie(chunks, NAMES) is None
    many = {f"authjs.session-token.{i}": "a" for i in range(MAX_CHUNKS + 5)}
    assert find_session_cookie(many, NAMES) is None
    assert "ignored" in caplog.text


def test_writes_one_cookie_when_it_fits_and_clears_stale_chunks():
    writes = chunk_cookies(
        "authjs.session-token",
        "v" * CHUNK_SIZE,
        EXPIRES,
        ("authjs.session-token.0", "authjs.session-token.1"),
    )
    assert [(w.name, w.max_age) for w in writes] == [
        ("authjs.session-token", None),
        ("authjs.session-token.0", 0),
        ("authjs.session-token.1", 0),
    ]


def test_splits_like_authjs_3936_characters_per_chunk():
    value = "x" * (CHUNK_SIZE * 2 + 10)
    writes = chunk_cookies("authjs.session-token", value, EXPIRES, ("authjs.session-token",))
    assert CHUNK_SIZE == 3936
    assert [(w.name, len(w.value)) for w in writes[:3]] == [
        ("authjs.session-token.0", 3936),
        ("authjs.session-token.1", 3936),
        ("authjs.session-token.2", 10),
    ]
    assert writes[3].name == "authjs.session-token" and writes[3].max_age == 0
    assert "".join(w.value for w in writes[:3]) == value


def test_set_cookie_attributes_match_authjs():
    (plain,) = chunk_cookies("authjs.session-token", "abc", EXPIRES)
    assert plain.header_value() == (
        "authjs.session-token=abc; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; SameSite=Lax"
    )
    (secure,) = chunk_cookies("__Secure-authjs.session-token", "abc", EXPIRES)
    assert "; Secure;" in secure.header_value()
    (cleared,) = clear_cookies(["__Secure-authjs.session-token.0"])
    assert cleared.header_value() == (
        "__Secure-authjs.session-token.0=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
        "HttpOnly; Secure; SameSite=Lax"
    )


@pytest.mark.parametrize(
    "header", ["", ";;;", "=", "session-token", "a=b=c; authjs.session-token==x", "\x00\xff"]
)
def test_parser_never_raises(header):
    parse_session_cookies(header)


@pytest.mark.parametrize("cookie_name", [None, "mysession"])
def test_lone_session_cookie_agrees_with_the_full_parse(cookie_name: str | None) -> None:
    """The middleware's shortcut answers only when the full rules give the same.

    Headers are built from pieces that exercise every rule: several session
    cookies, chunks, quotes, escapes, spaces, the marker inside values, empty
    values, names the runtime does not read. "mysession" is a candidate name
    without the marker (configuration refuses one; the helpers must still
    agree): a marker in its value must not make the shortcut read it.
    """
    import random

    from authsession._cookies import lone_session_cookie

    candidates = NAMES if cookie_name is None else candidate_names(cookie_name, None)
    rng = random.Random(20261128)
    names = [n.name for n in NAMES] + [
        "authjs.session-token.0",
        "authjs.session-token.1",
        "my.session-token",
        "mysession",
        "theme",
        "authjs.csrf-token",
        "x",
    ]
    values = ["abc.def.ghi", "", '"quoted.tok"', "a%41b", " spaced ", "v=session-token", "tok"]
    values.append("x-session-token")
    answered = 0
    for _ in range(20000):
        parts = []
        for _ in range(rng.randint(0, 4)):
            name = rng.choice(names)
            sep = rng.choice(["=", "=", "=", ""])
            parts.append(f"{rng.choice(['', ' ', '  '])}{name}{sep}{rng.choice(values)}")
        header = rng.choice([";", "; "]).join(parts)
        lone = lone_session_cookie(header, candidates.by_name)
        if lone is None:
            continue
        answered += 1
        found = find_session_cookie(parse_session_cookies(header), candidates)
        assert found is not None, header
        assert (found.spec, found.value) == lone, header
    if cookie_name is not None:
        assert answered == 0  # the full parse never reads a name without the marker
        return
    assert answered > 1000  # the shortcut does take the common shapes
