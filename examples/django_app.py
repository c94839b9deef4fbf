"""A single-file Django service behind an Auth.js (Next.js) front end, using authsession.

Run it with ``python examples/django_app.py runserver 127.0.0.1:8000`` (any
``manage.py`` command works), or serve ``application`` with any WSGI server:
``waitress-serve --listen=127.0.0.1:8000 --app-dir examples django_app:application``.
Set AUTH_SECRET to the front end's secret: the session cookie it sets on the
same site is then read here, and ``/api/me`` returns exactly what the front
end's ``/api/auth/session`` does.

Routes: ``/`` (public), ``/api/me`` (signed-in users; JSON 401 for API
clients, a redirect to sign in for browsers), ``/admin`` (role ``admin``;
403 otherwise), ``POST /sign-out``. ``POST /sign-in`` stands in for the front
end's sign-in so the example works on its own; ADMIN_EMAILS (comma-separated,
default ``admin@example.com``) decides who gets the ``admin`` role.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import django
from django.conf import settings

# A fixed development secret keeps the example runnable with no set-up; a
# real deployment sets AUTH_SECRET (the same value as the Auth.js app's).
DEV_SECRET = "authsession-example-secret-change-me"
ADMIN_EMAILS = {
    email.strip().lower()
    for email in os.environ.get("ADMIN_EMAILS", "admin@example.com").split(",")
    if email.strip()
}


def jwt_callback(token: dict[str, Any], user: Any = None) -> dict[str, Any]:
    # Auth.js's role pattern: decide the role once, at sign-in, and keep it in
    # the token. (A Next.js front end does the same in its own jwt callback.)
    if user is not None:
        token["role"] = "admin" if str(token.get("email", "")).lower() in ADMIN_EMAILS else "user"
    return token


def session_callback(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    # Expose the role to views and guards; tokens without one give exactly
    # Auth.js's default session.
    if "role" in token:
        session["user"]["role"] = token["role"]
    return session


settings.configure(
    DEBUG=os.environ.get("DJANGO_DEBUG") == "1",
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "django-example-only-change-me"),
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "authsession.django.AuthSessionMiddleware",
    ],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
        }
    ],
    AUTHSESSION={
        "secret": os.environ.get("AUTH_SECRET") or DEV_SECRET,
        "callbacks": {"jwt": jwt_callback, "session": session_callback},
        # Browsers that need to sign in come back here with ?callbackUrl=...
        "sign_in_url": "/",
    },
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after settings
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.http import url_has_allowed_host_and_scheme  # noqa: E402

from authsession.django import (  # noqa: E402
    login_required,
    role_required,
    sign_in,
    sign_out,
)

PAGE = engines["django"].from_string(
    """<!doctype html><title>authsession · Django</title><h1>authsession · Django</h1>
{% if request.auth_session %}
  <p>Signed in as <b>{{ request.auth_session.user.name }}</b>
     {% if request.auth_session.user.role %}({{ request.auth_session.user.role }}){% endif %}.</p>
  <p><a href="/api/me">/api/me</a> · <a href="/admin">/admin</a></p>
  <form action="/sign-out" method="post">{% csrf_token %}<button>Sign out</button></form>
{% else %}
  <p>Not signed in.</p>
  <form action="/sign-in" method="post">{% csrf_token %}
    <input name="name" placeholder="Your name" required>
    <input type="hidden" name="callbackUrl" value="{{ callback_url }}">
    <button>Sign in</button>
  </form>
{% endif %}"""
)


def same_site(request: Any, url: str) -> str:
    """``url`` if it points into this site, else ``/`` (no open redirects)."""
    allowed = url_has_allowed_host_and_scheme(url, {request.get_host()})
    return url if allowed and url else "/"


def home(request: Any) -> Any:
    get_token(request)  # the forms need the CSRF cookie
    callback_url = same_site(request, request.GET.get("callbackUrl", "/"))
    return HttpResponse(PAGE.render({"callback_url": callback_url}, request))


@login_required
def me(request: Any) -> JsonResponse:
    # The same JSON as the front end's GET /api/auth/session.
    return JsonResponse(request.auth_session)


@role_required("admin")
def admin(request: Any) -> JsonResponse:
    name = request.auth_session.user.name
    return JsonResponse({"message": f"Welcome to the admin area, {name}."})


def do_sign_in(request: Any) -> Any:
    if request.method != "POST":
        return HttpResponseRedirect("/")
    name = request.POST.get("name", "").strip()[:100] or "Guest"
    slug = "".join(c for c in name.lower() if c.isalnum()) or "guest"
    sign_in(request, {"id": slug, "name": name, "email": f"{slug}@example.com"})
    next_url = same_site(request, request.POST.get("callbackUrl", "/"))
    return HttpResponseRedirect(next_url, status=303)


def do_sign_out(request: Any) -> Any:
    if request.method == "POST":
        sign_out(request)
    return HttpResponseRedirect("/", status=303)


urlpatterns = [
    path("", home),
    path("api/me", me),
    path("admin", admin),
    path("sign-in", do_sign_in),
    path("sign-out", do_sign_out),
]

application = get_wsgi_application()

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
