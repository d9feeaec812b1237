"""Figures of a watched loop from raw ``perf_counter_ns`` marks (pure functions, no torch).

Per batch k the watcher keeps ``starts[k]`` (next() called) and ``ends[k]`` (it returned);
per epoch the index of its first batch, the time ``iter()`` was called, and ``end``: when the
next() that raised StopIteration was called (None when the loop broke out or still runs).

* wait k = ends[k] - starts[k]; step k (your loop body) = starts[k+1] - ends[k];
* the first batch of each epoch is start-up, reported as time to first batch and left out;
* the epoch's wall time runs from its first batch to ``end``, or to the start of its last
  next() when it has no end (the last batch's step never finished).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from dlcheck.inputbound import input_bound_share, tier
from dlcheck.profile.stats import percentile
from dlcheck.watch.records import EpochFigures, WatchSummary

_NS = 1e-9


class EpochMarks(NamedTuple):
    first: int  # index of the epoch's first batch in starts/ends
    iter_ns: int  # when iter() was called
    end_ns: int | None  # when the next() that raised StopIteration was called


def summarize(
    starts: Sequence[int],
    ends: Sequence[int],
    epochs: Sequence[EpochMarks],
    *,
    name: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> WatchSummary:
    n_total = min(len(starts), len(ends))
    waits_ns: list[int] = []
    steps_ns: list[int] = []
    figures: list[EpochFigures] = []
    for i, ep in enumerate(epochs):
        stop = epochs[i + 1].first if i + 1 < len(epochs) else n_total
        stop = min(stop, n_total)
        n = stop - ep.first
        if n <= 0:
            figures.append(EpochFigures(i, 0, ep.end_ns is not None, None, 0.0, 0.0, None))
            continue
        first, last = ep.first, stop - 1
        if ep.end_ns is not None:
            until, wait_idx = ep.end_ns, range(first + 1, stop)
            step_marks: list[int] = [*starts[first + 1 : stop], ep.end_ns]
            step_from = ends[first:stop]
        else:
            until, wait_idx = starts[last], range(first + 1, last)
            step_marks = list(starts[first + 1 : stop])
            step_from = ends[first:last]
        ep_waits = [ends[k] - starts[k] for k in wait_idx]
        waits_ns += ep_waits
        steps_ns += [b - a for a, b in zip(step_from, step_marks, strict=True)]
        wall = max(0, until - ends[first]) * _NS
        wait = sum(ep_waits) * _NS
        figures.append(
            EpochFigures(
                epoch=i,
                steps=n,
                complete=ep.end_ns is not None,
                time_to_first_batch_s=(ends[first] - ep.iter_ns) * _NS,
                wait_s=wait,
                wall_s=wall,
                input_bound_share=input_bound_share(wait, wall),
            )
        )
    wait_s = sum(f.wait_s for f in figures)
    wall_s = sum(f.wall_s for f in figures)
    share = input_bound_share(wait_s, wall_s)
    waits_ms = [w * 1e-6 for w in waits_ns]
    return WatchSummary(
        name=name,
        steps=n_total,
        epochs=len(epochs),
        steady_steps=len(waits_ns),
        wait_p50_ms=percentile(waits_ms, 50) if waits_ms else None,
        wait_p95_ms=percentile(waits_ms, 95) if waits_ms else None,
        wait_p99_ms=percentile(waits_ms, 99) if waits_ms else None,
        step_p50_ms=percentile([s * 1e-6 for s in steps_ns], 50) if steps_ns else None,
        time_to_first_batch_s=tuple(
            f.time_to_first_batch_s for f in figures if f.time_to_first_batch_s is not None
        ),
        wait_s=wait_s,
        wall_s=wall_s,
        input_bound_share=share,
        tier=tier(share),
        epoch_figures=tuple(figures),
        rank=rank,
        world_size=world_size,
    )


def with_ranks(own: WatchSummary, every_rank: Sequence[WatchSummary]) -> WatchSummary:
    """``own`` plus every rank's summary, the slowest rank and the straggler ratio."""
    from dataclasses import replace

    from dlcheck.inputbound import straggler

    ranks = tuple(sorted(every_rank, key=lambda s: -1 if s.rank is None else s.rank))
    slowest, ratio = straggler(
        {s.rank if s.rank is not None else i: s.wait_per_step_s for i, s in enumerate(ranks)}
    )
    return replace(own, ranks=ranks, slowest_rank=slowest, straggler_ratio=ratio)
