"""``dlcheck env`` across the ranks of a torchrun / SLURM / manual launch.

Every rank runs its own checks (its own ``import torch`` child included); rank 0 gathers the
reports, merges them (:mod:`dlcheck.ranks.cluster`) and renders them; the other ranks print
nothing on stdout. Every rank exits with the worst code of all ranks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dlcheck.errors import UsageError

if TYPE_CHECKING:
    from dlcheck.env.records import DistEnvReport
    from dlcheck.ranks import DistSession, LaunchInfo

# Slack on top of the env run's own limits (torch child, library child, NVML) before rank 0
# stops waiting for a rank that is alive but still checking.
_GATHER_SLACK_S = 60.0


def validate_checks(checks: list[str] | None) -> None:
    """Raise the usage error for unknown ``--check`` ids on every rank, before joining."""
    if not checks:
        return
    from dlcheck.env import checks as checks_mod
    from dlcheck.env.run import _unknown_checks

    try:
        checks_mod.select(list(checks))
    except KeyError as exc:
        raise _unknown_checks(list(exc.args[0])) from None


def run_env_distributed(
    launch: LaunchInfo,
    render: Callable[[DistEnvReport], None],
    *,
    checks: list[str] | None = None,
    timeout: float = 60.0,
    deep: bool = False,
    strict: bool = False,
    dist_timeout: float | None = None,
    report_error: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run the env checks on this rank, merge all ranks on rank 0, call ``render`` there.

    ``render`` receives the merged :class:`DistEnvReport` (with the agreed exit code) on rank 0
    only, while the group still holds, so a launcher cannot stop rank 0 before it has printed.
    ``dist_timeout`` (default ``DLCHECK_DIST_TIMEOUT`` or 60 s) bounds joining and silence;
    ``report_error`` shows this rank's own failure on its stderr. Returns the agreed exit code.
    Raises :class:`dlcheck.ranks.RankFailure` (exit 1, or 130 when a rank was interrupted) when a
    rank fails outside its checks, exits or never arrives; ``UsageError`` for bad options.
    """
    from dlcheck.ranks import quiet_c10d_logs_for_join, timeout_from_env

    # Before anything in this process imports torch: keeps c10d's C++ traces off stderr. The
    # variable is dlcheck's own, so it is dropped again before the checks list the environment.
    release = quiet_c10d_logs_for_join()
    t0 = time.perf_counter()
    try:
        if timeout is None or timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds.")
        if dist_timeout is not None and not dist_timeout > 0:
            raise UsageError("--dist-timeout must be a positive number of seconds.")
        limit = timeout_from_env() if dist_timeout is None else dist_timeout
        validate_checks(checks)
        return _run(launch, render, checks, timeout, deep, strict, limit, report_error, t0, release)
    finally:
        release()
        # Only a rank that never reached its checks still has the CLI's torch child.
        from dlcheck.env.collect_torch import discard_prestarted

        discard_prestarted()


def _run(
    launch: LaunchInfo,
    render: Callable[[DistEnvReport], None],
    checks: list[str] | None,
    timeout: float,
    deep: bool,
    strict: bool,
    limit: float,
    report_error: Callable[[dict[str, Any]], None] | None,
    t0: float,
    release_log_var: Callable[[], None],
) -> int:
    import dataclasses

    from dlcheck.env.records import DistEnvReport
    from dlcheck.ranks.driver import Merged, run_on_ranks

    def merge(ctx: DistSession, records: list[dict[str, Any]]) -> Merged[DistEnvReport]:
        report = DistEnvReport.from_ranks(
            [_entry(r) for r in records],
            launcher=launch.launcher,
            world_size=ctx.world_size,
            meta={
                "dlcheck_version": _version(),
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            strict=strict,
        )
        return Merged(report, report.exit_code)

    def show(report: DistEnvReport, code: int) -> None:
        meta = {**report.meta, "duration_s": round(time.perf_counter() - t0, 3)}
        render(dataclasses.replace(report, meta=meta, agreed_exit=code))

    return run_on_ranks(
        launch,
        timeout_s=limit,
        local=lambda ctx: _local_entry(ctx, checks, timeout, deep, strict),
        merge=merge,
        render=show,
        stage="env reports",
        # A rank may be slower than rank 0 (a cold torch import): wait for it as long as its
        # own limits allow (the torch child and the library child each get `timeout`).
        wait_s=2 * timeout + limit + _GATHER_SLACK_S,
        report_error=report_error,
        joined=release_log_var,  # torch has read it by now
    )


def _local_entry(
    ctx: DistSession, checks: list[str] | None, timeout: float, deep: bool, strict: bool
) -> dict[str, Any]:
    import json

    from dlcheck.env.run import run_env
    from dlcheck.output import dumps

    report = run_env(checks=checks, timeout=timeout, deep=deep, strict=strict)
    doc = {"rank": ctx.rank, "local_rank": ctx.local_rank, "host": ctx.host}
    # Scrubbed here, against this rank's own environment: rank 0 cannot know other ranks'
    # secret values when it prints.
    return {**doc, **json.loads(dumps(report.to_dict()))}


def _entry(record: dict[str, Any]) -> dict[str, Any]:
    """A gathered record (``ctx.capture``) → the rank's entry of the merged document."""
    if record.get("ok"):
        return dict(record["value"])
    error = {k: v for k, v in (record.get("error") or {}).items() if k != "detail"}
    return {"rank": record["rank"], "local_rank": None, "host": record.get("host"), "error": error}


def _version() -> str:
    from dlcheck import __version__

    return __version__
