"""examples/quart_app.py under uvicorn, read with cookies a real Auth.js server issued."""

from __future__ import annotations

import pytest

from ._live_server import ExampleContract

pytestmark = pytest.mark.interop


class TestQuartExample(ExampleContract):
    example = "quart_app.py"
