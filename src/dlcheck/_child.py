"""Entry point of a child process started by :mod:`dlcheck.proc`.

User code may print to stdout: fd 1 is pointed at stderr before anything else runs, so the
parent's single JSON document on stdout can never be polluted.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import traceback
from typing import Any


class Channel:
    """JSON-lines messages to the parent; safe to call from several threads."""

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()

    def _write(self, msg: dict[str, Any]) -> None:
        from dlcheck.output import to_jsonable

        data = (json.dumps(to_jsonable(msg), allow_nan=False) + "\n").encode()
        with self._lock:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]

    def send(self, event: dict[str, Any]) -> None:
        self._write({"type": "event", **event})

    def result(self, value: Any) -> None:
        self._write({"type": "result", "value": value})

    def error(self, **fields: Any) -> None:
        self._write({"type": "error", **fields})


def _resolve(func: str) -> Any:
    module, _, name = func.partition(":")
    return getattr(importlib.import_module(module), name)


def serve(func: str, request: dict[str, Any], fd: int) -> int:
    """Run ``func(request, send)`` and report its result or error; return the exit status."""
    from dlcheck.errors import DlcheckError

    channel = Channel(fd)
    try:
        value = _resolve(func)(request, channel.send)
        channel.result(value)
        return 0
    except DlcheckError as exc:
        channel.error(
            kind=type(exc).__name__,
            message=exc.message,
            hint=exc.hint,
            detail=exc.detail,
            exit_code=int(exc.exit_code),
        )
        return 3
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # the user's code may raise anything, SystemExit included
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        channel.error(
            kind="crash", message=last, hint=None, detail=traceback.format_exc(), exit_code=1
        )
        return 3


def main() -> None:
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    fd = int(os.environ.pop("DLCHECK_RESULT_FD"))
    request = json.loads(sys.stdin.read() or "{}")
    func = sys.argv[1]
    code = serve(func, request, fd)
    sys.stderr.flush()
    # Skip interpreter teardown: user objects' __del__ or atexit hooks must not hang us.
    os._exit(code)


if __name__ == "__main__":
    main()
