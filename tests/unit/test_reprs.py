"""Objects that carry tokens or personal data show their shape, never the values, in reprs.

They sit in request state (scope / environ), in the cache, in locals and in
traceback frames, so a repr is one log line or error report away from a leak.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from tests.conftest import SECRET

from authsession import AuthConfig, AuthRuntime, Session, jwt
from authsession._cache import Entry, token_key
from authsession._cookies import CookieName, CookieWrite, FoundCookie, candidate_names
from authsession._inputs import RequestView, to_view
from authsession._tokens import find_token

NAME = "authjs.session-token"
CLAIMS = {"name": "Alice Smith", "email": "alice@example.com"}


def token() -> str:
    return jwt.encode(CLAIMS, SECRET, NAME)


def assert_clean(shown: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in shown
    assert "eyJ" not in shown  # the start of every JWE header
    assert "alice" not in shown.lower()


def test_request_view_shows_cookie_names_and_lengths_only() -> None:
    tok = token()
    view = to_view(f"{NAME}={tok}; other=1")
    assert_clean(repr(view), tok)
    assert repr(view) == (
        f"RequestView(cookies={{'{NAME}': '<{len(tok)} chars>'}}, authorization=None, "
        "store=None, response=None, https=None)"
    )


def test_request_view_from_a_scope_hides_the_bearer_token_and_the_scope() -> None:
    tok = token()
    scope = {
        "type": "http",
        "scheme": "https",
        "headers": [
            (b"cookie", f"{NAME}.0={tok[:100]}; {NAME}.1={tok[100:]}".encode()),
            (b"authorization", f"Bearer {tok}".encode()),
        ],
    }
    view = to_view(scope)
    shown = repr(view)
    assert_clean(shown, tok, tok[:100], tok[100:])
    assert f"'{NAME}.0': '<100 chars>'" in shown
    assert f"authorization='Bearer <{len(tok)} chars>'" in shown
    assert "store=dict" in shown and "https=True" in shown
    # A header that is not "<scheme> <credentials>" is shown as a length only.
    odd = RequestView(authorization=tok)
    assert_clean(repr(odd), tok)
    assert f"authorization='<{len(tok)} chars>'" in repr(odd)


def test_found_cookie_shows_the_names_not_the_value() -> None:
    tok = token()
    found = find_token(to_view(f"{NAME}={tok}"), candidate_names(None, None))
    assert found is not None and found.value == tok
    assert_clean(repr(found), tok)
    assert f"value=<{len(tok)} chars>" in repr(found)
    assert f"names=('{NAME}',)" in repr(found)
    assert "CookieName(name='authjs.session-token', version=5)" in repr(found)
    # Still a tuple underneath: equality and unpacking are unchanged.
    spec, value, names = found
    assert FoundCookie(spec, value, names) == found


def test_cookie_write_shows_everything_but_the_value() -> None:
    tok = token()
    expires = datetime(2030, 1, 1, tzinfo=timezone.utc)
    write = CookieWrite(f"__Secure-{NAME}", tok, expires, True)
    shown = repr(write)
    assert_clean(shown, tok)
    assert f"name='__Secure-{NAME}'" in shown and f"value=<{len(tok)} chars>" in shown
    assert "secure=True" in shown and "samesite='lax'" in shown and "2030" in shown
    assert tok in write.header_value()  # the value itself is intact


def test_cache_entry_shows_session_keys_and_cookie_names() -> None:
    tok = token()
    session = Session({"user": CLAIMS, "expires": "2030-01-01T00:00:00.000Z"})
    write = CookieWrite(NAME, tok, None, False)
    entry = Entry(session, 12.5, (write,), NAME)
    shown = repr(entry)
    assert_clean(shown, tok)
    assert shown == (
        "Entry(session=Session(keys=['expires', 'user'], expires='2030-01-01T00:00:00.000Z'), "
        f"deadline=12.5, writes=['{NAME}'], source='{NAME}', expires_at=None)"
    )
    assert repr(Entry(None, math.inf)) == (
        "Entry(session=None, deadline=inf, writes=[], source=None, expires_at=None)"
    )


def test_what_a_refreshing_request_leaves_behind_has_no_token_in_reprs() -> None:
    tok = token()
    runtime = AuthRuntime(AuthConfig(secret=SECRET, update_age=0))  # every read re-issues
    writes: list[tuple[str, str]] = []
    session = runtime.get_session_sync((f"{NAME}={tok}", writes))
    assert session is not None and writes  # a new token was issued
    entry = runtime.cache._lru[token_key(tok)]
    assert entry.writes
    new_token = entry.writes[0].value
    for shown in (repr(entry), repr(entry.writes), repr(session), repr(session.user)):
        assert_clean(shown, tok, new_token)
    assert repr(CookieName(NAME, 5)) == "CookieName(name='authjs.session-token', version=5)"
