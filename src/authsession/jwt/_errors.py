"""The one exception the JWT codecs raise."""

from __future__ import annotations


class JWTDecodeError(ValueError):
    """A token could not be decoded; ``reason`` says why, without echoing the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
