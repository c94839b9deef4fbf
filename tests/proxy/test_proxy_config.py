"""configure_auth_proxy_runtime / ProxyConfig: bad settings fail at start-up, with a fix."""

from __future__ import annotations

import sys

import httpx
import pytest

import authsession
from authsession import ConfigurationError
from authsession._proxy_config import ProxyConfig


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "upstream_url"),
        ("app.example.com", "https://"),
        ("ftp://app.example.com", "https://"),
        ("https://", "no host"),
        ("https://user:pw@app.example.com", "credentials"),
        ("https://app.example.com/?x=1", "query"),
        ("https://app.example.com:99999", "not a valid URL"),
        ("http://app.example.com", "allow_insecure_http"),
        ("http://10.0.0.5:3000", "allow_insecure_http"),
    ],
)
def test_bad_upstream_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        authsession.configure_auth_proxy_runtime(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # Credentials are reported first, whatever else is wrong, without the URL.
        ("https://svc:S3cretPass@auth.internal:70000", "credentials"),
        ("https://svc:S3cretPass@auth.internal:port", "credentials"),
        ("htps://svc:S3cretPass@auth.internal", "credentials"),
        ("ftp://S3cretPass@auth.internal", "credentials"),
        # userinfo urlsplit cannot see still stays out of the message
        ("svc:S3cretPass@auth.internal", r"https://.*got '\*\*\*@auth.internal'"),
        ("htps:/svc:S3cretPass@auth.internal", r"got 'htps:/\*\*\*@auth.internal'"),
        ("https://svc:S3cretPass@[::1", r"'https://\*\*\*@\[::1' is not a valid URL"),
        # a password with '/' or '#': urlsplit reads part of it as the port
        ("https://svc:S3cretPass/x@auth.internal", "port after https://svc: must be a number"),
        ("https://svc:S3cretPass#x@auth.internal", "port after https://svc: must be a number"),
        ("http://svc:S3cretPass/x@10.0.0.5", "port after http://svc:"),
        ("https://auth.internal/S3cretPass@x?q=1", "query or fragment"),
    ],
)
def test_a_password_in_upstream_url_never_reaches_the_error(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        authsession.configure_auth_proxy_runtime(url)
    assert "S3cretPass" not in str(info.value)


def test_bad_port_messages_still_say_what_is_wrong() -> None:
    for url in ("https://app.example.com:99999", "https://app.example.com:http"):
        with pytest.raises(ConfigurationError, match=r"port after https://app\.example\.com:"):
            authsession.configure_auth_proxy_runtime(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:3000",
        "http://localhost:3000",
        "http://[::1]:3000",
        "http://127.8.9.10",
        "https://app.example.com",
        "https://app.example.com/prefix/",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    runtime = authsession.configure_auth_proxy_runtime(url)
    assert runtime.mode == "proxy"
    assert runtime.config.session_url == url.rstrip("/") + "/api/auth/session"


def test_plain_http_elsewhere_needs_the_explicit_opt_in() -> None:
    runtime = authsession.configure_auth_proxy_runtime(
        "http://auth:3000", allow_insecure_http=True, base_path="/auth/"
    )
    assert runtime.config.session_url == "http://auth:3000/auth/session"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 301}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"retries": 11}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"base_path": "api/auth"}, "base_path"),
        ({"base_path": "/api/auth?x"}, "base_path"),
        ({"headers": ["x"]}, "headers"),
        ({"headers": {"Cookie": "a=b"}}, "Cookie"),
        ({"headers": {"bad name": "v"}}, "header name"),
        ({"headers": {"X-Key": "a\r\nInjected: 1"}}, "line breaks"),
        ({"headers": {"X-Key": 1}}, "X-Key"),
        ({"breaker_threshold": 0}, "breaker_threshold"),
        ({"breaker_cooldown": 0}, "breaker_cooldown"),
        ({"cache": {"tll": 5}}, "unknown cache options"),
        ({"forward_set_cookie": "yes"}, "forward_set_cookie"),
        ({"cookie_name": "a;b"}, "cookie_name"),
        ({"cookie_name": "mysession"}, "session-token"),
        ({"transport": object()}, "transport"),
        ({"transport": httpx.AsyncHTTPTransport()}, "async-only"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        authsession.configure_auth_proxy_runtime("https://app.example.com", **options)  # type: ignore[arg-type]


def test_no_secret_is_needed_and_httpx_is_not_imported_by_the_package() -> None:
    import subprocess

    code = (
        "import sys, authsession\n"
        "assert 'httpx' not in sys.modules, 'import authsession imported httpx'\n"
        "authsession.configure_auth_proxy_runtime('https://app.example.com')\n"
        "assert 'httpx' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": ""})


def test_repr_shows_header_names_not_values() -> None:
    config = ProxyConfig(
        upstream_url="https://app.example.com", headers={"X-Internal-Key": "s3cr3t-value"}
    )
    assert "X-Internal-Key" in repr(config)
    assert "s3cr3t-value" not in repr(config)
    runtime = authsession.AuthRuntime(config)
    assert "s3cr3t-value" not in repr(runtime)


def test_the_proxy_runtime_becomes_the_default() -> None:
    runtime = authsession.configure_auth_proxy_runtime("https://app.example.com")
    # No cookie: nothing to ask the upstream, no network call.
    assert authsession.get_server_session_sync({}) is None
    assert authsession.get_server_session_sync("theme=dark") is None
    assert runtime.mode == "proxy"
