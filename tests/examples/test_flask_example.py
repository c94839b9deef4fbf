"""examples/flask_app.py under a real WSGI server (waitress), read with a real Auth.js cookie."""

from __future__ import annotations

import pytest
from tests.examples._wsgi_contract import WsgiExampleContract

pytestmark = pytest.mark.interop


class TestFlaskExample(WsgiExampleContract):
    example = "flask_app.py"
    attribute = "app"
