"""The one rank driver: how a command runs as every rank of a launch.

Every command that runs under torchrun/srun has the same shape, and this is its single copy:
join the group (c10d's C++ logs kept quiet), do this rank's own work, gather every rank's
outcome on rank 0, merge them into one report there, agree on the worst exit code, and render
on rank 0 while the group still holds (a launcher cannot stop rank 0 before it has printed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from dlcheck.ranks.launch import LaunchInfo
    from dlcheck.ranks.session import DistSession, RankFailure

R = TypeVar("R")


@dataclass(frozen=True)
class Merged(Generic[R]):
    """Rank 0's report of all ranks and the exit code it calls for (before agreement)."""

    report: R
    exit_code: int


def outcome_exit_code(outcome: dict[str, Any]) -> int:
    """This rank's own exit code from its captured outcome (``DistSession.capture``)."""
    if outcome["ok"]:
        return int((outcome.get("value") or {}).get("exit_code") or 0)
    return int((outcome.get("error") or {}).get("exit_code") or 1)


def lost_ranks(ctx: DistSession, exc: Exception, stage: str) -> RankFailure | None:
    """Who was lost when a collective broke: the ``RankFailure`` itself, or, when the launcher
    stopped this rank (torchrun stops every rank once one has exited), the peer that exited if
    it ran on this machine; None when that cannot be told."""
    from dlcheck.ranks.session import RankFailure

    if isinstance(exc, RankFailure):
        return exc
    exited = ctx.exited_peers()
    if not exited:
        return None
    return RankFailure(
        stage=stage, world_size=ctx.world_size, timeout_s=ctx.timeout_s, exited=exited
    )


def run_on_ranks(
    launch: LaunchInfo,
    *,
    timeout_s: float,
    local: Callable[[DistSession], dict[str, Any]],
    merge: Callable[[DistSession, list[dict[str, Any]]], Merged[R] | None],
    render: Callable[[R, int], None],
    stage: str = "results",
    wait_s: float | None = None,
    report_error: Callable[[dict[str, Any]], None] | None = None,
    joined: Callable[[], None] | None = None,
    broken: Callable[[DistSession, RankFailure], Merged[R] | None] | None = None,
    unmerged: Callable[[dict[str, Any], list[dict[str, Any]], int], None] | None = None,
) -> int:
    """Run ``local`` as this rank; on rank 0 ``merge`` every rank's outcome and ``render`` it.

    ``local(ctx)`` returns a JSON-able dict with this rank's ``exit_code``; an exception in it
    becomes this rank's error record (shown by ``report_error`` on its own stderr) instead of
    ending the job. ``merge(ctx, outcomes)`` runs on rank 0 with one outcome per rank (index =
    rank) and may return None when there is nothing to report. ``render(report, agreed_code)``
    runs on rank 0 only. ``joined`` runs once the group is up (e.g. to drop a variable torch
    has read). Returns the agreed exit code on every rank; raises ``RankFailure`` when a rank
    never arrives, fails outside ``local`` or goes silent past ``timeout_s``.

    ``broken(ctx, lost)``: the gather failed and ``lost`` (see :func:`lost_ranks`) names who
    was lost; on rank 0 it may return a partial report built from what this rank
    holds, which is rendered with its own exit code (no collective is possible any more) instead
    of raising. ``unmerged(mine, outcomes, agreed)``: on rank 0, after agreement, when ``merge``
    returned None (e.g. rank 0's own run failed): typically raises rank 0's error.
    """
    from dlcheck.exitcodes import worst_exit
    from dlcheck.ranks.session import LauncherStopped, RankFailure, session

    with session(launch, timeout_s=timeout_s) as ctx, ctx.root_only_stdout():
        if joined is not None:
            joined()
        mine = ctx.capture(lambda: local(ctx))
        code = outcome_exit_code(mine)
        if not mine["ok"] and report_error is not None:
            report_error(mine["error"])
        try:
            outcomes = ctx.gather(mine, stage=stage, wait_s=wait_s)
        except (RankFailure, LauncherStopped) as exc:
            lost = lost_ranks(ctx, exc, stage) if broken is not None and ctx.is_root else None
            partial = broken(ctx, lost) if broken is not None and lost is not None else None
            if partial is None:
                raise
            render(partial.report, partial.exit_code)
            return partial.exit_code
        merged = merge(ctx, outcomes) if outcomes is not None else None
        if merged is not None:
            code = worst_exit([code, merged.exit_code])
        agreed = ctx.agree_exit(code)
        if merged is not None:
            render(merged.report, agreed)
        elif ctx.is_root and unmerged is not None:
            unmerged(mine, outcomes or [], agreed)
    return agreed
