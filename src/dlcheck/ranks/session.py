"""One dlcheck run across ranks: a gloo process group with bounded, attributable collectives.

Protocol (all keys under a per-run prefix of one TCPStore at MASTER_ADDR:MASTER_PORT, hosted by
rank 0, or by torchrun's agent when it says so):

* every rank checks in (``arrive/0/<rank>`` = host, pid) and starts a heartbeat thread
  (``hb/<rank>`` counter);
* before every collective each rank posts ``arrive/<seq>/<rank>``; rank 0 waits until all have
  arrived, then posts ``go/<seq>`` — or, when a rank failed (``abort/<rank>``), exited (same
  host: its process is gone) or went silent (no heartbeat for ``timeout_s``), posts the failure
  instead and raises :class:`RankFailure` naming the ranks. Non-root ranks wait for ``go/<seq>``
  the same way, watching rank 0. So the gloo collective itself only ever runs with every rank
  present, and nothing waits longer than the timeouts;
* at the end rank 0 posts ``done``; the other ranks wait for it before leaving, so a rank that
  exits non-zero cannot make torchrun stop rank 0 before it has printed the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from dlcheck.errors import DlcheckError, UsageError
from dlcheck.exitcodes import ExitCode, normalize_exit, worst_exit
from dlcheck.ranks.launch import LaunchInfo

DEFAULT_TIMEOUT_S = 60.0
#: Environment variable overriding the default timeout (seconds).
TIMEOUT_VAR = "DLCHECK_DIST_TIMEOUT"
# Cap on how long one collective may wait for live-but-busy ranks (heartbeats still fresh).
DEFAULT_OP_TIMEOUT_S = 3600.0

_POLL_S = 0.05
_GLOO_MIN_TIMEOUT_S = 30.0
_HINT = (
    "Every rank must run the same dlcheck command; read that rank's own stderr (or log) for its "
    f"error, and if it is only slow, raise the timeout with {TIMEOUT_VAR}=<seconds>."
)


def timeout_from_env(
    environ: Mapping[str, str] | None = None, default: float = DEFAULT_TIMEOUT_S
) -> float:
    """``DLCHECK_DIST_TIMEOUT`` in seconds, else ``default``; UsageError when malformed."""
    env = os.environ if environ is None else environ
    raw = env.get(TIMEOUT_VAR, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(
            f"{TIMEOUT_VAR}={raw!r} is not a positive number of seconds.",
            f"Set e.g. {TIMEOUT_VAR}=120, or unset it (default {default:g} s).",
        )
    return value


def _ranks_text(ranks: list[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(str(r) for r in sorted(ranks))


class RankFailure(DlcheckError):
    """One or more ranks failed, exited or never arrived; raised on every surviving rank."""

    exit_code = ExitCode.FAILED

    def __init__(
        self,
        *,
        stage: str,
        world_size: int,
        timeout_s: float,
        missing: list[int] | None = None,
        failed: Mapping[int, str] | None = None,
        exited: Mapping[int, str] | None = None,
        interrupted: list[int] | None = None,
    ):
        self.stage = stage
        self.world_size = world_size
        self.timeout_s = timeout_s
        self.missing = sorted(missing or [])
        self.failed = {int(k): v for k, v in sorted((failed or {}).items())}
        self.exited = {int(k): v for k, v in sorted((exited or {}).items())}
        self.interrupted = sorted(interrupted or [])
        parts = [f"rank {r} failed: {msg}" for r, msg in self.failed.items()]
        parts += [f"rank {r} exited during '{stage}' ({why})" for r, why in self.exited.items()]
        if self.interrupted:
            parts.append(f"{_ranks_text(self.interrupted)} interrupted")
        if self.missing:
            parts.append(
                f"{_ranks_text(self.missing)} of {world_size} did not reach '{stage}' within "
                f"{timeout_s:g} s (crashed, killed, hung or never launched)"
            )
        super().__init__("; ".join(parts) + ".", _HINT)
        if self.interrupted:
            self.exit_code = ExitCode.INTERRUPTED

    @property
    def exit_code_agreed(self) -> int:
        """130 when a rank was interrupted (Ctrl-C), else 1."""
        return int(ExitCode.INTERRUPTED if self.interrupted else ExitCode.FAILED)

    @property
    def ranks(self) -> list[int]:
        """Every rank named by this failure."""
        return sorted({*self.missing, *self.failed, *self.exited, *self.interrupted})

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "world_size": self.world_size,
            "timeout_s": self.timeout_s,
            "missing": self.missing,
            "failed": {str(k): v for k, v in self.failed.items()},
            "exited": {str(k): v for k, v in self.exited.items()},
            "interrupted": self.interrupted,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RankFailure:
        return cls(
            stage=d["stage"],
            world_size=d["world_size"],
            timeout_s=d["timeout_s"],
            missing=list(d.get("missing", [])),
            failed={int(k): v for k, v in d.get("failed", {}).items()},
            exited={int(k): v for k, v in d.get("exited", {}).items()},
            interrupted=list(d.get("interrupted", [])),
        )


class LauncherStopped(DlcheckError):
    """SIGTERM: torchrun (or SLURM) stops every rank once one rank has exited with an error."""


@dataclass(frozen=True)
class Peer:
    """Who a rank is, as it checked in."""

    rank: int
    host: str
    pid: int
    local_rank: int | None
    machine: str  # hostname + boot id + pid namespace: equal ⇔ pids are comparable

    @property
    def same_machine(self) -> bool:
        return self.machine == _machine_id()


def _machine_id() -> str:
    boot = ""
    with contextlib.suppress(OSError):
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()  # noqa: SIM115
    pidns = ""
    with contextlib.suppress(OSError):
        pidns = str(os.stat("/proc/self/ns/pid").st_ino)
    return f"{socket.gethostname()}|{boot}|{pidns}"


def _process_gone(pid: int) -> bool:
    try:
        import psutil

        proc = psutil.Process(pid)
        return proc.status() == psutil.STATUS_ZOMBIE
    except Exception:  # NoSuchProcess, or psutil missing → fall back to kill(0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False


def error_record(exc: BaseException) -> dict[str, Any]:
    """A JSON-able description of an exception raised by a rank's own work."""
    if isinstance(exc, DlcheckError):
        return {
            "kind": type(exc).__name__,
            "message": exc.message,
            "hint": exc.hint,
            "exit_code": int(exc.exit_code),
        }
    lines = traceback.format_exception_only(type(exc), exc)
    return {
        "kind": "crash",
        "message": lines[-1].strip() if lines else type(exc).__name__,
        "hint": None,
        "exit_code": int(ExitCode.FAILED),
        "detail": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


class DistSession:
    """This rank's handle on the group. Only rank 0 receives gathered results and prints."""

    def __init__(
        self,
        launch: LaunchInfo,
        store: Any,
        *,
        timeout_s: float,
        op_timeout_s: float,
        start_timeout_s: float | None = None,
    ):
        self.launch = launch
        self.rank = launch.rank
        self.world_size = launch.world_size
        self.timeout_s = timeout_s
        self.op_timeout_s = op_timeout_s
        self.start_timeout_s = timeout_s if start_timeout_s is None else start_timeout_s
        self.peers: list[Peer] = []
        self._store = store
        self._seq = 0
        self._hb_seen: dict[int, tuple[int, float]] = {}
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None
        self._pg = False

    # ---- identity -----------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def host(self) -> str:
        return self.peers[self.rank].host if self.peers else socket.gethostname()

    @property
    def local_rank(self) -> int:
        """LOCAL_RANK / SLURM_LOCALID, else this rank's position among the ranks on its host."""
        if self.launch.local_rank is not None:
            return self.launch.local_rank
        same = [p.rank for p in self.peers if p.host == self.host]
        return same.index(self.rank) if self.rank in same else 0

    @property
    def local_world_size(self) -> int:
        """How many ranks run on this host (counted from the hosts the ranks checked in from)."""
        if self.peers:
            return sum(1 for p in self.peers if p.host == self.host)
        return self.launch.local_world_size or 1

    def hosts(self) -> dict[str, list[int]]:
        """host → ranks on it, in rank order."""
        out: dict[str, list[int]] = {}
        for p in self.peers:
            out.setdefault(p.host, []).append(p.rank)
        return out

    # ---- collectives ----------------------------------------------------------------------
    def gather(self, obj: Any, *, stage: str = "gather", wait_s: float | None = None) -> Any:
        """Every rank's JSON-able ``obj`` on rank 0 as a list indexed by rank; None elsewhere."""
        import torch.distributed as tdist

        payload = _to_json(obj)
        self._sync(stage, wait_s)
        out: list[Any] | None = [None] * self.world_size if self.is_root else None
        self._collective(stage, lambda: tdist.gather_object(payload, out, dst=0))
        return [json.loads(s) for s in out] if out is not None else None

    def all_gather(self, obj: Any, *, stage: str = "all_gather", wait_s: float | None = None):
        """Every rank's JSON-able ``obj`` on every rank, indexed by rank."""
        import torch.distributed as tdist

        payload = _to_json(obj)
        self._sync(stage, wait_s)
        out: list[Any] = [None] * self.world_size
        self._collective(stage, lambda: tdist.all_gather_object(out, payload))
        return [json.loads(s) for s in out]

    def broadcast(self, obj: Any = None, *, stage: str = "broadcast", wait_s: float | None = None):
        """Rank 0's JSON-able ``obj`` on every rank (the others' argument is ignored)."""
        import torch.distributed as tdist

        box = [_to_json(obj) if self.is_root else None]
        self._sync(stage, wait_s)
        self._collective(stage, lambda: tdist.broadcast_object_list(box, src=0))
        return json.loads(box[0]) if box[0] is not None else None

    def barrier(self, *, stage: str = "barrier", wait_s: float | None = None) -> None:
        """Wait until every rank has arrived (bounded; failures name the ranks)."""
        self._sync(stage, wait_s)

    def agree_exit(self, code: int | None, *, wait_s: float | None = None) -> int:
        """The worst exit code over all ranks (130 > 2 > 1 > 0), returned on every rank."""
        return worst_exit(self.all_gather(normalize_exit(code), stage="exit code", wait_s=wait_s))

    def gather_work(
        self,
        work: Callable[[], Any],
        *,
        stage: str = "results",
        wait_s: float | None = None,
    ) -> list[dict[str, Any]] | None:
        """Run ``work()`` on this rank and gather what happened on rank 0.

        Each record is ``{"rank", "host", "ok": True, "value": …}`` or, when ``work`` raised,
        ``{"rank", "host", "ok": False, "error": {"kind", "message", "hint", "exit_code"}}``:
        a rank whose work fails still reaches the gather, so rank 0 can name it.
        KeyboardInterrupt propagates.
        """
        return self.gather(self.capture(work), stage=stage, wait_s=wait_s)

    def capture(self, work: Callable[[], Any]) -> dict[str, Any]:
        """Run ``work()`` here; its outcome as the record :meth:`gather_work` sends."""
        record: dict[str, Any] = {"rank": self.rank, "host": self.host}
        try:
            record.update(ok=True, value=work())
            _to_json(record)
        except LauncherStopped:
            raise  # the launcher stopping this rank is not a failure of the work
        except Exception as exc:  # includes a value that JSON cannot hold
            record = {"rank": self.rank, "host": self.host, "ok": False}
            record["error"] = error_record(exc)
        return record

    @contextlib.contextmanager
    def root_only_stdout(self) -> Iterator[None]:
        """On ranks other than 0, send stdout (Python and fd 1) to stderr for the block."""
        if self.is_root:
            yield
            return
        with stdout_to_stderr():
            yield

    # ---- protocol ---------------------------------------------------------------------------
    def _sync(self, stage: str, wait_s: float | None, payload: str = "1") -> Any:
        # Every rank makes the same sequence of calls, so the counters agree; 0 is the check-in.
        seq = self._seq
        self._seq += 1
        self._store.set(f"arrive/{seq}/{self.rank}", payload)
        cap = self.op_timeout_s if wait_s is None else wait_s
        if self.is_root:
            self._root_wait(seq, stage, cap)
            return None
        return self._follower_wait(seq, stage, cap)

    def _root_wait(self, seq: int, stage: str, cap: float) -> None:
        store = self._store
        pending = set(range(1, self.world_size))
        start = time.monotonic()
        last_probe = 0.0
        while True:
            keys = [f"arrive/{seq}/{r}" for r in sorted(pending)]
            if keys and store.check(keys):
                pending.clear()
            else:
                pending = {r for r in pending if not store.check([f"arrive/{seq}/{r}"])}
            if not pending:
                go: dict[str, Any] = {"ok": True}
                if seq == 0:
                    others = [
                        json.loads(store.get(f"arrive/0/{r}")) for r in range(1, self.world_size)
                    ]
                    self._set_peers(others)
                    go["peers"] = [_peer_info(self.launch), *others]
                store.set(f"go/{seq}", json.dumps(go))
                return
            now = time.monotonic()
            if now - last_probe < 0.25 and now - start < cap:
                time.sleep(_POLL_S)
                continue
            last_probe = now
            failed, interrupted = self._aborted(pending)
            exited = self._exited(pending)
            quiet = self._silence_s(seq)
            silent = [r for r in pending if now - self._heartbeat(r, now) > quiet]
            if now - start >= cap:
                silent = sorted(pending)
            if failed or exited or silent or interrupted:
                failure = RankFailure(
                    stage=stage,
                    world_size=self.world_size,
                    timeout_s=quiet if now - start < cap else cap,
                    missing=[r for r in silent if r not in failed and r not in exited],
                    failed=failed,
                    exited=exited,
                    interrupted=interrupted,
                )
                store.set(f"go/{seq}", json.dumps({"ok": False, "failure": failure.to_dict()}))
                raise failure
            time.sleep(_POLL_S)

    def _follower_wait(self, seq: int, stage: str, cap: float) -> Any:
        store = self._store
        start = time.monotonic()
        last_probe = 0.0
        try:
            while True:
                if store.check([f"go/{seq}"]):
                    go = json.loads(store.get(f"go/{seq}"))
                    if not go["ok"]:
                        raise RankFailure.from_dict(go["failure"])
                    if seq == 0:
                        self._set_peers(go.get("peers", []))
                    return go
                now = time.monotonic()
                if now - last_probe >= 0.25 or now - start >= cap:
                    last_probe = now
                    failed, interrupted = self._aborted({0})
                    exited = self._exited({0})
                    quiet = self._silence_s(seq)
                    silent = now - self._heartbeat(0, now) > quiet or now - start >= cap
                    if failed or interrupted or exited or silent:
                        raise RankFailure(
                            stage=stage,
                            world_size=self.world_size,
                            timeout_s=quiet,
                            missing=[0] if silent and not (failed or exited) else [],
                            failed=failed,
                            exited=exited,
                            interrupted=interrupted,
                        )
                time.sleep(_POLL_S)
        except (RankFailure, LauncherStopped):
            raise
        except Exception as exc:  # rank 0's store went away: rank 0 is gone
            raise RankFailure(
                stage=stage,
                world_size=self.world_size,
                timeout_s=self.timeout_s,
                exited={0: f"lost the connection to rank 0's store: {_message(exc)}"},
            ) from None

    def _silence_s(self, seq: int) -> float:
        # Ranks may take longer to start (imports on a network file system, staggered launch)
        # than to answer once running.
        return self.start_timeout_s if seq == 0 else self.timeout_s

    def _aborted(self, ranks: set[int]) -> tuple[dict[int, str], list[int]]:
        failed: dict[int, str] = {}
        interrupted: list[int] = []
        for r in sorted(ranks):
            if self._store.check([f"abort/{r}"]):
                info = json.loads(self._store.get(f"abort/{r}"))
                if info.get("interrupted"):
                    interrupted.append(r)
                else:
                    failed[r] = info.get("message", "failed")
        return failed, interrupted

    def _exited(self, ranks: set[int]) -> dict[int, str]:
        out = {}
        for r in sorted(ranks):
            if (
                r < len(self.peers)
                and self.peers[r].same_machine
                and _process_gone(self.peers[r].pid)
            ):
                out[r] = f"process {self.peers[r].pid} on {self.peers[r].host} is gone"
        return out

    def exited_peers(self) -> dict[int, str]:
        """Other ranks on this machine whose process is gone: rank → why (for a report made
        after the group broke, e.g. when the launcher stops this rank because one exited)."""
        return self._exited(set(range(self.world_size)) - {self.rank})

    def _heartbeat(self, rank: int, now: float) -> float:
        """When this rank's heartbeat counter last moved (monotonic, local clock)."""
        try:
            value = int(self._store.add(f"hb/{rank}", 0))
        except Exception:  # c10d store errors (RuntimeError subclasses, OSError): unknown
            value = -1
        seen = self._hb_seen.get(rank)
        if seen is None or seen[0] != value:
            self._hb_seen[rank] = seen = (value, now)
        return seen[1]

    def _collective(self, stage: str, op: Callable[[], Any]) -> None:
        try:
            op()
        except LauncherStopped:
            raise
        except Exception as exc:  # gloo/c10d raise RuntimeError subclasses of many kinds
            # Every rank had arrived, so a rank must have died in between: name it if we can.
            exited = self._exited(set(range(self.world_size)) - {self.rank})
            if exited:
                raise RankFailure(
                    stage=stage, world_size=self.world_size, timeout_s=self.timeout_s, exited=exited
                ) from None
            raise DlcheckError(
                f"The '{stage}' exchange between ranks failed on rank {self.rank}: "
                f"{_message(exc)}.",
                _HINT,
            ) from None

    def _set_peers(self, infos: list[dict[str, Any]]) -> None:
        table = {int(p["rank"]): p for p in [*infos, _peer_info(self.launch)]}
        self.peers = [Peer(**table[r]) for r in range(self.world_size) if r in table]

    # ---- lifecycle ----------------------------------------------------------------------------
    def _start(self) -> None:
        import torch.distributed as tdist

        self._start_heartbeat()
        self._sync("start", self.start_timeout_s, payload=json.dumps(_peer_info(self.launch)))
        from torch.distributed import PrefixStore

        try:
            tdist.init_process_group(
                backend="gloo",
                store=PrefixStore("pg/", self._store),
                rank=self.rank,
                world_size=self.world_size,
                # Collectives start only once every rank has arrived (see _sync), so gloo's own
                # timeout is a backstop; a floor keeps a loaded machine from tripping it.
                timeout=timedelta(seconds=max(self.timeout_s, _GLOO_MIN_TIMEOUT_S)),
            )
        except LauncherStopped:
            raise
        except Exception as exc:  # c10d/gloo errors: shown as one line, never a C++ trace
            raise DlcheckError(
                f"Rank {self.rank} could not join the gloo process group: {_message(exc)}.",
                "On several nodes, set GLOO_SOCKET_IFNAME to the network interface the nodes "
                "reach each other on (e.g. eth0 or ib0), and check that no firewall blocks it.",
            ) from None
        self._pg = True

    def _start_heartbeat(self) -> None:
        try:
            store = self._store.clone()
        except Exception as exc:  # c10d store errors: say so, a silent rank would mislead
            sys.stderr.write(
                f"dlcheck: rank {self.rank} cannot send heartbeats ({_message(exc)}); "
                "other ranks may report it silent.\n"
            )
            return
        interval = max(0.1, min(1.0, self.timeout_s / 5))
        key = f"hb/{self.rank}"

        def beat() -> None:
            # A failed beat is retried at the next interval: one transient store error must
            # not stop the heartbeat and make a healthy rank look silent to rank 0.
            while not self._hb_stop.wait(interval):
                with contextlib.suppress(Exception):  # c10d store errors: retried next beat
                    store.add(key, 1)

        with contextlib.suppress(Exception):  # the first beat is retried by the thread
            store.add(key, 1)
        self._hb_thread = threading.Thread(target=beat, name="dlcheck-heartbeat", daemon=True)
        self._hb_thread.start()

    def _abort(self, exc: BaseException) -> None:
        if isinstance(exc, RankFailure):
            return  # already known to everyone who needs it
        info: dict[str, Any]
        if isinstance(exc, KeyboardInterrupt):
            info = {"interrupted": True}
        else:
            info = {"message": error_record(exc)["message"]}
        with contextlib.suppress(Exception):  # best effort: the store may be gone already
            self._store.set(f"abort/{self.rank}", json.dumps(info))

    def _finish(self) -> None:
        """Leave together: rank 0 posts ``done`` and waits (briefly) for every ``bye``.

        Non-root ranks wait for ``done`` so their exit cannot make the launcher stop rank 0
        before it has printed; rank 0 waits for the byes so it does not close the store under
        a rank that is still talking to it.
        """
        with contextlib.suppress(Exception):  # best effort: leaving must never raise
            if self.is_root:
                self._store.set("done", "1")
                others = set(range(1, self.world_size))
                deadline = time.monotonic() + min(self.timeout_s, 10.0)
                while others and time.monotonic() < deadline:
                    others = {r for r in others if not self._store.check([f"bye/{r}"])}
                    others -= set(self._exited(others))
                    if others:
                        time.sleep(_POLL_S)
                return
            deadline = time.monotonic() + self.op_timeout_s
            last_probe = 0.0
            while time.monotonic() < deadline and not self._store.check(["done"]):
                now = time.monotonic()
                if now - last_probe >= 0.25:
                    last_probe = now
                    if self._store.check(["abort/0"]) or self._exited({0}):
                        return
                    if now - self._heartbeat(0, now) > self.timeout_s:
                        return
                time.sleep(_POLL_S)
            self._stop_heartbeat()
            self._store.set(f"bye/{self.rank}", "1")

    def _stop_heartbeat(self) -> None:
        self._hb_stop.set()
        if self._hb_thread is not None:
            self._hb_thread.join(timeout=2)
            self._hb_thread = None

    def _close(self) -> None:
        self._stop_heartbeat()
        if self._pg:
            import torch.distributed as tdist

            with contextlib.suppress(Exception):  # a broken group cannot be torn down cleanly
                tdist.destroy_process_group()
            self._pg = False


def _peer_info(launch: LaunchInfo) -> dict[str, Any]:
    return asdict(_peer(launch))


def _peer(launch: LaunchInfo) -> Peer:
    return Peer(
        rank=launch.rank,
        host=socket.gethostname(),
        pid=os.getpid(),
        local_rank=launch.local_rank,
        machine=_machine_id(),
    )


def _to_json(obj: Any) -> str:
    from dlcheck.output import to_jsonable

    return json.dumps(to_jsonable(obj), allow_nan=False)


def _message(exc: BaseException) -> str:
    """The last line of an exception's message, without its type (c10d's are long)."""
    text = str(exc).strip().splitlines()
    return text[-1].rstrip(".") if text else type(exc).__name__


def quiet_c10d_logs() -> bool:
    """Keep c10d's C++ stack traces (logged when a peer's socket closes or a connect times out)
    off stderr: dlcheck reports those failures in one sentence. Effective only before torch is
    imported (the level is read when torch loads); returns whether it was in time."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")
    return True


C10D_LOG_VAR = "TORCH_CPP_LOG_LEVEL"  # what quiet_c10d_logs sets


def quiet_c10d_logs_for_join() -> Callable[[], None]:
    """:func:`quiet_c10d_logs`, undone on request: returns ``release()``, which drops the
    variable again when dlcheck (not the user) set it. Call it once torch has read it (after
    joining) and at the end, so user code and reports never inherit dlcheck's setting."""
    owned = C10D_LOG_VAR not in os.environ and quiet_c10d_logs()

    def release() -> None:
        if owned:
            os.environ.pop(C10D_LOG_VAR, None)

    return release


@contextlib.contextmanager
def _captured_stderr_fd() -> Iterator[list[str]]:
    """Capture fd 2 (C++ logs) for the block; the text lands in the yielded list."""
    import tempfile

    box: list[str] = []
    with contextlib.suppress(Exception):  # a closed or replaced stderr: nothing to flush
        sys.stderr.flush()
    try:
        tmp = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed in the finally below)
        saved = os.dup(2)
    except OSError:
        yield box
        return
    os.dup2(tmp.fileno(), 2)
    try:
        yield box
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        tmp.seek(0)
        box.append(tmp.read().decode("utf-8", "replace"))
        tmp.close()


def _connect(launch: LaunchInfo, timeout_s: float) -> Any:
    quiet_c10d_logs()
    try:
        import torch.distributed as tdist
    except Exception as exc:  # a broken torch install may raise anything on import
        from dlcheck.errors import TorchMissingError

        raise TorchMissingError("(distributed)", _message(exc)) from None
    if not tdist.is_available():
        raise DlcheckError(
            "This PyTorch build has no torch.distributed, so dlcheck cannot join the other ranks.",
            f"Install a standard PyTorch build, or set DLCHECK_DISTRIBUTED=0 to run rank "
            f"{launch.rank} alone.",
        )
    host_store = launch.is_root and not launch.agent_store
    failure: Exception | None = None
    # A client retries until rank 0 listens; c10d logs each failed try with a C++ stack trace
    # (when torch was imported before quiet_c10d_logs could act). Keep that for -v only.
    with _captured_stderr_fd() as logs:
        try:
            store = tdist.TCPStore(
                launch.master_addr,
                launch.master_port,
                world_size=None if host_store else launch.world_size,
                is_master=host_store,
                timeout=timedelta(seconds=timeout_s),
                wait_for_workers=False,
                multi_tenant=host_store,
            )
        except LauncherStopped:
            raise
        except Exception as exc:  # c10d raises RuntimeError subclasses and OSError: reported below
            failure = exc
    if failure is not None:
        where = f"{launch.master_addr}:{launch.master_port}"
        detail = "".join(logs).strip() or None
        if host_store:
            raise DlcheckError(
                f"Rank 0 could not listen on {where}: {_message(failure)}.",
                "Pick a free MASTER_PORT (another job may be using this one).",
                detail=detail,
            )
        raise DlcheckError(
            f"Rank {launch.rank} could not reach rank 0's store at {where} within "
            f"{timeout_s:g} s: {_message(failure)}.",
            "Check that rank 0 was launched with the same MASTER_ADDR/MASTER_PORT and that this "
            "node can reach that address.",
            detail=detail,
        )
    return tdist.PrefixStore(launch.key_prefix, store)


class _SigtermGuard:
    """SIGTERM while a session runs: the launcher stops every rank once one rank has exited.

    Until this rank knows of a failure, SIGTERM raises :class:`LauncherStopped` wherever the rank
    is, so the session can name the rank that exited. Once this rank is reporting a failure of
    its own (it often sees the exit itself: its poll and torchrun's run at the same pace), a
    SIGTERM must neither replace that report with a new exception out of the teardown nor kill
    the rank, by the default action the session would restore, before the report is printed.
    So from then on a SIGTERM is honoured ``grace_s`` later, with the disposition the session
    found, unless the process has ended by then (torchrun itself waits 30 s before SIGKILL).
    After a failed session the guard stays installed for that reason: the caller prints the
    failure after the session has ended.
    """

    # Half torchrun's 30 s: room for a slow interpreter exit on a loaded machine, and still
    # before the launcher's SIGKILL.
    def __init__(self, grace_s: float = 15.0) -> None:
        self.grace_s = grace_s
        self.reporting = False
        self.installed = False
        self.previous: Any = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        try:
            previous = signal.signal(signal.SIGTERM, self._handle)
        except (ValueError, OSError):
            return
        # None: a handler set outside Python, which cannot be put back; the default it is.
        self.previous = signal.SIG_DFL if previous is None else previous
        self.installed = True

    def report(self) -> None:
        """A failure is being reported: from now on SIGTERM waits for it."""
        self.reporting = True

    def restore(self) -> None:
        if self.installed and not self.reporting:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signal.SIGTERM, self.previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.reporting:
            self.reporting = True  # the stop becomes the failure being reported
            raise LauncherStopped(
                "Stopped by SIGTERM: the launcher stops every rank once one rank has exited "
                "(torchrun does this when a rank fails or is killed).",
                "Look for the failed rank in the launcher's error summary and in that rank's "
                "stderr.",
            )
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGTERM, self.previous)
        timer = threading.Timer(self.grace_s, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()


@contextlib.contextmanager
def session(
    launch: LaunchInfo,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    op_timeout_s: float = DEFAULT_OP_TIMEOUT_S,
    start_timeout_s: float | None = None,
) -> Iterator[DistSession]:
    """Join the group (gloo), yield this rank's :class:`DistSession`, and always tear it down.

    ``start_timeout_s`` (default ``timeout_s``) bounds connecting to rank 0 and every rank's
    check-in; ``timeout_s`` bounds how long a rank may stay silent (no heartbeat) once running
    before it is reported, and each gloo collective; ``op_timeout_s`` caps any one collective's
    wait for ranks that are alive but busy (override per call with ``wait_s``). Raises
    :class:`RankFailure` (exit 1) on every surviving rank when a rank fails, exits or is missing.
    """
    guard = _SigtermGuard()
    guard.install()
    ctx: DistSession | None = None
    try:
        start_s = timeout_s if start_timeout_s is None else start_timeout_s
        store = _connect(launch, start_s)
        ctx = DistSession(
            launch, store, timeout_s=timeout_s, op_timeout_s=op_timeout_s, start_timeout_s=start_s
        )
        try:
            ctx._start()
            yield ctx
        except LauncherStopped as exc:
            guard.report()
            ctx._abort(exc)
            # The launcher stops everyone because some rank ended: name it when we can see it.
            exited = ctx._exited(set(range(ctx.world_size)) - {ctx.rank})
            if exited:
                raise RankFailure(
                    stage="stopped by the launcher",
                    world_size=ctx.world_size,
                    timeout_s=timeout_s,
                    exited=exited,
                ) from None
            raise
        except BaseException as exc:  # Ctrl-C and SystemExit too: the other ranks must learn why
            guard.report()
            ctx._abort(exc)
            raise
        else:
            ctx._finish()
    except BaseException:
        guard.report()  # a failure before the group was joined (the connect) is reported too
        raise
    finally:
        if ctx is not None:
            ctx._close()
        guard.restore()


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (sys.stdout and fd 1, child processes too) to stderr."""
    with contextlib.suppress(Exception):  # a closed or replaced stdout: nothing to flush
        sys.stdout.flush()
    saved_fd = None
    with contextlib.suppress(OSError):
        saved_fd = os.dup(1)
        os.dup2(2, 1)
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a closed or replaced stderr: nothing to flush
            sys.stderr.flush()
        sys.stdout = saved
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
