"""Throughput of a hello-world app, bare versus wrapped in AuthSessionMiddleware.

    python benchmarks/middleware_overhead.py [--quick] [--seconds S] [--rounds R]

Servers: uvicorn (ASGI, h11, asyncio loop) and waitress (WSGI, 4 threads),
one process each, pinned to CPU 0 when `taskset` exists; the load generator
`wrk` runs on CPU 1 with keep-alive connections. Every variant's server runs
for the whole benchmark and the variants are measured in turn, round after
round, so drift on the machine affects them alike; the table reports each
variant's median requests/s and its ratio to the bare app of its protocol.

Variants (the same raw app underneath, cookie sent on every request):
- bare:            the app alone;
- eager + read:    middleware resolves before the app, the app reads the
                   session with get_server_session() (a cache hit after the
                   first request) and puts the user's name in the body;
- lazy, no read:   lazy=True and a route that never asks for the session.

Targets (issue 3): eager + read >= 0.90x bare, lazy no-read >= 0.97x bare.
Needs `wrk` (Debian/Ubuntu: apt install wrk); prints how to get it if absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "middleware_overhead.md"
SECRET = "benchmark-secret-0123456789abcdef0123456789abcdef"

# The server side: run as `python middleware_overhead.py --serve PROTO MODE PORT`.
SERVE = """
import os, sys
proto, mode, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
import authsession
from authsession import AuthConfig, AuthSessionMiddleware

config = AuthConfig(secret=os.environ["AUTH_SECRET"])
authsession.configure_auth_runtime(config)

if proto == "asgi":
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b"hello"
        if mode == "eager":
            session = await authsession.get_server_session()
            body = ("hello " + session.user.name).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
else:
    def app(environ, start_response):
        body = b"hello"
        if mode == "eager":
            session = authsession.get_server_session_sync()
            body = ("hello " + session.user.name).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

if mode != "bare":
    app = AuthSessionMiddleware(app, lazy=(mode == "lazy"))

if proto == "asgi":
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning",
                access_log=False, http="h11", loop="asyncio", lifespan="off")
else:
    import waitress
    waitress.serve(app, host="127.0.0.1", port=port, threads=4, _quiet=True)
"""

VARIANTS = [("bare", "bare"), ("eager", "eager + read"), ("lazy", "lazy, no read")]
TARGETS = {"eager": 0.90, "lazy": 0.97}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def start(proto: str, mode: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ, AUTH_SECRET=SECRET, PYTHONPATH=str(HERE.parent / "src"))
    proc = subprocess.Popen(
        [*pin(0), sys.executable, "-c", SERVE, proto, mode, str(port)], env=env
    )
    wait_up(port)
    return proc, port


def wrk(port: int, seconds: float, cookie: str, connections: int) -> float:
    out = subprocess.run(
        [
            *pin(1),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "-H",
            f"Cookie: theme=dark; authjs.session-token={cookie}",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed responses:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"could not read wrk output:\n{out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s x 2 rounds")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 1, 2
    if not shutil.which("wrk"):
        print("wrk is not installed (apt install wrk); cannot run this benchmark")
        return 1
    sys.path.insert(0, str(HERE.parent / "src"))
    from authsession import jwt

    cookie = jwt.encode(
        {"name": "Ada", "email": "ada@example.com", "picture": "https://x/a.png", "sub": "1"},
        SECRET,
        "authjs.session-token",
    )
    servers: dict[tuple[str, str], tuple[subprocess.Popen[bytes], int]] = {}
    rps: dict[tuple[str, str], list[float]] = {}
    try:
        for proto in ("asgi", "wsgi"):
            for mode, _ in VARIANTS:
                servers[proto, mode] = start(proto, mode)
                # Warm up: imports, caches, the first (cold) session resolution.
                wrk(servers[proto, mode][1], 1, cookie, args.connections)
                rps[proto, mode] = []
        for round_no in range(args.rounds):
            for key, (_, port) in servers.items():
                rps[key].append(wrk(port, args.seconds, cookie, args.connections))
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            proc.wait(10)

    lines = [
        "| server | variant | requests/s (median) | ratio to bare | target | result |",
        "|---|---|---:|---:|---:|---|",
    ]
    for proto, server in (("asgi", "uvicorn (ASGI)"), ("wsgi", "waitress (WSGI)")):
        bare = statistics.median(rps[proto, "bare"])
        for mode, label in VARIANTS:
            value = statistics.median(rps[proto, mode])
            ratio = value / bare
            target = TARGETS.get(mode)
            verdict = "" if target is None else ("PASS" if ratio >= target else "FAIL")
            lines.append(
                f"| {server} | {label} | {value:,.0f} | {ratio:.3f} | "
                f"{'' if target is None else f'>= {target:.2f}'} | {verdict} |"
            )
    import uvicorn
    import waitress  # type: ignore[import-untyped]

    versions = (
        f"Python {platform.python_version()}, uvicorn {uvicorn.__version__}, "
        f"waitress {getattr(waitress, '__version__', '?')}, "
        f"{args.rounds} rounds x {args.seconds:g} s, wrk -c{args.connections}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}"
    )
    table = "\n".join(lines)
    print(table)
    print(versions)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        "# Middleware overhead\n\n`python benchmarks/middleware_overhead.py`\n\n"
        f"{table}\n\n{versions}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
