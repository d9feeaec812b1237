"""Where output goes: one JSON document on stdout, everything else on stderr.

Every path to the user passes through :func:`dlcheck.redact.scrub`.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import math
import os
import sys
from pathlib import Path, PurePath
from typing import IO, Any

from dlcheck.redact import scrub


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from records: dataclasses, enums, paths, NaN (→ null)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not f.metadata.get("json_skip")
        }
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, PurePath):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    return repr(obj)


def dumps(doc: Any) -> str:
    return scrub(json.dumps(to_jsonable(doc), indent=2, ensure_ascii=False, allow_nan=False))


def emit_json(doc: Any, stream: IO[str] | None = None) -> None:
    """Write exactly one JSON document (plus newline) on stdout."""
    out = stream or sys.stdout
    out.write(dumps(doc) + "\n")
    out.flush()


def write_text_file(path: str | os.PathLike[str], text: str) -> None:
    """Atomic write so a crash or Ctrl-C never leaves a half-written result file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    tmp.write_text(scrub(text), encoding="utf-8")
    os.replace(tmp, p)


class _ScrubbingFile(io.TextIOBase):
    """A text stream that masks secrets before they reach the real stream."""

    def __init__(self, target: IO[str]):
        self._target = target

    def write(self, s: str) -> int:
        self._target.write(scrub(s))
        return len(s)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")


def console(*, stderr: bool = False, width: int | None = None, file: IO[str] | None = None):
    """A Rich console whose output is scrubbed of secrets."""
    from rich.console import Console

    target = file if file is not None else (sys.stderr if stderr else sys.stdout)
    return Console(
        file=_ScrubbingFile(target),
        width=width,
        stderr=stderr,
        force_terminal=target.isatty() if file is None else None,
    )
