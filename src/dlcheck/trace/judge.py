"""Findings about the traces: pure functions from figures to verdicts (each with advice)."""

from __future__ import annotations

from collections.abc import Sequence

from dlcheck.inputbound import Tier, advice, describe, straggler
from dlcheck.records import Status
from dlcheck.trace.records import Finding, RankFigures


def judge(ranks: Sequence[RankFigures], max_input_bound: float | None) -> list[Finding]:
    out: list[Finding] = []
    many = len(ranks) > 1
    for r in ranks:
        who = f"rank {r.rank}: " if many else ""
        share = r.input_bound_share
        status = Status.WARN if r.tier in (Tier.MODERATE, Tier.HIGH) else Status.PASS
        out.append(
            Finding(f"input_bound.rank{r.rank}", status, who + describe(share), advice(share))
        )
        if max_input_bound is not None and share is not None and share > max_input_bound:
            out.append(
                Finding(
                    f"max_input_bound.rank{r.rank}",
                    Status.FAIL,
                    f"{who}input-bound share {share:.3f} is above --max-input-bound "
                    f"{max_input_bound:g}.",
                    advice(share) or "Make the loader faster, or raise the threshold.",
                )
            )
        missing = r.steps_without_loader
        if missing:
            out.append(
                Finding(
                    f"steps_without_loader.rank{r.rank}",
                    Status.INFO,
                    f"{who}{missing} of {len(r.steps)} profiled steps have no DataLoader "
                    "__next__ inside (usually the last one, cut when the profiler stopped); "
                    "they count as steps that did not wait.",
                )
            )
        if not r.has_cuda:
            out.append(
                Finding(
                    f"no_cuda.rank{r.rank}",
                    Status.INFO,
                    f"{who}no GPU activity in the trace: only the wait in next() is counted "
                    "(a host-to-device copy outside the loader cannot be seen).",
                )
            )
    if many:
        slowest, ratio = straggler({r.rank: r.wait_per_step_s for r in ranks})
        if slowest is not None:
            ratio_text = "" if ratio is None else f", {ratio:.2f}x the median rank's wait per step"
            out.append(Finding("slowest_rank", Status.INFO, f"slowest rank: {slowest}{ratio_text}"))
    return out
