"""Fixtures for the Auth.js interop suite; every test here is marked ``interop``.

Fixtures (all but ``authjs_server_factory`` are built once per session):

* ``node_modules``   -- node/npm checked, ``npm ci`` run if needed (skip, or fail under CI=true)
* ``jwt_tool``       -- a :class:`JwtTool` over one ``jwt_tool.mjs`` process
* ``authjs_server_factory`` -- ``factory(secure_cookies=False, big_claim=None, max_age=None)``
  returning a running :class:`AuthJsServer`, one per configuration, reused
* ``authjs_plain`` / ``authjs_secure`` / ``authjs_chunked`` -- the three servers the
  tests use: default cookies; ``useSecureCookies``; ``AUTH_BIG_CLAIM=6000``
* ``secret``         -- the secret the servers and tokens share
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ._harness import BIG_CLAIM, SECRET, AuthJsServer, JwtTool, ensure_node_modules

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def secret() -> str:
    return SECRET


@pytest.fixture(scope="session")
def node_modules() -> Path:
    return ensure_node_modules()


@pytest.fixture(scope="session")
def jwt_tool(node_modules: Path) -> Iterator[JwtTool]:
    tool = JwtTool()
    try:
        yield tool
    finally:
        tool.close()


ServerFactory = Callable[..., AuthJsServer]


@pytest.fixture(scope="session")
def authjs_server_factory(node_modules: Path) -> Iterator[ServerFactory]:
    servers: dict[tuple[object, ...], AuthJsServer] = {}

    def factory(
        *, secure_cookies: bool = False, big_claim: int | None = None, max_age: int | None = None
    ) -> AuthJsServer:
        key = (secure_cookies, big_claim, max_age)
        if key not in servers:
            servers[key] = AuthJsServer(
                SECRET, secure_cookies=secure_cookies, big_claim=big_claim, max_age=max_age
            ).start()
        return servers[key]

    try:
        yield factory
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def authjs_plain(authjs_server_factory: ServerFactory) -> AuthJsServer:
    return authjs_server_factory()


@pytest.fixture(scope="session")
def authjs_secure(authjs_server_factory: ServerFactory) -> AuthJsServer:
    return authjs_server_factory(secure_cookies=True)


@pytest.fixture(scope="session")
def authjs_chunked(authjs_server_factory: ServerFactory) -> AuthJsServer:
    return authjs_server_factory(big_claim=BIG_CLAIM)
