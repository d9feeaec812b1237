"""``dlcheck doctor`` across the ranks of a torchrun / SLURM / manual launch.

Every rank reads its own shard for one epoch as its real rank, in a child process where
``torch.distributed.get_rank()`` / ``get_world_size()`` and ``RANK``/``WORLD_SIZE`` answer as
that rank (map-style: its sampler's indices plus its first samples fetched; iterable: every
sample it delivers through ``--workers`` workers, fingerprinted). Rank 0 also runs the probes,
as rank 0 of the world: they judge the dataset's code, which is the same on every rank, so
running them on every rank would multiply the cost for no new finding — what differs between
ranks (the shard, a rank-dependent path that fails) is what every rank checks. Rank 0 gathers
the shards, judges overlap / coverage / uneven lengths across the real ranks and prints one
report; a rank whose shard fails, hangs, dies, or that never arrives is named there. Every rank
exits with the worst code of all ranks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dlcheck.errors import UsageError

if TYPE_CHECKING:
    from dlcheck.doctor.records import DoctorReport, Finding
    from dlcheck.ranks import DistSession, LaunchInfo, RankFailure

ProgressFn = Callable[[dict[str, Any]], None]
_SHARD_SLACK_S = 15.0  # interpreter start-up and `import torch` on top of the shard timeout


def run_doctor_distributed(
    launch: LaunchInfo,
    target: str,
    render: Callable[[DoctorReport], None],
    *,
    probes: Sequence[str] | None = None,
    scan: bool = False,
    workers: int = 2,
    world_size: int | None = None,
    timeout: float = 30.0,
    strict: bool = False,
    seed: int = 0,
    verbose: bool = False,
    dist_timeout: float | None = None,
    on_progress: ProgressFn | None = None,
    report_error: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run doctor as this rank; on rank 0 call ``render`` with the merged report.

    ``render`` runs on rank 0 only, while the group still holds (a launcher cannot stop rank 0
    before it has printed). ``dist_timeout`` (default ``DLCHECK_DIST_TIMEOUT`` or 60 s) bounds
    joining and how long a rank may stay silent; ``report_error`` shows this rank's own failure
    on its stderr. Returns the agreed exit code. Raises ``UsageError`` on every rank before
    joining for bad options, :class:`dlcheck.ranks.RankFailure` when a rank never arrives, and
    rank 0's own error (e.g. TARGET fails to import) with the agreed exit code.
    """
    from dlcheck.doctor.run import _check_options, validate_probes
    from dlcheck.ranks import quiet_c10d_logs_for_join, timeout_from_env
    from dlcheck.target import parse_target

    # Before anything in this process imports torch: keeps c10d's C++ traces off stderr.
    release = quiet_c10d_logs_for_join()
    try:
        selected = validate_probes(probes)
        _check_options(workers, None, timeout)
        if world_size is not None and world_size != launch.world_size:
            raise UsageError(
                f"--world-size {world_size} simulates ranks, but this run is rank "
                f"{launch.rank} of {launch.world_size} real ranks ({launch.launcher}).",
                "Drop --world-size under a launcher: the real ranks are audited.",
            )
        if dist_timeout is not None and not dist_timeout > 0:
            raise UsageError("--dist-timeout must be a positive number of seconds.")
        parse_target(target)
        limit = timeout_from_env() if dist_timeout is None else dist_timeout
        opts = {
            "probes": selected,
            "scan": scan,
            "workers": workers,
            "timeout": timeout,
            "strict": strict,
            "seed": seed,
            "verbose": verbose,
        }
        return _run(launch, target, render, opts, limit, on_progress, report_error, release)
    finally:
        release()


def _run(
    launch: LaunchInfo,
    target: str,
    render: Callable[[DoctorReport], None],
    opts: dict[str, Any],
    limit: float,
    on_progress: ProgressFn | None,
    report_error: Callable[[dict[str, Any]], None] | None,
    release_log_var: Callable[[], None],
) -> int:
    from dlcheck.ranks.driver import Merged, run_on_ranks

    t0 = time.monotonic()
    box: dict[str, Any] = {}  # rank 0's own report and its shard events

    def local(ctx: DistSession) -> dict[str, Any]:
        if ctx.is_root:
            return _root_work(ctx, target, opts, on_progress, box)
        value = _shard_work(ctx, target, opts)
        if value.get("error") and report_error is not None:
            report_error({"message": f"reading its shard failed: {value['error']}"})
        return value

    def merged(report: DoctorReport, agreed: int | None) -> Merged[DoctorReport]:
        report.agreed_exit = agreed
        report.duration_s = time.monotonic() - t0
        return Merged(report, report.exit_code)

    def merge_all(ctx: DistSession, records: list[dict[str, Any]]) -> Merged[DoctorReport] | None:
        if box.get("report") is None:
            return None  # rank 0's own run failed: ``unmerged`` raises its error
        return merged(merge(box["report"], box, records, ctx, launch.launcher), None)

    def broken(ctx: DistSession, lost: RankFailure) -> Merged[DoctorReport] | None:
        # The group is broken (no more collectives), but rank 0 still has its report: print
        # it with the lost ranks named, rather than only an error line.
        if box.get("report") is None:
            return None
        partial = merge(box["report"], box, None, ctx, launch.launcher, lost=lost)
        return merged(partial, lost.exit_code_agreed)

    def show(report: DoctorReport, agreed: int) -> None:
        report.agreed_exit = agreed
        render(report)

    def own_error(error: dict[str, Any]) -> None:
        if launch.rank != 0:  # rank 0 raises its own error once the ranks have agreed
            report_error(error)  # type: ignore[misc]  # only passed when not None

    return run_on_ranks(
        launch,
        timeout_s=limit,
        local=local,
        merge=merge_all,
        render=show,
        stage="shards",  # rank 0 arrives after its probes; the others wait, heartbeating
        report_error=own_error if report_error is not None else None,
        joined=release_log_var,  # torch has read it by now; the user's code need not inherit it
        broken=broken,
        unmerged=_raise_root_error,
    )


def _root_work(
    ctx: DistSession,
    target: str,
    opts: dict[str, Any],
    on_progress: ProgressFn | None,
    box: dict[str, Any],
) -> dict[str, Any]:
    """Rank 0: read its own shard and run the probes (as rank 0 of the real world)."""
    from dlcheck.doctor.run import run_doctor

    def on_event(ev: dict[str, Any]) -> None:
        if ev.get("kind") in ("rank_done", "rank_baseline"):
            box[ev["kind"]] = ev
        if on_progress is not None:
            on_progress(ev)

    report = run_doctor(
        target,
        probes=opts["probes"],
        scan=opts["scan"],
        workers=opts["workers"],
        world_size=ctx.world_size,
        timeout=opts["timeout"],
        strict=opts["strict"],
        seed=opts["seed"],
        verbose=opts["verbose"],
        on_progress=on_event,
        shard_ranks=[ctx.rank],
        ranks_on_host=ctx.local_world_size,
    )
    box["report"] = report
    done = box.get("rank_done") or {}
    return {"exit_code": report.exit_code, "local_rank": ctx.local_rank, **_shard_summary(done)}


def _shard_work(ctx: DistSession, target: str, opts: dict[str, Any]) -> dict[str, Any]:
    """A rank other than 0: read its own shard in a child process, as its real rank."""
    from dlcheck.doctor.collect import failure_record
    from dlcheck.doctor.run import LOAD_TIMEOUT_S, SHARD_FETCH
    from dlcheck.proc import run_child

    timeout = float(opts["timeout"])
    options = {
        "workers": opts["workers"],
        "scan": opts["scan"],
        "timeout": timeout,
        "world_size": ctx.world_size,
        "seed": opts["seed"],
        "verbose": opts["verbose"],
    }
    request = {
        "mode": "target",
        "target": target,
        "rank": ctx.rank,
        "world_size": ctx.world_size,
        "local_rank": ctx.local_rank,
        "local_world_size": ctx.local_world_size,
        "options": options,
        "fetch": SHARD_FETCH,
        "alarm_s": timeout,  # the shard itself, once TARGET is loaded
    }
    from dlcheck.useroutput import Relay, write_stderr

    started = time.monotonic()
    out = run_child(
        "dlcheck.doctor.collect:rank_entry",
        request,
        timeout=LOAD_TIMEOUT_S + timeout + _SHARD_SLACK_S,
        stderr_passthrough=bool(opts["verbose"]),
        # The rank's own prints reach its stderr, each distinct line once.
        on_output=None if opts["verbose"] else Relay(write_stderr).collector()[0],
    )
    failure = None if out.ok else failure_record(out)
    if failure is not None and out.signal == "SIGALRM":
        failure.update(timed_out=True, message=f"did not finish within {timeout:g} s")
    done = {"facts": out.value if out.ok else None, "failure": failure}
    return {
        "exit_code": 0,  # rank 0 judges the shard; this rank's own run went fine
        "local_rank": ctx.local_rank,
        "duration_s": round(time.monotonic() - started, 3),
        "shard": done["facts"],
        **_shard_summary(done),
    }


def _shard_summary(done: dict[str, Any]) -> dict[str, Any]:
    facts = done.get("facts") or {}
    failure = done.get("failure")
    out: dict[str, Any] = {
        "samples": len(facts.get("samples") or []) if facts else None,
        "complete": facts.get("complete") if facts else None,
        "error": facts.get("error")
        or (facts.get("fetch_error") or {}).get("error")
        or (failure or {}).get("message"),
        "failure": {k: v for k, v in failure.items() if k not in ("detail", "stderr_tail")}
        if failure
        else None,
    }
    return out


def merge(
    report: DoctorReport,
    box: dict[str, Any],
    records: list[dict[str, Any]] | None,
    ctx: DistSession,
    launcher: str,
    *,
    lost: RankFailure | None = None,
) -> DoctorReport:
    """Rank 0's report plus the shard audit across the real ranks and the ``ranks`` section.

    ``records``: every rank's gathered outcome (None when the gather failed: then ``lost``
    names the ranks that failed, exited or never arrived, and only those are judged).
    """
    import dataclasses

    from dlcheck.doctor.judge import judge_ranks

    world = ctx.world_size
    own = box.get("rank_done") or {}
    facts: dict[int, Any] = {0: own.get("facts")}
    failures: dict[int, dict[str, Any]] = {}
    if own.get("failure"):
        failures[0] = own["failure"]
    entries: list[dict[str, Any]] = []
    hosts = {p.rank: p.host for p in ctx.peers}
    if records is not None:
        for rec in records:
            r = int(rec["rank"])
            value = rec.get("value") or {}
            if not rec.get("ok"):
                failures[r] = {"message": (rec.get("error") or {}).get("message", "failed")}
            elif r != 0:
                facts[r] = value.get("shard")
                if value.get("failure"):
                    failures[r] = value["failure"]
            entries.append(_entry(r, rec, failures.get(r)))
        findings = judge_ranks(
            facts, failures, simulated=False, baseline=(box.get("rank_baseline") or {}).get("facts")
        )
    else:
        assert lost is not None
        stage = lost.stage
        for r, msg in lost.failed.items():
            failures[r] = {"lost": True, "message": f"failed during '{stage}': {msg}"}
        for r, why in lost.exited.items():
            failures[r] = {"lost": True, "message": f"exited during '{stage}' ({why})"}
        for r in lost.missing:
            failures[r] = {
                "lost": True,
                "message": f"did not reach '{stage}' within {lost.timeout_s:g} s (crashed, "
                "killed, hung or never launched)",
            }
        for r in lost.interrupted:
            failures[r] = {"lost": True, "message": "was interrupted"}
        findings = judge_ranks({}, failures, simulated=False)
        for r in range(world):
            entry: dict[str, Any] = {"rank": r, "host": hosts.get(r)}
            if r in failures:
                status = "lost" if failures[r].get("lost") else "failed"
                entry.update(status=status, error=failures[r]["message"])
            elif r == 0:
                entry.update(status="ok", local_rank=ctx.local_rank, **_shard_summary(own))
                entry.pop("failure", None)
            else:  # alive, but its shard never reached rank 0
                entry.update(status="unknown", error=None)
            entries.append(entry)
    for f in findings:
        f.title = f"Shards across {world} ranks"
    return dataclasses.replace(
        report,
        findings=_insert_after_duplicates(report.findings, findings),
        options={
            **{k: v for k, v in report.options.items() if k not in ("shard_ranks", "shard_fetch")},
            "world_size": world,
        },
        launcher=launcher,
        world_size=world,
        ranks=entries,
    )


def _entry(rank: int, rec: dict[str, Any], failure: dict[str, Any] | None) -> dict[str, Any]:
    value = rec.get("value") or {}
    entry: dict[str, Any] = {
        "rank": rank,
        "host": rec.get("host"),
        "local_rank": value.get("local_rank"),
        "status": "ok" if rec.get("ok") and not failure and not value.get("error") else "failed",
        "samples": value.get("samples"),
        "complete": value.get("complete"),
        "error": value.get("error") if rec.get("ok") else (rec.get("error") or {}).get("message"),
    }
    if value.get("duration_s") is not None:
        entry["duration_s"] = value["duration_s"]
    return entry


def _insert_after_duplicates(findings: list[Finding], extra: list[Finding]) -> list[Finding]:
    at = max((i + 1 for i, f in enumerate(findings) if f.probe == "duplicates"), default=None)
    if at is None:
        return [*findings, *extra]
    return [*findings[:at], *extra, *findings[at:]]


def _raise_root_error(mine: dict[str, Any], records: list[dict[str, Any]], code: int) -> None:
    """Rank 0 has no report (its own run failed): raise its error, naming other failed ranks."""
    from dlcheck.doctor.collect import raise_from
    from dlcheck.errors import DlcheckError

    error = dict(mine.get("error") or {"message": "rank 0 failed"})
    others = [
        int(r["rank"])
        for r in records
        if int(r["rank"]) != 0
        and (not r.get("ok") or (r.get("value") or {}).get("failure") is not None)
    ]
    named = ("rank " if len(others) == 1 else "ranks ") + ", ".join(map(str, others))
    error["message"] = f"rank 0: {error.get('message')}" + (
        f" ({named} failed too)" if others else ""
    )
    try:
        raise_from(error)
    except DlcheckError as exc:
        exc.exit_code = code  # type: ignore[assignment]
        raise
