"""authsession: server-side Auth.js / NextAuth sessions for Python.

``get_server_session(request)`` returns the signed-in user's session from the
cookies an Auth.js app writes (or None); ``get_token`` returns the decoded
token. See the README for the middleware and framework integrations.
"""

from __future__ import annotations

from ._api import (
    configure_auth_proxy_runtime,
    configure_auth_runtime,
    get_server_session,
    get_server_session_sync,
    get_token,
    reset_auth_runtime,
)
from ._cache import CacheOptions
from ._config import AuthConfig
from ._errors import (
    AccountNotLinked,
    AuthRuntimeNotConfigured,
    AuthSessionError,
    ConfigurationError,
)
from ._middleware import AuthSessionMiddleware
from ._proxy_config import ProxyConfig
from ._runtime import AuthRuntime
from ._session import Session

__version__ = "0.1.0"

__all__ = [
    "AccountNotLinked",
    "AuthConfig",
    "AuthRuntime",
    "AuthRuntimeNotConfigured",
    "AuthSessionError",
    "AuthSessionMiddleware",
    "CacheOptions",
    "ConfigurationError",
    "ProxyConfig",
    "Session",
    "__version__",
    "configure_auth_proxy_runtime",
    "configure_auth_runtime",
    "get_server_session",
    "get_server_session_sync",
    "get_token",
    "reset_auth_runtime",
]
