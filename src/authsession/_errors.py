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


class AccountNotLinked(AuthSessionError, PermissionError):
    """``sign_in(..., account=...)`` refused: the provider account is linked to no
    user, but a user with the same email exists (Auth.js's ``OAuthAccountNotLinked``).

    Linking them would hand that user's sessions to whoever controls the
    provider account. Sign the user in another way and link the account then,
    or set ``AuthConfig(allow_dangerous_email_account_linking=True)`` if the
    provider verifies email addresses.
    """
