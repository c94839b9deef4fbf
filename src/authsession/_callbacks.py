"""User callbacks (``session``, ``jwt``) with Auth.js semantics, plain or async.

Auth.js hands a callback one object and the callback destructures what it
needs. The Python equivalent is keyword arguments; to let a callback declare
only the ones it uses (``def session(session, token)``), each callback's
signature is read once at configuration time and only accepted keywords are
passed.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ConfigurationError

_NAMES = ("session", "jwt")
# The keywords every call of each callback offers (Auth.js's argument names).
_OFFERED = {
    "session": frozenset({"session", "token", "user", "trigger", "new_session"}),
    "jwt": frozenset({"token", "user", "account", "profile", "trigger", "is_new_user", "session"}),
}


@dataclass(frozen=True, slots=True)
class Callback:
    func: Callable[..., Any]
    accepts: frozenset[str] | None  # None: takes **kwargs, so everything
    # For the usual callback, ``def session(session, token)``: its parameters
    # in order, fetched from the offered keywords in one C call and passed
    # positionally (a third of the cost of filtering a dict; the session
    # callback runs on every uncached request). None: filter instead.
    positional: Callable[[dict[str, Any]], tuple[Any, ...]] | None = field(
        default=None, compare=False, repr=False
    )
    # Exactly ``(session, token)``: the jwt strategy then calls ``func``
    # directly, without building the keywords at all.
    session_token: bool = field(default=False, compare=False, repr=False)

    @classmethod
    def wrap(cls, name: str, func: object) -> Callback:
        if not callable(func):
            raise ConfigurationError(
                f"callbacks[{name!r}] must be callable, got {type(func).__name__}"
            )
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):  # some builtins and C callables
            return cls(func, None)
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return cls(func, None)
        accepts = frozenset(
            p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        positional = None
        session_token = False
        offered = _OFFERED.get(name, frozenset())
        if params and all(p.kind is p.POSITIONAL_OR_KEYWORD and p.name in offered for p in params):
            names = [p.name for p in params]
            positional = operator.itemgetter(*names) if len(names) > 1 else _single(names[0])
            session_token = name == "session" and names == SESSION_TOKEN
        return cls(func, accepts, positional, session_token)

    def call(self, **kwargs: Any) -> Any:
        """Call with the keywords the function accepts; may return an awaitable."""
        positional = self.positional
        if positional is not None:
            try:
                args = positional(kwargs)
            except KeyError:  # a parameter this call does not offer: keep its default
                pass
            else:
                return self.func(*args)
        accepts = self.accepts
        if accepts is not None:
            kwargs = {key: kwargs[key] for key in accepts if key in kwargs}
        return self.func(**kwargs)


SESSION_TOKEN = ["session", "token"]


def _single(name: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def get(kwargs: dict[str, Any]) -> tuple[Any, ...]:
        return (kwargs[name],)

    return get


@dataclass(frozen=True, slots=True)
class Callbacks:
    """The callbacks of an ``AuthConfig``; absent ones use Auth.js's defaults."""

    session: Callback | None = None
    jwt: Callback | None = None

    @classmethod
    def from_user(cls, value: object) -> Callbacks:
        """Accept a mapping ``{"session": f, "jwt": g}`` or any object with those attributes."""
        if value is None:
            return cls()
        if isinstance(value, Callbacks):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - set(_NAMES)
            if unknown:
                raise ConfigurationError(
                    f"unknown callbacks {sorted(unknown)!r}: authsession runs {list(_NAMES)!r}"
                )
            found = {name: value.get(name) for name in _NAMES}
        else:
            found = {name: getattr(value, name, None) for name in _NAMES}
        return cls(
            **{name: Callback.wrap(name, func) for name, func in found.items() if func is not None}
        )
