"""Django's settings for the integration tests, configured once per process.

Django settings are process-global and can be configured only once, so they
are set up by the ``django_settings`` fixture, which only the Django tests
request: importing this conftest imports no Django, and the other
integrations' tests never see it. Per-test changes go through
``django.test.override_settings``.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import SECRET

DJANGO_SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "authsession-tests-only",
    "ALLOWED_HOSTS": ["testserver", "localhost", "127.0.0.1"],
    "ROOT_URLCONF": "tests.integrations.test_django",
    "MIDDLEWARE": ["authsession.django.AuthSessionMiddleware"],
    "INSTALLED_APPS": [],
    "DATABASES": {},
    "USE_TZ": True,
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
        }
    ],
    "AUTHSESSION": {"secret": SECRET, "sign_in_url": "/login"},
}


@pytest.fixture(scope="session")
def django_settings() -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**DJANGO_SETTINGS)
        django.setup()
    return settings
