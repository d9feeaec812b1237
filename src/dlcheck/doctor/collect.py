"""Child-process side of `dlcheck doctor`. The parent imports only its stdlib-level helpers
(:func:`failure_record`, :func:`crash_origin`, :func:`raise_from`); never torch or user code.

The parent starts one *runner* child (:func:`runner`). It imports torch once, loads TARGET
(seeded), then runs every probe in its own fork of that loaded state through
:func:`dlcheck.proc.run_child` with a timeout: each probe sees the dataset exactly as the
DataLoader workers would inherit it, and a probe that hangs, crashes or is killed becomes that
probe's result without touching the others. Results stream to the parent as events.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

from dlcheck.errors import DlcheckError

INTERNAL_HINT = (
    "This is a dlcheck bug, not a problem with your data: please report it "
    "(https://github.com/dlcheck/dlcheck/issues); run with -v for the traceback."
)


def _load(request: dict[str, Any]) -> tuple[Any, str | None]:
    """The target object (from the fork, or loaded from TARGET) and its source file."""
    if "_object" in request and request.get("mode") == "object":
        return request["_object"], None
    from dlcheck.target import load_target, parse_target

    spec = parse_target(request["target"])
    obj = load_target(spec)
    source: str | None = spec.source if spec.is_file else None
    if source is None:
        import sys

        mod = sys.modules.get(spec.source)
        source = getattr(mod, "__file__", None)
    return obj, source


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')


def _frame_kind(path: str) -> str:
    """ "dlcheck", "torch", "stdlib" or "user" (the user's code and the libraries it calls)."""
    import sysconfig

    import dlcheck

    if path.startswith(os.path.dirname(dlcheck.__file__) + os.sep):
        return "dlcheck"
    torch_mod = sys.modules.get("torch")
    torch_file = getattr(torch_mod, "__file__", None)
    if torch_file and path.startswith(os.path.dirname(torch_file) + os.sep):
        return "torch"
    if path.startswith("<frozen "):
        return "stdlib"
    for key in ("stdlib", "platstdlib"):
        root = sysconfig.get_paths().get(key)
        if root and path.startswith(root + os.sep) and "-packages" not in path:
            return "stdlib"
    return "user"


def crash_origin(exc: BaseException) -> dict[str, Any]:
    """Whose code an exception that escaped a probe came from: ``{"origin", "where"}``.

    ``origin`` is "user" when a frame of the user's code (or a library it calls) lies below
    the innermost dlcheck frame: the dataset raised, which is a finding about the data.
    Otherwise the exception was raised by dlcheck itself, or by torch or the standard library
    on dlcheck's behalf (a DataLoader built with arguments it refuses): "internal", a dlcheck
    bug. A DataLoader worker's exception carries the worker's traceback as text; its frames
    count as the innermost ones.
    """
    frames: list[tuple[str, int | None, str]] = [
        (f.filename, f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__)
    ]
    if "Original Traceback" in str(exc):
        for line in str(exc).splitlines():
            m = _FRAME.match(line)
            if m:
                frames.append((m["file"], int(m["line"]), m["func"].strip()))
    kinds = [_frame_kind(f[0]) for f in frames]
    ours = [i for i, k in enumerate(kinds) if k == "dlcheck"]
    below = range(ours[-1] + 1 if ours else 0, len(frames))
    users = [i for i in below if kinds[i] == "user"]
    origin = "user" if users or not ours else "internal"
    pick = users[-1] if users else (ours[-1] if ours else len(frames) - 1)
    where = None
    if pick >= 0:
        path, lineno, func = frames[pick]
        if kinds[pick] == "dlcheck":
            import dlcheck

            path = "dlcheck/" + os.path.relpath(path, os.path.dirname(dlcheck.__file__))
        where = f"{path}:{lineno} ({func})"
    return {"origin": origin, "where": where}


@contextlib.contextmanager
def reporting_crashes(send: Any) -> Iterator[None]:
    """Tell the parent whose code raised before an exception ends this child (the child's
    error message itself carries the exception and its traceback)."""
    try:
        yield
    except Exception as exc:  # a probe crash: an internal finding
        with contextlib.suppress(Exception):
            send({"crash": crash_origin(exc)})
        raise


def probe_entry(request: dict[str, Any], send: Any) -> Any:
    """Runs in a fork of the runner: one probe's fact collection."""
    from dlcheck.doctor.facts import COLLECTORS, reap_workers

    ctx = request["_object"]
    try:
        with reporting_crashes(send):
            return COLLECTORS[request["probe"]](ctx, send)
    finally:
        reap_workers()


def rank_entry(request: dict[str, Any], send: Any) -> Any:
    """Runs in a fork of the runner taken before TARGET was loaded: rank r of N."""
    from dlcheck.doctor.facts import (
        make_context,
        patch_distributed,
        rank_samples,
        reap_workers,
        set_seeds,
    )

    rank, world = int(request["rank"]), int(request["world_size"])
    patch_distributed(
        rank,
        world,
        local_rank=request.get("local_rank"),
        local_world_size=request.get("local_world_size"),
    )
    set_seeds(int(request["options"].get("seed", 0)))
    if request.get("mode") == "object":
        obj, source = request["_object"], None
    else:
        obj, source = _load({"target": request["target"]})
    if request.get("alarm_s"):
        # A fresh interpreter (a real rank): loading is bounded by the parent's timeout, the
        # shard by one probe timeout. SIGALRM ends this process; its workers die with it.
        import signal

        signal.alarm(max(1, int(float(request["alarm_s"]) + 0.999)))
    ctx = make_context(obj, request["options"], source)
    try:
        return rank_samples(
            ctx,
            rank,
            world,
            baseline=bool(request.get("baseline")),
            fetch=int(request.get("fetch") or 0),
        )
    finally:
        reap_workers()


def determinism_entry(request: dict[str, Any], send: Any) -> Any:
    """A second, independent run for the determinism probe (fresh interpreter or fork)."""
    from dlcheck.doctor.facts import batch_fingerprints, make_context, reap_workers, set_seeds

    world = request["options"].get("world_size")
    if world:
        from dlcheck.doctor.facts import patch_distributed

        patch_distributed(0, int(world))
    set_seeds(int(request["options"].get("seed", 0)))
    obj, source = _load(request)
    # Loading may take long (heavy imports); the batches get one probe timeout, like the
    # runner's probes. SIGALRM ends this process; its workers die with it (DieWithParent).
    import signal

    signal.alarm(max(1, int(float(request["options"].get("timeout", 30)) + 0.999)))
    try:
        with reporting_crashes(send):
            ctx = make_context(obj, request["options"], source)
            workers = ctx.target_workers if ctx.target_workers > 0 else ctx.workers
            return batch_fingerprints(ctx, workers)
    finally:
        reap_workers()


def failure_record(outcome: Any) -> dict[str, Any]:
    """Why a child run (a probe, a rank's shard) delivered no result, as JSON-able facts.

    ``origin``: for an exception, whose code raised it ("user" or "internal", see
    :func:`crash_origin`); None when the child hung, died or did not say.
    """
    last_step = None
    for ev in reversed(outcome.events):
        if "step" in ev:
            last_step = ev["step"]
            break
    crash: dict[str, Any] = next(
        (ev["crash"] for ev in reversed(outcome.events) if "crash" in ev), {}
    )
    return {
        "message": outcome.message,
        "kind": (outcome.error or {}).get("kind"),
        "origin": crash.get("origin"),
        "where": crash.get("where"),
        "detail": (outcome.error or {}).get("detail"),
        "timed_out": outcome.timed_out,
        "signal": outcome.signal,
        "returncode": outcome.returncode,
        "last_step": last_step,
        "stderr_tail": outcome.stderr_tail[-1500:],
    }


def runner(request: dict[str, Any], send: Any) -> Any:
    """Load TARGET once, then run each requested probe in its own fork with a timeout."""
    try:
        import torch  # noqa: F401 - imported once here so every fork starts warm
    except ImportError as exc:
        from dlcheck.errors import TorchMissingError

        raise TorchMissingError("doctor", str(exc)) from None

    from dlcheck.doctor.facts import describe, make_context, set_seeds, snapshot_threads
    from dlcheck.doctor.probes import probe_module
    from dlcheck.doctor.records import PROBES_BY_ID, RUN_ORDER
    from dlcheck.proc import run_child
    from dlcheck.useroutput import Relay

    # The user's prints and warnings in a probe's fork (its workers' too) go up as events,
    # each distinct line once, tagged with the probe (or rank run) that printed it first.
    running = {"probe": "load"}
    relay = Relay(lambda line: send({"kind": "output", "probe": running["probe"], "line": line}))
    on_output = None if request["options"].get("verbose") else relay.collector()[0]

    options = request["options"]
    timeout = float(options.get("timeout", 30.0))
    mode = request.get("mode", "target")
    world = options.get("world_size")
    base = {k: v for k, v in request.items() if k != "_object"}
    obj_for_fork: Any = request.get("_object") if mode == "object" else True

    # Rank runs fork *before* TARGET is imported, so a factory that builds a
    # DistributedSampler (or an iterable that reads the rank) sees its simulated rank.
    # Under a real launch (``shard_ranks``: this process's own rank) only that rank is read
    # here; the other ranks read theirs in their own processes.
    shard_ranks = options.get("shard_ranks")
    ranks = range(int(world or 0)) if shard_ranks is None else [int(r) for r in shard_ranks]
    if world and 0 in ranks:
        # The whole stream as one process sees it: what the ranks together should cover.
        base_out = run_child(
            "dlcheck.doctor.collect:rank_entry",
            {**base, "rank": 0, "world_size": 1, "baseline": True},
            obj=obj_for_fork,
            timeout=timeout,
            stderr_passthrough=bool(options.get("verbose")),
            on_output=on_output,
        )
        send({"kind": "rank_baseline", "facts": base_out.value if base_out.ok else None})
    if world:
        for rank in ranks:
            send({"kind": "rank_start", "rank": rank})
            running["probe"] = f"rank {rank}"
            out = run_child(
                "dlcheck.doctor.collect:rank_entry",
                {
                    **base,
                    "rank": rank,
                    "world_size": int(world),
                    "fetch": int(options.get("shard_fetch") or 0),
                },
                obj=obj_for_fork,
                timeout=timeout,
                stderr_passthrough=bool(options.get("verbose")),
                on_output=on_output,
            )
            send(
                {
                    "kind": "rank_done",
                    "rank": rank,
                    "facts": out.value if out.ok else None,
                    "failure": None if out.ok else failure_record(out),
                }
            )

    if world:  # the probes see the target as rank 0 of the (simulated or real) world
        from dlcheck.doctor.facts import patch_distributed

        patch_distributed(0, int(world))
    set_seeds(int(options.get("seed", 0)))
    try:
        obj, source = _load(request)
    except DlcheckError as exc:
        if "process group has not been initialized" in exc.message and not world:
            exc.hint = (
                "The target needs torch.distributed: pass --world-size N to simulate N ranks "
                "(or run dlcheck under torchrun)."
            )
        raise
    try:
        ctx = make_context(obj, options, source)
        snapshot_threads()
        info = describe(ctx, request.get("target") or "<object>")
    except Exception as exc:  # any failure here is dlcheck's, reported as such
        # TARGET loaded fine; what failed is dlcheck looking at it.
        raise DlcheckError(
            f"dlcheck failed while describing {request.get('target') or 'the object'}: "
            f"{traceback.format_exception_only(type(exc), exc)[-1].strip()}",
            INTERNAL_HINT,
            detail=traceback.format_exc(),
        ) from None
    send({"kind": "target", "info": info})

    hung_in: str | None = None
    for probe in RUN_ORDER:
        if probe not in request["probes"]:
            continue
        if hung_in is not None and PROBES_BY_ID[probe].touches_samples:
            send({"kind": "probe_done", "probe": probe, "skipped_hang": hung_in})
            continue
        send({"kind": "probe_start", "probe": probe})
        running["probe"] = probe

        def forward(ev: dict[str, Any], probe: str = probe) -> None:
            if "progress" in ev:
                send(
                    {
                        "kind": "progress",
                        "probe": probe,
                        "done": ev["progress"],
                        "total": ev.get("total"),
                    }
                )

        hook = getattr(probe_module(probe), "bounded_by_progress", None)
        by_progress = bool(hook is not None and hook(ctx))
        started = time.monotonic()
        out = run_child(
            "dlcheck.doctor.collect:probe_entry",
            {"probe": probe},
            obj=ctx,
            # A run that may take long (--scan) is bounded by progress (a stall), not total time.
            timeout=None if by_progress else timeout,
            stall_timeout=timeout if by_progress else None,
            on_event=forward,
            stderr_passthrough=bool(options.get("verbose")),
            on_output=on_output,
        )
        failure = None if out.ok else failure_record(out)
        if failure and failure["timed_out"] and PROBES_BY_ID[probe].touches_samples:
            hung_in = probe
        send(
            {
                "kind": "probe_done",
                "probe": probe,
                "facts": out.value if out.ok else None,
                "failure": failure,
                "duration_s": round(time.monotonic() - started, 3),
                "context": {"pid": os.getpid()},
            }
        )
    return {"done": True}


def raise_from(error: dict[str, Any]) -> None:
    """Re-raise a DlcheckError that a child reported (keeps exit code, hint and detail)."""
    from dlcheck.errors import UsageError
    from dlcheck.target import UserCodeError

    cls: type[DlcheckError] = DlcheckError
    if error.get("exit_code") == 2:
        cls = UsageError
    elif error.get("kind") == "UserCodeError":
        cls = UserCodeError
    raise cls(str(error.get("message") or "failed"), error.get("hint"), detail=error.get("detail"))
