#!/usr/bin/env python3
"""One entry point for working on authsession; needs only Python 3.10+.

    python3 dev.py demo      # set up .venv, serve the demo (SQLite sessions) on http://127.0.0.1:8000
    python3 dev.py example   # set up .venv, serve the Starlette example app on http://127.0.0.1:8000
    python3 dev.py test      # set up .venv (and the npm packages), run the whole test suite
    python3 dev.py lint      # ruff check, ruff format --check, mypy --strict on src/
    python3 dev.py bench     # run every benchmark, tables into benchmarks/results/

Set-up is idempotent: the virtual environment in .venv is (re)installed only
when pyproject.toml or constraints.txt changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# AUTHSESSION_VENV: another environment, e.g. for a second Python version.
VENV = Path(os.environ.get("AUTHSESSION_VENV") or ROOT / ".venv")
if not VENV.is_absolute():
    VENV = ROOT / VENV
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".authsession-installed"
EXTRAS = "test,lint,bench"


def run(*cmd: object, cwd: Path = ROOT) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=cwd)


def setup() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py runs under any python3, to say why not
        sys.exit(f"authsession needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    wanted = f"{digest.hexdigest()} {EXTRAS}"
    if PY.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PY.exists():
        print(f"+ creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    pip = (PY, "-m", "pip", "install", "--disable-pip-version-check", "-q")
    if run(*pip, "-c", "constraints.txt", "-e", f".[{EXTRAS}]"):
        sys.exit("dependency installation failed (see pip's output above)")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("test", [])
    if command not in {"demo", "example", "test", "lint", "bench"}:
        print(__doc__)
        return 2
    setup()
    if command == "test":
        return run(PY, "-m", "pytest", *rest)
    if command == "lint":
        paths = ("src", "tests", "benchmarks", "examples", "dev.py")
        return (
            run(BIN / "ruff", "check", *paths)
            or run(BIN / "ruff", "format", "--check", *paths)
            or run(BIN / "mypy", "--strict", "src")
        )
    if command == "bench":
        status = 0
        for script in sorted((ROOT / "benchmarks").glob("*.py")):
            status = run(PY, script, *rest) or status
        return status
    if command == "demo":
        return run(BIN / "authsession", "demo", *rest)
    return run(PY, ROOT / "examples" / "starlette_app.py", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
