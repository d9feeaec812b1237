"""The sweep driver: measure settings one by one, each in its own child process.

:func:`run_sweep` is small and hookable so the torchrun runner (``profile/ranks.py``) is the
same loop: ``agree`` turns this rank's next step into the one every rank takes (rank 0's,
broadcast), ``barrier`` runs before each setting (keep ranks in step), ``shard`` = (rank,
world_size) is passed into the child (map-style datasets get a ``DistributedSampler``), and
``combine`` may replace each local result by an aggregate (the slowest rank's) before the
planner sees it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dlcheck.profile.records import (
    CostFigures,
    EpochTrace,
    GpuFigures,
    Setting,
    SettingResult,
)
from dlcheck.profile.search import Planner
from dlcheck.profile.stats import training_rate

MeasureFn = Callable[[Setting, int, "tuple[int, int] | None"], SettingResult]
Step = tuple[Setting, int]  # a setting and its round (0 first, then repeats)


@dataclass
class SweepOutcome:
    results: list[SettingResult] = field(default_factory=list)
    budget_exhausted: bool = False


def run_sweep(
    planner: Planner,
    measure: MeasureFn,
    *,
    agree: Callable[[Step | None], Step | None] | None = None,
    barrier: Callable[[], None] | None = None,
    shard: tuple[int, int] | None = None,
    combine: Callable[[SettingResult], SettingResult] | None = None,
    on_result: Callable[[list[SettingResult]], None] | None = None,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    outcome: SweepOutcome | None = None,
) -> SweepOutcome:
    """Ask ``planner`` what to measure next until it is done or ``budget_s`` is spent.

    ``outcome`` (optional) is filled in place, so a caller interrupted by Ctrl-C still holds
    every result measured so far.
    """
    out = outcome if outcome is not None else SweepOutcome()
    start = clock()
    while True:
        todo = planner.next(out.results)
        step: Step | None = todo[0] if todo else None
        over = budget_s is not None and clock() - start >= budget_s
        if step is not None and over and out.results:
            out.budget_exhausted = True
            step = None
        if agree is not None:  # a collective: every rank calls it, done or not
            step = agree(step)
        if step is None:
            break
        setting, rnd = step
        if barrier is not None:
            barrier()
        result = measure(setting, rnd, shard)
        result.round = rnd
        result.rank = shard[0] if shard is not None else None
        if combine is not None:
            result = combine(result)
        out.results.append(result)
        if on_result is not None:
            on_result(out.results)
    return out


# ---------------------------------------------------------------- one setting in a child


def epoch_from_dict(e: dict[str, Any]) -> EpochTrace:
    """An EpochTrace from its JSON form (``ended_s``/``capped`` absent in older documents)."""
    ended = e.get("ended_s")
    return EpochTrace(
        float(e["started_s"]),
        tuple(float(t) for t in e["times_s"]),
        tuple(int(n) for n in e["samples"]),
        bool(e["complete"]),
        None if ended is None else float(ended),
        bool(e.get("capped", False)),
    )


def cost_figures(raw: dict[str, Any] | None, setting: Setting) -> CostFigures | None:
    """Per-sample and per-batch CPU figures from the child's counters."""
    if not raw or not raw.get("samples") or not raw.get("batches"):
        return None
    wall = float(raw.get("wall_s") or 0.0)
    others = None
    if raw.get("host_busy_s") is not None and wall > 0:
        ours = float(raw["main_cpu_s"]) + float(raw.get("worker_cpu_s") or 0.0)
        others = max(0.0, float(raw["host_busy_s"]) - ours) / wall
    return CostFigures(
        worker_cpu_ms_per_sample=(
            1000 * float(raw["worker_cpu_s"]) / raw["samples"] if setting.num_workers else None
        ),
        main_cpu_ms_per_batch=1000 * float(raw["main_cpu_s"]) / raw["batches"],
        main_busy=float(raw["main_cpu_s"]) / wall if wall > 0 else None,
        batch_bytes=raw.get("batch_bytes"),
        others_busy=others,
    )


def result_from_value(
    setting: Setting, value: dict[str, Any], *, wall_s: float, baseline: bool
) -> SettingResult:
    """Build the typed record (with derived statistics) from what the child returned."""
    epochs = [epoch_from_dict(e) for e in value.get("epochs", [])]
    real = value.get("real_epoch_samples")
    stats = training_rate(epochs, setting.depth, setting.num_workers, real) if epochs else None
    err = value.get("error")
    notes = list(value.get("notes", []))
    if stats is not None and stats.basis.startswith("epochs") and not err:
        if stats.basis == "epochs-extrapolated":
            notes.append(
                f"epochs bounded at {len(epochs[0].times_s)} batches of {real:,} samples: the "
                f"per-epoch overhead ({stats.epoch_overhead_s or 0:.2f} s) is spread over the "
                "real epoch"
            )
        if not stats.reliable:
            notes.append(
                f"only {stats.epochs_timed} whole epoch(s) measured: too few to recommend from"
            )
    elif stats is not None and stats.basis == "epoch" and stats.samples_per_s and not err:
        notes.append(
            f"epochs ({len(epochs[0].times_s)} batches) are shorter than the pipeline "
            f"({setting.depth or 1} batches in flight): rate per whole epoch, start-up included"
        )
    elif stats is not None and setting.depth and (stats.spans_depths or 0) < 3 and not err:
        notes.append(
            f"steady window spans {stats.spans_depths or 0:.1f} pipeline depths (< 3): "
            "figures may be optimistic; use a longer --duration"
        )
    gpu = None
    if value.get("gpu"):
        g = dict(value["gpu"])
        if stats and stats.samples_per_s and g.get("available"):
            g["end_to_end_samples_per_s"] = stats.samples_per_s
        gpu = GpuFigures(**{k: v for k, v in g.items() if k in GpuFigures.__dataclass_fields__})
    from dlcheck.profile.step import LoopEpoch, loop_figures

    loop_epochs = [LoopEpoch.from_dict(e) for e in value.get("loop") or []]
    ok = err is None and stats is not None and stats.samples_per_s is not None
    if err is None and not ok:
        err = {
            "kind": "short",
            "message": "too few batches for a steady-state rate",
            "hint": "Use a longer --duration or a larger dataset.",
        }
    return SettingResult(
        setting=setting,
        ok=ok,
        baseline=baseline,
        real_epoch_samples=real,
        cost=cost_figures(value.get("cost"), setting),
        error_kind=err.get("kind") if err else None,
        error=err.get("message") if err else None,
        hint=err.get("hint") if err else None,
        detail=err.get("detail") if err else None,
        stats=stats,
        peak_uss_bytes=value.get("peak_uss_bytes"),
        peak_pss_bytes=value.get("peak_pss_bytes"),
        peak_shm_bytes=value.get("peak_shm_bytes"),
        gpu=gpu,
        notes=notes,
        wall_s=wall_s,
        epochs=epochs,
        loop_epochs=loop_epochs,
        loop=loop_figures(loop_epochs) if loop_epochs else None,
    )


def failed_result(
    setting: Setting,
    kind: str,
    message: str,
    *,
    hint: str | None = None,
    detail: str | None = None,
    wall_s: float = 0.0,
    baseline: bool = False,
) -> SettingResult:
    return SettingResult(
        setting=setting,
        ok=False,
        baseline=baseline,
        error_kind=kind,
        error=message,
        hint=hint,
        detail=detail,
        wall_s=wall_s,
    )


_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


def last_error_line(text: str) -> str | None:
    """The last ``SomeError: message`` line of a stderr tail (a dead worker's traceback)."""
    hits = [ln.strip() for ln in (text or "").splitlines() if _ERROR_LINE.match(ln.strip())]
    hits = [h for h in hits if not h.startswith("RuntimeError: DataLoader worker")]
    return hits[-1] if hits else None


def outcome_to_result(
    setting: Setting, outcome: Any, *, stall_timeout: float, baseline: bool
) -> SettingResult:
    """A ChildOutcome (from dlcheck.proc) → SettingResult, explaining how the child ended."""
    if outcome.ok and isinstance(outcome.value, dict):
        value = outcome.value
        err = value.get("error")
        if err and err.get("kind") in ("worker_died", "worker_killed"):
            # The worker's own traceback went to stderr, not through DataLoader: quote it.
            cause = last_error_line(outcome.stderr_tail)
            if cause:
                value = {**value, "error": {**err, "message": f"{err['message']} ({cause})"}}
        return result_from_value(setting, value, wall_s=outcome.duration_s, baseline=baseline)
    where = f"num_workers={setting.num_workers}"
    if outcome.stalled:
        batch_events = [e for e in outcome.events if e.get("phase") == "batch"]
        phases = [e.get("phase") for e in outcome.events]
        if not batch_events:
            phase = (
                "while starting"
                if "batch" not in phases and "load" in phases[-1:]
                else "before the first batch"
            )
        else:
            last = batch_events[-1]
            got = int(last.get("batches", 0) or 0)
            epoch = int(last.get("epoch", 0) or 0)
            if phases[-1] == "epoch":
                phase = f"starting epoch {epoch + 2} (workers restarting)"
            else:
                phase = f"after {got} batches" + (f" of epoch {epoch + 1}" if epoch else "")
        return failed_result(
            setting,
            "stall",
            f"stalled: no batch for {stall_timeout:g} s {phase} ({where})",
            hint="The dataset or a worker hangs (a lock, a network read, a deadlock after fork); "
            "`py-spy dump --pid` on the process shows where, or raise --stall-timeout.",
            detail=outcome.stderr_tail or None,
            wall_s=outcome.duration_s,
            baseline=baseline,
        )
    if outcome.error:
        return failed_result(
            setting,
            "crash",
            str(outcome.error.get("message", "failed")),
            hint=outcome.error.get("hint"),
            detail=outcome.error.get("detail"),
            wall_s=outcome.duration_s,
            baseline=baseline,
        )
    if outcome.signal:
        return failed_result(
            setting,
            "killed",
            f"the measuring process was killed by {outcome.signal} ({where})",
            hint="Usually the out-of-memory killer: try fewer workers or smaller batches.",
            detail=outcome.stderr_tail or None,
            wall_s=outcome.duration_s,
            baseline=baseline,
        )
    if outcome.timed_out:
        return failed_result(
            setting,
            "timeout",
            f"timed out after {outcome.duration_s:.0f} s ({where})",
            wall_s=outcome.duration_s,
            baseline=baseline,
        )
    return failed_result(
        setting,
        "crash",
        f"the measuring process ended without a result ({outcome.message})",
        detail=outcome.stderr_tail or None,
        wall_s=outcome.duration_s,
        baseline=baseline,
    )
