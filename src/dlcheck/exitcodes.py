"""Exit codes shared by every command (documented in the README), and the worst of several
(the code every rank of a launch agrees on)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing failed (warnings allowed unless --strict)
    FAILED = 1  # a check/setting failed or a threshold was missed
    USAGE = 2  # bad option, or a TARGET that cannot be resolved
    INTERRUPTED = 130  # Ctrl-C


# Severity, lowest first: 0 (OK) < 1 (FAILED) < 2 (USAGE) < 130 (INTERRUPTED).
# A usage error on any rank outranks a failed check (the run did not do what was asked) and an
# interrupted rank outranks everything (the user stopped the run). Any other non-zero code is
# a failure (1).
_SEVERITY = {
    int(ExitCode.OK): 0,
    int(ExitCode.FAILED): 1,
    int(ExitCode.USAGE): 2,
    int(ExitCode.INTERRUPTED): 3,
}


def normalize_exit(code: int | None) -> int:
    """Map any exit status onto dlcheck's codes (None and 0 → 0, unknown non-zero → 1)."""
    if not code:
        return int(ExitCode.OK)
    return code if code in _SEVERITY else int(ExitCode.FAILED)


def worst_exit(codes: Iterable[int | None]) -> int:
    """The worst of the ranks' exit codes: 130 > 2 > 1 > 0 (0 for no codes)."""
    return max((normalize_exit(c) for c in codes), key=_SEVERITY.__getitem__, default=0)
