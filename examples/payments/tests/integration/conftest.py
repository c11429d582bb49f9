"""Integration tests start the quality gate's Great Expectations once, before any test runs.

The pipeline would do the same at start-up (``warm_up``). It also keeps a multi-second import
out of the first test's call, where on Python 3.11 the plugin's DLQ-assert watcher (a trace
function) makes it 2-3 times slower.
"""

from __future__ import annotations

import pytest
from payments.quality.gate import warm_up


@pytest.fixture(scope="session", autouse=True)
def _quality_gate_started() -> None:
    warm_up()
