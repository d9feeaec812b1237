"""shared_rng: random augmentations that repeat in every worker and epoch.

An RNG created in ``__init__`` (random.Random, a numpy Generator or RandomState, a
torch.Generator) is copied into every worker in the same state, so the workers draw the same
"random" numbers, and again every epoch. Index 0 (a stream's first sample) is fetched twice to
tell random samples from deterministic ones; if random, it is fetched once in each of 2
workers, for 2 epochs, and the draws compared. RNG objects the dataset holds are named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts, absent
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="shared_rng",
    title="Random augmentations differ per worker",
    detects="an RNG created in __init__ that repeats its draws in every worker and epoch",
    cost="4 fetches of one index in 2 workers, 2 epochs",
    touches_samples=True,
    run_order=90,
    list_order=20,
)

FIX = (
    "Don't keep an RNG created in __init__: draw from torch's global RNG (the "
    "DataLoader seeds it per worker and epoch), or re-seed yours in "
    "worker_init_fn: `info = torch.utils.data.get_worker_info(); "
    "info.dataset.rng = numpy.random.default_rng(info.seed)`."
)
FIX_STREAM = (
    "Shard the stream per worker with torch.utils.data.get_worker_info() (see `duplicates`)."
)


@dataclass(frozen=True)
class SharedRngFacts(ProbeFacts):
    """Whether samples are random, and what each worker drew in each epoch."""

    workers: int = 2
    rng_attributes: list[dict[str, str]] = field(default_factory=list)  # path, type
    persistent_workers: bool = False
    iterable: bool = False
    what: str | None = absent()  # what was fetched: "index 0", a stream's first sample
    random: bool | None = None  # None: not checked (reason)
    reason: str | None = absent()
    loader_error: str | None = absent()
    # per epoch: worker id → fingerprint
    epochs: list[dict[str, str]] = absent([])  # noqa: RUF009

    @classmethod
    def example(cls) -> SharedRngFacts:
        return cls(
            rng_attributes=[{"path": "dataset.rng", "type": "numpy.random.Generator"}],
            what="index 0",
            random=True,
            epochs=[{"0": "a", "1": "a"}, {"0": "a", "1": "a"}],
        )


FACTS = SharedRngFacts

_EMPTY = object()  # next()'s default: a stream that ends before its first sample


# ---------------------------------------------------------------- child side


def _rng_attributes(ctx: Any) -> list[dict[str, str]]:
    import random
    import sys

    from dlcheck.doctor.facts import walk_all

    found = []
    np_mod = sys.modules.get("numpy")
    torch_mod = sys.modules.get("torch")
    for path, obj in walk_all(ctx):
        kind = None
        if isinstance(obj, random.Random) and obj is not getattr(random, "_inst", None):
            kind = "random.Random"
        elif np_mod is not None and isinstance(obj, np_mod.random.Generator):
            kind = "numpy.random.Generator"
        elif np_mod is not None and isinstance(obj, np_mod.random.RandomState):
            if obj is not getattr(np_mod.random.mtrand, "_rand", None):
                kind = "numpy.random.RandomState"
        elif (
            torch_mod is not None
            and isinstance(obj, torch_mod.Generator)
            and obj is not torch_mod.default_generator
        ):
            kind = "torch.Generator"
        if kind:
            found.append({"path": path, "type": kind})
    return found


def _first_per_worker(
    loader: Any, workers: int, deadline: float
) -> tuple[dict[int, str], str | None]:
    import time

    from dlcheck.doctor.facts import keep_iter, last_line

    firsts: dict[int, str] = {}
    try:
        for w, f in keep_iter(loader):
            firsts.setdefault(int(w), f)
            if len(firsts) >= workers or time.monotonic() > deadline:
                break
    except Exception as exc:  # user code raises anything: a fact
        return firsts, last_line(exc)
    return firsts, None


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: is a sample random; if so, what each worker draws in two epochs."""
    import time

    from dlcheck.doctor.facts import build_loader, fetch_sample, fingerprint, worker_fingerprint

    workers = max(2, ctx.workers)
    rng_attributes = _rng_attributes(ctx)
    persistent = bool(ctx.loader.persistent_workers) if ctx.loader is not None else False
    seen: dict[str, Any] = {
        "workers": workers,
        "rng_attributes": rng_attributes,
        "persistent_workers": persistent,
        "iterable": ctx.iterable,
    }
    if ctx.iterable:
        two_firsts = [next(iter(ctx.dataset), _EMPTY) for _ in range(2)]
        if any(x is _EMPTY for x in two_firsts):
            return SharedRngFacts(
                **seen, random=None, reason="the stream yields no sample"
            ).to_dict()
        a, b = (fingerprint(x) for x in two_firsts)
        what = "the first sample of a fresh iterator"
        dataset, sampler = ctx.dataset, None
    else:
        if not ctx.length:
            return SharedRngFacts(**seen, random=None, reason="the dataset is empty").to_dict()
        a = fingerprint(fetch_sample(ctx, 0))
        b = fingerprint(fetch_sample(ctx, 0))
        what = "index 0"
        dataset, sampler = ctx.dataset, [0] * workers
    if a == b:
        return SharedRngFacts(**seen, what=what, random=False).to_dict()
    loader = build_loader(
        ctx,
        dataset,
        batch_size=None,
        sampler=sampler,
        collate_fn=worker_fingerprint,
        num_workers=workers,
        persistent_workers=persistent,
    )
    epochs = []
    stopped: dict[str, Any] = {}
    for _epoch in range(2):
        deadline = time.monotonic() + ctx.timeout * 0.3
        firsts, err = _first_per_worker(loader, workers, deadline)
        epochs.append({str(k): v for k, v in sorted(firsts.items())})
        if err:
            stopped["loader_error"] = err
            break
    return SharedRngFacts(**seen, what=what, random=True, **stopped, epochs=epochs).to_dict()


# ---------------------------------------------------------------- judgement


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Fail when workers (or epochs) repeat the same random draws."""
    from dlcheck.doctor.judge import finding, loader_error_finding
    from dlcheck.records import Status

    f = SharedRngFacts.from_dict(facts)
    attrs = f.rng_attributes
    names = ", ".join(f"{a['path']} ({a['type']})" for a in attrs)
    evidence = f.to_dict()
    text = [f"RNG held by the dataset: {names}"] if attrs else []
    if f.random is None:
        return [finding(SPEC.id, Status.SKIP, f"Not checked: {f.reason}.")]
    if not f.random:
        return [
            finding(
                SPEC.id,
                Status.PASS,
                f"Samples are deterministic ({f.what} fetched twice is identical): no "
                "random draws to repeat.",
                evidence=evidence,
                evidence_text=text,
            )
        ]
    if f.loader_error:
        return [loader_error_finding(SPEC.id, f.loader_error, "fetching in workers")]
    epochs = f.epochs
    repeats: list[str] = []
    if epochs:
        first = epochs[0]
        if len(set(first.values())) < len(first) and len(first) > 1:
            repeats.append(f"workers {', '.join(sorted(first))} drew the same sample")
            text.append(f"epoch 1: {len(first)} workers, {len(set(first.values()))} distinct draws")
        if len(epochs) > 1 and not f.persistent_workers:
            same = [w for w in first if epochs[1].get(w) == first[w]]
            if same:
                repeats.append(f"worker {same[0]} repeated its draw in the next epoch")
                text.append("epoch 2 repeated epoch 1's draws")
    if repeats and f.iterable and not attrs:
        # Every worker (and epoch) restarts the same stream from the same state: a stream
        # that continues where it stopped (a queue, a cursor) looks random in one process,
        # yet holds no RNG. That is an unsharded stream, which `duplicates` judges.
        return [
            finding(
                SPEC.id,
                Status.INFO,
                f"Workers restart the same stream ({'; '.join(repeats)}), and the dataset holds "
                "no RNG object: the stream is not sharded rather than its RNG shared (see "
                "`duplicates`).",
                evidence=evidence,
                evidence_text=text,
                fix=FIX_STREAM,
            )
        ]
    if repeats:
        culprit = f" The RNG is held by the dataset: {names}." if attrs else ""
        return [
            finding(
                SPEC.id,
                Status.FAIL,
                f"Random augmentations repeat: {'; '.join(repeats)}. Each worker inherits the "
                f"same RNG state when it starts.{culprit}",
                evidence=evidence,
                evidence_text=text,
                fix=FIX,
            )
        ]
    return [
        finding(
            SPEC.id,
            Status.PASS,
            "Random samples differ across workers and epochs.",
            evidence=evidence,
            evidence_text=text,
        )
    ]
