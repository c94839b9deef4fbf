"""Exceptions of the public API."""

from __future__ import annotations


class AuthSessionError(Exception):
    """Base class of authsession's own exceptions."""


class ConfigurationError(AuthSessionError, ValueError):
    """A setting is missing or invalid; the message names it, the value seen and the fix."""


class AuthRuntimeNotConfigured(AuthSessionError, RuntimeError):
    """``get_server_session`` was called with no configured runtime and no ``config``."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "no authsession runtime is configured: call "
            "authsession.configure_auth_runtime(AuthConfig(...)) or "
            "configure_auth_proxy_runtime(url) at start-up, or pass config= to this call"
        )
