"""examples/quart_app.py under uvicorn, read with cookies a real Auth.js server issued."""

from __future__ import annotations

from ._live_server import ExampleContract


class TestQuartExample(ExampleContract):
    example = "quart_app.py"
