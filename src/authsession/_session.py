"""The Session: a read-only dict, JSON-identical to ``GET /api/auth/session``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

# JSON's scalars: by far the commonest values, and already immutable. Checked
# by exact type first because isinstance(value, Mapping) is an ABC check,
# slow enough to show in every resolve.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_object_getattribute = object.__getattribute__
_dict_getitem = dict.__getitem__
_dict_new = dict.__new__
_dict_update = dict.update
_dict_items = dict.items
_dict_setitem = dict.__setitem__


class _OwnNames(dict[type, frozenset[str]]):
    """Per class: the names its instances answer as attributes before their
    keys, read from the class at its first attribute read."""

    def __missing__(self, cls: type) -> frozenset[str]:
        own = self[cls] = frozenset(dir(cls))
        return own


_OWN_NAMES = _OwnNames()
_A = TypeVar("_A", bound="AttrDict")


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or (isinstance(value, Mapping) and not isinstance(value, AttrDict)):
        return _frozen(AttrDict, value)
    if kind is list:
        return FrozenList([item if type(item) in _SCALARS else _freeze(item) for item in value])
    if kind is tuple:
        # Already immutable itself, but what it holds may not be (a callback
        # can return tuples of dicts).
        return tuple([item if type(item) in _SCALARS else _freeze(item) for item in value])
    return value


def _fill(target: AttrDict, data: Mapping[str, Any]) -> None:
    # Copy, then replace only the values that need freezing: most are JSON
    # scalars, and skipping a call per scalar halves the cost.
    _dict_update(target, data)
    for key, value in _dict_items(target):
        kind = type(value)
        if kind not in _SCALARS:
            # A nested dict (``user``) is the usual case: built here directly.
            _dict_setitem(target, key, _frozen(AttrDict, value) if kind is dict else _freeze(value))


def _frozen(cls: type[_A], data: Mapping[str, Any]) -> _A:
    """``cls(data)`` without the Python-level ``__init__`` call (one per nested
    dict of every session built: measurable on the cold path)."""
    target = _dict_new(cls)
    _fill(target, data)
    return target


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(item) for item in value]
    return value


def _read_only(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        "sessions are shared between requests and read-only; "
        "call .to_dict() for a copy you can change"
    )


class FrozenList(list[Any]):
    """A read-only list: what JSON arrays in a session become (``session.user.roles``).

    A ``list`` subclass, so ``json.dumps`` writes it as an array, ``isinstance(x,
    list)`` holds and it compares equal to a list with the same items; only the
    methods that change it in place refuse, for the reason ``AttrDict`` does.
    Slicing, ``+`` and ``list(x)`` give ordinary mutable lists.
    """

    __slots__ = ()

    __setitem__ = _read_only
    __delitem__ = _read_only
    __iadd__ = _read_only
    __imul__ = _read_only
    append = _read_only
    extend = _read_only
    insert = _read_only
    pop = _read_only
    remove = _read_only
    clear = _read_only
    sort = _read_only
    reverse = _read_only

    def __repr__(self) -> str:
        # Items may be personal data (emails, account ids): show the length only.
        return f"{type(self).__name__}(len={len(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self


class AttrDict(dict[str, Any]):
    """A read-only dict whose keys also read as attributes (``session.user.name``).

    Read-only because one resolved session is cached and handed to every
    request that carries the same token: a write by one request must not leak
    into the next. ``to_dict()`` returns a mutable deep copy.
    """

    __slots__ = ()

    def __init__(self, data: Mapping[str, Any] | None = None, /) -> None:
        if data:
            _fill(self, data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no key {name!r}; use .get({name!r}) for optional keys"
            ) from None

    if sys.version_info < (3, 12):
        # Before Python 3.12, an attribute answered by __getattr__ first
        # builds and throws away an AttributeError: ``session.user.name`` cost
        # ~0.9 us. Keys are read here instead, after the class's own names
        # (methods keep winning over keys, as with __getattr__ alone), and a
        # name that is neither still reaches __getattr__ for its message.
        # The class's names are read once, at its first attribute read: a
        # method patched onto a Session class later loses to a key of the
        # same name on these versions.
        def __getattribute__(self, name: str) -> Any:
            if name in _OWN_NAMES[type(self)]:
                return _object_getattribute(self, name)
            try:
                return _dict_getitem(self, name)
            except KeyError:
                return _object_getattribute(self, name)

    __setitem__ = _read_only
    __delitem__ = _read_only
    __setattr__ = _read_only
    __delattr__ = _read_only
    __ior__ = _read_only
    clear = _read_only
    pop = _read_only
    popitem = _read_only
    setdefault = _read_only
    update = _read_only

    def __repr__(self) -> str:
        # Nested session dicts hold personal data (``user`` has name and
        # email): a repr that lands in a log shows the keys, not the values.
        return f"{type(self).__name__}(keys={_keys(self)!r})"

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable deep copy."""
        result: dict[str, Any] = _thaw(self)
        return result

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.to_dict(),))

    def __copy__(self) -> AttrDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> AttrDict:
        return self


class Session(AttrDict):
    """The signed-in user's session.

    ``session["user"]["name"]``, ``session.user.name`` and ``session.expires``
    (an ISO 8601 string with milliseconds and ``Z``) all work, and
    ``json.dumps(session)`` gives exactly what Auth.js's session endpoint
    returns for the same callbacks.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        # Sessions carry personal data: a repr that lands in a log shows the
        # shape, not the values.
        return f"Session(keys={_keys(self)!r}, expires={self.get('expires')!r})"


def _keys(mapping: Mapping[Any, Any]) -> list[str]:
    # str() first: a callback may return non-string keys, and a repr must not raise.
    return sorted(str(key) for key in mapping)


def session_from_callback(
    value: Any, convert: Callable[[Any], Any] | None = None
) -> Session | None:
    """What a ``session`` callback returned, as a Session (None ends the session).

    ``convert`` prepares a checked mapping first (the database strategy turns
    datetimes into the strings ``JSON.stringify`` writes).
    """
    if value is None:
        return None
    if type(value) is not dict and not isinstance(value, Mapping):
        raise TypeError(
            f"the session callback must return a dict or None, not {type(value).__name__}"
        )
    return _frozen(Session, convert(value) if convert is not None else value)
