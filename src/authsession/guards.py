"""Access rules on a resolved session, shared by every framework integration.

``validate_session`` answers yes or no; ``check`` says why not (401: nobody
is signed in, 403: signed in but not allowed) and ``denial_response`` turns
that into what the integration sends: a redirect to the sign-in page with
``callbackUrl`` for a browser asking for HTML, JSON for an API client. The
integrations only translate this plan into their own response objects.

Roles come from ``user.role`` (one string) or ``user.roles`` (a list, or one
string); permissions from ``user.permissions``. A route that requires several
roles admits a user holding *any* of them; one that requires several
permissions admits only a user holding *all* of them (the usual meaning of
"role-based" versus "permission-based" checks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_SIGN_IN_URL",
    "Denial",
    "DenialResponse",
    "check",
    "decorator_names",
    "denial_response",
    "permissions_of",
    "roles_of",
    "validate_session",
    "wants_html",
]

# Auth.js's own sign-in page; point it at the front end's page when the
# Python service is not the one serving /api/auth.
DEFAULT_SIGN_IN_URL = "/api/auth/signin"

Requirement = str | Iterable[str] | None


def _names(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value,)) if value else frozenset()
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return frozenset(v for v in value if isinstance(v, str) and v)
    return frozenset()


def _user(session: Any) -> Mapping[str, Any]:
    user = session.get("user") if isinstance(session, Mapping) else None
    return user if isinstance(user, Mapping) else {}


def roles_of(session: Any) -> frozenset[str]:
    """The roles a session carries: ``user.role`` and ``user.roles`` together."""
    user = _user(session)
    return _names(user.get("role")) | _names(user.get("roles"))


def permissions_of(session: Any) -> frozenset[str]:
    return _names(_user(session).get("permissions"))


@dataclass(frozen=True, slots=True)
class Denial:
    status: Literal[401, 403]
    reason: str

    @property
    def error(self) -> str:
        return "unauthorized" if self.status == 401 else "forbidden"


def _required(value: Requirement, what: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    names = _names(value)
    if not names:
        raise ValueError(f"require_{what} must name at least one {what}, got {value!r}")
    return names


def decorator_names(kind: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """Validate ``role_required(*roles)`` / ``permission_required(*perms)`` arguments
    when the route is defined, not when the first request arrives."""
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"{kind}_required needs one or more {kind} names (strings), got {names!r}")
    return names


def check(
    session: Any,
    *,
    require_auth: bool = True,
    require_role: Requirement = None,
    require_permission: Requirement = None,
) -> Denial | None:
    """None when the session passes; otherwise the status and a reason to show."""
    roles = _required(require_role, "role")
    permissions = _required(require_permission, "permission")
    if not session:
        if require_auth or roles or permissions:
            return Denial(401, "sign-in required")
        return None
    if roles and not roles & roles_of(session):
        return Denial(403, "requires role " + " or ".join(sorted(roles)))
    missing = permissions - permissions_of(session)
    if missing:
        return Denial(403, "requires permission " + ", ".join(sorted(missing)))
    return None


def validate_session(
    session: Any,
    *,
    require_auth: bool = True,
    require_role: Requirement = None,
    require_permission: Requirement = None,
) -> bool:
    """True when ``session`` satisfies every requirement given."""
    return (
        check(
            session,
            require_auth=require_auth,
            require_role=require_role,
            require_permission=require_permission,
        )
        is None
    )


def wants_html(accept: str | None) -> bool:
    """A browser navigation (``Accept: text/html...``) rather than an API call.

    Browsers put ``text/html`` first when navigating; ``fetch()`` and API
    clients send ``*/*`` or ``application/json``. Only the former is
    redirected to a sign-in page.
    """
    if not accept:
        return False
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            return True
        if media == "application/json":
            return False
    return False


@dataclass(frozen=True, slots=True)
class DenialResponse:
    """What to send for a denial, independent of any framework."""

    status: int
    headers: tuple[tuple[str, str], ...]
    json: dict[str, Any] | None
    text: str | None = None


def sign_in_location(sign_in_url: str, callback_url: str) -> str:
    """``sign_in_url`` with ``callbackUrl`` added, as Auth.js's sign-in page expects."""
    parts = urlsplit(sign_in_url)
    query = urlencode({"callbackUrl": callback_url})
    query = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def denial_response(
    denial: Denial,
    *,
    html: bool,
    callback_url: str,
    sign_in_url: str = DEFAULT_SIGN_IN_URL,
) -> DenialResponse:
    """401 for a browser becomes a redirect to sign in; everything else is JSON or text."""
    if html and denial.status == 401:
        return DenialResponse(
            303, (("location", sign_in_location(sign_in_url, callback_url)),), None
        )
    if html:
        return DenialResponse(
            denial.status, (("content-type", "text/plain; charset=utf-8"),), None, denial.reason
        )
    headers: tuple[tuple[str, str], ...] = ()
    if denial.status == 401:
        # RFC 9110: a 401 names how to authenticate; the session cookie (or a
        # Bearer token carrying it) is the scheme here.
        headers = (("www-authenticate", 'Bearer realm="authsession"'),)
    return DenialResponse(denial.status, headers, {"error": denial.error, "message": denial.reason})
