"""Shared test setup.

Everything a test imports or runs besides dlcheck lives under ``tests/fixtures/``: helper
modules (``dist_helpers``, ``inputbound_loops``, …) at its top, datasets and scripts in one
folder per command (``profile/``, ``dist/``, ``dist_profile/``, …), golden outputs in
``golden/``. Both the top and ``profile/`` are importable from every test.
"""

from __future__ import annotations

import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

for _path in (FIXTURES, FIXTURES / "profile"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
