"""Run a piece of dlcheck in an isolated child process, and always clean up after it.

Every measurement or probe that touches user code runs here: a fresh interpreter (or, for an
object defined in a notebook, a fork) in its own session and process group, talking to the
parent over a private pipe in JSON lines. A hang, crash, ``os._exit`` or memory blow-up in the
user's code becomes a :class:`ChildOutcome` with an error; the whole process group (DataLoader
workers included) is killed and any ``/dev/shm`` segment it left is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

SHM_DIR = Path("/dev/shm")
_TORCH_SHM = re.compile(r"^torch_(\d+)_")
RESULT_FD_ENV = "DLCHECK_RESULT_FD"


@dataclass
class ChildOutcome:
    """What came back from one child run."""

    ok: bool
    value: Any = None
    error: dict[str, Any] | None = None  # kind, message, hint, detail, exit_code
    events: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    signal: str | None = None
    timed_out: bool = False
    stalled: bool = False
    interrupted: bool = False
    duration_s: float = 0.0
    stderr_tail: str = ""  # the child's last output (stdout and stderr), about 8 KB

    @property
    def message(self) -> str:
        """One sentence describing why the child did not deliver a result."""
        if self.ok:
            return ""
        if self.error:
            return str(self.error.get("message", "failed"))
        if self.stalled:
            return "stalled: no progress from the child process"
        if self.timed_out:
            return "timed out"
        if self.signal:
            return f"process killed by {self.signal}"
        if self.returncode not in (None, 0):
            return f"process exited with code {self.returncode}"
        return "process ended without a result"


def signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


# ---------------------------------------------------------------- shm bookkeeping


def shm_entries() -> set[str]:
    try:
        return set(os.listdir(SHM_DIR))
    except OSError:
        return set()


def _mapped_shm_inodes() -> set[tuple[int, int, int]]:
    """(major, minor, inode) of every /dev/shm file some live process has mapped: in use, so
    never ours to remove (another dlcheck run or the user's own training job may own it).

    Inodes, not names: glibc's sem_open maps a temporary file and renames it afterwards.
    """
    found: set[tuple[int, int, int]] = set()
    marker = " " + str(SHM_DIR) + "/"
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/maps", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if marker not in line:
                        continue
                    fields = line.split()
                    major, _, minor = fields[3].partition(":")
                    found.add((int(major, 16), int(minor, 16), int(fields[4])))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _in_use(path: Path, mapped: set[tuple[int, int, int]]) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino) in mapped


def cleanup_shm(before: set[str], pids: set[int], since: float) -> list[str]:
    """Remove /dev/shm entries our children created and left behind; return their names."""
    removed = []
    candidates = shm_entries() - before
    mapped = _mapped_shm_inodes() if candidates else set()
    for name in candidates:
        path = SHM_DIR / name
        if _in_use(path, mapped):
            continue
        m = _TORCH_SHM.match(name)
        ours = False
        if m:
            pid = int(m.group(1))
            ours = pid in pids or not psutil.pid_exists(pid)
        elif name.startswith(("sem.mp-", "psm_", "wnsm_", "sem.loky-")):
            try:
                ours = path.stat().st_mtime >= since - 1
            except OSError:
                continue
        if ours:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(name)
    return removed


# ---------------------------------------------------------------- process-group control


def _group_pids(pgid: int) -> set[int]:
    pids = set()
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(p.info["pid"]) == pgid:
                pids.add(p.info["pid"])
    return pids


def kill_tree(pid: int, known: set[int], grace_s: float = 0.5) -> None:
    """SIGTERM the child's process group (and any known escapee), then SIGKILL what remains."""
    targets = set(known) | {pid}
    with contextlib.suppress(psutil.Error):
        targets |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
    targets |= _group_pids(pid)
    me = os.getpid()
    targets.discard(me)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        for t in list(targets):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(t, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            alive = [t for t in targets if _alive(t)]
            if not alive:
                return
            time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _set_parent_death_signal() -> None:
    """Linux: die with the parent, so a SIGKILLed dlcheck never orphans a hung child."""
    with contextlib.suppress(
        Exception
    ):  # no libc/prctl (not Linux): the group kill still cleans up
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---------------------------------------------------------------- the parent side


def run_child(
    func: str,
    request: dict[str, Any],
    *,
    timeout: float | None = None,
    stall_timeout: float | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    obj: Any = None,
    env: dict[str, str] | None = None,
    stderr_passthrough: bool = False,
    on_output: Callable[[str], None] | None = None,
) -> ChildOutcome:
    """Run ``func`` ("package.module:function") in a child and collect its messages.

    ``func(request, send)`` runs in the child; ``send(dict)`` streams an event to ``on_event``
    (and resets the stall clock); its return value is the outcome's ``value``. ``obj`` (an
    in-memory dataset or loader) forces a fork so the child inherits it as
    ``request["_object"]``; otherwise the child is a fresh interpreter and ``request`` must be
    JSON-serialisable. ``timeout`` bounds the whole run, ``stall_timeout`` the gap between
    messages. KeyboardInterrupt kills the child's whole group before it propagates.

    The child's output (its stdout and stderr, the user's prints and warnings, workers'
    included) goes to our stderr as is with ``stderr_passthrough``; otherwise it is read
    through a pipe, kept as ``stderr_tail`` and handed line by line to ``on_output``.
    """
    shm_before = shm_entries()
    started = time.monotonic()
    wall_start = time.time()
    read_fd, write_fd = os.pipe()
    out_r, out_w = (-1, -1) if stderr_passthrough else os.pipe()
    captured = _Captured(on_output)
    pid: int
    popen: subprocess.Popen[bytes] | None = None
    try:
        if obj is not None:
            pid = _fork_child(func, request, obj, read_fd, write_fd, out_w, out_r)
        else:
            child_env = dict(os.environ if env is None else env)
            child_env[RESULT_FD_ENV] = str(write_fd)
            child_env.setdefault("PYTHONUNBUFFERED", "1")
            src = str(Path(__file__).resolve().parent.parent)
            if "-packages" not in src:  # a source checkout run without installing
                child_env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (src, child_env.get("PYTHONPATH", "")) if p
                )
            popen = subprocess.Popen(
                [sys.executable, "-m", "dlcheck._child", func],
                stdin=subprocess.PIPE,
                stdout=out_w if out_w >= 0 else sys.stderr.fileno(),
                stderr=out_w if out_w >= 0 else sys.stderr.fileno(),
                pass_fds=(write_fd,),
                start_new_session=True,
                env=child_env,
                preexec_fn=_set_parent_death_signal,
            )
            pid = popen.pid
    except BaseException:  # Ctrl-C included: close our fds, then re-raise
        for fd in (read_fd, write_fd, out_r, out_w):
            if fd >= 0:
                os.close(fd)
        raise
    os.close(write_fd)
    if out_w >= 0:
        os.close(out_w)
    if popen is not None:
        assert popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            popen.stdin.write(json.dumps(request).encode())
            popen.stdin.close()

    outcome = ChildOutcome(ok=False)
    known_pids: set[int] = {pid}
    buf = b""
    last_msg = time.monotonic()
    last_scan = 0.0
    try:
        while True:
            now = time.monotonic()
            waits = [1.0]
            if timeout is not None:
                waits.append(started + timeout - now)
            if stall_timeout is not None:
                waits.append(last_msg + stall_timeout - now)
            wait = max(0.0, min(waits))
            if timeout is not None and now - started >= timeout:
                outcome.timed_out = True
                break
            if stall_timeout is not None and now - last_msg >= stall_timeout:
                outcome.stalled = outcome.timed_out = True
                break
            watched = [read_fd] + ([out_r] if out_r >= 0 and not captured.closed else [])
            ready, _, _ = select.select(watched, [], [], wait)
            if now - last_scan > 0.5:  # remember workers so escapees can be killed too
                last_scan = now
                with contextlib.suppress(psutil.Error):
                    known_pids |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
            if out_r in ready:
                captured.read(out_r)
            if read_fd not in ready:
                continue
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                last_msg = time.monotonic()
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                kind = msg.get("type")
                if kind == "event":
                    outcome.events.append(msg)
                    if on_event is not None:
                        on_event(msg)
                elif kind == "result":
                    outcome.ok = True
                    outcome.value = msg.get("value")
                elif kind == "error":
                    outcome.error = {k: v for k, v in msg.items() if k != "type"}
    except KeyboardInterrupt:
        outcome.interrupted = True
        kill_tree(pid, known_pids, grace_s=0.3)
        _finish(outcome, pid, popen, out_r, captured, shm_before, known_pids, wall_start, started)
        os.close(read_fd)
        raise
    kill_tree(pid, known_pids, grace_s=0.5 if not outcome.ok else 1.0)
    os.close(read_fd)
    _finish(outcome, pid, popen, out_r, captured, shm_before, known_pids, wall_start, started)
    return outcome


class _Captured:
    """The child's output read from a pipe: a bounded tail plus complete lines to a callback."""

    TAIL_BYTES = 8192

    def __init__(self, on_line: Callable[[str], None] | None):
        self._on_line = on_line
        self._tail = b""
        self._partial = b""
        self.closed = False

    def read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            self.closed = True
            self.flush()
            return
        self._tail = (self._tail + chunk)[-self.TAIL_BYTES :]
        if self._on_line is None:
            return
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        if len(self._partial) > self.TAIL_BYTES:  # a huge line without newline: pass it on
            lines.append(self._partial)
            self._partial = b""
        for line in lines:
            self._emit(line)

    def flush(self) -> None:
        if self._partial and self._on_line is not None:
            self._emit(self._partial)
        self._partial = b""

    def _emit(self, line: bytes) -> None:
        assert self._on_line is not None
        text = line.decode("utf-8", "replace").rstrip("\r")
        if text.strip():
            self._on_line(text)

    def drain(self, fd: int) -> None:
        """Read what is left without blocking (an escaped process may hold the pipe open)."""
        os.set_blocking(fd, False)
        while not self.closed:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                break
            self.read(fd)
        self.flush()

    @property
    def tail(self) -> str:
        return self._tail.decode("utf-8", "replace")


def _finish(
    outcome: ChildOutcome,
    pid: int,
    popen: subprocess.Popen[bytes] | None,
    out_r: int,
    captured: _Captured,
    shm_before: set[str],
    known_pids: set[int],
    wall_start: float,
    started: float,
) -> None:
    rc: int | None
    if popen is not None:
        try:
            rc = popen.wait(timeout=2)
        except subprocess.TimeoutExpired:
            rc = None
    else:
        rc = _reap(pid)
    outcome.returncode = rc
    if not outcome.ok:
        outcome.signal = signal_name(rc) if not outcome.timed_out else None
    if out_r >= 0:
        captured.drain(out_r)
        os.close(out_r)
        outcome.stderr_tail = captured.tail
    cleanup_shm(shm_before, known_pids, wall_start)
    outcome.duration_s = time.monotonic() - started


def _reap(pid: int) -> int | None:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    return None


def _fork_child(
    func: str,
    request: dict[str, Any],
    obj: Any,
    read_fd: int,
    write_fd: int,
    out_w: int,
    out_r: int,
) -> int:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or replaced stream: nothing to flush
            stream.flush()
    pid = os.fork()
    if pid:
        return pid
    # In the child: never return into the caller's stack.
    code = 0
    try:
        os.setsid()
        _set_parent_death_signal()
        os.close(read_fd)
        if out_w >= 0:
            os.close(out_r)
            os.dup2(out_w, 2)
            os.close(out_w)
        os.dup2(2, 1)
        # The parent's sys.stdout/stderr may be wrappers (a notebook, pytest, Rich): print and
        # warnings in the child must reach fd 2 like in a fresh interpreter.
        sys.stdout = sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        from dlcheck import _child

        req = dict(request)
        req["_object"] = obj
        code = _child.serve(func, req, write_fd)
    except BaseException:  # anything, Ctrl-C too: a fork must never return
        code = 70
    finally:
        os._exit(code)
