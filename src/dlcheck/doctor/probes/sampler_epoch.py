"""sampler_epoch: a DistributedSampler that never reshuffles, and eval padding.

DistributedSampler shuffles with ``seed + epoch``: without ``sampler.set_epoch(epoch)`` every
epoch sees the same order. Two passes over the sampler (no sample fetched) tell whether the
order repeats; the target's source file tells whether it ever calls set_epoch. The padding
that evens out the ranks is reported too (evaluation counts those samples twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts, absent
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="sampler_epoch",
    title="DistributedSampler reshuffles each epoch",
    detects="set_epoch never called (same order every epoch); eval padding duplicates",
    cost="two sampler passes (no sample fetched)",
    touches_samples=False,
    run_order=40,
    list_order=110,
)

FIX = (
    "Call `loader.sampler.set_epoch(epoch)` at the start of every epoch, "
    "before iterating the loader."
)
FIX_PADDING = (
    "For exact evaluation, drop_last=True or drop the padded tail when gathering predictions."
)


@dataclass(frozen=True)
class SamplerEpochFacts(ProbeFacts):
    """The loader's sampler; the rest only when it is a DistributedSampler."""

    loader: bool = False  # TARGET is a DataLoader
    distributed: bool = absent(False)  # ... whose sampler is a DistributedSampler
    sampler: str | None = absent()
    shuffle: bool = absent(False)
    same_order_without_set_epoch: bool = absent(False)
    set_epoch_in_source: bool | None = absent()  # None: no source file to read
    source_file: str | None = absent()
    drop_last: bool = absent(False)
    num_replicas: int | None = absent()
    dataset_len: int | None = absent()
    padding: int = absent(0)  # indices repeated so that every rank gets the same count
    dropped: int = absent(0)  # indices drop_last leaves out

    @classmethod
    def example(cls) -> SamplerEpochFacts:
        return cls(
            loader=True,
            distributed=True,
            sampler="torch.utils.data.distributed.DistributedSampler",
            shuffle=True,
            same_order_without_set_epoch=True,
            set_epoch_in_source=False,
            source_file="train.py",
            num_replicas=4,
            dataset_len=50,
            padding=2,
        )


FACTS = SamplerEpochFacts


def _source_mentions(path: str | None, word: str) -> bool | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return word in f.read()
    except OSError:
        return None


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: two passes over the loader's DistributedSampler, without set_epoch."""
    from torch.utils.data.distributed import DistributedSampler

    from dlcheck.doctor.facts import dotted_name, sampler_of

    if ctx.loader is None:
        return SamplerEpochFacts(loader=False).to_dict()
    sampler = sampler_of(ctx.loader)
    if not isinstance(sampler, DistributedSampler):
        return SamplerEpochFacts(
            loader=True, distributed=False, sampler=dotted_name(type(sampler))
        ).to_dict()
    first = list(iter(sampler))
    second = list(iter(sampler))
    n = len(sampler.dataset)  # type: ignore[arg-type]
    return SamplerEpochFacts(
        loader=True,
        distributed=True,
        sampler=dotted_name(type(sampler)),
        shuffle=bool(sampler.shuffle),
        same_order_without_set_epoch=first == second,
        set_epoch_in_source=_source_mentions(ctx.source_file, "set_epoch"),
        source_file=ctx.source_file,
        drop_last=bool(sampler.drop_last),
        num_replicas=int(sampler.num_replicas),
        dataset_len=n,
        padding=int(sampler.total_size - n) if not sampler.drop_last else 0,
        dropped=int(n - sampler.total_size) if sampler.drop_last else 0,
    ).to_dict()


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Warn when a shuffling DistributedSampler repeats its order and set_epoch is never called."""
    from dlcheck.doctor.judge import finding
    from dlcheck.records import Status

    f = SamplerEpochFacts.from_dict(facts)
    evidence = f.to_dict()
    if not f.loader:
        return [
            finding(
                SPEC.id, Status.SKIP, "TARGET is a dataset: no sampler to check.", evidence=evidence
            )
        ]
    if not f.distributed:
        return [
            finding(
                SPEC.id,
                Status.SKIP,
                f"The loader's sampler is {f.sampler}, not a DistributedSampler.",
                evidence=evidence,
            )
        ]
    out: list[Finding] = []
    if f.shuffle and f.same_order_without_set_epoch:
        if f.set_epoch_in_source:
            out.append(
                finding(
                    SPEC.id,
                    Status.PASS,
                    "DistributedSampler shuffles, and the target's source calls set_epoch.",
                    evidence=evidence,
                )
            )
        else:
            out.append(
                finding(
                    SPEC.id,
                    Status.WARN,
                    "DistributedSampler gives the same order every epoch unless "
                    "`sampler.set_epoch(epoch)` is called, and the target's source never "
                    "calls it.",
                    evidence=evidence,
                    evidence_text=["two passes without set_epoch gave the same order"],
                    fix=FIX,
                )
            )
    else:
        out.append(
            finding(
                SPEC.id,
                Status.PASS,
                "DistributedSampler does not shuffle (evaluation order is fixed on purpose).",
                evidence=evidence,
            )
        )
    if f.padding:
        out.append(
            finding(
                SPEC.id,
                Status.INFO,
                f"DistributedSampler pads {f.padding} duplicated samples so every rank gets "
                f"the same count ({f.dataset_len} samples over {f.num_replicas} "
                "ranks): evaluation metrics count them twice.",
                evidence=evidence,
                fix=FIX_PADDING,
            )
        )
    return out
