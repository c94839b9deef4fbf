"""ISO 8601 timestamps parse the same on Python 3.10 and 3.11+.

Stores hold times as text written by JavaScript (``.123Z``), PostgreSQL
(``+00``), Python or hand-written rows (``.1``, ``.12345``, ``+0000``).
Python 3.10's ``fromisoformat`` rejects most of those, 3.11's accepts them;
``parse_iso`` normalises first, so both read them alike. The current
interpreter is checked here, and Python 3.10 in a subprocess when one is
installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from authsession._database_strategy import as_utc
from authsession._time import parse_iso
from authsession.adapters._records import stored_time, utc

BASE = datetime(2030, 1, 1, tzinfo=timezone.utc)

# text -> the UTC instant it names (microseconds; adapters then keep milliseconds)
CASES = {
    "2030-01-01T00:00:00.000Z": BASE,
    "2030-01-01T00:00:00Z": BASE,
    "2030-01-01T00:00:00z": BASE,
    "2030-01-01 00:00:00": BASE,  # naive: UTC by the adapters' rule
    "2030-01-01T00:00:00.1Z": BASE + timedelta(microseconds=100_000),
    "2030-01-01T00:00:00.12Z": BASE + timedelta(microseconds=120_000),
    "2030-01-01T00:00:00.12345Z": BASE + timedelta(microseconds=123_450),
    "2030-01-01T00:00:00.1234567Z": BASE + timedelta(microseconds=123_456),  # cut, like 3.11
    "2030-01-01T00:00:00,5Z": BASE + timedelta(microseconds=500_000),
    "2030-01-01T00:00:00+0000": BASE,
    "2030-01-01T00:00:00.000+00": BASE,  # PostgreSQL's text output
    "2030-01-01 01:30:00+01:30": BASE,
    "2030-01-01T01:30:00+0130": BASE,
    "2029-12-31T19:00:00.000-05": BASE,
    "2030-01-01T00:00": BASE,
    "2030-01-01T00": BASE,
    "20300101T000000Z": BASE,
    "  2030-01-01T00:00:00Z\n": BASE,
}


def expected(text: str) -> datetime:
    return CASES[text]


@pytest.mark.parametrize("text", list(CASES))
def test_every_form_parses_to_the_same_instant(text: str) -> None:
    parsed = parse_iso(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    assert parsed == expected(text)
    # What the adapters and the database strategy read.
    milliseconds = expected(text).replace(microsecond=expected(text).microsecond // 1000 * 1000)
    assert utc(text) == milliseconds
    assert stored_time(text) == milliseconds
    assert as_utc(text) == expected(text)


@pytest.mark.parametrize("text", ["", "tomorrow", "2030-13-01T00:00:00Z", "2030-01-01T25:00Z"])
def test_non_dates_still_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso(text)


def test_normalised_text_is_what_python_310_reads() -> None:
    from authsession._time import normalize_iso

    assert normalize_iso("2030-01-01T00:00:00.1Z") == "2030-01-01T00:00:00.100000+00:00"
    assert normalize_iso("2030-01-01T00:00:00+0000") == "2030-01-01T00:00:00.000000+00:00"
    assert normalize_iso("2030-01-01") == "2030-01-01"


def _python_310() -> str | None:
    if sys.version_info[:2] == (3, 10):
        return sys.executable
    for candidate in ("/root/.pyenv/versions/3.10.13/bin/python", shutil.which("python3.10")):
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 10)":  # not a broken shim
            return candidate
    return None


def test_python_310_parses_them_too() -> None:
    python = _python_310()
    if python is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    import authsession._time as module

    # _time.py needs only the standard library: load it alone, by path.
    script = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('t', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "out = {}\n"
        "for text in json.loads(sys.stdin.read()):\n"
        "    try:\n"
        "        d = m.parse_iso(text)\n"
        "        out[text] = d.isoformat()\n"
        "    except ValueError as exc:\n"
        "        out[text] = 'ValueError: ' + str(exc)\n"
        "print(sys.version_info[:2], json.dumps(out), sep='\\n')\n"
    )
    done = subprocess.run(
        [python, "-c", script, str(module.__file__)],
        input=json.dumps(list(CASES)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    version, results = done.stdout.splitlines()
    assert version == "(3, 10)"
    for text, iso in json.loads(results).items():
        assert not iso.startswith("ValueError"), (text, iso)
        parsed = datetime.fromisoformat(iso)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        assert parsed == expected(text), text
