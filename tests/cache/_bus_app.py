"""A tiny Starlette app for the two-process bus tests; configured from the environment.

    BUS_APP_SECRET     the AuthConfig secret (shared by every process)
    BUS_APP_STRATEGY   "jwt" (default) or "database"
    BUS_APP_SQLITE     the SQLite file of the database strategy
    BUS_APP_BUS        the Redis URL of the invalidation bus ("" for none)
    BUS_APP_CHANNEL    the bus channel

Run with ``uvicorn tests.cache._bus_app:app --port 0``.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authsession import AuthConfig, AuthRuntime


def _runtime() -> AuthRuntime:
    cache: dict[str, object] = {"ttl": 3600}
    if os.environ.get("BUS_APP_BUS"):
        cache["bus"] = os.environ["BUS_APP_BUS"]
        cache["bus_channel"] = os.environ["BUS_APP_CHANNEL"]
    if os.environ.get("BUS_APP_STRATEGY") == "database":
        from authsession.adapters import SQLiteAdapter

        return AuthRuntime(
            AuthConfig(
                strategy="database",
                adapter=SQLiteAdapter(os.environ["BUS_APP_SQLITE"]),
                cache=cache,
            )
        )
    return AuthRuntime(AuthConfig(secret=os.environ["BUS_APP_SECRET"], cache=cache))


runtime = _runtime()


async def health(request: Request) -> Response:
    return JSONResponse({"bus": runtime.cache_stats()["bus"], "pid": os.getpid()})


async def stats(request: Request) -> Response:
    return JSONResponse(runtime.cache_stats())


async def session(request: Request) -> Response:
    found = await runtime.get_session(request)
    return JSONResponse(found, status_code=200 if found is not None else 401)


async def sign_in(request: Request) -> Response:
    response = JSONResponse({"ok": True})
    await runtime.sign_in(await request.json(), response)  # the cookie goes on the response
    return response


async def sign_out(request: Request) -> Response:
    response = Response(status_code=204)
    await runtime.sign_out(request, response)
    return response


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/stats", stats),
        Route("/session", session),
        Route("/signin", sign_in, methods=["POST"]),
        Route("/signout", sign_out, methods=["POST"]),
    ]
)
