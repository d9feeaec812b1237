"""last_batch: a last batch of exactly 1 sample, which breaks BatchNorm in training.

With ``drop_last=False`` an epoch whose sample count leaves a remainder of 1 ends in a batch
of one sample, and ``nn.BatchNorm*`` in training mode raises "Expected more than 1 value per
channel when training" at the very end of the epoch, often hours in. The count is per rank
under a DistributedSampler (its ``len`` is the rank's share), and a custom batch_sampler is
measured by iterating its indices only: no sample is fetched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dlcheck.doctor.probe_facts import ProbeFacts
from dlcheck.doctor.spec import ProbeSpec

SPEC = ProbeSpec(
    id="last_batch",
    title="No last batch of 1 sample",
    detects="drop_last=False with a sample count that leaves a last batch of exactly 1 sample "
    "(BatchNorm raises in training)",
    cost="len of the sampler; for a custom batch_sampler one pass over its indices "
    "(no sample fetched)",
    touches_samples=False,
    run_order=45,
    list_order=130,
)

FIX = "Set drop_last=True, or a batch size that does not leave 1 sample."


@dataclass(frozen=True)
class LastBatchFacts(ProbeFacts):
    """How the loader's epoch ends; ``skipped`` says why it could not be measured."""

    skipped: str | None = None
    samples: int | None = None  # samples per epoch (this rank's, under a DistributedSampler)
    batch_size: int | None = None  # the loader's, or the largest batch of a custom sampler
    batches: int | None = None
    last_batch_size: int | None = None  # None with drop_last=True: no partial batch
    drop_last: bool = False
    source: str = "batch_size"  # "batch_size" | "batch_sampler"

    @classmethod
    def example(cls) -> LastBatchFacts:
        return cls(samples=101, batch_size=10, batches=11, last_batch_size=1)


FACTS = LastBatchFacts


def _measure_batch_sampler(batch_sampler: Any, deadline: float) -> LastBatchFacts:
    """Walks a custom batch_sampler's index lists (no sample fetched) for its last batch."""
    import random

    import torch

    try:
        len(batch_sampler)
    except TypeError:
        return LastBatchFacts(skipped="the custom batch_sampler has no len", source="batch_sampler")
    py_state = random.getstate()
    batches, samples, largest, last = 0, 0, 0, None
    # The walk may draw from the RNGs (RandomSampler seeds itself from torch's): the probes
    # that follow must see them untouched.
    with torch.random.fork_rng(devices=[]):
        try:
            for batch in batch_sampler:
                n = len(batch)
                batches, samples, largest, last = batches + 1, samples + n, max(largest, n), n
                if time.monotonic() > deadline:
                    return LastBatchFacts(
                        skipped=f"the batch_sampler was still yielding after {batches} batches",
                        source="batch_sampler",
                    )
        except Exception as exc:  # user code raises anything: a fact
            from dlcheck.doctor.facts import last_line

            return LastBatchFacts(
                skipped=f"the batch_sampler raised {last_line(exc)}", source="batch_sampler"
            )
        finally:
            random.setstate(py_state)
    return LastBatchFacts(
        samples=samples,
        batch_size=largest,
        batches=batches,
        last_batch_size=last,
        source="batch_sampler",
    )


def measure(ctx: Any) -> LastBatchFacts:
    """The last batch of the TARGET loader's epoch, from lengths or sampler indices only."""
    loader = ctx.loader
    if loader is None:
        return LastBatchFacts(skipped="TARGET is a Dataset: pass the DataLoader to check it")
    if loader.batch_size is None and loader.batch_sampler is None:
        return LastBatchFacts(skipped="batch_size=None: the loader does not batch")
    if loader.batch_size is None:  # a custom batch_sampler
        return _measure_batch_sampler(loader.batch_sampler, time.monotonic() + ctx.timeout * 0.5)
    if ctx.iterable and loader.num_workers > 0:
        return LastBatchFacts(
            skipped="an IterableDataset with workers: each worker ends with its own last batch"
        )
    try:
        samples = len(loader.sampler) if not ctx.iterable else len(loader.dataset)
    except TypeError:
        return LastBatchFacts(skipped="the dataset has no len")
    bs = int(loader.batch_size)
    full, rest = divmod(samples, bs)
    drop = bool(loader.drop_last)
    return LastBatchFacts(
        samples=samples,
        batch_size=bs,
        batches=full if drop else full + (rest > 0),
        last_batch_size=None if drop else (rest or (bs if full else None)),
        drop_last=drop,
    )


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: the facts, as JSON."""
    return measure(ctx).to_dict()


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Any]:
    """Warn when the epoch ends in a batch of exactly one sample (and batches are larger)."""
    from dlcheck.doctor.records import Finding
    from dlcheck.records import Status

    f = LastBatchFacts.from_dict(facts)

    def finding(status: Status, message: str, **kw: Any) -> Finding:
        return Finding(SPEC.id, status, SPEC.title, message, evidence=f.to_dict(), **kw)

    if f.skipped:
        return [finding(Status.SKIP, f.skipped + ".")]
    where = "the custom batch_sampler's" if f.source == "batch_sampler" else "the"
    if f.drop_last:
        return [finding(Status.PASS, "drop_last=True: no partial last batch.")]
    if f.last_batch_size == 1 and (f.batch_size or 0) > 1:
        return [
            finding(
                Status.WARN,
                f"{where} last batch holds 1 sample ({f.samples} samples, batch size "
                f'{f.batch_size}): BatchNorm in training raises "Expected more than 1 value '
                'per channel when training" at the end of every epoch.',
                evidence_text=[
                    f"{f.samples} samples per epoch = {(f.batches or 1) - 1} batches of "
                    f"{f.batch_size} + 1"
                ],
                fix=FIX,
            )
        ]
    if f.last_batch_size is None:
        return [finding(Status.PASS, "the epoch is empty: no last batch.")]
    return [
        finding(
            Status.PASS,
            f"{where} last batch holds {f.last_batch_size} sample"
            f"{'s' if f.last_batch_size != 1 else ''} ({f.samples} samples, batch size "
            f"{f.batch_size}).",
        )
    ]
