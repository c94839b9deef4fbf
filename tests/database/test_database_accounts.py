"""Who ``sign_in`` signs in: Auth.js's account-linking rules.

With ``account=`` (an OAuth/OIDC/WebAuthn or email sign-in) the rules are
those of ``@auth/core``'s ``handleLoginOrRegister``: the user the provider
account is linked to; an unlinked account whose email belongs to an existing
user is refused (``AccountNotLinked``) unless
``allow_dangerous_email_account_linking`` -- never for WebAuthn; a new user is
created and the account linked to it. An email (magic link) sign-in finds or
creates the user by email and marks it verified, linking nothing.

Without ``account`` (credentials-style: the application vouches for the
user) the user is found by id, then by email, else created.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from authsession import AccountNotLinked, AuthConfig, AuthSessionError, ConfigurationError
from authsession._bridge import run_sync
from authsession.adapters import MemoryAdapter

from .conftest import COOKIE, USER, RuntimeFactory

ALICE = {"name": "Alice", "email": "alice@example.com", "image": None}
GOOGLE = {"type": "oauth", "provider": "google", "providerAccountId": "g-1"}
GITHUB = {"type": "oauth", "provider": "github", "providerAccountId": "gh-666"}


def alice_with_google(adapter: Any) -> dict[str, Any]:
    alice = run_sync(adapter.create_user(dict(ALICE)))
    run_sync(adapter.link_account({**GOOGLE, "userId": alice["id"]}))
    return alice


def owner(adapter: Any, token: str) -> dict[str, Any]:
    return run_sync(adapter.get_session_and_user(token))["user"]


def linked_to(adapter: Any, account: dict[str, Any]) -> dict[str, Any] | None:
    return run_sync(
        adapter.get_user_by_account(
            provider=account["provider"], provider_account_id=account["providerAccountId"]
        )
    )


def test_an_unlinked_account_claiming_an_existing_email_is_refused(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    """The reviewer's case: another provider's profile claims Alice's address.
    Before, the sign-in became a session *as Alice*, and nothing was linked."""
    alice_with_google(adapter)
    rt = make_runtime()
    response: list[tuple[str, str]] = []
    with pytest.raises(AccountNotLinked) as info:
        rt.sign_in_sync({"name": "Mallory", "email": ALICE["email"]}, response, account=GITHUB)
    assert isinstance(info.value, PermissionError) and isinstance(info.value, AuthSessionError)
    assert "allow_dangerous_email_account_linking" in str(info.value)
    assert response == []  # no cookie
    assert linked_to(adapter, GITHUB) is None


async def test_the_refusal_is_the_same_from_async_code(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    alice_with_google(adapter)
    with pytest.raises(AccountNotLinked):
        await make_runtime().sign_in({"name": "Mallory", "email": ALICE["email"]}, account=GITHUB)


def test_dangerous_email_linking_links_the_account_to_that_user(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    alice = alice_with_google(adapter)
    rt = make_runtime(allow_dangerous_email_account_linking=True)
    token = rt.sign_in_sync({"name": "Alice A.", "email": ALICE["email"]}, account=GITHUB)
    assert owner(adapter, token)["id"] == alice["id"]
    assert linked_to(adapter, GITHUB)["id"] == alice["id"]
    # The next sign-in with that account finds Alice through it.
    again = make_runtime().sign_in_sync({"name": "x", "email": "new@example.com"}, account=GITHUB)
    assert owner(adapter, again)["id"] == alice["id"]


def test_webauthn_is_never_linked_by_email(adapter: Any, make_runtime: RuntimeFactory) -> None:
    alice_with_google(adapter)
    rt = make_runtime(allow_dangerous_email_account_linking=True)
    passkey = {"type": "webauthn", "provider": "passkey", "providerAccountId": "cred-1"}
    with pytest.raises(AccountNotLinked):
        rt.sign_in_sync({"email": ALICE["email"]}, account=passkey)


def test_a_linked_account_signs_in_its_user_whatever_the_profile_says(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    alice = alice_with_google(adapter)
    bob = run_sync(adapter.create_user({"name": "Bob", "email": "bob@example.com"}))
    # The profile's id and email point at Bob; the account decides.
    token = make_runtime().sign_in_sync(
        {"id": bob["id"], "name": "Alice", "email": "bob@example.com"}, account=GOOGLE
    )
    assert owner(adapter, token)["id"] == alice["id"]


def test_a_new_account_and_email_make_a_new_user_and_link_the_account(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    alice = alice_with_google(adapter)
    rt = make_runtime()
    # The id in the profile is the provider's, never the store's: it is not used.
    token = rt.sign_in_sync(
        {"id": alice["id"], "name": "Carol", "email": "carol@example.com"},
        account={"type": "oidc", "provider": "okta", "provider_account_id": 12345},
    )
    carol = owner(adapter, token)
    assert carol["id"] != alice["id"] and carol["email"] == "carol@example.com"
    okta = linked_to(adapter, {"provider": "okta", "providerAccountId": "12345"})
    assert okta is not None and okta["id"] == carol["id"]
    assert run_sync(adapter.get_user(alice["id"]))["name"] == "Alice"  # untouched
    assert rt.get_session_sync({COOKIE: token}).user.name == "Carol"


def test_a_new_account_without_an_email_makes_a_new_user(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    alice_with_google(adapter)
    token = make_runtime().sign_in_sync({"name": "No Mail"}, account=GITHUB)
    assert owner(adapter, token)["name"] == "No Mail"
    assert linked_to(adapter, GITHUB)["name"] == "No Mail"


def test_an_email_sign_in_finds_the_user_by_email_and_marks_it_verified(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    alice = alice_with_google(adapter)
    magic = {"type": "email", "provider": "resend", "providerAccountId": ALICE["email"]}
    before = time.time()
    token = make_runtime().sign_in_sync({"email": ALICE["email"]}, account=magic)
    found = owner(adapter, token)
    assert found["id"] == alice["id"]
    assert found["emailVerified"] is not None and found["emailVerified"].timestamp() >= before - 1
    assert linked_to(adapter, magic) is None  # email sign-ins link no account
    # A new address: a new, verified user.
    new = make_runtime().sign_in_sync(
        {"email": "dan@example.com", "name": "Dan"},
        account={**magic, "providerAccountId": "dan@example.com"},
    )
    dan = owner(adapter, new)
    assert dan["email"] == "dan@example.com" and dan["emailVerified"] is not None


@pytest.mark.parametrize(
    ("account", "error"),
    [
        ({"provider": "github", "providerAccountId": "1"}, "type"),
        ({"type": "credentials", "provider": "credentials", "providerAccountId": "1"}, "type"),
        ({"type": "oauth", "providerAccountId": "1"}, "provider"),
        ({"type": "oauth", "provider": "github"}, "providerAccountId"),
        ({"type": "oauth", "provider": "github", "providerAccountId": ""}, "providerAccountId"),
    ],
)
def test_an_incomplete_account_is_refused(
    adapter: Any, make_runtime: RuntimeFactory, account: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        make_runtime().sign_in_sync(dict(USER), account=account)
    with pytest.raises(TypeError, match="account must be a dict"):
        make_runtime().sign_in_sync(dict(USER), account="github")


def test_without_an_account_the_user_is_found_by_id_then_email_else_created(
    adapter: Any, make_runtime: RuntimeFactory
) -> None:
    """Credentials-style sign-in: the application vouches for who this is."""
    alice = alice_with_google(adapter)
    rt = make_runtime()
    assert owner(adapter, rt.sign_in_sync({"id": alice["id"]}))["id"] == alice["id"]
    assert owner(adapter, rt.sign_in_sync({"email": ALICE["email"]}))["id"] == alice["id"]
    fresh = owner(adapter, rt.sign_in_sync({"name": "Eve", "email": "eve@example.com"}))
    assert fresh["id"] != alice["id"] and fresh["name"] == "Eve"


def test_an_adapter_without_account_methods_says_what_it_lacks() -> None:
    class Minimal:
        def __init__(self) -> None:
            self.inner = MemoryAdapter()

        def __getattr__(self, name: str) -> Any:
            if name in ("get_user_by_account", "link_account"):
                raise AttributeError(name)
            return getattr(self.inner, name)

    from authsession import AuthRuntime

    rt = AuthRuntime(AuthConfig(strategy="database", adapter=Minimal()))
    with pytest.raises(ConfigurationError, match="lacks get_user_by_account, link_account"):
        rt.sign_in_sync(dict(USER), account=GITHUB)
    assert rt.sign_in_sync(dict(USER))  # credentials-style still works


def test_the_linking_flag_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="allow_dangerous_email_account_linking"):
        AuthConfig(
            strategy="database",
            adapter=MemoryAdapter(),
            allow_dangerous_email_account_linking="yes",  # type: ignore[arg-type]
        )
