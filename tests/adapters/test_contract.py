"""The adapter contract, checked against every adapter (see conftest.py).

What the database strategy and users rely on: Auth.js method shapes, string
ids, sessions with both key spellings and aware UTC ``expires``, and the three
session rules -- expired rows are still returned (Redis: gone), update_session
never resurrects and never moves ``expires`` backwards, deleting a missing
token is a no-op.
"""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from authsession._bridge import run_sync
from authsession.adapters import Adapter

INJECTION = "'; DROP TABLE users; --"


def ms(value: datetime) -> datetime:
    """*value* in UTC at millisecond precision: what every adapter stores."""
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def now() -> datetime:
    return datetime.now(timezone.utc)


def uniq(label: str = "x") -> str:
    return f"{label}-{uuid.uuid4().hex}"


async def new_user(adapter: Any, **fields: Any) -> dict[str, Any]:
    user = {"name": "Ada", "email": f"{uniq('ada')}@example.com", "image": None, **fields}
    return dict(await adapter.create_user(user))


async def new_session(
    adapter: Any, user_id: str, *, expires: datetime | None = None, token: str | None = None
) -> tuple[str, datetime]:
    token = token or uniq("tok")
    when = expires or now() + timedelta(hours=1)
    await adapter.create_session(session_token=token, user_id=user_id, expires=when)
    return token, when


def assert_session(session: dict[str, Any], token: str, user_id: str, expires: datetime) -> None:
    assert session["session_token"] == session["sessionToken"] == token
    assert session["user_id"] == session["userId"] == user_id
    assert isinstance(session["expires"], datetime)
    assert session["expires"].utcoffset() == timedelta(0)
    assert session["expires"] == ms(expires)


# --------------------------------------------------------------------------- #
# Users
# --------------------------------------------------------------------------- #


async def test_implements_the_protocol(adapter: Any) -> None:
    assert isinstance(adapter, Adapter)


async def test_create_and_get_user(adapter: Any) -> None:
    verified = now() - timedelta(days=3)
    email = f"{uniq()}@example.com"
    created = await adapter.create_user(
        {"name": "Grace", "email": email, "emailVerified": verified, "image": "https://i/g.png"}
    )
    assert isinstance(created["id"], str) and created["id"]
    assert created["name"] == "Grace"
    assert created["emailVerified"] == ms(verified)
    fetched = await adapter.get_user(created["id"])
    assert fetched is not None
    assert {k: fetched[k] for k in ("id", "name", "email", "emailVerified", "image")} == {
        "id": created["id"],
        "name": "Grace",
        "email": email,
        "emailVerified": ms(verified),
        "image": "https://i/g.png",
    }
    assert fetched["emailVerified"].utcoffset() == timedelta(0)


async def test_new_user_id_is_a_string_and_unset_fields_are_none(adapter: Any) -> None:
    created = await adapter.create_user({"email": f"{uniq()}@example.com"})
    fetched = await adapter.get_user(created["id"])
    assert fetched is not None
    assert fetched["name"] is None and fetched["image"] is None and fetched["emailVerified"] is None


async def test_given_id_is_kept_except_where_the_database_assigns_it(
    adapter: Any, kind: str
) -> None:
    wanted = str(uuid.uuid4())
    created = await adapter.create_user({"id": wanted, "email": f"{uniq()}@example.com"})
    if kind == "postgres":  # SERIAL ids, like @auth/pg-adapter, which ignores the given id
        assert created["id"].isdigit()
    else:
        assert created["id"] == wanted
    assert (await adapter.get_user(created["id"]))["email"] == created["email"]


async def test_get_missing_user_is_none(adapter: Any) -> None:
    assert await adapter.get_user("999999999") is None
    assert await adapter.get_user(str(uuid.uuid4())) is None  # not an integer, for Postgres
    assert await adapter.get_user_by_email(f"{uniq()}@nowhere.example") is None


async def test_get_user_by_email(adapter: Any) -> None:
    user = await new_user(adapter)
    found = await adapter.get_user_by_email(user["email"])
    assert found is not None and found["id"] == user["id"]


async def test_update_user_changes_only_given_fields(adapter: Any) -> None:
    user = await new_user(adapter, image="https://i/a.png")
    verified = now()
    updated = await adapter.update_user(
        {"id": user["id"], "name": "Ada L.", "emailVerified": verified}
    )
    assert updated is not None
    assert updated["name"] == "Ada L."
    assert updated["email"] == user["email"]
    assert updated["image"] == "https://i/a.png"
    assert updated["emailVerified"] == ms(verified)
    fetched = await adapter.get_user(user["id"])
    assert fetched is not None and fetched["name"] == "Ada L."


async def test_update_user_email_moves_the_email_lookup(adapter: Any) -> None:
    user = await new_user(adapter)
    new_email = f"{uniq()}@example.com"
    await adapter.update_user({"id": user["id"], "email": new_email})
    assert (await adapter.get_user_by_email(new_email))["id"] == user["id"]
    assert await adapter.get_user_by_email(user["email"]) is None


async def test_update_missing_user_is_none(adapter: Any) -> None:
    assert await adapter.update_user({"id": "999999998", "name": "nobody"}) is None


async def test_delete_user_removes_sessions_and_accounts(adapter: Any) -> None:
    user = await new_user(adapter)
    other = await new_user(adapter)
    token, _ = await new_session(adapter, user["id"])
    other_token, _ = await new_session(adapter, other["id"])
    provider_id = uniq("gh")
    await adapter.link_account(
        {
            "userId": user["id"],
            "type": "oauth",
            "provider": "github",
            "providerAccountId": provider_id,
        }
    )
    await adapter.delete_user(user["id"])
    assert await adapter.get_user(user["id"]) is None
    assert await adapter.get_session_and_user(token) is None
    assert (
        await adapter.get_user_by_account(provider="github", provider_account_id=provider_id)
        is None
    )
    assert await adapter.get_user_by_email(user["email"]) is None
    # Nobody else's data went with it.
    assert (await adapter.get_session_and_user(other_token))["user"]["id"] == other["id"]
    await adapter.delete_user(user["id"])  # again: a no-op


# --------------------------------------------------------------------------- #
# Accounts
# --------------------------------------------------------------------------- #


async def test_link_get_unlink_account(adapter: Any) -> None:
    user = await new_user(adapter)
    provider_id = uniq("sub")
    account = {
        "userId": user["id"],
        "type": "oidc",
        "provider": "google",
        "providerAccountId": provider_id,
        "access_token": "at",
        "refresh_token": "rt",
        "expires_at": 1_900_000_000,
        "token_type": "bearer",
        "scope": "openid email",
        "id_token": "idt",
        "session_state": None,
    }
    linked = await adapter.link_account(account)
    assert linked["userId"] == user["id"] and linked["providerAccountId"] == provider_id
    found = await adapter.get_user_by_account(provider="google", provider_account_id=provider_id)
    assert found is not None and found["id"] == user["id"]
    assert (
        await adapter.get_user_by_account(provider="github", provider_account_id=provider_id)
        is None
    )
    removed = await adapter.unlink_account(provider="google", provider_account_id=provider_id)
    assert removed is not None
    assert removed["access_token"] == "at" and removed["expires_at"] == 1_900_000_000
    assert removed["userId"] == user["id"]
    assert (
        await adapter.get_user_by_account(provider="google", provider_account_id=provider_id)
        is None
    )
    assert await adapter.unlink_account(provider="google", provider_account_id=provider_id) is None


async def test_link_account_accepts_snake_case_names(adapter: Any) -> None:
    user = await new_user(adapter)
    provider_id = uniq("sub")
    await adapter.link_account(
        {
            "user_id": user["id"],
            "type": "oauth",
            "provider": "gitlab",
            "provider_account_id": provider_id,
        }
    )
    found = await adapter.get_user_by_account(provider="gitlab", provider_account_id=provider_id)
    assert found is not None and found["id"] == user["id"]


# --------------------------------------------------------------------------- #
# Sessions
# --------------------------------------------------------------------------- #


async def test_create_session_and_get_session_and_user(adapter: Any) -> None:
    user = await new_user(adapter, name="Sess")
    expires = now() + timedelta(days=30)
    token = uniq("tok")
    created = await adapter.create_session(session_token=token, user_id=user["id"], expires=expires)
    assert_session(created, token, user["id"], expires)
    found = await adapter.get_session_and_user(token)
    assert found is not None and set(found) == {"session", "user"}
    assert_session(found["session"], token, user["id"], expires)
    assert found["user"]["id"] == user["id"] and found["user"]["name"] == "Sess"


async def test_expires_in_another_zone_or_naive_is_stored_as_utc(adapter: Any) -> None:
    user = await new_user(adapter)
    plus5 = timezone(timedelta(hours=5))
    aware = (now() + timedelta(hours=2)).astimezone(plus5)
    token, _ = await new_session(adapter, user["id"], expires=aware)
    assert (await adapter.get_session_and_user(token))["session"]["expires"] == ms(aware)
    naive = (now() + timedelta(hours=3)).replace(tzinfo=None)
    token2, _ = await new_session(adapter, user["id"], expires=naive)
    stored = (await adapter.get_session_and_user(token2))["session"]["expires"]
    assert stored == ms(naive.replace(tzinfo=timezone.utc))


async def test_unknown_token_is_none(adapter: Any) -> None:
    assert await adapter.get_session_and_user(uniq("missing")) is None


async def test_session_of_a_deleted_user_is_none(adapter: Any) -> None:
    user = await new_user(adapter)
    token, _ = await new_session(adapter, user["id"])
    await adapter.delete_user(user["id"])
    assert await adapter.get_session_and_user(token) is None


async def test_expired_session_is_returned_for_the_strategy_to_prune(
    adapter: Any, kind: str
) -> None:
    user = await new_user(adapter)
    past = now() - timedelta(minutes=5)
    token, _ = await new_session(adapter, user["id"], expires=past)
    found = await adapter.get_session_and_user(token)
    if kind == "redis":  # keys expire with their session: the store pruned it already
        assert found is None
        return
    assert found is not None
    assert found["session"]["expires"] == ms(past)
    await adapter.delete_session(token)
    assert await adapter.get_session_and_user(token) is None


async def test_update_session_extends_and_returns_the_stored_session(adapter: Any) -> None:
    user = await new_user(adapter)
    token, first = await new_session(adapter, user["id"])
    later = first + timedelta(days=30)
    updated = await adapter.update_session(session_token=token, expires=later)
    assert updated is not None
    assert_session(updated, token, user["id"], later)
    assert_session((await adapter.get_session_and_user(token))["session"], token, user["id"], later)


async def test_update_session_never_moves_expires_backwards(adapter: Any) -> None:
    user = await new_user(adapter)
    token, first = await new_session(adapter, user["id"], expires=now() + timedelta(days=10))
    updated = await adapter.update_session(session_token=token, expires=first - timedelta(days=5))
    assert updated is not None
    assert updated["expires"] == ms(first)
    assert (await adapter.get_session_and_user(token))["session"]["expires"] == ms(first)


async def test_update_session_without_expires_changes_nothing(adapter: Any) -> None:
    user = await new_user(adapter)
    token, first = await new_session(adapter, user["id"])
    updated = await adapter.update_session(session_token=token)
    assert updated is not None and updated["expires"] == ms(first)


async def test_update_session_can_move_it_to_another_user(adapter: Any) -> None:
    user = await new_user(adapter)
    other = await new_user(adapter)
    token, first = await new_session(adapter, user["id"])
    updated = await adapter.update_session(session_token=token, user_id=other["id"])
    assert (
        updated is not None and updated["userId"] == other["id"] and updated["expires"] == ms(first)
    )
    assert (await adapter.get_session_and_user(token))["user"]["id"] == other["id"]
    # Deleting the old owner leaves the moved session alone.
    await adapter.delete_user(user["id"])
    assert (await adapter.get_session_and_user(token))["user"]["id"] == other["id"]


async def test_update_missing_session_is_none_and_creates_nothing(adapter: Any) -> None:
    token = uniq("never")
    assert (
        await adapter.update_session(session_token=token, expires=now() + timedelta(days=1)) is None
    )
    assert await adapter.get_session_and_user(token) is None


async def test_no_resurrection_after_sign_out(adapter: Any) -> None:
    user = await new_user(adapter)
    token, first = await new_session(adapter, user["id"])
    await adapter.delete_session(token)
    assert (
        await adapter.update_session(session_token=token, expires=first + timedelta(days=1)) is None
    )
    assert await adapter.get_session_and_user(token) is None


async def test_delete_missing_session_is_a_noop(adapter: Any) -> None:
    await adapter.delete_session(uniq("missing"))
    user = await new_user(adapter)
    token, _ = await new_session(adapter, user["id"])
    await adapter.delete_session(token)
    await adapter.delete_session(token)
    assert await adapter.get_session_and_user(token) is None


async def test_concurrent_slides_keep_the_latest_expiry(adapter: Any) -> None:
    user = await new_user(adapter)
    base = now() + timedelta(hours=1)
    token, _ = await new_session(adapter, user["id"], expires=base)
    offsets = list(range(1, 25))
    random.Random(7).shuffle(offsets)
    results = await asyncio.gather(
        *(
            adapter.update_session(session_token=token, expires=base + timedelta(minutes=m))
            for m in offsets
        )
    )
    assert all(r is not None for r in results)
    # Each caller sees at least its own extension; the store keeps the maximum.
    for minutes, result in zip(offsets, results, strict=True):
        assert result["expires"] >= ms(base + timedelta(minutes=minutes))
    final = await adapter.get_session_and_user(token)
    assert final["session"]["expires"] == ms(base + timedelta(minutes=max(offsets)))


async def test_concurrent_slides_and_sign_out_never_resurrect(adapter: Any) -> None:
    user = await new_user(adapter)
    for round_ in range(5):
        base = now() + timedelta(hours=1)
        token, _ = await new_session(adapter, user["id"], expires=base, token=uniq(f"r{round_}"))
        slides = [
            adapter.update_session(session_token=token, expires=base + timedelta(minutes=m))
            for m in range(1, 9)
        ]
        await asyncio.gather(*slides[:4], adapter.delete_session(token), *slides[4:])
        assert await adapter.get_session_and_user(token) is None


def test_shared_by_threads_through_the_sync_bridge(
    kind: str, request: pytest.FixtureRequest, tmp_path
) -> None:
    """The sync bridge runs adapter coroutines on its loop thread, called from many threads."""
    from tests.adapters.conftest import make_adapter

    adapter = make_adapter(kind, request, tmp_path)
    try:
        user = run_sync(adapter.create_user({"name": "T", "email": f"{uniq()}@example.com"}))
        base = now() + timedelta(hours=1)
        token = uniq("thr")
        run_sync(adapter.create_session(session_token=token, user_id=user["id"], expires=base))
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(5):
                    minutes = n * 5 + i + 1
                    run_sync(
                        adapter.update_session(
                            session_token=token, expires=base + timedelta(minutes=minutes)
                        )
                    )
                    assert run_sync(adapter.get_session_and_user(token)) is not None
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        final = run_sync(adapter.get_session_and_user(token))
        assert final["session"]["expires"] == ms(base + timedelta(minutes=20))
    finally:
        run_sync(adapter.aclose())


async def test_usable_from_two_event_loops(
    kind: str, request: pytest.FixtureRequest, tmp_path
) -> None:
    """This test's loop and the bridge loop each get their own connections; aclose closes both."""
    from tests.adapters.conftest import make_adapter

    adapter = make_adapter(kind, request, tmp_path)
    try:
        user = await new_user(adapter)
        token, when = await new_session(adapter, user["id"])
        on_bridge = await asyncio.to_thread(run_sync, adapter.get_session_and_user(token))
        assert on_bridge is not None and on_bridge["session"]["expires"] == ms(when)
        assert (await adapter.get_session_and_user(token))["user"]["id"] == user["id"]
    finally:
        await adapter.aclose()
    # Closed adapters open again on use (a file or server database still has the data).
    if kind not in ("memory", "sqlite"):
        try:
            assert (await adapter.get_session_and_user(token)) is not None
        finally:
            await adapter.aclose()


# --------------------------------------------------------------------------- #
# Verification tokens
# --------------------------------------------------------------------------- #


async def test_verification_token_is_used_once(adapter: Any) -> None:
    identifier = f"{uniq()}@example.com"
    expires = now() + timedelta(hours=1)
    created = await adapter.create_verification_token(
        identifier=identifier, token="hashed-abc", expires=expires
    )
    assert created == {"identifier": identifier, "token": "hashed-abc", "expires": ms(expires)}
    assert await adapter.use_verification_token(identifier=identifier, token="wrong") is None
    used = await adapter.use_verification_token(identifier=identifier, token="hashed-abc")
    assert used == {"identifier": identifier, "token": "hashed-abc", "expires": ms(expires)}
    assert await adapter.use_verification_token(identifier=identifier, token="hashed-abc") is None


# --------------------------------------------------------------------------- #
# Hostile and unusual input
# --------------------------------------------------------------------------- #


async def test_unicode_round_trips(adapter: Any) -> None:
    user = await adapter.create_user(
        {
            "name": "Zoë Ångström 東京 🚀",
            "email": f"{uniq('zoë')}@exämple.jp",
            "image": "https://i/ü.png",
        }
    )
    token = uniq("jeton-é-🔑")
    _, when = await new_session(adapter, user["id"], token=token)
    found = await adapter.get_session_and_user(token)
    assert found is not None
    assert found["user"]["name"] == "Zoë Ångström 東京 🚀"
    assert found["user"]["email"] == user["email"]
    assert_session(found["session"], token, user["id"], when)
    assert (await adapter.get_user_by_email(user["email"]))["id"] == user["id"]


async def test_injection_looking_input_is_just_data(adapter: Any) -> None:
    bystander = await new_user(adapter)
    user = await adapter.create_user({"name": INJECTION, "email": INJECTION + uniq()})
    token = INJECTION + uniq()
    _, when = await new_session(adapter, user["id"], token=token)
    found = await adapter.get_session_and_user(token)
    assert found is not None and found["user"]["name"] == INJECTION
    assert_session(found["session"], token, user["id"], when)
    assert (await adapter.get_user_by_email(user["email"]))["id"] == user["id"]
    assert await adapter.get_session_and_user(INJECTION) is None
    assert await adapter.get_user_by_email(INJECTION) is None
    assert await adapter.update_session(session_token=INJECTION, expires=now()) is None
    await adapter.delete_session(INJECTION)
    await adapter.create_verification_token(identifier=INJECTION, token=INJECTION, expires=when)
    assert (await adapter.use_verification_token(identifier=INJECTION, token=INJECTION))[
        "token"
    ] == INJECTION
    # Every table is still there.
    assert (await adapter.get_user(bystander["id"]))["email"] == bystander["email"]
    assert await adapter.get_session_and_user(token) is not None


async def test_returned_records_are_copies(adapter: Any) -> None:
    user = await new_user(adapter, name="Original")
    token, _ = await new_session(adapter, user["id"])
    found = await adapter.get_session_and_user(token)
    found["user"]["name"] = "Mutated"
    found["session"]["expires"] = now() - timedelta(days=1)
    again = await adapter.get_session_and_user(token)
    assert again["user"]["name"] == "Original"
    assert again["session"]["expires"] > now()
