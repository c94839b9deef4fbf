"""Helpers that drive real Auth.js (``@auth/core``) and next-auth v4 under node.

* :func:`ensure_node_modules` checks for ``node``/``npm`` and runs ``npm ci`` in
  this directory once if ``node_modules`` is missing or stale. When node is not
  usable the interop tests are skipped with the reason, except under ``CI=true``,
  where that is a failure (:func:`unavailable`).
* :class:`JwtTool` wraps one long-running ``jwt_tool.mjs`` process (JSON lines).
* :class:`AuthJsServer` runs ``authjs_server.mjs`` (a real ``Auth()`` handler).
* :func:`sign_in` / :func:`get_session` / :func:`get_session_json` speak HTTP to
  it the way a browser would, keeping cookies by hand (the ``__Secure-`` and
  ``__Host-`` cookies Auth.js sets would never be sent back over plain http by a
  real cookie jar).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import pytest

try:  # the venv ships httpx2, whose import name is `httpx2`; plain httpx works too
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the environment
    import httpx  # type: ignore[no-redef,import-not-found,unused-ignore]

INTEROP_DIR = Path(__file__).resolve().parent
NODE_MODULES = INTEROP_DIR / "node_modules"
JWT_TOOL = INTEROP_DIR / "jwt_tool.mjs"
AUTHJS_SERVER = INTEROP_DIR / "authjs_server.mjs"

#: The secret every interop server and token uses unless a test says otherwise.
SECRET = "interop-secret-6f1d0c5e9a2b4c7d8e3f1a0b9c8d7e6f"

#: Characters of the ``blob`` claim the "chunked" server adds (forces ``.0``, ``.1``, … cookies).
BIG_CLAIM = 6000

#: Auth.js v5 session cookie names (also the JWT salts).
SESSION_COOKIE = "authjs.session-token"
SECURE_SESSION_COOKIE = "__Secure-authjs.session-token"

#: Oldest node with global fetch/Request/crypto and Headers.getSetCookie().
MIN_NODE_MAJOR = 20

NPM_CI_TIMEOUT = 600.0
REQUEST_TIMEOUT = 30.0
SERVER_START_TIMEOUT = 30.0


# --------------------------------------------------------------------------- #
# Availability: skip locally, fail under CI
# --------------------------------------------------------------------------- #


def in_ci() -> bool:
    """True when env ``CI`` says so (GitHub Actions and most CIs set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the test with *reason*; under ``CI=true`` fail it instead, never skip."""
    message = f"Auth.js interop unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: interop tests must run, not skip)", pytrace=False)
    pytest.skip(message)


class NodeUnavailable(RuntimeError):
    """node/npm missing, too old, or ``npm ci`` failed."""


def _pinned_dependencies() -> dict[str, str]:
    return dict(json.loads((INTEROP_DIR / "package.json").read_text())["dependencies"])


def _installed_matches_pins() -> bool:
    for name, version in _pinned_dependencies().items():
        manifest = NODE_MODULES / name / "package.json"
        try:
            installed = json.loads(manifest.read_text()).get("version")
        except (OSError, ValueError):
            return False
        if installed != version:
            return False
    return True


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """Serialise ``npm ci`` between processes (pytest-xdist workers)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path = Path(tempfile.gettempdir()) / f"authsession-interop-{os.getuid()}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _node_version(node: str) -> tuple[int, ...]:
    out = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    return tuple(int(p) for p in out.lstrip("v").split(".")[:3])


def _prepare_node_modules() -> Path:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None:
        raise NodeUnavailable("`node` is not on PATH")
    if npm is None:
        raise NodeUnavailable("`npm` is not on PATH")
    try:
        version = _node_version(node)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise NodeUnavailable(f"`node --version` failed: {exc}") from exc
    if version[0] < MIN_NODE_MAJOR:
        raise NodeUnavailable(
            f"node {'.'.join(map(str, version))} is too old (need >= {MIN_NODE_MAJOR})"
        )
    with _install_lock():
        if _installed_matches_pins():
            return NODE_MODULES
        cmd = [npm, "ci", "--no-audit", "--no-fund", "--legacy-peer-deps"]
        try:
            proc = subprocess.run(
                cmd,
                cwd=INTEROP_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NodeUnavailable(f"`npm ci` in {INTEROP_DIR} failed: {exc}") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise NodeUnavailable(f"`npm ci` in {INTEROP_DIR} exited {proc.returncode}:\n{tail}")
        if not _installed_matches_pins():
            raise NodeUnavailable(
                f"`npm ci` ran but node_modules does not hold the pinned {_pinned_dependencies()}"
            )
    return NODE_MODULES


_prepared: Path | NodeUnavailable | None = None


def ensure_node_modules() -> Path:
    """Make sure node works and the pinned packages are installed; return node_modules.

    Runs ``npm ci`` at most once per process. If node/npm are missing or the
    install fails, the calling test is skipped (or failed under ``CI=true``).
    """
    global _prepared
    if _prepared is None:
        try:
            _prepared = _prepare_node_modules()
        except NodeUnavailable as exc:
            _prepared = exc
    if isinstance(_prepared, NodeUnavailable):
        unavailable(str(_prepared))
    return _prepared


# --------------------------------------------------------------------------- #
# Node child processes
# --------------------------------------------------------------------------- #


class _LineReader:
    """Reads a pipe's lines on a thread so the test side can wait with a timeout."""

    def __init__(self, stream: Any) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        try:
            for line in stream:
                self._queue.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self._queue.put(None)

    def readline(self, timeout: float) -> str | None:
        """The next line, or None at EOF; raises TimeoutError."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output from node within {timeout:.0f}s") from None


class _Child:
    """A node child process with stdin/stdout pipes and stderr kept in a temp file."""

    def __init__(self, script: Path, env: Mapping[str, str] | None = None) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed in stop()
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        node = shutil.which("node") or "node"
        self.proc = subprocess.Popen(
            [node, str(script)],
            cwd=INTEROP_DIR,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.stdout = _LineReader(self.proc.stdout)

    def stderr_text(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 5.0) -> None:
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        self._stderr.close()


class JwtToolError(RuntimeError):
    """The node side answered ``{"ok": false}``; ``.error`` holds its message."""

    def __init__(self, error: str, code: str | None = None) -> None:
        super().__init__(f"{error} ({code})" if code else error)
        self.error = error
        self.code = code


class JwtTool:
    """One ``jwt_tool.mjs`` process serving many requests (JSON lines).

    ``encode``/``decode`` call ``@auth/core/jwt`` (``lib="v5"``) or
    ``next-auth/jwt`` (``lib="v4"``); failures raise :class:`JwtToolError`.
    """

    def __init__(self) -> None:
        self._child = _Child(JWT_TOOL)
        self._lock = threading.Lock()
        self.request({"op": "ping"})

    # -- plumbing ----------------------------------------------------------
    def request(self, req: Mapping[str, Any]) -> dict[str, Any]:
        """Send one raw request, return the raw response (``ok`` true or false)."""
        line = json.dumps(dict(req), separators=(",", ":")) + "\n"
        with self._lock:
            proc = self._child.proc
            if proc.poll() is not None:
                raise RuntimeError(f"jwt_tool.mjs exited:\n{self._child.stderr_text()}")
            assert proc.stdin is not None
            proc.stdin.write(line)
            proc.stdin.flush()
            out = self._child.stdout.readline(REQUEST_TIMEOUT)
        if out is None:
            raise RuntimeError(f"jwt_tool.mjs closed stdout:\n{self._child.stderr_text()}")
        result: dict[str, Any] = json.loads(out)
        return result

    def _ok(self, req: Mapping[str, Any]) -> dict[str, Any]:
        res = self.request(req)
        if not res.get("ok"):
            raise JwtToolError(str(res.get("error")), res.get("code"))
        return res

    # -- operations --------------------------------------------------------
    def encode(
        self,
        token: Mapping[str, Any],
        secret: str | Sequence[str],
        salt: str | None = SESSION_COOKIE,
        *,
        lib: str = "v5",
        max_age: int | None = None,
    ) -> str:
        """A token from ``@auth/core/jwt`` encode (v5) or ``next-auth/jwt`` encode (v4)."""
        req: dict[str, Any] = {"op": "encode", "lib": lib, "token": dict(token)}
        req["secret"] = secret if isinstance(secret, str) else list(secret)
        if lib == "v5":
            req["salt"] = salt
        if max_age is not None:
            req["maxAge"] = max_age
        return str(self._ok(req)["jwt"])

    def decode(
        self,
        jwt: str,
        secret: str | Sequence[str],
        salt: str | None = SESSION_COOKIE,
        *,
        lib: str = "v5",
    ) -> dict[str, Any]:
        """The payload node decodes; raises :class:`JwtToolError` if it rejects the token."""
        req: dict[str, Any] = {"op": "decode", "lib": lib, "jwt": jwt}
        req["secret"] = secret if isinstance(secret, str) else list(secret)
        if lib == "v5":
            req["salt"] = salt
        payload: dict[str, Any] = self._ok(req)["payload"]
        return payload

    def header(self, jwt: str) -> dict[str, Any]:
        """The JWE protected header, as jose decodes it."""
        header: dict[str, Any] = self._ok({"op": "header", "jwt": jwt})["header"]
        return header

    def derive(self, secret: str, salt: str, enc: str = "A256CBC-HS512") -> tuple[str, str]:
        """The Auth.js v5 key for *secret*/*salt*/*enc*: (base64url key, JWK thumbprint kid)."""
        res = self._ok({"op": "derive", "secret": secret, "salt": salt, "enc": enc})
        return str(res["key"]), str(res["kid"])

    def encrypt_raw(
        self,
        claims: Mapping[str, Any],
        key: str,
        *,
        enc: str = "A256GCM",
        kid: str | None = None,
        iat: int | None = None,
        exp: int | None = None,
    ) -> str:
        """A JWE made with jose's ``EncryptJWT`` directly (``alg: dir``, key base64url)."""
        req: dict[str, Any] = {
            "op": "encrypt_raw",
            "claims": dict(claims),
            "key": key,
            "enc": enc,
            "kid": kid,
        }
        if iat is not None:
            req["iat"] = iat
        if exp is not None:
            req["exp"] = exp
        return str(self._ok(req)["jwt"])

    def close(self) -> None:
        self._child.stop()

    def __enter__(self) -> JwtTool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- #
# A real Auth.js server
# --------------------------------------------------------------------------- #


class AuthJsServer:
    """Context manager running ``authjs_server.mjs`` (``Auth()`` from ``@auth/core``).

    ``secret`` may be a string or a list (sent as JSON). ``secure_cookies`` sets
    ``useSecureCookies: true``; ``big_claim=n`` adds an n-character ``blob`` claim
    at sign-in (forcing chunked cookies) plus a session callback copying
    ``token.sub`` to ``session.user.id``; ``max_age`` sets ``session.maxAge``.
    """

    def __init__(
        self,
        secret: str | Sequence[str] = SECRET,
        *,
        secure_cookies: bool = False,
        big_claim: int | None = None,
        max_age: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.secret = secret
        self.secure_cookies = secure_cookies
        self.big_claim = big_claim
        self.max_age = max_age
        self._extra_env = dict(env or {})
        self._child: _Child | None = None
        self.port: int | None = None

    @property
    def session_cookie_name(self) -> str:
        return SECURE_SESSION_COOKIE if self.secure_cookies else SESSION_COOKIE

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (Auth.js lives under ``/api/auth``)."""
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/api/auth"

    def start(self) -> AuthJsServer:
        env = {
            "AUTH_SECRET": self.secret
            if isinstance(self.secret, str)
            else json.dumps(list(self.secret)),
            "AUTH_SECURE_COOKIES": "1" if self.secure_cookies else "",
            "AUTH_BIG_CLAIM": str(self.big_claim) if self.big_claim else "",
            "AUTH_MAX_AGE": str(self.max_age) if self.max_age else "",
            # Keep an outer NODE_OPTIONS/AUTH_URL from changing what we test.
            "AUTH_URL": "",
            "NEXTAUTH_URL": "",
        }
        env.update(self._extra_env)
        child = _Child(AUTHJS_SERVER, env)
        self._child = child
        try:
            line = child.stdout.readline(SERVER_START_TIMEOUT)
            if line is None:
                raise RuntimeError("authjs_server.mjs exited before listening")
            self.port = int(json.loads(line)["port"])
        except Exception as exc:
            stderr = child.stderr_text()
            child.stop()
            self._child = None
            raise RuntimeError(f"authjs_server.mjs failed to start: {exc}\n{stderr}") from exc
        return self

    def stderr_text(self) -> str:
        return self._child.stderr_text() if self._child else ""

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None

    def __enter__(self) -> AuthJsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"AuthJsServer(port={self.port}, secure_cookies={self.secure_cookies}, "
            f"big_claim={self.big_claim})"
        )


# --------------------------------------------------------------------------- #
# HTTP helpers (a browser, minus the cookie jar's http/https rules)
# --------------------------------------------------------------------------- #


@dataclass
class SetCookie:
    """One parsed ``Set-Cookie`` header."""

    name: str
    value: str
    attributes: dict[str, str] = field(default_factory=dict)  # lower-cased keys; flags -> ""
    raw: str = ""

    @property
    def deletes(self) -> bool:
        """True when the header removes the cookie (empty value or Max-Age <= 0)."""
        max_age = self.attributes.get("max-age")
        return self.value == "" or (max_age is not None and int(max_age) <= 0)


def parse_set_cookie(header: str) -> SetCookie:
    pair, *attrs = header.split(";")
    name, _, value = pair.partition("=")
    attributes: dict[str, str] = {}
    for attr in attrs:
        key, _, val = attr.strip().partition("=")
        if key:
            attributes[key.lower()] = val
    return SetCookie(name.strip(), value.strip(), attributes, header)


def apply_set_cookies(jar: dict[str, str], headers: Sequence[str]) -> None:
    """Update *jar* (name -> raw value) the way a browser would with these headers."""
    for header in headers:
        cookie = parse_set_cookie(header)
        if cookie.deletes:
            jar.pop(cookie.name, None)
        else:
            jar[cookie.name] = cookie.value


def cookie_header(cookies: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def _client() -> httpx.Client:
    return httpx.Client(follow_redirects=False, timeout=REQUEST_TIMEOUT)


def _send(
    client: httpx.Client, method: str, url: str, jar: Mapping[str, str], **kw: Any
) -> httpx.Response:
    headers = dict(kw.pop("headers", None) or {})
    if jar:
        headers["Cookie"] = cookie_header(jar)
    response = client.request(method, url, headers=headers, **kw)
    client.cookies.clear()  # cookies are kept by hand, never by httpx's jar
    return response


class SignInResult(NamedTuple):
    cookies: dict[str, str]
    """name -> value of every cookie the credentials callback set (the session
    cookie, or each chunk ``<name>.0``, ``<name>.1``, …)."""
    set_cookie: list[str]
    """The callback response's raw ``Set-Cookie`` headers, in order."""
    jar: dict[str, str]
    """Every cookie the browser holds after sign-in (csrf, callback-url, session)."""
    status: int
    location: str | None


class SignInError(AssertionError):
    pass


def sign_in(base_url: str, username: str, password: str = "pw") -> SignInResult:
    """The real Credentials sign-in: GET /api/auth/csrf, POST /api/auth/callback/credentials."""
    jar: dict[str, str] = {}
    with _client() as client:
        csrf = _send(client, "GET", f"{base_url}/api/auth/csrf", jar)
        if csrf.status_code != 200:
            raise SignInError(f"GET /api/auth/csrf -> {csrf.status_code}: {csrf.text[:500]}")
        apply_set_cookies(jar, csrf.headers.get_list("set-cookie"))
        token = csrf.json()["csrfToken"]
        callback = _send(
            client,
            "POST",
            f"{base_url}/api/auth/callback/credentials",
            jar,
            data={
                "csrfToken": token,
                "username": username,
                "password": password,
                "callbackUrl": base_url + "/",
            },
        )
    set_cookie = list(callback.headers.get_list("set-cookie"))
    apply_set_cookies(jar, set_cookie)
    cookies: dict[str, str] = {}
    apply_set_cookies(cookies, set_cookie)
    location = callback.headers.get("location")
    if callback.status_code != 302 or (location and "error=" in location):
        raise SignInError(
            f"sign-in as {username!r} failed: {callback.status_code} -> {location!r}; "
            f"set-cookie={set_cookie!r}"
        )
    return SignInResult(cookies, set_cookie, jar, callback.status_code, location)


class SessionResponse(NamedTuple):
    json: Any
    """The parsed body (``None`` for the JSON ``null`` Auth.js sends without a session)."""
    text: str
    status: int
    set_cookie: list[str]


def get_session(
    base_url: str, cookies: Mapping[str, str], headers: Mapping[str, str] | None = None
) -> SessionResponse:
    """GET /api/auth/session with exactly *cookies* sent."""
    with _client() as client:
        response = _send(client, "GET", f"{base_url}/api/auth/session", cookies, headers=headers)
    return SessionResponse(
        response.json() if response.content else None,
        response.text,
        response.status_code,
        list(response.headers.get_list("set-cookie")),
    )


def get_session_json(base_url: str, cookies: Mapping[str, str]) -> Any:
    """The parsed JSON body of GET /api/auth/session (``None`` for ``null``)."""
    res = get_session(base_url, cookies)
    if res.status != 200:
        raise AssertionError(f"GET /api/auth/session -> {res.status}: {res.text[:500]}")
    return res.json


def session_cookie_value(cookies: Mapping[str, str], name: str) -> str:
    """The session token from *cookies*: ``name`` itself or its chunks joined in order."""
    if name in cookies:
        return cookies[name]
    chunks = sorted(
        (int(key.rsplit(".", 1)[1]), value)
        for key, value in cookies.items()
        if key.startswith(name + ".") and key.rsplit(".", 1)[1].isdigit()
    )
    return "".join(value for _, value in chunks)


if __name__ == "__main__":  # pragma: no cover - manual smoke run
    ensure_node_modules()
    with JwtTool() as tool, AuthJsServer() as server:
        jwt = tool.encode({"sub": "x"}, SECRET)
        print(tool.header(jwt), tool.decode(jwt, SECRET), file=sys.stderr)
        result = sign_in(server.base_url, "alice")
        print(result.set_cookie, get_session_json(server.base_url, result.cookies))
