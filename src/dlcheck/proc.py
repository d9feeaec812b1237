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
import socket
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
FORK_FD_ENV = "DLCHECK_FORK_FD"


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
            popen = _spawn(func, write_fd, out_w, env)
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

    return _watch(
        pid,
        read_fd,
        out_r,
        captured,
        reap=lambda: _wait_popen(popen) if popen is not None else _reap(pid),
        shm_before=shm_before,
        wall_start=wall_start,
        started=started,
        timeout=timeout,
        stall_timeout=stall_timeout,
        on_event=on_event,
    )


def _spawn(
    func: str,
    write_fd: int,
    out_w: int,
    env: dict[str, str] | None,
    extra_fds: tuple[int, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A fresh interpreter running ``dlcheck._child func`` in its own session."""
    child_env = dict(os.environ if env is None else env)
    child_env[RESULT_FD_ENV] = str(write_fd)
    child_env.update(extra_env or {})
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    src = str(Path(__file__).resolve().parent.parent)
    if "-packages" not in src:  # a source checkout run without installing
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (src, child_env.get("PYTHONPATH", "")) if p
        )
    return subprocess.Popen(
        [sys.executable, "-m", "dlcheck._child", func],
        stdin=subprocess.PIPE,
        stdout=out_w if out_w >= 0 else sys.stderr.fileno(),
        stderr=out_w if out_w >= 0 else sys.stderr.fileno(),
        pass_fds=(write_fd, *extra_fds),
        start_new_session=True,
        env=child_env,
        preexec_fn=_set_parent_death_signal,
    )


def _wait_popen(popen: subprocess.Popen[bytes]) -> int | None:
    try:
        return popen.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return None


def _watch(
    pid: int,
    read_fd: int,
    out_r: int,
    captured: _Captured,
    *,
    reap: Callable[[], int | None],
    shm_before: set[str],
    wall_start: float,
    started: float,
    timeout: float | None,
    stall_timeout: float | None,
    on_event: Callable[[dict[str, Any]], None] | None,
    stop_when: Callable[[dict[str, Any]], bool] | None = None,
) -> ChildOutcome:
    """Read the child's JSON lines until it ends, times out or stalls; then clean up its group.

    ``pid`` leads its own process group (DataLoader workers included); ``reap`` collects its
    exit status (the parent's own child, or a fork server's). An event for which ``stop_when``
    is true returns at once (ok, the event as value) and leaves the child running.
    """
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
                    if stop_when is not None and stop_when(msg):
                        outcome.ok, outcome.value = True, msg
                        outcome.duration_s = time.monotonic() - started
                        return outcome
                elif kind == "result":
                    outcome.ok = True
                    outcome.value = msg.get("value")
                elif kind == "error":
                    outcome.error = {k: v for k, v in msg.items() if k != "type"}
    except KeyboardInterrupt:
        outcome.interrupted = True
        kill_tree(pid, known_pids, grace_s=0.3)
        _finish(outcome, reap, out_r, captured, shm_before, known_pids, wall_start, started)
        os.close(read_fd)
        raise
    kill_tree(pid, known_pids, grace_s=0.5 if not outcome.ok else 1.0)
    os.close(read_fd)
    _finish(outcome, reap, out_r, captured, shm_before, known_pids, wall_start, started)
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
    reap: Callable[[], int | None],
    out_r: int,
    captured: _Captured,
    shm_before: set[str],
    known_pids: set[int],
    wall_start: float,
    started: float,
) -> None:
    rc = reap()
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


# ---------------------------------------------------------------- a fork server (template)

_MSG_MAX = 1 << 20


def _send_msg(sock: socket.socket, msg: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(msg).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def _recv_msg(sock: socket.socket, maxfds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    if maxfds:
        data, fds, _, _ = socket.recv_fds(sock, _MSG_MAX, maxfds)
    else:
        data, fds = sock.recv(_MSG_MAX), []
    if not data:
        return None, list(fds)
    return json.loads(data), list(fds)


class ForkServer:
    """A long-lived child (the *template*) that imports torch and the user's code once, then
    forks one isolated child per task.

    The template runs ``func(request, send)`` in a fresh interpreter (its own session); it
    sends an event with ``"phase": "ready"`` once built, then serves fork requests with
    :func:`serve_forks`. Each forked child leads its own session and process group, reports
    over its own private pipe and writes its output to its own pipe, so :meth:`run` watches,
    times out, kills and cleans up after it exactly as :func:`run_child` does for a fresh
    process.
    """

    def __init__(self, func: str, request: dict[str, Any], *, env: dict[str, str] | None = None):
        self._func, self._request, self._env = func, request, env
        self._sock: socket.socket | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._read_fd: int | None = None
        self._shm_before = shm_entries()
        self._wall_start = time.time()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(
        self,
        *,
        timeout: float | None = None,
        stall_timeout: float | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> ChildOutcome:
        """Start the template and wait until it is built: ok with the ready event as value, or
        the template's failure (it is then gone, cleaned up like any child)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        read_fd, write_fd = os.pipe()
        out_r, out_w = os.pipe()
        try:
            self._popen = _spawn(
                self._func,
                write_fd,
                out_w,
                self._env,
                extra_fds=(child.fileno(),),
                extra_env={FORK_FD_ENV: str(child.fileno())},
            )
        # cleanup on any exit (Ctrl-C included), then re-raise
        except BaseException:
            for fd in (read_fd, write_fd, out_r, out_w):
                os.close(fd)
            parent.close()
            child.close()
            raise
        os.close(write_fd)
        os.close(out_w)
        child.close()
        self._sock = parent
        assert self._popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._popen.stdin.write(json.dumps(self._request).encode())
            self._popen.stdin.close()
        popen = self._popen
        captured = _Captured(on_output)
        out = _watch(
            popen.pid,
            read_fd,
            out_r,
            captured,
            reap=lambda: _wait_popen(popen),
            shm_before=self._shm_before,
            wall_start=self._wall_start,
            started=time.monotonic(),
            timeout=timeout,
            stall_timeout=stall_timeout,
            on_event=on_event,
            stop_when=lambda ev: ev.get("phase") == "ready",
        )
        if out.ok and isinstance(out.value, dict) and out.value.get("phase") == "ready":
            # The template points its own output at a file once built; read what came before.
            captured.drain(out_r)
            os.close(out_r)
            out.stderr_tail = captured.tail
            self._read_fd = read_fd  # kept open: the template never writes to it again
        else:
            out.ok = False
            self._popen = None
            parent.close()
            self._sock = None
        return out

    def run(
        self,
        func: str,
        request: dict[str, Any],
        *,
        timeout: float | None = None,
        stall_timeout: float | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> ChildOutcome:
        """Like :func:`run_child`, in a child forked from the template (which holds the
        user's object as ``request["_object"]``)."""
        if self._sock is None:
            return ChildOutcome(ok=False, error={"kind": "crash", "message": "no template"})
        shm_before = shm_entries()
        started = time.monotonic()
        wall_start = time.time()
        read_fd, write_fd = os.pipe()
        out_r, out_w = os.pipe()
        try:
            _send_msg(
                self._sock, {"op": "fork", "func": func, "request": request}, (write_fd, out_w)
            )
            reply = self._reply(10.0)
        # cleanup on any exit (Ctrl-C included), then re-raise
        except BaseException:
            os.close(read_fd)
            os.close(out_r)
            raise
        finally:
            os.close(write_fd)
            os.close(out_w)
        if not reply or "pid" not in reply:
            os.close(read_fd)
            os.close(out_r)
            return ChildOutcome(
                ok=False,
                error={"kind": "crash", "message": "the template process did not fork a child"},
            )
        pid = int(reply["pid"])
        return _watch(
            pid,
            read_fd,
            out_r,
            _Captured(on_output),
            reap=lambda: self._reap(pid),
            shm_before=shm_before,
            wall_start=wall_start,
            started=started,
            timeout=timeout,
            stall_timeout=stall_timeout,
            on_event=on_event,
        )

    def _reply(self, wait_s: float) -> dict[str, Any] | None:
        assert self._sock is not None
        ready, _, _ = select.select([self._sock], [], [], wait_s)
        if not ready:
            return None
        try:
            msg, _ = _recv_msg(self._sock)
        except (OSError, ValueError):
            return None
        return msg

    def _reap(self, pid: int) -> int | None:
        """The forked child is the template's: ask it for the exit status."""
        if self._sock is None:
            return None
        try:
            _send_msg(self._sock, {"op": "reap", "pid": pid})
            reply = self._reply(5.0)
        except OSError:
            return None
        rc = (reply or {}).get("returncode")
        return int(rc) if rc is not None else None

    def close(self) -> None:
        """Stop the template and its group; remove what it left in /dev/shm."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                _send_msg(self._sock, {"op": "exit"})
            self._sock.close()
            self._sock = None
        if self._popen is not None:
            known = {self._popen.pid}
            with contextlib.suppress(psutil.Error):
                known |= {c.pid for c in psutil.Process(self._popen.pid).children(recursive=True)}
            kill_tree(self._popen.pid, known, grace_s=0.5)
            _wait_popen(self._popen)
            cleanup_shm(self._shm_before, known, self._wall_start)
            self._popen = None
        if self._read_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._read_fd)
            self._read_fd = None

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_forks(obj: Any) -> None:
    """Template side of :class:`ForkServer`: fork a child per request until told to stop.

    Each child leads a new session (so the parent can kill its whole group), dies with the
    template, and writes its messages and its output to the two pipes it was sent.
    """
    import tempfile

    # Nobody reads the template's own output pipe any more: late prints go to a file.
    with contextlib.suppress(OSError):
        sink = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the template
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
    sock = socket.socket(fileno=int(os.environ.pop(FORK_FD_ENV)))
    while True:
        try:
            msg, fds = _recv_msg(sock, maxfds=2)
        except (OSError, ValueError):
            return
        if msg is None or msg.get("op") == "exit":
            return
        if msg.get("op") == "reap":
            rc = _reap(int(msg["pid"]))
            _send_msg(sock, {"returncode": rc})
            continue
        if msg.get("op") != "fork" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            _send_msg(sock, {"error": "bad request"})
            continue
        write_fd, out_w = fds
        for stream in (sys.stdout, sys.stderr):
            # best effort: a closed or broken stream must not stop the fork
            with contextlib.suppress(Exception):
                stream.flush()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.setsid()
                _set_parent_death_signal()
                sock.close()
                os.dup2(out_w, 2)
                os.dup2(2, 1)
                os.close(out_w)
                from dlcheck import _child

                req = dict(msg["request"])
                req["_object"] = obj
                code = _child.serve(msg["func"], req, write_fd)
                # best effort: the child is about to exit
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
            # the forked child must reach os._exit whatever the function raised (70: internal error)
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        os.close(write_fd)
        os.close(out_w)
        _send_msg(sock, {"pid": pid})
