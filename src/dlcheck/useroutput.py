"""The user's own prints and warnings, read from child processes (see ``proc.run_child``).

A dataset that prints in ``__getitem__`` prints once per sample and per worker: each distinct
line is shown once, live, and each setting keeps its own deduplicated last lines.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable

#: Lines kept per setting (the last distinct ones): enough context beside an error.
KEEP_LINES = 20


class Relay:
    """Shows each distinct line once per run (``show``) and collects lines per child."""

    def __init__(self, show: Callable[[str], None] | None):
        self._show = show
        self._seen: set[str] = set()

    def collector(self) -> tuple[Callable[[str], None], list[str]]:
        """An ``on_output`` callback for one child, and the list it fills."""
        lines: list[str] = []

        def on_line(line: str) -> None:
            lines.append(line)
            if self._show is not None and line not in self._seen:
                self._seen.add(line)
                self._show(line)

        return on_line, lines


def dedupe(lines: list[str], keep: int = KEEP_LINES) -> list[str]:
    """Distinct lines in first-seen order, repeats counted (``… (×16)``); the last ``keep``."""
    counts = Counter(lines)
    distinct = dict.fromkeys(lines)
    return [f"{ln} (×{counts[ln]})" if counts[ln] > 1 else ln for ln in distinct][-keep:]


def write_stderr(line: str) -> None:
    """Show one line of the user's output on our stderr (secrets masked)."""
    from dlcheck.redact import scrub

    sys.stderr.write(scrub(line) + "\n")
