"""Auth.js database adapters in Python: one interface, four stores.

``MemoryAdapter`` (dicts), ``SQLiteAdapter`` (stdlib ``sqlite3``, the
embedded default), ``PostgresAdapter`` (the ``@auth/pg-adapter`` schema,
extra ``authsession[postgres]``) and ``RedisAdapter`` (extra
``authsession[redis]``) all implement :class:`Adapter`. Importing this package
imports neither psycopg nor redis: those load when an adapter is constructed.
"""

from __future__ import annotations

from ._interface import Adapter, AdapterError, AdapterUnavailable, Record
from ._memory import MemoryAdapter
from ._postgres import PostgresAdapter
from ._redis import RedisAdapter
from ._sqlite import SQLiteAdapter

__all__ = [
    "Adapter",
    "AdapterError",
    "AdapterUnavailable",
    "MemoryAdapter",
    "PostgresAdapter",
    "Record",
    "RedisAdapter",
    "SQLiteAdapter",
]
