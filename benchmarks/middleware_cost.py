"""Instructions per request, bare versus wrapped, counted under callgrind.

    python benchmarks/middleware_cost.py [--requests N] [--apps asgi,starlette,wsgi,flask]
        [--variants bare,control,eager,floor,lazy] [--output FILE]

The noise-free companion of `middleware_overhead.py`. That benchmark
measures requests/s, which is what the targets are about, but on a shared VM
its rounds can swing by 30% (seen on 2026-11-29: the same bare app between
3.9k and 5.9k requests/s minutes apart), and then no ratio is readable. This
one runs the same server code (the same apps, variants and middleware, one
keep-alive connection) under valgrind's callgrind with its cache simulator
and counts what the server process executes per request: instructions (Ir)
and first-level cache misses (L1), last-level misses (LL). Counts do not
depend on what else the machine does.

"Estimated cycles" is Ir + 10 x L1 misses + 100 x LL misses, the weighting
KCachegrind uses for its cycle estimate (without branch simulation). The
ratio "bare cycles / variant cycles" stands in for the throughput ratio: on
2026-11-29 it read 0.966 for lazy on raw WSGI where the last throughput run
had read 0.964, and 0.859 for eager + read (0.864). It leaves out the kernel
(socket reads and writes, the same for every variant) and timing effects;
under uvicorn it read 2-3 points higher than throughput did (eager 0.910
against 0.883), so read a PASS there as "within reach", not as met. One more
bias, the other way: valgrind's virtual CPU has no SHA extensions, so
OpenSSL's SHA-256 of the token runs its generic code (~17k instructions,
against ~0.5 us natively); the eager and floor rows carry that, lazy rows do
not hash.

Each server is started under valgrind (slow: ~30 s per variant), warmed up
with 300 requests (imports, the first decode), its counters are zeroed, N
requests are sent, and the counters are dumped. Two servers run at a time:
the counts do not care. Needs valgrind (apt install valgrind).
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import middleware_overhead as overhead
from _common import write_markdown

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "middleware_cost.md"
WARM_UP = 300


def send(port: int, n: int, cookie: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for _ in range(n):
            connection.request("GET", "/", headers={"Cookie": cookie})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"the server answered {response.status}")
    finally:
        connection.close()


def control(proc: subprocess.Popen[bytes], action: str) -> None:
    subprocess.run(["callgrind_control", action, str(proc.pid)], check=True, capture_output=True)


def count(proto: str, mode: str, requests: int, cookie: str, workdir: str) -> dict[str, float]:
    """Callgrind's event counts per request for one server process."""
    port = overhead.free_port()
    out = os.path.join(workdir, f"{proto}.{mode}.out")
    env = dict(
        os.environ,
        AUTH_SECRET=overhead.SECRET,
        PYTHONPATH=str(HERE.parent / "src"),
        PYTHONHASHSEED="0",  # the same dict layouts in every run
    )
    proc = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--cache-sim=yes",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            overhead.SERVE,
            proto,
            mode,
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        overhead.wait_up(port, timeout=600)
        send(port, WARM_UP, cookie)
        control(proc, "--zero")
        send(port, requests, cookie)
        control(proc, "--dump")
    finally:
        proc.terminate()
        proc.wait(120)
    # The first dump file is the one taken after the zeroing: the N requests.
    dumps = sorted(glob.glob(out + ".*"), key=os.path.getmtime)
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for {proto} {mode}")
    text = Path(dumps[0]).read_text()
    events = re.search(r"^events: (.*)$", text, re.M)
    totals = re.search(r"^(?:summary|totals): (.*)$", text, re.M)
    if not events or not totals:
        raise RuntimeError(f"could not read {dumps[0]}")
    per_request = {
        name: int(value) / requests
        for name, value in zip(events.group(1).split(), totals.group(1).split(), strict=True)
    }
    l1 = per_request["I1mr"] + per_request["D1mr"] + per_request["D1mw"]
    ll = per_request["ILmr"] + per_request["DLmr"] + per_request["DLmw"]
    ir = per_request["Ir"]
    return {"Ir": ir, "L1": l1, "LL": ll, "cycles": ir + 10 * l1 + 100 * ll}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--apps", default=",".join(proto for proto, _ in overhead.APPS))
    parser.add_argument("--variants", default=",".join(mode for mode, _ in overhead.VARIANTS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("valgrind is not installed (apt install valgrind); cannot run this benchmark")
        return 1
    apps = [(proto, label) for proto, label in overhead.APPS if proto in args.apps.split(",")]
    modes = [(mode, label) for mode, label in overhead.VARIANTS if mode in args.variants.split(",")]
    if not apps or not modes or modes[0][0] != "bare":
        parser.error("pick at least one app, and variants starting with bare")
    sys.path.insert(0, str(HERE.parent / "src"))
    from authsession import jwt

    token = jwt.encode(
        {"name": "Ada", "email": "ada@example.com", "picture": "https://x/a.png", "sub": "1"},
        overhead.SECRET,
        "authjs.session-token",
    )
    cookie = f"theme=dark; authjs.session-token={token}"
    jobs = [(proto, mode) for proto, _ in apps for mode, _ in modes]
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(2) as pool:
        futures = {
            job: pool.submit(count, job[0], job[1], args.requests, cookie, workdir) for job in jobs
        }
        counts = {job: future.result() for job, future in futures.items()}

    lines = [
        "| server, app | variant | instructions per request | L1 misses | LL misses "
        "| estimated cycles | ratio to bare | target | estimate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for proto, label in apps:
        bare = counts[proto, "bare"]["cycles"]
        for mode, variant in modes:
            c = counts[proto, mode]
            ratio = bare / c["cycles"]
            target = overhead.TARGETS.get(mode)
            verdict = "" if target is None else ("PASS" if ratio >= target else "FAIL")
            lines.append(
                f"| {label} | {variant} | {c['Ir']:,.0f} | {c['L1']:,.0f} | {c['LL']:,.1f} | "
                f"{c['cycles']:,.0f} | {ratio:.3f} | "
                f"{'' if target is None else f'>= {target:.2f}'} | {verdict} |"
            )
    versions = (
        f"{overhead.software()}, valgrind callgrind --cache-sim=yes, {args.requests} requests "
        f"per variant after {WARM_UP} to warm up, one connection, {time.strftime('%Y-%m-%d')}"
    )
    table = "\n".join(lines)
    print(table)
    print(versions)
    write_markdown(
        args.output,
        "Middleware cost per request (instruction counts)",
        ["`python benchmarks/middleware_cost.py`", table, versions],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
