"""Fixtures of the reliability tests: the capstone's own fixtures and helpers, reused rather than copied.

`tests/capstone/conftest.py` (the exported model, `start_server` for real uvicorn processes, broken model
folders) and `tests/capstone/capstone_support.py` (`UvicornProcess`) are loaded from their folder; this file
adds nothing else: helpers shared by the test modules are in `reliability_support.py`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_CAPSTONE_TESTS = Path(__file__).resolve().parent.parent / "capstone"
if str(_CAPSTONE_TESTS) not in sys.path:
    sys.path.insert(0, str(_CAPSTONE_TESTS))  # `capstone_support`, and the service's modules through it


def _load_capstone_conftest() -> object:
    """tests/capstone/conftest.py under its own module name (every conftest is called `conftest`)."""
    spec = importlib.util.spec_from_file_location("capstone_conftest", _CAPSTONE_TESTS / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_capstone = _load_capstone_conftest()
# Re-exported fixtures: pytest registers a fixture under its name wherever a conftest binds it.
model_dir = _capstone.model_dir  # type: ignore[attr-defined]
broken_model_dir = _capstone.broken_model_dir  # type: ignore[attr-defined]
start_server = _capstone.start_server  # type: ignore[attr-defined]
