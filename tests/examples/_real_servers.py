"""Run an example's WSGI app under waitress in a child process, and a real Auth.js sign-in.

``serve(path, attr, env)`` starts ``python _real_servers.py PATH ATTR`` (this
file), which loads the example by path, binds waitress to an ephemeral
loopback port, prints ``{"port": N}`` and serves until terminated. A child
process, not a thread: Django's settings are process-global, and each
example configures its own.

``authjs_sign_in(username)`` signs in on one real Auth.js server (started
once per test process, stopped at exit) and returns the cookies it set and
the JSON its own ``/api/auth/session`` returns for them. Without node it
skips, and under ``CI=true`` fails (the interop harness's rules).

``Browser`` sends requests with a cookie jar kept by hand (as the harness
does), and ``assert_same_session`` compares a session with Auth.js's.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

try:  # the venv ships httpx2, whose import name is `httpx2`; plain httpx works too
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the environment
    import httpx  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
START_TIMEOUT = 30.0


@contextlib.contextmanager
def serve(path: Path, attr: str, env: Mapping[str, str]) -> Iterator[str]:
    """Serve ``path``'s ``attr`` with waitress; yields ``http://127.0.0.1:<port>``."""
    from tests.interop._harness import _LineReader

    child_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, __file__, str(path), attr],
        cwd=ROOT,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    # Drain stderr on a thread so a chatty server never blocks on a full pipe.
    drain = threading.Thread(target=lambda: stderr.extend(proc.stderr or ()), daemon=True)
    drain.start()
    try:
        line = _LineReader(proc.stdout).readline(START_TIMEOUT)
        if not line:
            proc.wait(5)
            drain.join(5)
            raise RuntimeError(f"{path.name} did not start:\n{''.join(stderr)[-4000:]}")
        yield f"http://127.0.0.1:{json.loads(line)['port']}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drain.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


class AuthJsSignIn(NamedTuple):
    cookies: dict[str, str]
    """The session cookie(s) Auth.js set at sign-in (name -> value)."""
    session: Any
    """What Auth.js's own GET /api/auth/session returns for those cookies."""
    secret: str


_server: Any = None
_lock = threading.Lock()


def authjs_sign_in(username: str) -> AuthJsSignIn:
    """A real Credentials sign-in on a real Auth.js server (skips without node)."""
    global _server
    from tests.interop._harness import (
        SECRET,
        AuthJsServer,
        ensure_node_modules,
        get_session_json,
        sign_in,
    )

    ensure_node_modules()
    with _lock:
        if _server is None:
            _server = AuthJsServer(SECRET).start()
            atexit.register(_server.stop)
    result = sign_in(_server.base_url, username)
    cookies = {name: value for name, value in result.cookies.items() if "session-token" in name}
    return AuthJsSignIn(cookies, get_session_json(_server.base_url, cookies), SECRET)


class Browser:
    """An HTTP client with a cookie jar kept by hand (Set-Cookie applied, deletions honoured)."""

    def __init__(self, base_url: str, cookies: Mapping[str, str] | None = None) -> None:
        self.base_url = base_url
        self.jar: dict[str, str] = dict(cookies or {})
        self._client = httpx.Client(follow_redirects=False, timeout=30.0)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        from tests.interop._harness import apply_set_cookies, cookie_header

        headers = dict(kw.pop("headers", None) or {})
        if self.jar:
            headers["Cookie"] = cookie_header(self.jar)
        response = self._client.request(method, self.base_url + path, headers=headers, **kw)
        self._client.cookies.clear()
        apply_set_cookies(self.jar, response.headers.get_list("set-cookie"))
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def session_cookies(self) -> dict[str, str]:
        return {name: value for name, value in self.jar.items() if "session-token" in name}

    def close(self) -> None:
        self._client.close()


def _expires(value: Any) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def assert_same_session(ours: Any, authjs: Any) -> None:
    """The same JSON as Auth.js's, key order included; ``expires`` within a few seconds.

    Shared by the WSGI examples (here) and the ASGI ones (``_live_server``).
    """
    assert authjs is not None and ours is not None, (ours, authjs)
    assert list(ours) == list(authjs)
    assert ours["user"] == authjs["user"]
    assert list(ours["user"]) == list(authjs["user"])
    drift = (_expires(ours["expires"]) - _expires(authjs["expires"])).total_seconds()
    assert abs(drift) < 10, (ours["expires"], authjs["expires"])


def _main(path: str, attr: str) -> None:
    import waitress

    name = Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: Django's ROOT_URLCONF = __name__ imports it by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    server = waitress.create_server(getattr(module, attr), host="127.0.0.1", port=0, threads=4)
    print(json.dumps({"port": server.effective_port}), flush=True)
    server.run()


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
