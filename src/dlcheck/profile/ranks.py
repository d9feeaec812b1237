"""``dlcheck profile`` across the ranks of a torchrun / SLURM / manual launch.

Every rank profiles its own shard (``DistributedSampler`` for map-style datasets) at the same
time as the others, so the figures include the real contention of N loaders on one host.
Settings are swept in lockstep: rank 0 owns the planner and broadcasts each next setting, every
rank passes a barrier and measures it, and rank 0 gathers the per-rank results. The adaptive
search sees one combined result per setting — the slowest rank's, since synchronous training
runs at the slowest rank's pace — so its decisions are the same as on one machine. Only rank 0
prints; every rank exits with the worst code of all ranks.

The collective sequence is the same on every rank whatever fails locally (a rank whose TARGET
does not load still takes part in every exchange), so a failure is reported, never a hang; a rank
that dies is named by :mod:`dlcheck.ranks.session` within the timeout.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.errors import DlcheckError, UsageError
from dlcheck.exitcodes import ExitCode

if TYPE_CHECKING:
    from dlcheck.profile.records import ProfileReport, SettingResult
    from dlcheck.profile.run import ProfileOptions
    from dlcheck.ranks import DistSession, LaunchInfo

ProgressFn = Callable[[dict[str, Any]], None]

# Slack on top of a setting's own child limits before rank 0 stops waiting for a busy rank.
_GATHER_SLACK_S = 60.0


@dataclass
class DistProfileReport:
    """Rank 0's view of the job: every rank's results, the aggregate per setting, the advice.

    ``report`` is a :class:`ProfileReport` whose ``results`` hold every rank's results (each with
    ``rank``) and whose recommendation is judged on the combined (slowest-rank) figures.
    """

    report: ProfileReport
    world_size: int
    launcher: str | None
    ranks: list[dict[str, Any]]  # rank, host, usable_cpus, cpu_set, ok, error
    aggregates: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    workers: list[dict[str, Any]] = field(default_factory=list)
    rank_errors: dict[int, str] = field(default_factory=dict)  # a rank that failed to start
    lost: dict[str, Any] | None = None  # RankFailure.to_dict() when a rank died mid-sweep
    agreed_exit: int | None = None

    @property
    def failed_ranks(self) -> list[int]:
        """Ranks that could not load TARGET or failed any setting."""
        out = set(self.rank_errors)
        if self.lost:
            out |= set(self.lost.get("missing") or [])
            out |= {int(r) for r in (self.lost.get("failed") or {})}
            out |= {int(r) for r in (self.lost.get("exited") or {})}
            out |= set(self.lost.get("interrupted") or [])
        for a in self.aggregates:
            out |= {int(r) for r in a["failed_ranks"]}
            out |= {int(r) for r in a["missing_ranks"]}
        return sorted(out)

    @property
    def exit_code(self) -> int:
        from dlcheck.ranks import worst_exit

        codes = [self.report.exit_code]
        if self.rank_errors or self.failed_ranks:
            codes.append(1)
        if self.agreed_exit is not None:
            codes.append(self.agreed_exit)
        return worst_exit(codes)

    def summary(self) -> dict[str, Any]:
        """The aggregate section of the JSON document."""
        best = self.best
        return {
            "world_size": self.world_size,
            "launcher": self.launcher,
            "ranks": self.ranks,
            "failed_ranks": self.failed_ranks,
            "rank_errors": {str(k): v for k, v in self.rank_errors.items()},
            "lost": self.lost,
            "settings": self.aggregates,
            "best": best,
            "aggregate_samples_per_s": best["aggregate_samples_per_s"] if best else None,
            "lockstep_samples_per_s": best["lockstep_samples_per_s"] if best else None,
            "slowest_rank": best["slowest_rank"] if best else None,
            "straggler_ratio": best["straggler_ratio"] if best else None,
            "workers_per_rank": self.workers,
        }

    def to_dict(self, *, raw: bool = False) -> dict[str, Any]:
        from dlcheck.profile.render import json_document

        doc = json_document(self.report, raw=raw)
        doc["exit_code"] = self.exit_code
        doc["distributed"] = self.summary()
        return doc

    def render(self, console: Any, *, verbose: bool = False, wide: bool | None = None) -> None:
        console.print(self)  # the per-rank table has one width
        if verbose:
            from dlcheck.profile.render import print_failure_details

            print_failure_details(self.report, console)

    def __rich__(self) -> Any:
        from dlcheck.profile.render import dist_renderable

        return dist_renderable(self)


# ---------------------------------------------------------------- records across ranks


def result_record(result: SettingResult) -> dict[str, Any]:
    """A SettingResult as JSON (traceback and raw traces included) for the gather."""
    from dlcheck.output import to_jsonable

    doc = to_jsonable(result)
    doc["detail"] = result.detail
    return doc


def result_from_record(d: Mapping[str, Any]) -> SettingResult:
    """Inverse of :func:`result_record`."""
    from dlcheck.profile.records import CostFigures, GpuFigures, Setting, SettingResult, Steady
    from dlcheck.profile.sweep import epoch_from_dict

    st = d.get("stats")
    stats = None
    if st:
        st = dict(st)
        if st.get("spread") is not None:
            st["spread"] = tuple(st["spread"])
        stats = Steady(**{k: v for k, v in st.items() if k in Steady.__dataclass_fields__})
    gpu = d.get("gpu")
    epochs = [epoch_from_dict(e) for e in d.get("epochs") or []]
    skip = {"setting", "stats", "gpu", "epochs", "cost", "interval"}
    rest = {k: v for k, v in d.items() if k in SettingResult.__dataclass_fields__ and k not in skip}
    return SettingResult(
        setting=Setting.from_dict(d["setting"]),
        stats=stats,
        gpu=GpuFigures(**gpu) if gpu else None,
        epochs=epochs,
        cost=CostFigures(**d["cost"]) if d.get("cost") else None,
        **rest,
    )


def combine_ranks(results: list[SettingResult]) -> SettingResult:
    """One result per setting for the planner: a failed rank's error, else the slowest rank's.

    Synchronous data-parallel training runs at the slowest rank's pace, so the slowest rank's
    measurement (with its own noise and raw traces, which repeats pool) is what to optimise.
    """
    bad = [r for r in results if not r.ok]
    if bad:
        first = bad[0]
        return dataclasses.replace(
            first, error=f"rank {first.rank}: {first.error or 'failed'}", rank=None
        )
    slowest = min(results, key=lambda r: (r.samples_per_s or 0.0, r.rank or 0))
    return dataclasses.replace(slowest, rank=None)


def missing_result(setting: Any, rank: int, rnd: int) -> SettingResult:
    from dlcheck.profile.sweep import failed_result

    res = failed_result(setting, "missing", "no result from this rank")
    res.rank, res.round = rank, rnd
    return res


# ---------------------------------------------------------------- the run


def run_profile_distributed(
    launch: LaunchInfo,
    target: str | None,
    opts: ProfileOptions,
    render: Callable[[DistProfileReport], None],
    *,
    progress: ProgressFn | None = None,
    dist_timeout: float | None = None,
    report_error: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Profile this rank's shard in lockstep with the others; rank 0 merges and renders.

    ``render`` receives the merged report on rank 0 only (while the group still holds);
    ``progress`` gets rank 0's events plus one ``{"type": "ranks_done", "aggregate": …}`` per
    setting; ``report_error`` shows this rank's own failure to load TARGET on its stderr.
    Returns the agreed exit code. Raises :class:`dlcheck.ranks.RankFailure` when a rank dies or
    never arrives, ``UsageError`` for bad options, and, on rank 0, the loading error when TARGET
    fails to load on some rank (naming the ranks).
    """
    from dlcheck.ranks import quiet_c10d_logs_for_join, timeout_from_env

    release = quiet_c10d_logs_for_join()
    try:
        if dist_timeout is not None and not dist_timeout > 0:
            raise UsageError("--dist-timeout must be a positive number of seconds.")
        limit = timeout_from_env() if dist_timeout is None else dist_timeout
        if opts.baseline:
            from dlcheck.profile.run import load_baseline

            load_baseline(opts.baseline)
        return _run(launch, target, opts, render, progress, limit, report_error, release)
    finally:
        release()


def _run(
    launch: LaunchInfo,
    target: str | None,
    opts: ProfileOptions,
    render: Callable[[DistProfileReport], None],
    progress: ProgressFn | None,
    limit: float,
    report_error: Callable[[dict[str, Any]], None] | None,
    release_log_var: Callable[[], None],
) -> int:
    from dlcheck.ranks import session

    started = time.monotonic()
    held: dict[str, Any] = {}  # this rank's template process, closed when the run ends
    try:
        with session(launch, timeout_s=limit) as ctx, ctx.root_only_stdout():
            release_log_var()
            if progress and ctx.is_root:
                progress({"type": "describe", "target": target})
            code, failure = _in_session(
                ctx, launch, target, opts, render, progress, report_error, started, held
            )
    finally:
        if held.get("server") is not None:
            held["server"].close()
    if failure is not None:
        failure.exit_code = ExitCode(code)
        raise failure
    return code


def _in_session(
    ctx: DistSession,
    launch: LaunchInfo,
    target: str | None,
    opts: ProfileOptions,
    render: Callable[[DistProfileReport], None],
    progress: ProgressFn | None,
    report_error: Callable[[dict[str, Any]], None] | None,
    started: float,
    held: dict[str, Any],
) -> tuple[int, DlcheckError | None]:
    from dlcheck.ranks import LauncherStopped, RankFailure, worst_exit
    from dlcheck.ranks.driver import lost_ranks

    load_wait = max(opts.stall_timeout, 60.0) * 4 + _GATHER_SLACK_S
    failure: DlcheckError | None = None
    mine = ctx.capture(lambda: _describe(target, opts, held))
    if not mine["ok"] and report_error is not None:
        report_error(mine["error"])
    described = ctx.all_gather(mine, stage="load TARGET", wait_s=load_wait)
    errors = {int(d["rank"]): d["error"] for d in described if not d["ok"]}
    merged: DistProfileReport | None = None
    local = 0
    if errors:
        local = worst_exit([int(e.get("exit_code") or 1) for e in errors.values()])
        if ctx.is_root:
            failure = _load_failure(errors, ctx.world_size)
    else:
        box: dict[str, DistProfileReport] = {}
        try:
            merged = _sweep(ctx, launch, target, opts, described, progress, box, held.get("server"))
        except (RankFailure, LauncherStopped) as exc:
            partial = box.get("merged")
            lost = lost_ranks(ctx, exc, "sweep")
            if partial is None or lost is None or not partial.report.results:
                raise
            # The group is broken (no more collectives), but rank 0 still holds what every
            # rank measured so far: print it with the lost rank named.
            partial.lost = lost.to_dict()
            partial.agreed_exit = lost.exit_code_agreed
            partial.report.wall_s = time.monotonic() - started
            if opts.output:
                _write_output(partial, opts.output)
            render(partial)
            return partial.exit_code, None
        if merged is not None:
            local = merged.exit_code
    code = ctx.agree_exit(local)
    if merged is not None:
        merged.agreed_exit = code
        merged.report.wall_s = time.monotonic() - started
        if opts.output:
            _write_output(merged, opts.output)
        render(merged)
    return code, failure


def _describe(
    target: str | None, opts: ProfileOptions, held: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Resolve TARGET on this rank: built once in a template process (kept in ``held``) that
    forks a child per setting, unless --isolation fresh or CUDA was initialised in the build."""
    from dlcheck.output import to_jsonable
    from dlcheck.profile.run import DEMO_TARGET, describe_target, start_template
    from dlcheck.ranks.throughput import local_cpu_info

    if target is not None:
        from dlcheck.target import parse_target

        target = parse_target(target).raw
    name = target or DEMO_TARGET
    if held is not None and opts.isolation != "fresh":
        server, shape, _ = start_template(
            name, stall_timeout=opts.stall_timeout, step=opts.step_request()
        )
        held["server"] = server
    else:
        shape = describe_target(
            name, None, stall_timeout=opts.stall_timeout, step=opts.step_request()
        )
    if shape.kind == "map" and shape.length == 0:
        raise DlcheckError(
            "The dataset is empty on this rank, so there is nothing to load.",
            "Check the path, split or filter that builds it.",
        )
    return {"target": name, "shape": to_jsonable(shape), **local_cpu_info()}


def _load_failure(errors: Mapping[int, Mapping[str, Any]], world_size: int) -> DlcheckError:
    parts = [f"rank {r}: {e.get('message')}" for r, e in sorted(errors.items())]
    hints = [e.get("hint") for e in errors.values() if e.get("hint")]
    cls = UsageError if all(int(e.get("exit_code") or 1) == 2 for e in errors.values()) else None
    message = f"TARGET failed to load on {len(errors)} of {world_size} ranks: " + "; ".join(parts)
    if cls is not None:
        return UsageError(message, hints[0] if hints else None)
    return DlcheckError(message, hints[0] if hints else "Run with -v on that rank.")


def _sweep(
    ctx: DistSession,
    launch: LaunchInfo,
    target: str | None,
    opts: ProfileOptions,
    described: list[dict[str, Any]],
    progress: ProgressFn | None,
    box: dict[str, DistProfileReport],
    server: Any = None,
) -> DistProfileReport | None:
    from dlcheck.profile.records import LoaderShape, Setting
    from dlcheck.profile.run import (
        ProfileReport,
        build_space,
        ci_checks,
        machine_metadata,
        measure_fn,
    )
    from dlcheck.profile.search import AdaptivePlanner, FixedPlanner
    from dlcheck.profile.sweep import Step, SweepOutcome, failed_result, run_sweep
    from dlcheck.ranks.throughput import aggregate_settings

    mine = described[ctx.rank]["value"]
    shape = LoaderShape.from_dict(mine["shape"])
    name = mine["target"]
    space, notes = build_space(opts, shape)
    # Rank 0's own progress, except its per-setting verdict: the all-ranks one replaces it.
    own_progress = None
    if progress is not None and ctx.is_root:
        own_progress = lambda ev: None if ev.get("type") == "done" else progress(ev)  # noqa: E731
    local_measure = measure_fn(name, None, shape, opts, own_progress, space.baseline, server=server)
    cap = (opts.duration or 8.0) * 4 + opts.stall_timeout + 60 + _GATHER_SLACK_S

    merged: DistProfileReport | None = None
    per_rank: list[SettingResult] = []
    if ctx.is_root:
        # The space is built from rank 0's view; ranks only differ in their shard.
        space.usable_cpus = max(1, math.floor(_min_share(ctx, described)))
        report = ProfileReport(
            target=name,
            shape=shape,
            machine={**machine_metadata(shape), "world_size": ctx.world_size},
            options={**vars(opts), "shard": None, "notes": notes},
        )
        merged = DistProfileReport(
            report=report,
            world_size=ctx.world_size,
            launcher=launch.launcher,
            ranks=[_rank_entry(d) for d in described],
        )
        box["merged"] = merged
    # Every rank runs the same sweep loop; only rank 0's planner decides (``agree``), and it
    # sees one combined result per setting (``combine``), so its choices are the single-host
    # ones. ``n`` names the collectives so a lost rank is reported at the right setting.
    n = 0

    def agree(step: Step | None) -> Step | None:
        plan = None
        if ctx.is_root and step is not None:
            plan = {"setting": step[0].to_dict(), "round": step[1]}
        plan = ctx.broadcast(plan, stage=f"plan {n}")
        return None if plan is None else (Setting.from_dict(plan["setting"]), int(plan["round"]))

    def measure(setting: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        try:
            return local_measure(setting, rnd, shard)
        except Exception as exc:  # a bug here becomes this rank's setting error, not a hang
            return failed_result(setting, "crash", f"{type(exc).__name__}: {exc}")

    def combine(result: SettingResult) -> SettingResult:
        nonlocal n
        rows = ctx.gather(result_record(result), stage=f"results {n}", wait_s=cap)
        n += 1
        if rows is None:  # not rank 0: its planner's view does not matter
            return result
        got = [result_from_record(r) for r in rows if r is not None]
        seen = {r.rank for r in got}
        got += [
            missing_result(result.setting, r, result.round or 0)
            for r in range(ctx.world_size)
            if r not in seen
        ]
        got.sort(key=lambda r: r.rank or 0)
        per_rank.extend(got)
        return combine_ranks(got)

    def on_result(combined: list[SettingResult]) -> None:
        if merged is None:
            return
        _judge(merged, per_rank, combined, opts, space, aggregate_settings)
        if progress is not None:
            key = _throughput_record(per_rank[-1])["setting"]
            agg = next((a for a in merged.aggregates if a["setting"] == key), None)
            progress({"type": "ranks_done", "setting": combined[-1].setting, "aggregate": agg})
        if opts.output:
            _write_output(merged, opts.output)

    planner = FixedPlanner(space) if opts.workers is not None else AdaptivePlanner(space)
    out = run_sweep(
        planner,
        measure,
        agree=agree,
        barrier=lambda: ctx.barrier(stage=f"setting {n}"),
        shard=(ctx.rank, ctx.world_size),
        combine=combine,
        on_result=on_result,
        budget_s=opts.budget if opts.workers is None else None,
        outcome=SweepOutcome(),
    )
    if merged is not None:
        merged.report.budget_exhausted = out.budget_exhausted
        _judge(merged, per_rank, out.results, opts, space, aggregate_settings)
        merged.report.checks = ci_checks(_with_combined(merged.report, out.results), opts)
    return merged


def _with_combined(report: ProfileReport, combined: list[SettingResult]) -> ProfileReport:
    # The CI checks count failed settings: one per setting, not one per rank.
    return dataclasses.replace(report, results=combined)


def _judge(
    merged: DistProfileReport,
    per_rank: list[SettingResult],
    combined: list[SettingResult],
    opts: ProfileOptions,
    space: Any,
    aggregate_settings: Callable[..., list[dict[str, Any]]],
) -> None:
    from dlcheck.profile.search import recommend
    from dlcheck.ranks.throughput import best_lockstep, recommend_workers

    report = merged.report
    report.results = list(per_rank)
    shape = report.shape
    report.recommendations = recommend(
        combined,
        usable_cpus=space.usable_cpus,
        need=None if opts.need is None else opts.need / merged.world_size,
        own_loader=bool(shape and shape.is_loader),
        own_batching=shape.own_batching if shape else None,
        max_workers=space.max_workers,
    )
    records = [_throughput_record(r) for r in per_rank]
    # Repeats of a setting (adaptive search) are separate rounds: aggregate the latest.
    latest: dict[tuple[Any, int | None], dict[str, Any]] = {}
    for rec in records:
        latest[(tuple(sorted(rec["setting"].items())), rec["rank"])] = rec
    merged.aggregates = aggregate_settings(latest.values(), world_size=merged.world_size)
    best = None
    for bs in dict.fromkeys(a["setting"].get("batch_size") for a in merged.aggregates):
        pick = best_lockstep([a for a in merged.aggregates if a["setting"].get("batch_size") == bs])
        rate = pick["lockstep_samples_per_s"] if pick else None
        if rate is not None and (best is None or rate > best["lockstep_samples_per_s"]):
            best = dict(pick)  # type: ignore[arg-type]
    merged.best = best
    merged.workers = recommend_workers(list(latest.values()), merged.ranks)


def _throughput_record(r: SettingResult) -> dict[str, Any]:
    s = r.setting
    setting: dict[str, Any] = {"num_workers": s.num_workers, "batch_size": s.batch_size}
    if s.pin_memory:
        setting["pin_memory"] = True
    if s.num_workers and s.prefetch_factor not in (None, 2):
        setting["prefetch_factor"] = s.prefetch_factor
    if s.num_workers and s.persistent_workers:
        setting["persistent_workers"] = True
    return {
        "rank": r.rank,
        "setting": setting,
        "samples_per_s": r.samples_per_s if r.ok else None,
        "error": None if r.ok else (r.error or "failed"),
    }


def _rank_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    value = record.get("value") or {}
    return {
        "rank": int(record["rank"]),
        "host": record.get("host"),
        "usable_cpus": value.get("usable_cpus"),
        "cpu_set": value.get("cpu_set"),
    }


def _min_share(ctx: DistSession, described: list[dict[str, Any]]) -> float:
    from dlcheck.ranks.throughput import cpu_shares

    shares = cpu_shares([_rank_entry(d) for d in described])
    return min(shares.values()) if shares else 1.0


def _write_output(merged: DistProfileReport, path: str) -> None:
    from dlcheck.output import dumps, write_text_file
    from dlcheck.profile.render import csv_text

    if path.lower().endswith(".csv"):
        write_text_file(path, csv_text(merged.report), "--output")
    else:
        write_text_file(path, dumps(merged.to_dict(raw=True)) + "\n", "--output")
