"""Types shared by every command's records."""

from __future__ import annotations

from enum import Enum
from typing import Any, Protocol


class Status(str, Enum):
    """Verdict of one check, probe finding or measured setting."""

    PASS = "pass"
    INFO = "info"
    SKIP = "skip"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"  # the check itself crashed (doctor probes)

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def style(self) -> str:
        return _STYLES[self]


_SYMBOLS = {
    Status.PASS: "✓",
    Status.INFO: "•",
    Status.SKIP: "-",
    Status.WARN: "!",
    Status.FAIL: "✗",
    Status.ERROR: "✗",
}
_STYLES = {
    Status.PASS: "green",
    Status.INFO: "cyan",
    Status.SKIP: "dim",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
}


def exit_code_for(statuses: list[Status] | tuple[Status, ...], *, strict: bool = False) -> int:
    """0 unless something failed (or, with ``strict``, warned)."""
    bad = {Status.FAIL, Status.ERROR}
    if strict:
        bad.add(Status.WARN)
    return 1 if any(s in bad for s in statuses) else 0


def summary_line(statuses: list[Status] | tuple[Status, ...]) -> str:
    """'2 warnings, 1 failure' style summary; 'no issues found' when clean."""
    counts = {s: sum(1 for x in statuses if x is s) for s in Status}
    parts = []
    for status, word in (
        (Status.FAIL, "failure"),
        (Status.ERROR, "error"),
        (Status.WARN, "warning"),
    ):
        n = counts[status]
        if n:
            parts.append(f"{n} {word}{'s' if n != 1 else ''}")
    return ", ".join(parts) if parts else "no issues found"


class Report(Protocol):
    """What every command's report offers (env, profile, doctor, trace and their ranks forms).

    ``exit_code``: the code the command exits with (0, 1, 130; ``--strict`` is held by the
    report). ``to_dict()``: the command's JSON document (its ``schema`` key first).
    ``render(console, verbose=)``: the human-readable form on a Rich console.
    """

    @property
    def exit_code(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...

    def render(self, console: Any, *, verbose: bool = False) -> None: ...
