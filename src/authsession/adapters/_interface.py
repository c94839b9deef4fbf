"""The Auth.js adapter interface in Python, and the errors adapters raise.

Every method is a coroutine named like its Auth.js counterpart in snake_case
(``getSessionAndUser`` -> ``get_session_and_user``). The database strategy
relies on the session semantics documented on each method; every adapter in
this package implements them and ``tests/adapters`` checks them all with one
contract suite.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .._errors import AuthSessionError

#: A user, account, session or verification token as a plain mapping.
Record = dict[str, Any]


class AdapterError(AuthSessionError):
    """An adapter could not do what was asked (the message says what and why)."""


class AdapterUnavailable(AdapterError, ConnectionError):
    """The adapter's server (PostgreSQL, Redis) cannot be reached or dropped the connection.

    The message names the adapter and the server (never a password). The call
    may be retried: a later call reconnects once the server is back.
    """


@runtime_checkable
class Adapter(Protocol):
    """What the database strategy needs from a store: the Auth.js adapter methods.

    Shapes (plain ``dict``\\ s, fresh copies the caller may mutate):

    * user: ``id`` (``str``), ``name``, ``email``, ``emailVerified``
      (aware UTC ``datetime`` or ``None``), ``image`` -- plus any further
      columns/fields the store holds for that user.
    * session: ``session_token`` and ``sessionToken`` (the same value),
      ``user_id`` and ``userId`` (the same ``str``), ``expires`` (aware UTC
      ``datetime``, millisecond precision like a JavaScript ``Date``).
    * account: Auth.js names -- ``userId``, ``type``, ``provider``,
      ``providerAccountId``, ``refresh_token``, ``access_token``,
      ``expires_at``, ``id_token``, ``scope``, ``session_state``, ``token_type``.
    * verification token: ``identifier``, ``token``, ``expires``.

    Datetimes given to an adapter may be aware (any zone) or naive (taken as
    UTC); they are stored at millisecond precision.
    """

    async def create_user(self, user: Record) -> Record:
        """Store *user* and return it with its ``"id"`` (a new uuid string unless given)."""
        ...

    async def get_user(self, id: str) -> Record | None:
        """The user with this id, or None."""
        ...

    async def get_user_by_email(self, email: str) -> Record | None:
        """The user with this email, or None."""
        ...

    async def get_user_by_account(
        self, *, provider: str, provider_account_id: str
    ) -> Record | None:
        """The user linked to this provider account, or None."""
        ...

    async def update_user(self, user: Record) -> Record | None:
        """Update the fields present in *user* (which must hold ``"id"``); the stored
        user afterwards, or None if there is no such user."""
        ...

    async def delete_user(self, id: str) -> None:
        """Delete the user with its sessions and accounts; a missing user is a no-op."""
        ...

    async def link_account(self, account: Record) -> Record:
        """Store an account (Auth.js field names) linked to ``account["userId"]``."""
        ...

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Record | None:
        """Remove the account; the removed account, or None if there was none."""
        ...

    async def create_session(
        self, *, session_token: str, user_id: str, expires: datetime
    ) -> Record:
        """Store a session and return it (session shape above)."""
        ...

    async def get_session_and_user(self, session_token: str) -> Record | None:
        """``{"session": {...}, "user": {...}}``, or None when the token is unknown.

        An expired session is still returned (the strategy compares ``expires``
        with its clock, then deletes the row), except where the store itself
        drops rows at expiry (Redis keys expire with the session). A session
        whose user is gone is None.
        """
        ...

    async def update_session(
        self, *, session_token: str, expires: datetime | None = None, **extra: Any
    ) -> Record | None:
        """Extend a session atomically; the stored session afterwards, or None.

        * Never creates a row: updating a token that is missing (a concurrent
          sign-out deleted it) returns None and leaves nothing behind.
        * Never moves ``expires`` backwards: the stored value becomes the later
          of the stored and the given one, atomically in the store, so two
          concurrent slides never lose an extension.
        * ``extra`` may hold ``user_id``/``userId`` to move the session to
          another user; other keys are ignored.
        """
        ...

    async def delete_session(self, session_token: str) -> None:
        """Delete a session; a missing token is a no-op."""
        ...

    async def create_verification_token(
        self, *, identifier: str, token: str, expires: datetime
    ) -> Record:
        """Store an email sign-in verification token and return it."""
        ...

    async def use_verification_token(self, *, identifier: str, token: str) -> Record | None:
        """Delete and return the token (even if expired; Auth.js checks), or None."""
        ...

    async def aclose(self) -> None:
        """Release connections and pools; the adapter reopens them if used again."""
        ...
