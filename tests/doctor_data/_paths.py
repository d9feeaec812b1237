"""A per-user scratch directory for generated data files (reused across test runs)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def scratch(name: str) -> Path:
    root = Path(os.environ.get("DLCHECK_DOCTOR_DATA", tempfile.gettempdir()))
    path = root / f"dlcheck-doctor-{os.getuid()}" / name
    path.mkdir(parents=True, exist_ok=True)
    return path
