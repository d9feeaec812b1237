"""`dlcheck doctor` as a service: run the probes in child processes, judge, return a report.

The calling process never imports the user's code: a TARGET string is loaded in a child; an
in-memory object (Python API) reaches the child by fork.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dlcheck.doctor.records import (
    PROBE_IDS,
    RUN_ORDER,
    RUNNER_STOPPED,
    DoctorReport,
    Finding,
    TargetInfo,
)
from dlcheck.errors import DlcheckError, UsageError
from dlcheck.records import Status
from dlcheck.useroutput import Relay, write_stderr

DEFAULT_TIMEOUT_S = 30.0
LOAD_TIMEOUT_S = 120.0  # importing TARGET (heavy libraries) before the first probe reports
# Under a real launch every rank fetches the first samples of its own map-style shard: a
# dataset that fails on one rank only (a rank-dependent path, file or split) shows up there.
SHARD_FETCH = 8

ProgressFn = Callable[[dict[str, Any]], None]


def validate_probes(probes: Iterable[str] | None) -> list[str]:
    """The requested probe ids in run order; UsageError naming the valid ids otherwise."""
    if not probes:
        return list(RUN_ORDER)
    wanted = [p.strip() for p in probes]
    unknown = [p for p in wanted if p not in PROBE_IDS]
    if unknown:
        raise UsageError(
            f"Unknown probe {', '.join(repr(u) for u in unknown)}.",
            f"Valid probe ids: {', '.join(PROBE_IDS)} (see `dlcheck doctor --list-probes`).",
        )
    return [p for p in RUN_ORDER if p in wanted]


def _check_options(workers: int, world_size: int | None, timeout: float) -> None:
    if workers < 1:
        raise UsageError(
            f"--workers must be at least 1 (got {workers}).",
            "Worker probes need workers; use --workers 2 (the default).",
        )
    if world_size is not None and not 2 <= world_size <= 64:
        raise UsageError(
            f"--world-size must be between 2 and 64 (got {world_size}).",
            "Simulate the number of ranks you train with, e.g. --world-size 8.",
        )
    if timeout <= 0:
        raise UsageError(f"--timeout must be positive (got {timeout:g}).")


def _show_output(on_progress: ProgressFn | None) -> Callable[[str], None]:
    """Where a line of the user's own output goes: the progress display, else stderr."""
    if on_progress is not None:
        return lambda line: on_progress({"kind": "output", "line": line})
    return write_stderr


def run_doctor(
    target_or_object: Any,
    *,
    probes: Iterable[str] | None = None,
    scan: bool = False,
    workers: int = 2,
    world_size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    strict: bool = False,
    seed: int = 0,
    verbose: bool = False,
    on_progress: ProgressFn | None = None,
    shard_ranks: Sequence[int] | None = None,
    ranks_on_host: int | None = None,
) -> DoctorReport:
    """Run the doctor probes on a TARGET string ("module:attr", "file.py:attr") or an object.

    ``shard_ranks`` is for :mod:`dlcheck.doctor.ranks`: under a real launch, read only
    these ranks' shards of ``world_size`` (their facts arrive as ``rank_done`` events through
    ``on_progress``) and leave the shard judgement to the caller, which has every rank's facts;
    ``ranks_on_host``: how many ranks share this host's CPUs and /dev/shm (``resources``).

    Raises UsageError (exit 2) for a bad option or a TARGET that cannot be resolved, and
    UserCodeError (exit 1) when the user's module or factory raises while loading. The user's
    own output (prints, warnings) is always seen: with ``verbose`` it passes straight through
    to stderr; otherwise each distinct line is shown once (through ``on_progress`` when given,
    else on stderr), as the README promises.
    """
    from dlcheck.proc import run_child

    selected = validate_probes(probes)
    _check_options(workers, world_size if shard_ranks is None else None, timeout)
    started = time.monotonic()
    if isinstance(target_or_object, str):
        from dlcheck.target import parse_target

        parse_target(target_or_object)  # shape errors → exit 2 before any process starts
        mode, raw, obj = "target", target_or_object, None
    else:
        mode, raw, obj = "object", f"<{type(target_or_object).__name__} object>", target_or_object
    options: dict[str, Any] = {
        "workers": workers,
        "scan": scan,
        "timeout": timeout,
        "world_size": world_size,
        "seed": seed,
        "verbose": verbose,
    }
    if shard_ranks is not None:
        options.update(shard_ranks=[int(r) for r in shard_ranks], shard_fetch=SHARD_FETCH)
    if ranks_on_host and ranks_on_host > 1:
        options["ranks_on_host"] = int(ranks_on_host)
    request: dict[str, Any] = {"mode": mode, "target": raw if mode == "target" else None}
    request.update(probes=selected, options=options)

    events: list[dict[str, Any]] = []
    # The user's own prints and warnings: each distinct line once, on stderr (through the
    # progress display when there is one). With -v they pass through raw instead.
    relay = Relay(_show_output(on_progress))
    on_output = None if verbose else relay.collector()[0]

    def on_event(ev: dict[str, Any]) -> None:
        if ev.get("kind") == "output":
            if on_output is not None:
                on_output(str(ev.get("line", "")))
            return
        events.append(ev)
        if mode == "target" and "determinism" in selected and _dataset_hung(ev):
            # The runner skips determinism after a hang: stop its second run too.
            _kill_children("dlcheck.doctor.collect:determinism_entry")
        if on_progress is not None:
            on_progress(ev)

    # The determinism probe compares against a second, independent process seeded alike.
    second: dict[str, Any] = {}
    thread = None
    if "determinism" in selected:

        def second_run() -> None:
            second["outcome"] = run_child(
                "dlcheck.doctor.collect:determinism_entry",
                {**request, "options": options},
                obj=obj,
                timeout=LOAD_TIMEOUT_S + timeout,
                stderr_passthrough=verbose,
                on_output=on_output,
            )

        if mode == "target":
            thread = threading.Thread(target=second_run, daemon=True)
            thread.start()
    try:
        outcome = run_child(
            "dlcheck.doctor.collect:runner",
            request,
            obj=obj,
            stall_timeout=max(LOAD_TIMEOUT_S, timeout + 30),
            on_event=on_event,
            stderr_passthrough=verbose,
            on_output=on_output,
        )
        if thread is not None:
            thread.join()
        elif "determinism" in selected and outcome.ok:
            second_run()
    except KeyboardInterrupt:
        if thread is not None:
            _kill_children("dlcheck.doctor.collect:determinism_entry")
            thread.join(timeout=10)
        raise

    info_ev = next((e for e in events if e.get("kind") == "target"), None)
    if info_ev is None:
        _raise_load_failure(outcome, raw)
    assert info_ev is not None
    info = TargetInfo(
        **{k: v for k, v in info_ev["info"].items() if k in TargetInfo.__dataclass_fields__}
    )
    findings = build_findings(
        events, selected, timeout, second.get("outcome"), outcome, ranks=shard_ranks is None
    )
    return DoctorReport(
        target=raw,
        target_info=info,
        findings=findings,
        options={**options, "probes": selected, "strict": strict},
        duration_s=time.monotonic() - started,
        strict=strict,
    )


def _dataset_hung(ev: dict[str, Any]) -> bool:
    from dlcheck.doctor.records import PROBES_BY_ID

    if ev.get("kind") != "probe_done" or ev.get("probe") not in PROBES_BY_ID:
        return False
    failure = ev.get("failure") or {}
    return bool(failure.get("timed_out")) and PROBES_BY_ID[ev["probe"]].touches_samples


def _kill_children(marker: str) -> None:
    """Kill the process group of our child whose command line names ``marker``.

    The background run_child then sees its child end and cleans up (/dev/shm included).
    """
    import contextlib
    import os
    import signal

    import psutil

    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error, OSError):
                if marker in " ".join(child.cmdline()):
                    os.killpg(child.pid, signal.SIGKILL)


def _raise_load_failure(outcome: Any, raw: str) -> None:
    """The runner never described the target: loading it failed or hung."""
    from dlcheck.doctor.collect import raise_from

    if outcome.error:
        raise_from(outcome.error)
    if outcome.timed_out:
        raise DlcheckError(
            f"Loading {raw} did not finish within {LOAD_TIMEOUT_S:g} s.",
            "Importing the module or calling the factory hangs; run it in Python to see where.",
        )
    tail = outcome.stderr_tail.strip().splitlines()[-1:] if outcome.stderr_tail else []
    raise DlcheckError(
        f"Loading {raw} failed: {outcome.message}" + (f" ({tail[0]})" if tail else "") + ".",
        "Import the module in Python to reproduce (it may crash the interpreter).",
        detail=outcome.stderr_tail,
    )


def build_findings(
    events: list[dict[str, Any]],
    selected: list[str],
    timeout: float,
    second: Any,
    runner_outcome: Any,
    *,
    ranks: bool = True,
) -> list[Finding]:
    """Judge each probe's facts (pure judgement lives in :mod:`dlcheck.doctor.judge`);
    ``ranks``: judge the simulated ranks' shards too (events ``rank_done``)."""
    from dlcheck.doctor import judge as J

    done = {e["probe"]: e for e in events if e.get("kind") == "probe_done"}
    findings: list[Finding] = []
    for probe in selected:
        ev = done.get(probe)
        if ev is None:
            why = runner_outcome.message or "the probe runner stopped"
            findings.append(
                Finding(
                    probe=probe,
                    status=Status.ERROR,
                    title=J.PROBES_BY_ID[probe].title,
                    message=f"Not run: the probe runner stopped ({why}).",
                    evidence={"runner": why},
                    fix="Run with -v; if the dataset crashes the interpreter, fix that first.",
                    error={
                        "kind": RUNNER_STOPPED,
                        "exception": why,
                        "where": None,
                        "traceback": (runner_outcome.error or {}).get("detail"),
                    },
                )
            )
            continue
        if ev.get("skipped_hang"):
            findings.append(J.skipped_after_hang(probe, ev["skipped_hang"]))
            continue
        second_failure = None
        if probe == "determinism" and second is not None and not second.ok:
            from dlcheck.doctor.collect import failure_record

            second_failure = failure_record(second)
        if ev.get("failure"):
            found = [J.judge_failure(probe, ev["failure"], timeout)]
        elif second_failure and second_failure["origin"] == "internal":
            # The second run crashed in dlcheck: comparing against it would hide our bug.
            found = [J.judge_failure(probe, second_failure, timeout)]
        else:
            extra = None
            if probe == "determinism" and second is not None:
                extra = second.value if second.ok else {"error": second.message, "batches": []}
            try:
                found = J.judge(probe, ev["facts"], extra)
            except Exception as exc:  # a judgement bug must not take the report down
                import traceback

                from dlcheck.doctor.collect import crash_origin

                found = [
                    J.internal_error(
                        probe,
                        f"judging the facts failed: {type(exc).__name__}: {exc}",
                        where=crash_origin(exc)["where"],
                        traceback=traceback.format_exc(),
                    )
                ]
        for f in found:
            f.duration_s = ev.get("duration_s")
        findings.extend(found)
        if probe == "duplicates" and ranks:
            findings.extend(_rank_findings(events))
    if "duplicates" not in selected and ranks:
        findings.extend(_rank_findings(events))
    return J.dedupe_dataset_exceptions(findings)


def _rank_findings(events: list[dict[str, Any]]) -> list[Finding]:
    from dlcheck.doctor.judge import judge_ranks

    ranks = {e["rank"]: e for e in events if e.get("kind") == "rank_done"}
    if not ranks:
        return []
    facts = {r: e.get("facts") for r, e in ranks.items()}
    failures = {r: e["failure"] for r, e in ranks.items() if e.get("failure")}
    base = next((e.get("facts") for e in events if e.get("kind") == "rank_baseline"), None)
    return judge_ranks(facts, failures, baseline=base)
