"""corrupt_samples: samples that raise, or hold NaN, Inf or None.

64 indices spread over the dataset (the first 64 samples of a stream) are fetched and checked;
``--scan`` checks every one, in parallel DataLoader workers, bounded by progress rather than by
total time. Every bad index is kept (the screen shows the first few, JSON all of them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts, absent
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="corrupt_samples",
    title="Samples load cleanly",
    detects="exceptions, NaN/Inf and None in samples",
    cost="64 spread indices (all with --scan, in parallel)",
    touches_samples=True,
    run_order=60,
    list_order=50,
)

FIX = (
    "Fix or filter these samples (e.g. drop them from the index list); "
    "`dlcheck doctor --scan --json` lists every bad index."
)
FIX_STOPPED = "Fetch that index with num_workers=0 to see why the worker died or hung."
# A failure here is the root cause of the same exception in the loader probes: they report
# it as a skip then (judge.dedupe_dataset_exceptions).
REPORTS_DATASET_EXCEPTIONS = True
STREAM_CAP = 64  # samples of a stream checked without --scan
SCAN_STREAM_CAP = 10_000_000


def bounded_by_progress(ctx: Any) -> bool:
    """--scan may take long: the runner bounds it by progress (a stall), not by total time."""
    return bool(ctx.scan)


@dataclass(frozen=True)
class CorruptSamplesFacts(ProbeFacts):
    """The samples checked and the bad ones: ``{"index", "error"}`` for a sample that raised,
    ``{"index", "problems"}`` for one with NaN/Inf/None (``index``: the stream position for an
    IterableDataset, with ``"stream_position": True`` on the error that ended the stream)."""

    scan: bool = False
    bad: list[dict[str, Any]] = field(default_factory=list)
    stalled: bool = absent(False)  # a stream that went quiet before STREAM_CAP samples
    total: int | None = None  # None for a stream
    stream: bool = False
    loader_error: str | None = absent()  # the --scan workers died or hung
    stopped_at: int | None = absent()  # ... before this index
    checked: int = 0

    @classmethod
    def example(cls) -> CorruptSamplesFacts:
        bad = [{"index": 7, "error": "OSError: truncated"}, {"index": 9, "problems": ["x"]}]
        return cls(scan=True, bad=bad, total=100, checked=100)


FACTS = CorruptSamplesFacts


# ---------------------------------------------------------------- child side


def _check_one(ctx: Any, i: int) -> dict[str, Any] | None:
    from dlcheck.doctor.facts import fetch_sample, last_line, sample_problems

    try:
        sample = fetch_sample(ctx, i)
    except Exception as exc:  # user code raises anything: a fact
        return {"index": i, "error": last_line(exc)}
    problems = sample_problems(sample)
    return {"index": i, "problems": problems} if problems else None


class CheckingDataset:
    """Wraps a map-style dataset for the --scan pass: each item is the check result."""

    def __init__(self, dataset: Any, indices: list[int]):
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> tuple[int, Any]:
        from dlcheck.doctor.facts import last_line, sample_problems

        i = self.indices[j]
        try:
            sample = self.dataset[i]
        except Exception as exc:  # user code raises anything: a fact
            return (i, {"index": i, "error": last_line(exc)})
        problems = sample_problems(sample)
        return (i, {"index": i, "problems": problems} if problems else None)


def _check_stream(ctx: Any, send: Any) -> CorruptSamplesFacts:
    import math
    import time

    from dlcheck.doctor.facts import Stalled, interrupt_at, last_line, sample_problems

    bad: list[dict[str, Any]] = []
    stalled: dict[str, Any] = {}
    cap = SCAN_STREAM_CAP if ctx.scan else STREAM_CAP
    checked = 0
    last = time.monotonic()
    # Without --scan, a stream that goes quiet before 64 samples (it waits for new data)
    # ends the check with what arrived; --scan is bounded by progress (the runner's stall
    # timeout) instead.
    deadline = math.inf if ctx.scan else time.monotonic() + ctx.timeout * 0.8
    try:
        with interrupt_at(deadline, when=lambda: checked > 0):
            for sample in ctx.dataset:
                problems = sample_problems(sample)
                if problems:
                    bad.append({"index": checked, "problems": problems})
                checked += 1
                if time.monotonic() - last > 0.25:
                    last = time.monotonic()
                    send({"progress": checked, "total": None})
                if checked >= cap:
                    break
    except Stalled:
        stalled["stalled"] = True
    except Exception as exc:  # user code raises anything: a fact
        bad.append({"index": checked, "error": last_line(exc), "stream_position": True})
    return CorruptSamplesFacts(
        scan=ctx.scan, bad=bad, **stalled, checked=checked, total=None, stream=True
    )


def _scan_in_workers(ctx: Any, send: Any, indices: list[int]) -> CorruptSamplesFacts:
    """--scan: all indices, in parallel, in DataLoader workers; a stall is bounded by the
    runner."""
    import time

    from dlcheck.doctor.facts import build_loader, identity, keep_iter, last_line

    bad: list[dict[str, Any]] = []
    loader = build_loader(
        ctx,
        CheckingDataset(ctx.dataset, indices),
        batch_size=None,
        collate_fn=identity,
        num_workers=ctx.workers,
        prefetch_factor=8,
    )
    stopped: dict[str, Any] = {}
    checked = 0
    last = 0.0
    try:
        for _i, found in keep_iter(loader):
            checked += 1
            if found:
                bad.append(found)
            now = time.monotonic()
            if now - last > 0.2:
                last = now
                nxt = indices[checked] if checked < len(indices) else None
                send(
                    {
                        "progress": checked,
                        "total": len(indices),
                        "step": f"scanning: {checked} of {len(indices)} checked, next index {nxt}",
                    }
                )
    except Exception as exc:  # user code raises anything: a fact
        stopped["loader_error"] = last_line(exc)
        stopped["stopped_at"] = indices[checked] if checked < len(indices) else None
    send({"progress": checked, "total": len(indices)})
    return CorruptSamplesFacts(
        scan=ctx.scan, bad=bad, total=len(indices), stream=False, **stopped, checked=checked
    )


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: check spread indices (every index with --scan) for exceptions and bad
    values."""
    from dlcheck.doctor.facts import spread_indices

    if ctx.iterable:
        return _check_stream(ctx, send).to_dict()
    n = ctx.length or 0
    indices = list(range(n)) if ctx.scan else spread_indices(n, 64)
    if ctx.scan and n >= 256 and ctx.workers != 0:
        return _scan_in_workers(ctx, send, indices).to_dict()
    bad: list[dict[str, Any]] = []
    for k, i in enumerate(indices):
        send({"step": f"fetching index {i}", "progress": k, "total": len(indices)})
        found = _check_one(ctx, i)
        if found:
            bad.append(found)
    return CorruptSamplesFacts(
        scan=ctx.scan, bad=bad, total=len(indices), stream=False, checked=len(indices)
    ).to_dict()


# ---------------------------------------------------------------- judgement


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Fail listing the bad indices (all in JSON, the first few on screen)."""
    from dlcheck.doctor.judge import SCREEN_CAP, capped, finding
    from dlcheck.records import Status

    f = CorruptSamplesFacts.from_dict(facts)
    bad = f.bad
    checked = f.checked
    word = "stream position" if f.stream else "index"
    bad_indices = [b["index"] for b in bad]
    evidence: dict[str, Any] = {
        "checked": checked,
        "scan": f.scan,
        "bad_indices": bad_indices,
        "bad": bad,
    }
    text = []
    for b in bad[:SCREEN_CAP]:
        if "error" in b:
            text.append(f"{word} {b['index']}: {b['error']}")
        else:
            text.append(f"{word} {b['index']}: {'; '.join(b['problems'][:3])}")
    if len(bad) > SCREEN_CAP:
        text.append(f"and {len(bad) - SCREEN_CAP} more (all of them in --json)")
    if f.loader_error:
        evidence["loader_error"] = f.loader_error
        text.append(f"scan stopped at index {f.stopped_at}: {f.loader_error}")
        return [
            finding(
                SPEC.id,
                Status.FAIL,
                f"The scan stopped after {checked} samples: {f.loader_error}",
                evidence=evidence,
                evidence_text=text,
                fix=FIX_STOPPED,
            )
        ]
    scope = "every sample" if f.scan else f"{checked} samples spread over the dataset"
    if not bad:
        if not checked:
            return [finding(SPEC.id, Status.SKIP, "The dataset is empty.")]
        hint = "" if f.scan else "; run with --scan to check every sample"
        return [
            finding(
                SPEC.id,
                Status.PASS,
                f"No exception, NaN/Inf or None in {scope}{hint}.",
                evidence=evidence,
            )
        ]
    kinds = Counter("exception" if "error" in b else "bad value" for b in bad)
    return [
        finding(
            SPEC.id,
            Status.FAIL,
            f"{len(bad)} of {checked} checked samples are bad ("
            + ", ".join(f"{v} {k}{'s' if v != 1 else ''}" for k, v in kinds.items())
            + f"): {'stream positions' if f.stream else 'indices'} {capped(bad_indices)}.",
            evidence=evidence,
            evidence_text=text,
            fix=FIX,
        )
    ]
