"""Small text formats every command shares: byte sizes, an exception's or an output's last
line."""

from __future__ import annotations

import traceback

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(n: float | None, none: str = "?") -> str:
    """Bytes in binary units: ``512 B``, ``1.5 KiB``, ``640 MiB``, ``23.5 GiB``."""
    if n is None:
        return none
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{value:.0f} B"
    # Whole MiB/KiB read better from 100 on; GiB and larger keep one decimal.
    digits = 0 if unit in ("KiB", "MiB") and abs(value) >= 100 else 1
    return f"{value:.{digits}f} {unit}"


def last_line(exc: BaseException) -> str:
    """``Type: message`` of an exception, on one line (what a user sees without -v)."""
    lines = traceback.format_exception_only(type(exc), exc)
    text = lines[-1].strip() if lines else ""
    return text.splitlines()[-1] if text else type(exc).__name__


def last_text_line(text: str, none: str = "") -> str:
    """The last non-blank line of captured output (a traceback's is its ``Type: message``)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else none
