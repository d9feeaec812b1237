"""fork_safety: handles, threads and held locks that forked workers would share.

Fork copies the dataset into every worker as it is when the workers start: an open h5py
file, LMDB env, sqlite3 connection, file or socket is then one handle shared by all of them
(one file position, one set of locks), and a thread or a held lock does not survive the fork
at all. Found by an attribute walk over what the workers receive; no sample is fetched.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="fork_safety",
    title="No handles shared across fork",
    detects="h5py files, LMDB envs, sqlite3, open files, sockets, threads, held locks",
    cost="an attribute walk (no sample fetched)",
    touches_samples=False,
    run_order=10,
    list_order=40,
)

FIX = (
    "Open the handle lazily in each worker: set `self.f = None` in __init__ and "
    "`if self.f is None: self.f = h5py.File(self.path, 'r')` in __getitem__ (or in "
    "worker_init_fn); read only metadata in __init__ and close it again."
)
FIX_THREAD = (
    "Start threads (and take locks) lazily in each worker, e.g. in worker_init_fn or on first "
    "use in __getitem__, never in __init__."
)
FIX_CUDA = "Keep the dataset on the CPU; move batches to the GPU in the training loop."


@dataclass(frozen=True)
class ForkSafetyFacts(ProbeFacts):
    """The fork-unsafe objects the workers would inherit."""

    handles: list[dict[str, Any]] = field(default_factory=list)  # path, kind, description
    live_threads: list[str] = field(default_factory=list)  # names, alive when TARGET loaded
    start_method: str = "fork"

    @classmethod
    def example(cls) -> ForkSafetyFacts:
        handle = {"path": "dataset.f", "kind": "h5py.File", "description": "h5py.File 'a.h5'"}
        return cls(handles=[handle], live_threads=["loader-thread"])


FACTS = ForkSafetyFacts


def classify_handle(obj: Any) -> str | None:
    """What fork-unsafe resource ``obj`` is, if it is one and it is open."""
    import io
    import socket
    import sqlite3

    from dlcheck.doctor.facts import THREADS_AT_LOAD

    tmod = type(obj).__module__ or ""
    tname = type(obj).__name__
    if tmod.startswith("h5py") and tname in ("File", "Group", "Dataset"):
        # a closed or broken h5py object raises on bool(): it holds nothing
        with contextlib.suppress(Exception):
            return f"h5py.{tname}" if bool(obj) else None
        return None
    lmdb = sys.modules.get("lmdb")
    lmdb_types = tuple(
        t for t in (getattr(lmdb, n, None) for n in ("Environment", "Transaction", "Cursor")) if t
    )
    if lmdb_types and isinstance(obj, lmdb_types):
        if tname == "Environment":
            try:
                obj.flags()
            except Exception:  # a closed env raises lmdb's own error type
                return None
        return f"lmdb.{tname}"
    if isinstance(obj, sqlite3.Connection):
        try:
            obj.total_changes  # noqa: B018 - raises when the connection is closed
        except Exception:  # a closed connection raises sqlite3's (or a subclass's) own error
            return None
        return "sqlite3.Connection"
    if isinstance(obj, socket.socket):
        return "socket" if obj.fileno() != -1 else None
    if isinstance(obj, io.IOBase):
        if obj.closed or obj in (sys.stdin, sys.stdout, sys.stderr):
            return None
        return f"open file ({tname})"
    if isinstance(obj, threading.Thread):
        return "running thread" if id(obj) in THREADS_AT_LOAD or obj.is_alive() else None
    if tname in ("lock", "RLock", "_RLock") and tmod in ("_thread", "threading"):
        # a lock type without locked()/_is_owned(): cannot tell, not reported
        with contextlib.suppress(Exception):
            locked = obj.locked() if hasattr(obj, "locked") else obj._is_owned()
            return "lock held at fork time" if locked else None
        return None
    if tmod.startswith("torch") and getattr(obj, "is_cuda", False) is True:
        return "CUDA tensor"
    return None


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: walk what the workers receive for open handles, threads and held locks."""
    from dlcheck.doctor.facts import THREADS_AT_LOAD, start_method, walk_all

    handles = []
    for path, obj in walk_all(ctx):
        kind = classify_handle(obj)
        if kind:
            desc = kind
            fname = getattr(obj, "filename", None) or getattr(obj, "name", None)
            if isinstance(fname, str) and kind != "running thread":
                desc = f"{kind} {fname!r}"
            handles.append({"path": path, "kind": kind, "description": desc})
    return ForkSafetyFacts(
        handles=handles,
        live_threads=sorted(THREADS_AT_LOAD.values()),
        start_method=start_method(ctx),
    ).to_dict()


def _handle_problem(h: dict[str, Any]) -> tuple[str, str]:
    """(why it breaks, fix) for one fork-unsafe handle."""
    kind = h["kind"]
    if kind == "running thread":
        return (
            "a running thread when the workers fork: fork copies only the calling thread, so "
            "it does not exist in the workers, and a lock it holds stays locked there forever",
            FIX_THREAD,
        )
    if kind.startswith("lock"):
        return (
            "a lock held when the workers fork: it stays locked forever in every worker (deadlock)",
            FIX_THREAD,
        )
    if kind == "CUDA tensor":
        return ("a CUDA tensor: forked workers cannot use CUDA (see cuda_in_worker)", FIX_CUDA)
    return (
        f"an open {kind} when the workers fork: workers share one handle (one file position, "
        "one set of locks), which corrupts reads, crashes or deadlocks (h5py, LMDB and sqlite3 "
        "are not fork-safe)",
        FIX,
    )


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Warn about the first fork-unsafe handle (or the threads running at fork time)."""
    from dlcheck.doctor.judge import finding
    from dlcheck.records import Status

    f = ForkSafetyFacts.from_dict(facts)
    handles = f.handles
    threads = f.live_threads if f.start_method == "fork" else []
    text = [f"{h['path']}: {h['description']}" for h in handles]
    if threads:
        text.append(f"threads running when workers fork: {', '.join(threads[:5])}")
    if not handles and not threads:
        return [
            finding(
                SPEC.id,
                Status.PASS,
                "The dataset holds no open handles, threads or held locks when workers fork.",
                evidence=f.to_dict(),
            )
        ]
    if handles:
        first = handles[0]
        why, fix = _handle_problem(first)
        more = f" (and {len(handles) - 1} more)" if len(handles) > 1 else ""
        msg = f"`{first['path']}` is {why}{more}."
    else:
        msg = (
            f"{len(threads)} thread(s) run when the workers fork ({', '.join(threads[:3])}): a "
            "lock held by one of them at that moment stays locked forever in the worker."
        )
        fix = FIX_THREAD
    return [finding(SPEC.id, Status.WARN, msg, evidence=f.to_dict(), evidence_text=text, fix=fix)]
