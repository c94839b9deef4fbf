"""``MemoryAdapter``: the Auth.js adapter over plain dicts, for tests and demos."""

from __future__ import annotations

import copy
import threading
from datetime import datetime
from typing import Any

from ._interface import AdapterError, Record
from ._records import (
    account_record,
    canonical,
    extra_user_id,
    new_id,
    session_record,
    user_record,
    utc,
    verification_record,
)


class MemoryAdapter:
    """Users, accounts, sessions and verification tokens in this process's memory.

    Safe to share between event loops and threads (the sync bridge runs its
    coroutines on a background loop thread): every method does its whole
    read-modify-write under one ``threading.Lock`` and never awaits while
    holding it, so a coroutine can neither block its loop for long nor observe
    half an update. Records go in and come out as copies.

    Semantics the database strategy relies on (see :class:`Adapter`):
    ``get_session_and_user`` returns expired sessions too (the strategy decides
    and deletes); ``update_session`` never creates a session and never moves
    ``expires`` backwards; ``delete_session`` of a missing token is a no-op.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, Record] = {}
        self._accounts: dict[tuple[str, str], Record] = {}
        # token -> (user id, expires)
        self._sessions: dict[str, tuple[str, datetime]] = {}
        self._tokens: dict[tuple[str, str], Record] = {}

    # -- users ------------------------------------------------------------
    async def create_user(self, user: Record) -> Record:
        stored = user_record(user)
        if stored["id"] is None:
            stored["id"] = new_id()
        with self._lock:
            if stored["id"] in self._users:
                raise AdapterError(f"MemoryAdapter: a user with id {stored['id']!r} exists")
            self._users[stored["id"]] = stored
            return copy.deepcopy(stored)

    async def get_user(self, id: str) -> Record | None:
        with self._lock:
            user = self._users.get(str(id))
            return copy.deepcopy(user) if user is not None else None

    async def get_user_by_email(self, email: str) -> Record | None:
        with self._lock:
            for user in self._users.values():
                if user["email"] is not None and user["email"] == email:
                    return copy.deepcopy(user)
        return None

    async def get_user_by_account(
        self, *, provider: str, provider_account_id: str
    ) -> Record | None:
        with self._lock:
            account = self._accounts.get((provider, provider_account_id))
            user = self._users.get(account["userId"]) if account is not None else None
            return copy.deepcopy(user) if user is not None else None

    async def update_user(self, user: Record) -> Record | None:
        changes = canonical(user)
        if changes.get("id") is None:
            raise AdapterError("MemoryAdapter.update_user: the user has no 'id'")
        uid = str(changes["id"])
        with self._lock:
            stored = self._users.get(uid)
            if stored is None:
                return None
            merged = user_record({**stored, **changes, "id": uid})
            self._users[uid] = merged
            return copy.deepcopy(merged)

    async def delete_user(self, id: str) -> None:
        uid = str(id)
        with self._lock:
            self._users.pop(uid, None)
            for key in [k for k, a in self._accounts.items() if a["userId"] == uid]:
                del self._accounts[key]
            for token in [t for t, (owner, _) in self._sessions.items() if owner == uid]:
                del self._sessions[token]

    # -- accounts ---------------------------------------------------------
    async def link_account(self, account: Record) -> Record:
        stored = account_record(account)
        if not stored["provider"] or not stored["providerAccountId"] or not stored["userId"]:
            raise AdapterError(
                "MemoryAdapter.link_account: the account needs provider, providerAccountId "
                "and userId"
            )
        with self._lock:
            self._accounts[(stored["provider"], stored["providerAccountId"])] = stored
            return copy.deepcopy(stored)

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Record | None:
        with self._lock:
            account = self._accounts.pop((provider, provider_account_id), None)
        return account

    # -- sessions ---------------------------------------------------------
    async def create_session(
        self, *, session_token: str, user_id: str, expires: datetime
    ) -> Record:
        record = session_record(session_token, user_id, expires)
        with self._lock:
            self._sessions[session_token] = (record["userId"], record["expires"])
        return record

    async def get_session_and_user(self, session_token: str) -> Record | None:
        with self._lock:
            found = self._sessions.get(session_token)
            if found is None:
                return None
            user = self._users.get(found[0])
            if user is None:
                return None
            return {
                "session": session_record(session_token, found[0], found[1]),
                "user": copy.deepcopy(user),
            }

    async def update_session(
        self, *, session_token: str, expires: datetime | None = None, **extra: Any
    ) -> Record | None:
        wanted = utc(expires) if expires is not None else None
        new_owner = extra_user_id(extra)
        with self._lock:
            found = self._sessions.get(session_token)
            if found is None:
                return None  # never resurrect a session a sign-out deleted
            owner, current = found
            if wanted is not None and wanted > current:
                current = wanted
            if new_owner is not None:
                owner = new_owner
            self._sessions[session_token] = (owner, current)
            return session_record(session_token, owner, current)

    async def delete_session(self, session_token: str) -> None:
        with self._lock:
            self._sessions.pop(session_token, None)

    # -- verification tokens ---------------------------------------------
    async def create_verification_token(
        self, *, identifier: str, token: str, expires: datetime
    ) -> Record:
        record = verification_record(identifier, token, expires)
        with self._lock:
            self._tokens[(identifier, token)] = record
        return dict(record)

    async def use_verification_token(self, *, identifier: str, token: str) -> Record | None:
        with self._lock:
            return self._tokens.pop((identifier, token), None)

    async def aclose(self) -> None:
        """Nothing to release; the data stays until the adapter is garbage."""

    def __repr__(self) -> str:
        with self._lock:
            counts = (len(self._users), len(self._sessions))
        return f"MemoryAdapter(users={counts[0]}, sessions={counts[1]})"


__all__ = ["MemoryAdapter"]
