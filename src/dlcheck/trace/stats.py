"""Per-step and per-rank figures from the spans of a trace (pure functions, no torch).

The wait of a step is the time, inside its ProfilerStep#N span, covered by DataLoader
``__next__`` spans, plus the time covered by CUDA runtime calls that issued a host-to-device
copy outside them (a blocking, not overlapped copy). Overlapping spans count once.
"""

from __future__ import annotations

from collections.abc import Sequence

from dlcheck.inputbound import input_bound_share, tier
from dlcheck.trace.reader import LOADER_RE, STEP_RE
from dlcheck.trace.records import RankFigures, Span, StepFigures, TraceFile

Interval = tuple[float, float]


def union(spans: Sequence[Span], lo: float, hi: float) -> list[Interval]:
    """The parts of [lo, hi] covered by ``spans``, merged and sorted."""
    cut = sorted((max(lo, s.start_us), min(hi, s.end_us)) for s in spans)
    out: list[Interval] = []
    for a, b in cut:
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def covered(intervals: Sequence[Interval]) -> float:
    return sum(b - a for a, b in intervals)


def minus(intervals: Sequence[Interval], holes: Sequence[Interval]) -> list[Interval]:
    """``intervals`` with ``holes`` cut out (both merged and sorted)."""
    out: list[Interval] = []
    for a, b in intervals:
        cur = a
        for ha, hb in holes:
            if hb <= cur or ha >= b:
                continue
            if ha > cur:
                out.append((cur, ha))
            cur = max(cur, hb)
        if cur < b:
            out.append((cur, b))
    return out


def _overlapping(spans: Sequence[Span], lo: float, hi: float) -> list[Span]:
    return [s for s in spans if s.end_us > lo and s.start_us < hi]


def step_figures(step: Span, loader: Sequence[Span], h2d: Sequence[Span]) -> StepFigures:
    lo, hi = step.start_us, step.end_us
    waits = union(_overlapping(loader, lo, hi), lo, hi)
    copies = minus(union(_overlapping(h2d, lo, hi), lo, hi), waits)
    loader_ms, h2d_ms = covered(waits) / 1e3, covered(copies) / 1e3
    wall_ms = step.dur_us / 1e3
    m = STEP_RE.match(step.name)
    return StepFigures(
        step=int(m.group(1)) if m else -1,
        wall_ms=wall_ms,
        loader_wait_ms=loader_ms,
        h2d_wait_ms=h2d_ms,
        input_bound_share=input_bound_share(loader_ms + h2d_ms, wall_ms),
    )


def rank_figures(trace: TraceFile, rank: int) -> RankFigures:
    steps = tuple(step_figures(s, trace.loader_spans, trace.h2d_spans) for s in trace.steps)
    wall_s = sum(s.wall_ms for s in steps) / 1e3
    loader_s = sum(s.loader_wait_ms for s in steps) / 1e3
    h2d_s = sum(s.h2d_wait_ms for s in steps) / 1e3
    share = input_bound_share(loader_s + h2d_s, wall_s)
    kinds = sorted({_kind(s.name) for s in trace.loader_spans})
    return RankFigures(
        path=trace.path,
        rank=trace.rank if trace.rank is not None else rank,
        steps=steps,
        steps_without_loader=sum(1 for s in steps if s.loader_wait_ms == 0),
        loader_kind=", ".join(kinds),
        has_cuda=trace.has_cuda,
        wall_s=wall_s,
        loader_wait_s=loader_s,
        h2d_wait_s=h2d_s,
        input_bound_share=share,
        tier=tier(share),
    )


def _kind(name: str) -> str:
    m = LOADER_RE.search(name)
    return (m.group(1) if m and m.group(1) else name.rsplit(".", 1)[0]) or "DataLoader"


def worst_steps(steps: Sequence[StepFigures], n: int = 5) -> list[StepFigures]:
    """The ``n`` steps that waited longest, longest first."""
    return sorted(steps, key=lambda s: (-s.wait_ms, s.step))[:n]
