"""memory_growth: copy-on-read growth of large Python containers in every worker.

A forked worker shares its parent's pages until it writes them, and merely reading a Python
object writes its refcount: a dataset that keeps a list of a million str (or dicts) is copied,
page by page, into every worker as the epoch reads it (pytorch/pytorch#13246). An attribute
walk finds such containers; if there is one, up to 3 s of fetches in a fork measure how much
of the inherited memory became private (USS), projected to an epoch and all workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts, absent
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="memory_growth",
    title="No copy-on-read memory growth",
    detects="large Python containers whose pages every worker copies while reading",
    cost="an attribute walk; if suspicious, up to 3 s of fetches in a forked worker",
    touches_samples=True,
    run_order=100,
    list_order=70,
)

FIX = (
    "Store the data in numpy arrays / tensors / Arrow (one object, no per-item refcounts), "
    "e.g. `np.array(paths, dtype=np.bytes_)` instead of a list of str, or keep it on disk; "
    "see pytorch/pytorch#13246."
)
CONTAINER_MIN_ITEMS = 10_000  # below this, copy-on-read growth is too small to matter
GROWTH_WARN_BYTES = 64 << 20  # projected private memory across all workers
GROWTH_NOISE_BYTES = 1 << 20  # below this, the measured growth is allocator noise


@dataclass(frozen=True)
class MemoryGrowthFacts(ProbeFacts):
    """The large containers (path, type, items, approx_bytes) and, if measured, the growth."""

    containers: list[dict[str, Any]] = field(default_factory=list)
    length: int | None = None
    num_workers: int | None = None  # the target's
    measured: bool = False
    touched: int = absent(0)  # samples fetched in the fork
    uss_growth_bytes: int = absent(0)  # ... and how much private memory that made

    @classmethod
    def example(cls) -> MemoryGrowthFacts:
        container = {"path": "dataset.items", "type": "list", "items": 10**6, "approx_bytes": 90}
        return cls(
            containers=[container],
            length=10**6,
            num_workers=4,
            measured=True,
            touched=4000,
            uss_growth_bytes=16 << 20,
        )


FACTS = MemoryGrowthFacts


def _uss() -> int | None:
    import psutil

    try:
        return int(psutil.Process().memory_full_info().uss)
    except Exception:  # psutil may lack uss on this platform or be denied: not available
        return None


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: the large containers; if any, the USS growth of fetching spread samples."""
    import gc
    import itertools
    import sys
    import time

    from dlcheck.doctor.facts import fetch_sample, is_array, spread_indices, walk

    containers = []
    for path, obj in walk(ctx.dataset, "dataset", max_depth=3):
        n = None
        if isinstance(obj, (list, dict, set, frozenset, tuple)) or type(obj).__name__ == "deque":
            n = len(obj)
        elif is_array(obj) and type(obj).__module__ == "numpy" and obj.dtype == object:
            n = int(obj.size)
        if n is not None and n >= CONTAINER_MIN_ITEMS:
            # Never copy the container: that would touch (and un-share) every item before
            # the measurement below.
            source = obj.values() if isinstance(obj, dict) else obj
            items = (
                list(obj.ravel()[:200]) if is_array(obj) else list(itertools.islice(source, 200))
            )
            per_item = sum(sys.getsizeof(x) for x in items) / max(1, len(items))
            est = int(sys.getsizeof(obj) + per_item * n)
            containers.append(
                {"path": path, "type": type(obj).__name__, "items": n, "approx_bytes": est}
            )
    seen: dict[str, Any] = {
        "containers": containers,
        "length": ctx.length,
        "num_workers": ctx.target_workers,
    }
    if not containers or ctx.iterable or not ctx.length:
        return MemoryGrowthFacts(**seen, measured=False).to_dict()
    # Confirm in a forked process, like a fork-started worker: touch spread-out samples and
    # measure how much of the inherited memory became private (USS).
    gc.collect()
    gc.freeze()  # a collection would touch every tracked object and inflate the figure
    indices = spread_indices(ctx.length, min(ctx.length, 4000))
    before = _uss()
    deadline = time.monotonic() + min(3.0, ctx.timeout * 0.3)
    touched = 0
    for i in indices:
        fetch_sample(ctx, i)
        touched += 1
        if time.monotonic() > deadline:
            break
    after = _uss()
    if before is None or after is None:
        return MemoryGrowthFacts(**seen, measured=False).to_dict()
    return MemoryGrowthFacts(
        **seen, measured=True, touched=touched, uss_growth_bytes=max(0, after - before)
    ).to_dict()


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Warn when the measured growth, projected to an epoch and all workers, is large."""
    from dlcheck.doctor.judge import finding, mb
    from dlcheck.records import Status

    f = MemoryGrowthFacts.from_dict(facts)
    containers = f.containers
    if not containers:
        return [
            finding(
                SPEC.id,
                Status.PASS,
                "The dataset holds no large Python container (data is in arrays, tensors, "
                "Arrow or on disk), so workers share it without copying.",
                evidence=f.to_dict(),
            )
        ]
    biggest = max(containers, key=lambda c: c["approx_bytes"])
    text = [
        f"{c['path']}: {c['type']} of {c['items']:,} objects (~{mb(c['approx_bytes'])})"
        for c in containers[:5]
    ]
    workers = max(1, int(f.num_workers or 1))
    projected = None
    if f.measured and f.touched:
        growth = f.uss_growth_bytes if f.uss_growth_bytes >= GROWTH_NOISE_BYTES else 0
        per_sample = growth / f.touched
        per_worker = min(
            per_sample * (f.length or 0), sum(c["approx_bytes"] for c in containers) * 1.5
        )
        projected = per_worker * workers
        text.append(
            f"a forked worker's private memory grew {mb(f.uss_growth_bytes)} after "
            f"touching {f.touched} samples ({mb(per_sample)}/sample)"
        )
        text.append(
            f"projected: ~{mb(per_worker)} per worker × {workers} workers = {mb(projected)} "
            "per epoch"
        )
    evidence = {**f.to_dict(), "projected_bytes": projected}
    if projected is not None and projected >= GROWTH_WARN_BYTES:
        return [
            finding(
                SPEC.id,
                Status.WARN,
                f"Copy-on-read: `{biggest['path']}` ({biggest['items']:,} Python objects) is "
                f"copied into each worker as it is read: ~{mb(projected)} extra memory over an "
                f"epoch with {workers} workers.",
                evidence=evidence,
                evidence_text=text,
                fix=FIX,
            )
        ]
    if projected is None:
        return [
            finding(
                SPEC.id,
                Status.INFO,
                f"`{biggest['path']}` holds {biggest['items']:,} Python objects; workers may copy "
                "it as they read it (not measured).",
                evidence=evidence,
                evidence_text=text,
                fix=FIX,
            )
        ]
    return [
        finding(
            SPEC.id,
            Status.PASS,
            f"`{biggest['path']}` holds {biggest['items']:,} Python objects but the projected "
            f"copy-on-read growth is small ({mb(projected)}).",
            evidence=evidence,
            evidence_text=text,
        )
    ]
