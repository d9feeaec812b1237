"""Where output goes: one JSON document on stdout, everything else on stderr.

Every path to the user passes through :func:`dlcheck.redact.scrub`.
"""

from __future__ import annotations

import contextlib
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


def check_writable(path: str | os.PathLike[str], option: str) -> None:
    """Fail before any work when ``option``'s file cannot be written (UsageError, exit 2).

    Writes and removes a temporary file beside it: permissions, a read-only file system and
    pseudo file systems such as /proc all answer the same way a real write would.
    """
    import tempfile

    from dlcheck.errors import UsageError

    p = Path(path)
    parent = p.parent
    if p.is_dir():
        raise UsageError(f"{option} {path}: is a directory.", "Give a file name.")
    if not parent.is_dir():
        raise UsageError(
            f"{option} {path}: the directory {parent} does not exist.",
            f"Create it first (mkdir -p {parent}) or choose another path.",
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=parent)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there ({os_error_cause(exc)}).") from None
    os.close(fd)
    os.unlink(tmp)


def os_error_cause(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def write_text_file(path: str | os.PathLike[str], text: str, option: str = "") -> None:
    """Atomic write so a crash or Ctrl-C never leaves a half-written result file.

    A path that cannot be written is the user's to fix: UsageError (exit 2), never a traceback.
    """
    from dlcheck.errors import UsageError

    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(scrub(text), encoding="utf-8")
        os.replace(tmp, p)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        what = f"{option} {path}" if option else str(path)
        raise UsageError(f"Cannot write {what}: {os_error_cause(exc)}.") from None


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
        file=_ScrubbingFile(target),  # type: ignore[arg-type]  # a TextIOBase, not typing.IO
        width=width,
        stderr=stderr,
        force_terminal=target.isatty() if file is None else None,
    )
