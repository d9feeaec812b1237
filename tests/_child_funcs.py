"""Functions run inside dlcheck.proc children by the tests."""

from __future__ import annotations

import os
import signal
import time
from typing import Any


def echo(request: dict[str, Any], send: Any) -> Any:
    print("user code printing to stdout")
    send({"step": 1})
    return {"got": request.get("x")}


def hang(request: dict[str, Any], send: Any) -> Any:
    send({"started": True})
    time.sleep(600)


def die(request: dict[str, Any], send: Any) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


def raise_value_error(request: dict[str, Any], send: Any) -> Any:
    raise ValueError("boom 37")


def spawn_grandchildren(request: dict[str, Any], send: Any) -> Any:
    import multiprocessing as mp

    procs = [mp.get_context("fork").Process(target=time.sleep, args=(600,)) for _ in range(2)]
    for p in procs:
        p.start()
    send({"pids": [p.pid for p in procs]})
    time.sleep(600)


def use_object(request: dict[str, Any], send: Any) -> Any:
    return {"len": len(request["_object"])}


def chatty(request: dict[str, Any], send: Any) -> Any:
    import multiprocessing as mp
    import sys
    import warnings

    print("line from stdout")
    print("line from stderr", file=sys.stderr)
    warnings.warn("a user warning", stacklevel=1)
    worker = mp.get_context("fork").Process(target=print, args=("line from a worker",))
    worker.start()
    worker.join()
    return {"done": True}
