"""Exit codes shared by every command (documented in the README)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing failed (warnings allowed unless --strict)
    FAILED = 1  # a check/setting failed or a threshold was missed
    USAGE = 2  # bad option, or a TARGET that cannot be resolved
    INTERRUPTED = 130  # Ctrl-C
