"""duplicates: samples delivered more than once per epoch.

An IterableDataset that does not shard itself is read in full by every worker, so an epoch
repeats the data ``num_workers`` times. The stream is read with N workers and with 0 (capped
at 20,000 samples each) and the sample fingerprints compared. A map-style dataset is safe by
construction (the main process hands each index to one worker): only its sampler is checked
for indices repeated within an epoch. The shard audit across ranks reports under this id too
(:func:`dlcheck.doctor.judge.judge_ranks`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts, absent
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="duplicates",
    title="Samples delivered once",
    detects="an IterableDataset that every worker (or rank) reads in full",
    cost="one pass with 0 and one with N workers (capped at 20,000 samples)",
    touches_samples=True,
    run_order=80,
    list_order=10,
)

FIX = (
    "Shard the stream in __iter__: `info = torch.utils.data.get_worker_info()`; "
    "when it is not None, yield only items `i` with `i % info.num_workers == "
    "info.id` (or split the file list by `info.id`)."
)
FIX_MISSING = (
    "Make the per-worker shards cover everything: e.g. "
    "`per_worker = math.ceil(n / info.num_workers)` and clamp the last "
    "shard's end to n."
)
FIX_SAMPLER = (
    "Check the custom sampler's __iter__: each index once per epoch, unless you "
    "mean to sample with replacement."
)
MAX_SAMPLER_LEN = 2_000_000  # a map-style sampler longer than this is not walked


@dataclass(frozen=True)
class DuplicatesFacts(ProbeFacts):
    """A stream's two passes (fingerprints), or a map-style sampler's index counts."""

    style: str = "iterable"  # "iterable" | "map"; the other style's fields are absent
    # An IterableDataset:
    workers: int = absent(2)
    world_size: int = absent(1)  # under --world-size the stream is this rank's shard
    # fingerprints with 0 workers
    zero: list[str] = absent([])  # noqa: RUF009
    zero_complete: bool = absent(False)  # ... the whole stream (not capped or stopped)
    zero_error: str | None = absent()
    # [worker id, fingerprint] with N workers
    many: list[list[Any]] = absent([])  # noqa: RUF009
    many_complete: bool = absent(False)
    loader_error: str | None = absent()
    # A map-style dataset:
    sampler: str | None = absent()
    length: int | None = absent()
    sampler_error: str | None = absent()
    replacement: bool = absent(False)  # a sampler that draws with replacement on purpose
    sampled: int | None = absent()
    distinct: int | None = absent()
    repeated: int = absent(0)

    @classmethod
    def example(cls) -> DuplicatesFacts:
        zero = ["f0", "f1", "f2"]
        return cls(
            workers=2,
            world_size=1,
            zero=zero,
            zero_complete=True,
            many=[[w, fp] for w in (0, 1) for fp in zero],
            many_complete=True,
        )


FACTS = DuplicatesFacts


# ---------------------------------------------------------------- child side


def _collect_map(ctx: Any) -> DuplicatesFacts:
    from torch.utils.data import RandomSampler, WeightedRandomSampler

    from dlcheck.doctor.facts import dotted_name, last_line, sampler_of

    sampler = sampler_of(ctx.loader) if ctx.loader is not None else None
    seen: dict[str, Any] = {
        "style": "map",
        "sampler": dotted_name(type(sampler)) if sampler is not None else None,
        "length": ctx.length,
    }
    if sampler is None or ctx.length is None or ctx.length > MAX_SAMPLER_LEN:
        return DuplicatesFacts(**seen)
    replacement = isinstance(sampler, WeightedRandomSampler) or (
        isinstance(sampler, RandomSampler) and sampler.replacement
    )
    try:
        indices = [int(i) for i in iter(sampler)]
    except Exception as exc:  # user code raises anything: a fact
        return DuplicatesFacts(**seen, sampler_error=last_line(exc))
    counts = Counter(indices)
    return DuplicatesFacts(
        **seen,
        replacement=replacement,
        sampled=len(indices),
        distinct=len(counts),
        repeated=sum(c - 1 for c in counts.values() if c > 1),
    )


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: a stream read with N workers, then with 0; a map-style sampler's counts."""
    import os
    import time

    from dlcheck.doctor.facts import (
        DUP_CAP,
        build_loader,
        fingerprint,
        iter_capped,
        reap_workers,
        worker_fingerprint,
    )

    if not ctx.iterable:
        return _collect_map(ctx).to_dict()
    # The workers' pass first: they must fork from the dataset as loaded. A stream that
    # consumes a shared queue or cursor (the seed's log source pops its logs) would otherwise
    # reach the workers already drained by the single-process pass.
    send({"step": f"iterating with {ctx.workers} workers"})
    loader = build_loader(
        ctx, ctx.dataset, batch_size=None, collate_fn=worker_fingerprint, num_workers=ctx.workers
    )
    deadline = time.monotonic() + ctx.timeout * 0.45
    tagged, many_complete, many_err = iter_capped(loader, DUP_CAP * max(1, ctx.workers), deadline)
    reap_workers()  # the 0-worker pass needs neither their CPU nor their memory
    send({"step": "iterating with 0 workers"})
    deadline = time.monotonic() + ctx.timeout * 0.35
    zero, zero_complete, zero_err = iter_capped(
        (fingerprint(s) for s in ctx.dataset), DUP_CAP, deadline
    )
    return DuplicatesFacts(
        style="iterable",
        workers=ctx.workers,
        # Under --world-size the stream is this rank's shard, whose content may depend on
        # the worker count by design; coverage across ranks is the shard audit's job.
        world_size=int(os.environ.get("WORLD_SIZE", "1") or 1),
        zero=zero,
        zero_complete=zero_complete,
        zero_error=zero_err,
        many=[[int(w), f] for w, f in tagged],
        many_complete=many_complete,
        loader_error=many_err,
    ).to_dict()


# ---------------------------------------------------------------- judgement


def _judge_map(f: DuplicatesFacts) -> Finding:
    from dlcheck.doctor.judge import finding, loader_error_finding
    from dlcheck.records import Status

    evidence = {k: v for k, v in f.to_dict().items() if k != "style"}
    if f.sampler_error:
        return loader_error_finding(SPEC.id, f.sampler_error, "iterating the sampler")
    repeated = f.repeated
    if repeated and not f.replacement:
        return finding(
            SPEC.id,
            Status.WARN,
            f"The sampler yields {repeated} repeated indices in one epoch "
            f"({f.distinct} distinct of {f.sampled}).",
            evidence=evidence,
            evidence_text=[f"sampler: {f.sampler}"],
            fix=FIX_SAMPLER,
        )
    return finding(
        SPEC.id,
        Status.PASS,
        "Map-style: the main process hands each index to exactly one worker.",
        evidence=evidence,
        evidence_text=[f"sampler: {f.sampler}"] if f.sampler else [],
    )


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Fail when workers deliver the same sample; warn when their shards miss some."""
    from dlcheck.doctor.judge import finding, loader_error_finding
    from dlcheck.records import Status

    f = DuplicatesFacts.from_dict(facts)
    if f.style == "map":
        return [_judge_map(f)]
    if f.zero_error and not f.zero:
        return [loader_error_finding(SPEC.id, f.zero_error, "iterating with 0 workers")]
    zero = f.zero
    many = f.many
    workers = f.workers
    complete = f.zero_complete and f.many_complete
    c0 = Counter(zero)
    cn: Counter[str] = Counter()
    by_worker: dict[str, set[int]] = {}
    per_worker: Counter[int] = Counter()
    for w, fp in many:
        cn[fp] += 1
        by_worker.setdefault(fp, set()).add(int(w))
        per_worker[int(w)] += 1
    # A sample repeated inside the single-process stream is repeated data, not sharding.
    dup = [fp for fp, ws in by_worker.items() if len(ws) > 1 and c0.get(fp, 0) <= 1]
    extra_deliveries = sum(cn[fp] - 1 for fp in dup)
    evidence: dict[str, Any] = {
        "workers": workers,
        "samples_0_workers": len(zero),
        "samples_n_workers": len(many),
        "per_worker": {str(k): v for k, v in sorted(per_worker.items())},
        "duplicated_samples": len(dup),
        "extra_deliveries": extra_deliveries,
        "complete": bool(complete),
    }
    text = [
        f"0 workers: {len(zero)} samples; {workers} workers: {len(many)} samples "
        f"(per worker: {', '.join(f'#{k}: {v}' for k, v in sorted(per_worker.items()))})"
    ]
    if not complete:
        text.append(f"stopped after {len(zero)} / {len(many)} samples (cap or time budget)")
    if f.loader_error and not many:
        return [loader_error_finding(SPEC.id, f.loader_error, f"iterating with {workers} workers")]
    if dup:
        share = len(dup) / max(1, len(set(cn)))
        text.append(
            f"{len(dup)} distinct samples were delivered by more than one worker "
            f"({extra_deliveries} extra deliveries, {share:.0%} of what the workers delivered)"
        )
        return [
            finding(
                SPEC.id,
                Status.FAIL,
                f"{len(dup)} samples were delivered by more than one worker: every worker "
                "iterates the whole IterableDataset, so each epoch repeats the data "
                f"{workers}×.",
                evidence=evidence,
                evidence_text=text,
                fix=FIX,
            )
        ]
    if complete and zero and f.world_size <= 1:
        overlap = sum((c0 & cn).values()) / max(1, len(zero))
        evidence["overlap"] = round(overlap, 3)
        missing = sum((c0 - cn).values())
        evidence["missing"] = missing
        if missing and overlap >= 0.5:
            text.append(f"{missing} samples of the single-process stream never arrived")
            return [
                finding(
                    SPEC.id,
                    Status.WARN,
                    f"{missing} of {len(zero)} samples are missing with {workers} workers: the "
                    "worker shards do not cover the stream.",
                    evidence=evidence,
                    evidence_text=text,
                    fix=FIX_MISSING,
                )
            ]
        if overlap < 0.5:
            text.append("samples differ between runs (random data): coverage not compared")
    return [
        finding(
            SPEC.id,
            Status.PASS,
            f"Each sample came from one worker ({len(many)} samples with {workers} workers).",
            evidence=evidence,
            evidence_text=text,
        )
    ]
