"""How fast does authsession turn an Auth.js v5 session cookie into a Session?

One run, one table. Every row handles the same token (an Auth.js v5 JWE,
A256CBC-HS512, with name, email, picture, sub, iat, exp and jti, minted by
``authsession.jwt.encode`` for the ``authjs.session-token`` salt); the rows
run in interleaved rounds so machine noise hits them alike, and the table
shows the median µs/op and the per-round ratio to the raw floor:

- raw floor: a hand-written A256CBC-HS512 decrypt on ``cryptography`` with a
  pre-derived key (split, base64url-decode, HMAC-SHA512 over AAD||IV||CT||AL,
  AES-256-CBC, unpad, json.loads), written the textbook way: the issue's
  reference, and what the ratio column divides by.
- tuned floor: the same decrypt with the per-key state reused the way
  ``authsession.jwt`` does it (a keyed HMAC copied per token, one long-lived
  CBC context per key, one strict binascii call per segment, json's scanner
  called directly). Closer to a true lower bound; shown, not a target.
- authsession cold resolve: ``AuthRuntime.get_session_sync`` on a cookie
  mapping with the session cache off and a plain ``session`` callback, i.e.
  decode + time checks + callbacks + ``Session`` on every call. Also its
  async twin, driven inline (nothing in it suspends).
- authsession cached resolve: the same with the cache on.
- ``authsession.jwt.decode``, joserfc ``decrypt_compact`` (+ json.loads) with
  a pre-built ``OctKey``, fastapi-nextauth-jwt's ``NextAuthJWT(request)`` on
  a Starlette request whose cookies are already parsed, and ``@auth/core``'s
  ``decode`` under node (benchmarks/node/authjs_decode.mjs, serve mode).

    .venv/bin/python benchmarks/jwt_decode.py            # ~1 minute, writes results/jwt_decode.md
    .venv/bin/python benchmarks/jwt_decode.py --quick    # a few seconds, prints only
    .venv/bin/python benchmarks/jwt_decode.py --breakdown  # also: where the cold path's time goes
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from _common import (
    Case,
    format_us,
    machine_summary,
    markdown_table,
    paired_ratio,
    python_batch,
    rounds_for,
    run_interleaved,
    write_markdown,
)

ROOT = Path(__file__).resolve().parent.parent
NODE_SCRIPT = ROOT / "benchmarks" / "node" / "authjs_decode.mjs"
INTEROP = ROOT / "tests" / "interop"
RESULTS = ROOT / "benchmarks" / "results" / "jwt_decode.md"
sys.path.insert(0, str(ROOT / "src"))  # a checkout without an editable install still works

import authsession  # noqa: E402
from authsession import AuthConfig, AuthRuntime  # noqa: E402
from authsession.jwt import decode as authsession_decode  # noqa: E402
from authsession.jwt import encode as authsession_encode  # noqa: E402

SALT = "authjs.session-token"
SUB = "8c1f4a52-3b7e-4d0a-9f6e-2a4c5d7e9b10"
USER_TOKEN = {
    "name": "Ada Lovelace",
    "email": "ada.lovelace@example.com",
    "picture": "https://lh3.googleusercontent.com/a/ACg8ocJ3kPz7vXq2Lr9sT1uWmY5nB8dE4fG6hK0jQ=s96-c",
    "sub": SUB,
}

FLOOR = "raw floor: hand-written A256CBC-HS512 (cryptography, pre-derived key)"
TUNED = "tuned floor: the same with per-key state reused (as authsession.jwt does)"
COLD = "authsession cold resolve (get_session_sync, cache off, session callback)"
COLD_ASYNC = "authsession cold resolve, async API driven inline"
CACHED = "authsession cached resolve (cache on, same token)"
DECODE = "authsession.jwt.decode"
JOSERFC = "joserfc decrypt_compact + json.loads (pre-built OctKey)"
NEXTAUTH = "fastapi-nextauth-jwt NextAuthJWT(request)"
AUTHJS = "@auth/core decode (node)"

# The targets.
COLD_VS_FLOOR_MAX = 1.5
COLD_VS_NEXTAUTH_MIN = 2.0
CACHED_MAX_US = 3.0


@dataclass
class Setup:
    secret: str
    token: str
    cookies: dict[str, str]
    cookie_header: str


def make_setup() -> Setup:
    secret = secrets.token_urlsafe(32)  # what `authsession secret` prints
    token = authsession_encode(USER_TOKEN, secret, SALT)
    # A browser on an Auth.js site also sends the CSRF and callback-url cookies.
    cookies = {
        "authjs.csrf-token": secrets.token_hex(32) + "%7C" + secrets.token_hex(32),
        "authjs.callback-url": "http%3A%2F%2Flocalhost%3A3000%2Fdashboard",
        SALT: token,
    }
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return Setup(secret, token, cookies, header)


def check_claims(claims: Mapping[str, Any], row: str) -> None:
    if claims.get("sub") != SUB or claims.get("email") != USER_TOKEN["email"]:
        raise SystemExit(f"{row}: decoded the wrong claims; refusing to time it")


# -- rows ---------------------------------------------------------------------


def floor_op(setup: Setup) -> Callable[[], object]:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from authsession.jwt._keys import v5_key

    key, _ = v5_key(setup.secret, SALT, "A256CBC-HS512")
    mac_key, enc_key = key[:32], key[32:]
    token = setup.token
    b64decode = base64.urlsafe_b64decode
    sha512 = hashlib.sha512

    def floor() -> dict[str, Any]:
        header, _, iv_b64, ct_b64, tag_b64 = token.split(".")
        iv = b64decode(iv_b64 + "==")
        ciphertext = b64decode(ct_b64 + "=" * (-len(ct_b64) % 4))
        tag = b64decode(tag_b64 + "=")
        aad = header.encode("ascii")
        al = (len(aad) * 8).to_bytes(8, "big")
        expected = hmac.new(mac_key, aad + iv + ciphertext + al, sha512).digest()[:32]
        if not hmac.compare_digest(expected, tag):
            raise ValueError("bad tag")
        decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        claims: dict[str, Any] = json.loads(padded[: -padded[-1]])
        return claims

    check_claims(floor(), FLOOR)
    return floor


def tuned_floor_op(setup: Setup) -> Callable[[], object]:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from authsession.jwt._keys import v5_key

    key, _ = v5_key(setup.secret, SALT, "A256CBC-HS512")
    keyed_mac = hmac.new(key[:32], digestmod=hashlib.sha512)
    cbc = Cipher(algorithms.AES(key[32:]), modes.CBC(bytes(16))).decryptor()
    token = setup.token
    a2b = binascii.a2b_base64
    to_standard = bytes.maketrans(b"-_", b"+/")
    padding = (b"", b"===", b"==", b"=")
    scan = json.JSONDecoder().scan_once

    def b64(segment: str) -> bytes:
        return a2b(segment.encode("ascii").translate(to_standard) + padding[len(segment) % 4])

    def floor() -> dict[str, Any]:
        header, _, iv_b64, ct_b64, tag_b64 = token.split(".")
        iv, ciphertext = b64(iv_b64), b64(ct_b64)
        aad = header.encode("ascii")
        mac = keyed_mac.copy()
        mac.update(b"".join((aad, iv, ciphertext, (len(aad) * 8).to_bytes(8, "big"))))
        if not hmac.compare_digest(mac.digest()[:32], b64(tag_b64)):
            raise ValueError("bad tag")
        # A CBC context chained to anything decrypts IV||CT to one junk block
        # followed by the plaintext: one context serves every token.
        padded = cbc.update(iv + ciphertext)[16:]
        claims: dict[str, Any] = scan(padded[: -padded[-1]].decode(), 0)[0]
        return claims

    check_claims(floor(), TUNED)
    check_claims(floor(), TUNED)  # the second call runs on a chained context
    return floor


def session_callback(session: dict[str, Any], token: Mapping[str, Any]) -> dict[str, Any]:
    """The commonest real callback: expose the user id to the app."""
    session["user"]["id"] = token["sub"]
    return session


def runtime(setup: Setup, *, cache: bool) -> AuthRuntime:
    return AuthRuntime(
        AuthConfig(
            secret=setup.secret,
            cache={"ttl": 3600.0} if cache else False,  # cached: no expiry mid-run
            callbacks={"session": session_callback},
        )
    )


def check_session(session: Any, row: str) -> None:
    if session is None or session["user"].get("id") != SUB:
        raise SystemExit(f"{row}: resolved no session or the wrong one; refusing to time it")


def drive_inline(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends, without an event loop's per-call overhead."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("get_session suspended; it cannot be driven inline")


def joserfc_op(setup: Setup) -> Callable[[], object]:
    from joserfc import jwe
    from joserfc.jwk import OctKey

    from authsession.jwt._keys import v5_key

    key = OctKey.import_key(v5_key(setup.secret, SALT, "A256CBC-HS512")[0])
    token = setup.token

    def op() -> dict[str, Any]:
        claims: dict[str, Any] = json.loads(jwe.decrypt_compact(token, key).plaintext or b"")
        return claims

    check_claims(op(), JOSERFC)
    return op


def nextauth_op(setup: Setup) -> Callable[[], object]:
    from fastapi_nextauth_jwt import NextAuthJWT
    from starlette.requests import Request

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns when AUTH_URL is unset
        auth = NextAuthJWT(secret=setup.secret, secure_cookie=False)
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/api/me",
            "query_string": b"",
            "headers": [(b"cookie", setup.cookie_header.encode("latin-1"))],
        }
    )
    # Parse the Cookie header once (Starlette caches it on the request), so
    # the row times what the dependency does, from the same parsed cookies the
    # authsession rows get.
    assert request.cookies[SALT] == setup.token

    def op() -> object:
        return auth(request)

    check_claims(auth(request), NEXTAUTH)
    return op


class NodeDecoder:
    """``authjs_decode.mjs --serve``: one node process timing batches on request."""

    def __init__(self, setup: Setup, warmup: int) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH")
        self._stderr: TextIO = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [
                node,
                str(NODE_SCRIPT),
                "--serve",
                "--token",
                setup.token,
                "--secret",
                setup.secret,
                "--salt",
                SALT,
                "--warmup",
                str(warmup),
                "--modules",
                str(INTEROP),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        ready = self._read()
        if not ready.get("ready") or ready.get("check") != SUB:
            raise RuntimeError(f"authjs_decode.mjs did not decode the token: {ready}")
        self.versions: dict[str, str] = ready.get("versions", {})

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self._stderr.seek(0)
            tail = self._stderr.read()[-400:].strip()
            raise RuntimeError(f"node exited ({self.proc.returncode}): {tail}")
        result: dict[str, Any] = json.loads(line)
        return result

    def batch(self, n: int) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"n": n}) + "\n")
        self.proc.stdin.flush()
        return int(self._read()["ns"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def ensure_node_modules(install: bool) -> str | None:
    """None when @auth/core is importable from tests/interop, else why not."""
    if (INTEROP / "node_modules" / "@auth" / "core" / "package.json").exists():
        return None
    if not install:
        return "tests/interop/node_modules is missing (run `npm ci` there)"
    npm = shutil.which("npm")
    if npm is None:
        return "tests/interop/node_modules is missing and npm is not on PATH"
    print("tests/interop/node_modules is missing: running npm ci there ...", flush=True)
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=INTEROP,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return "npm ci in tests/interop timed out"
    if done.returncode != 0:
        return f"npm ci in tests/interop failed: {done.stderr.strip()[-200:]}"
    return None


# -- breakdown of the cold path -------------------------------------------------


def breakdown_cases(setup: Setup, cold: AuthRuntime) -> list[Case]:
    """The stages of one cold resolve, each timed alone.

    These call internals that other work keeps changing, so each stage is
    tried once first and shows up as skipped (with the error) if it no longer
    fits, instead of breaking the benchmark.
    """
    from authsession import _cache
    from authsession._bridge import drive_sync
    from authsession._inputs import to_view
    from authsession._time import iso_ms
    from authsession._tokens import decode_found, find_token
    from authsession.jwt import _jwe
    from authsession.jwt._claims import parse_claims
    from authsession.jwt._keys import v5_ring

    cookies = setup.cookies
    view = to_view(cookies)
    candidates = cold.candidates
    secrets_ = cold.config.secrets
    found = find_token(view, candidates)
    assert found is not None
    key = _cache.token_key(found.value)
    source = found.spec.name if found.spec is not None else ""
    strategy = cold.strategy
    cache = cold.cache
    claims, _ = decode_found(found, secrets_, candidates)
    ring_key = v5_ring(secrets_, SALT, _jwe.CBC_HS512).first
    header, _, iv, ciphertext, tag = _jwe.split(found.value)
    plaintext = _jwe.decrypt(_jwe.CBC_HS512, ring_key, header, iv, ciphertext, tag)
    entry = drive_sync(strategy.resolve(found))

    def single_flight() -> object:
        # The runtime's wrapper around a resolution (claim, settle, counters),
        # here around a resolver that returns at once.
        if hasattr(cache, "resolve_sync"):
            return cache.resolve_sync(key, source, lambda: entry)
        future, _ = cache.claim(key)
        return cache.settle(key, future, entry)

    finish = getattr(cold, "_finish", None)
    stages: list[tuple[str, Callable[[], object]]] = [
        ("to_view(cookie mapping)", lambda: to_view(cookies)),
        ("find_token", lambda: find_token(view, candidates)),
        ("token_key (sha256 of the token)", lambda: _cache.token_key(found.value)),
        ("cache.get (cache off)", lambda: cache.get(key, source)),
        ("single flight around the resolve (cache.resolve_sync)", single_flight),
        (
            "  _jwe.decrypt",
            lambda: _jwe.decrypt(_jwe.CBC_HS512, ring_key, header, iv, ciphertext, tag),
        ),
        ("  parse_claims (json + time checks)", lambda: parse_claims(plaintext)),
        (
            "decode_found (split, header, key, decrypt, claims)",
            lambda: decode_found(found, secrets_, candidates),
        ),
        ("  iso_ms(expires)", lambda: iso_ms(time.time() + 2592000)),
        (
            "session build (default_session, callback, Session)",
            lambda: drive_sync(strategy._build_session(claims, time.time())),
        ),
        (
            "strategy.resolve, driven (decode + build + Entry)",
            lambda: drive_sync(strategy.resolve(found)),
        ),
        ("_finish (apply writes, store)", lambda: finish(view, entry) if finish else None),
        ("whole cold get_session_sync", lambda: cold.get_session_sync(cookies)),
    ]
    cases = []
    for name, op in stages:
        try:
            op()
        except Exception as exc:
            cases.append(Case(name, skip=f"{type(exc).__name__}: {exc}"))
        else:
            cases.append(Case(name, python_batch(op)))
    return cases


# -- report -------------------------------------------------------------------


def versions(node_versions: Mapping[str, str]) -> list[tuple[str, str]]:
    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return [
        ("python", platform.python_version()),
        ("authsession", getattr(authsession, "__version__", None) or dist("authsession")),
        ("cryptography", dist("cryptography")),
        ("joserfc", dist("joserfc")),
        ("fastapi-nextauth-jwt", dist("fastapi-nextauth-jwt")),
        ("python-jose (used by fastapi-nextauth-jwt)", dist("python-jose")),
        ("node", node_versions.get("node") or "not run"),
        ("@auth/core", node_versions.get("@auth/core") or "not run"),
        ("jose (node)", node_versions.get("jose") or "not run"),
    ]


def main_table(cases: list[Case], floor: Case) -> str:
    rows = []
    for case in cases:
        if case.skip is not None or not case.samples:
            rows.append([case.name, f"skipped: {case.skip}", "", "", "", ""])
            continue
        rows.append(
            [
                case.name,
                format_us(case.median),
                format_us(case.best),
                f"{case.spread * 100:.0f}%",
                f"{paired_ratio(case, floor):.2f}x",
                str(case.n),
            ]
        )
    return markdown_table(
        ["case", "µs/op (median)", "best round", "IQR", "x raw floor", "ops/batch"],
        rows,
        "lrrrrr",
    )


def targets(by_name: Mapping[str, Case]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, passed) for each of the issue's targets; None: not measurable."""
    cold, floor, cached = by_name[COLD], by_name[FLOOR], by_name[CACHED]
    nextauth = by_name[NEXTAUTH]
    result: list[tuple[str, str, bool | None]] = []
    ratio = paired_ratio(cold, floor)
    result.append(
        (
            f"cold resolve ≤ {COLD_VS_FLOOR_MAX}x raw floor",
            f"{ratio:.2f}x",
            ratio <= COLD_VS_FLOOR_MAX,
        )
    )
    if nextauth.samples:
        speedup = paired_ratio(nextauth, cold)
        result.append(
            (
                f"cold resolve ≥ {COLD_VS_NEXTAUTH_MIN}x faster than fastapi-nextauth-jwt",
                f"{speedup:.2f}x faster",
                speedup >= COLD_VS_NEXTAUTH_MIN,
            )
        )
    else:
        result.append(
            (
                "cold resolve ≥ 2x faster than fastapi-nextauth-jwt",
                f"skipped: {nextauth.skip}",
                None,
            )
        )
    result.append(
        (
            f"cached resolve ≤ {CACHED_MAX_US:g} µs",
            f"{cached.median:.2f} µs (best round {cached.best:.2f} µs)",
            cached.median <= CACHED_MAX_US,
        )
    )
    return result


def targets_table(items: list[tuple[str, str, bool | None]]) -> str:
    verdict = {True: "PASS", False: "FAIL", None: "n/a"}
    return markdown_table(
        ["target", "measured", "result"], [[t, m, verdict[p]] for t, m, p in items], "lrl"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; writes no file")
    parser.add_argument("--seconds", type=float, help="timing budget (default 40, quick 2.5)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each stage of the cold path"
    )
    parser.add_argument("--no-node", action="store_true", help="skip the @auth/core row")
    parser.add_argument(
        "--no-npm-install",
        action="store_true",
        help="skip the node row instead of running npm ci when modules are missing",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"markdown file to write (default {RESULTS.relative_to(ROOT)}; "
        "--quick writes none unless given)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    batch_seconds = 0.005 if args.quick else 0.02
    budget = args.seconds if args.seconds is not None else (2.5 if args.quick else 40.0)
    output = args.output if args.output is not None else (None if args.quick else RESULTS)
    started = time.monotonic()
    setup = make_setup()
    load_before = machine_summary()

    cold_rt = runtime(setup, cache=False)
    cached_rt = runtime(setup, cache=True)
    cookies = setup.cookies
    check_session(cold_rt.get_session_sync(cookies), COLD)
    check_session(cached_rt.get_session_sync(cookies), CACHED)
    check_session(drive_inline(cold_rt.get_session(cookies)), COLD_ASYNC)
    check_claims(authsession_decode(setup.token, setup.secret, SALT), DECODE)

    cases = [
        Case(FLOOR, python_batch(floor_op(setup))),
        Case(TUNED, python_batch(tuned_floor_op(setup))),
        Case(COLD, python_batch(lambda: cold_rt.get_session_sync(cookies))),
        Case(COLD_ASYNC, python_batch(lambda: drive_inline(cold_rt.get_session(cookies)))),
        Case(CACHED, python_batch(lambda: cached_rt.get_session_sync(cookies))),
        Case(DECODE, python_batch(lambda: authsession_decode(setup.token, setup.secret, SALT))),
        Case(JOSERFC, python_batch(joserfc_op(setup))),
    ]
    try:
        cases.append(Case(NEXTAUTH, python_batch(nextauth_op(setup))))
    except ImportError as exc:
        cases.append(Case(NEXTAUTH, skip=f"not installed ({exc}); install the bench extra"))

    node: NodeDecoder | None = None
    node_case = Case(AUTHJS)
    if args.no_node:
        node_case.skip = "--no-node"
    else:
        node_case.skip = ensure_node_modules(install=not args.no_npm_install)
        if node_case.skip is None:
            try:
                node = NodeDecoder(setup, warmup=300 if args.quick else 3000)
                node_case.batch = node.batch
            except (OSError, RuntimeError, ValueError) as exc:
                node_case.skip = str(exc)
    cases.append(node_case)

    live = sum(1 for case in cases if case.skip is None)
    rounds = rounds_for(budget, live, batch_seconds)
    print(
        f"timing {live} cases, {rounds} interleaved rounds of ~{batch_seconds * 1000:.0f} ms "
        "batches ...",
        flush=True,
    )
    try:
        rounds = run_interleaved(
            cases, rounds=rounds, batch_seconds=batch_seconds, max_seconds=budget * 1.2
        )
    finally:
        if node is not None:
            node.close()

    # "Cold" must really be uncached, "cached" really cached.
    cold_stats, cached_stats = cold_rt.cache_stats(), cached_rt.cache_stats()
    if cold_stats["hits"] or cold_stats["size"]:
        raise SystemExit(f"cold runtime hit its cache: {cold_stats}")
    if cached_stats["misses"] > 1:
        raise SystemExit(f"cached runtime missed more than once: {cached_stats}")

    by_name = {case.name: case for case in cases}
    floor = by_name[FLOOR]
    node_versions = node.versions if node is not None else {}
    table = main_table(cases, floor)
    goal_items = targets(by_name)
    goals = targets_table(goal_items)
    version_lines = "\n".join(f"- {name}: {value}" for name, value in versions(node_versions))
    elapsed = time.monotonic() - started
    how = (
        f"{rounds} interleaved rounds of ~{batch_seconds * 1000:.0f} ms batches per case "
        f"(order shuffled each round, GC paused inside batches); median µs/op over rounds "
        f"(best round: the fastest, roughly what a quiet machine shows); "
        f"IQR = interquartile range / median; x raw floor = median of the per-round ratio. "
        f"Run took {elapsed:.0f} s."
    )
    print()
    print(table)
    print()
    print(goals)
    print()
    print(version_lines)
    print(f"\n{how}\nmachine: {load_before}")

    breakdown_text = ""
    if args.breakdown:
        try:
            stages = breakdown_cases(setup, cold_rt)
        except (ImportError, AttributeError, TypeError) as exc:
            breakdown_text = f"breakdown unavailable (internal API changed?): {exc}"
        else:
            stage_rounds = rounds_for(budget / 2, len(stages), batch_seconds)
            print(
                f"\ntiming {len(stages)} stages of the cold path, {stage_rounds} rounds ...",
                flush=True,
            )
            run_interleaved(
                stages, rounds=stage_rounds, batch_seconds=batch_seconds, max_seconds=budget * 0.6
            )
            whole = stages[-1]
            breakdown_text = markdown_table(
                ["stage of one cold resolve", "µs (median)", "best round", "IQR", "of whole"],
                [
                    [
                        s.name,
                        format_us(s.median),
                        format_us(s.best),
                        f"{s.spread * 100:.0f}%",
                        f"{paired_ratio(s, whole) * 100:.0f}%" if whole.samples else "",
                    ]
                    if s.samples
                    else [s.name, f"skipped: {s.skip}", "", "", ""]
                    for s in stages
                ],
                "lrrrr",
            )
        print()
        print(breakdown_text)

    if output is not None:
        command = "python benchmarks/jwt_decode.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        sections = [
            f"Command: `{command.strip()}` on {time.strftime('%Y-%m-%d %H:%M %Z')}.\n\n"
            f"Machine: {load_before} (shared with other work: read the ratios, not the "
            "absolute numbers).",
            "The token: Auth.js v5 JWE (`dir`, A256CBC-HS512) with name, email, picture, sub, "
            f"iat, exp and jti, {len(setup.token)} characters, minted by "
            "`authsession.jwt.encode` for the `authjs.session-token` salt. The authsession "
            "resolve rows read it from a cookie mapping (with the CSRF and callback-url "
            "cookies a browser also sends) through `AuthRuntime(AuthConfig(secret=..., "
            "cache=False, callbacks={'session': f}))`, where `f` adds `user.id`; the cached "
            "row is the same with the cache on. fastapi-nextauth-jwt gets a Starlette "
            "`Request` with the same cookies, already parsed.",
            table,
            "## Targets\n\n" + goals,
            "## Versions\n\n" + version_lines,
            "## Method\n\n" + how,
        ]
        if breakdown_text:
            sections.append(
                "## Where a cold resolve spends its time\n\n"
                "Each stage timed alone in its own interleaved rounds (so the parts need not "
                "add up exactly to the whole); indented rows are parts of the row below them; "
                "'of whole' is the per-round ratio to the whole cold resolve.\n\n" + breakdown_text
            )
        write_markdown(output, "JWT decode and session resolve", sections)
        print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
