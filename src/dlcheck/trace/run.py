"""`dlcheck trace`: read the files, derive the figures, judge them. Returns a TraceReport."""

from __future__ import annotations

import os
from collections.abc import Sequence

from dlcheck.errors import UsageError
from dlcheck.inputbound import straggler
from dlcheck.records import exit_code_for
from dlcheck.trace.judge import judge
from dlcheck.trace.reader import read_trace
from dlcheck.trace.records import TraceReport
from dlcheck.trace.stats import rank_figures


def run_trace(
    paths: Sequence[str | os.PathLike[str]],
    *,
    max_input_bound: float | None = None,
    strict: bool = False,
) -> TraceReport:
    """One TraceReport over ``paths`` (one file per rank; ranks from the traces, else order)."""
    if not paths:
        raise UsageError(
            "No trace file given: pass the file(s) written by prof.export_chrome_trace."
        )
    if max_input_bound is not None and not 0 <= max_input_bound <= 1:
        raise UsageError(
            f"--max-input-bound must be a share between 0 and 1, got {max_input_bound:g}."
        )
    ranks = []
    for i, path in enumerate(paths):
        t = read_trace(path)
        if not t.steps:
            raise UsageError(
                f"{path}: no ProfilerStep#N spans; profile with torch.profiler.profile("
                "schedule=...) and call prof.step() once per training step."
            )
        r = rank_figures(t, i)
        if r.steps_without_loader == len(r.steps):
            raise UsageError(
                f"{path}: no DataLoader __next__ span inside the {len(r.steps)} profiled steps; "
                "iterate a torch DataLoader inside the profiled loop."
            )
        ranks.append(r)
    seen: dict[int, str] = {}
    for r in ranks:
        if r.rank in seen:
            raise UsageError(
                f"{seen[r.rank]} and {r.path} are both rank {r.rank}: pass one file per rank."
            )
        seen[r.rank] = r.path
    ranks.sort(key=lambda r: r.rank)
    findings = judge(ranks, max_input_bound)
    slowest, ratio = (
        straggler({r.rank: r.wait_per_step_s for r in ranks}) if len(ranks) > 1 else (None, None)
    )
    return TraceReport(
        ranks=tuple(ranks),
        findings=tuple(findings),
        slowest_rank=slowest,
        straggler_ratio=ratio,
        max_input_bound=max_input_bound,
        strict=strict,
        exit_code=exit_code_for([f.status for f in findings], strict=strict),
    )
