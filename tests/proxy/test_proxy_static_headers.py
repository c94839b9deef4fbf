"""Static upstream headers are checked at configuration: a value httpx or h11
would refuse fails there, naming the header and never showing its value."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import authsession
from authsession import AuthRuntime, ConfigurationError, ProxyConfig

SECRET_PART = "sk_live_S3CRET"


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (f"{SECRET_PART}€", "non-ASCII character at position 14"),
        (f"{SECRET_PART}é", "non-ASCII"),
        (f"{SECRET_PART}\x01", "control character at position 14"),
        (f"{SECRET_PART}\x0b", "control"),
        (f"{SECRET_PART}\x7f", "control"),
        (f"\x00{SECRET_PART}", "line breaks"),
    ],
)
def test_a_value_no_request_could_carry_is_refused_at_configuration(value: str, what: str) -> None:
    with pytest.raises(ConfigurationError, match=what) as info:
        authsession.configure_auth_proxy_runtime(
            "https://auth.example.com", headers={"X-Internal-Key": value}
        )
    message = str(info.value)
    assert "'X-Internal-Key'" in message
    assert SECRET_PART not in message


class EchoHeader(BaseHTTPRequestHandler):
    """Answers a session whose user name is the X-Check header it received."""

    def do_GET(self) -> None:
        import json

        body = json.dumps(
            {"user": {"name": self.headers.get("x-check")}, "expires": "2099-01-01T00:00:00Z"}
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHeader)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_every_accepted_value_reaches_the_upstream(echo_server: str) -> None:
    """For every character, configuration refuses the value or a real HTTP/1.1
    request carries it: nothing is accepted that then fails every request."""
    accepted = refused = 0
    runtimes: list[AuthRuntime] = []
    try:
        for code in [*range(0x100), 0x20AC, 0x1F600]:
            value = f"a{chr(code)}b"
            try:
                config = ProxyConfig(
                    upstream_url=echo_server, headers={"X-Check": value}, cache=False
                )
            except ConfigurationError:
                refused += 1
                continue
            runtime = AuthRuntime(config)
            runtimes.append(runtime)
            session = runtime.get_session_sync(f"authjs.session-token=t{code}")
            assert session is not None, f"U+{code:04X} was accepted but the request failed"
            assert session.user.name == value
            accepted += 1
    finally:
        for runtime in runtimes:
            runtime.strategy.close()  # type: ignore[union-attr]
    assert accepted == 96  # printable ASCII and tab
    assert refused == 0x100 + 2 - 96
