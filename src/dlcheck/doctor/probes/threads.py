"""threads: thread pools × workers above the usable cores.

Every worker runs its own torch intra-op, BLAS/OpenMP and OpenCV thread pools: 8 workers ×
16 threads on 8 cores slow every worker down. Each of N workers fetches up to 8 real samples
and reports its pools (threadpoolctl) and how many of its threads actually used CPU while
fetching (a pool that exists but never runs costs nothing).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="threads",
    title="No thread oversubscription",
    detects="torch, BLAS/OpenMP and OpenCV threads × workers above the usable cores",
    cost="up to 8 samples in each of N workers",
    touches_samples=True,
    run_order=110,
    list_order=90,
)

FIX = (
    "Limit threads per worker in worker_init_fn: "
    "`threadpoolctl.threadpool_limits(1)` and `cv2.setNumThreads(1)`, or set "
    "OMP_NUM_THREADS=1 for the workers."
)
SAMPLES_PER_WORKER = 8


@dataclass(frozen=True)
class ThreadsFacts(ProbeFacts):
    """Each worker's report (worker, pools, busy_threads, python_threads, sample_error, env)."""

    per_worker: list[dict[str, Any]] = field(default_factory=list)
    loader_error: str | None = None
    num_workers: int = 0  # the target's
    usable_cpus: int | None = None

    @classmethod
    def example(cls) -> ThreadsFacts:
        pools = [{"library": "openblas", "api": "blas", "num_threads": 8}]
        report = {"worker": 0, "pools": pools, "busy_threads": 8, "python_threads": 1}
        return cls(per_worker=[report], num_workers=4, usable_cpus=8)


FACTS = ThreadsFacts


# ---------------------------------------------------------------- worker side


def thread_cpu_times() -> dict[int, float]:
    """CPU seconds used so far by each OS thread of this process."""
    import psutil

    try:
        return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
    except Exception:  # psutil may be denied the thread list: not available
        return {}


def busy_threads(before: dict[int, float], min_cpu_s: float = 0.02) -> int | None:
    """Threads that used CPU since ``before`` (pools that really ran while fetching samples,
    not start-up work or pools that merely exist)."""
    after = thread_cpu_times()
    if not after:
        return None
    return sum(1 for tid, cpu in after.items() if cpu - before.get(tid, 0.0) >= min_cpu_s)


def thread_facts(sample_error: str | None, before: dict[int, float]) -> dict[str, Any]:
    """One worker's report: its thread pools, and the threads that ran since ``before``."""
    import torch
    from torch.utils.data import get_worker_info

    pools: list[dict[str, Any]] = [
        {"library": "torch", "api": "intra-op", "num_threads": torch.get_num_threads()}
    ]
    try:
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            pools.append(
                {
                    "library": str(p.get("prefix") or p.get("internal_api")),
                    "api": str(p.get("user_api")),
                    "num_threads": int(p.get("num_threads") or 1),
                }
            )
    except Exception:  # psutil may be denied or the worker gone: no worker rows
        pass
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        # any OpenCV build error only hides that pool from the report
        with contextlib.suppress(Exception):
            pools.append({"library": "opencv", "api": "cv2", "num_threads": cv2.getNumThreads()})
    info = get_worker_info()
    return {
        "worker": info.id if info is not None else -1,
        "pools": pools,
        "busy_threads": busy_threads(before),
        "python_threads": threading.active_count(),
        "sample_error": sample_error,
        "env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
            if k in os.environ
        },
    }


class ThreadsProbeDataset:
    """Map-style wrapper: fetch real samples in the worker, then report its thread pools."""

    def __init__(self, dataset: Any, n: int):
        self.dataset = dataset
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        from dlcheck.doctor.facts import last_line

        err = None
        before = thread_cpu_times()
        try:
            for j in range(min(SAMPLES_PER_WORKER, len(self.dataset))):
                self.dataset[j]
        except Exception as exc:  # user code raises anything: a fact
            err = last_line(exc)
        return thread_facts(err, before)


def report_after_streaming(dataset: Any) -> dict[str, Any]:
    """In a worker of an IterableDataset: read real samples, then report the thread pools."""
    from dlcheck.doctor.facts import last_line

    err = None
    before = thread_cpu_times()
    try:
        for j, _sample in enumerate(dataset):
            if j >= SAMPLES_PER_WORKER - 1:
                break
    except Exception as exc:  # user code raises anything: a fact
        err = last_line(exc)
    return thread_facts(err, before)


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: each worker's thread pools after fetching real samples."""
    import time

    from dlcheck import host
    from dlcheck.doctor.facts import OnceInEachWorker, build_loader, identity, iter_capped

    workers = max(1, ctx.workers)
    if ctx.iterable:
        ds: Any = OnceInEachWorker(ctx.dataset, report_after_streaming)
    else:
        ds = ThreadsProbeDataset(ctx.dataset, workers)
    loader = build_loader(ctx, ds, batch_size=None, collate_fn=identity, num_workers=workers)
    reports, _complete, err = iter_capped(loader, workers, time.monotonic() + ctx.timeout * 0.8)
    return ThreadsFacts(
        per_worker=reports,
        loader_error=err,
        num_workers=ctx.target_workers,
        usable_cpus=host.cpu_facts().usable,
    ).to_dict()


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Warn when the pools that really ran, × workers, exceed the usable CPUs."""
    from dlcheck.doctor.judge import finding, loader_error_finding
    from dlcheck.records import Status

    f = ThreadsFacts.from_dict(facts)
    per_worker = f.per_worker
    if f.loader_error and not per_worker:
        return [loader_error_finding(SPEC.id, f.loader_error, "starting workers")]
    workers = int(f.num_workers or 0)
    cpus = int(f.usable_cpus or 1)
    peak: dict[str, int] = {}
    for rep in per_worker:
        for p in rep.get("pools", []):
            key = f"{p['library']} ({p['api']})"
            peak[key] = max(peak.get(key, 0), int(p.get("num_threads") or 1))
    text = [f"per worker: {k} {v} threads" for k, v in sorted(peak.items())]
    worst = max(peak.items(), key=lambda kv: kv[1], default=("none", 1))
    total = worst[1] * max(1, workers)
    busy: list[int] = [r["busy_threads"] for r in per_worker if r.get("busy_threads") is not None]
    busiest = max(busy, default=None)
    evidence = {
        "pools": peak,
        "num_workers": workers,
        "usable_cpus": cpus,
        "total": total,
        "busy_threads_per_worker": busiest,
    }
    if busiest is not None:
        text.append(f"threads that used CPU in the busiest worker while fetching: {busiest}")
    # A pool that exists but never ran (e.g. BLAS loaded with numpy, unused) costs nothing.
    ran_parallel = busiest is None or busiest > 1
    if workers and worst[1] > 1 and total > cpus and not ran_parallel:
        return [
            finding(
                SPEC.id,
                Status.PASS,
                f"Thread pools allow {worst[1]} threads per worker ({worst[0]}), but fetching "
                "samples used one thread per worker.",
                evidence=evidence,
                evidence_text=text,
            )
        ]
    if workers and worst[1] > 1 and total > cpus:
        text.append(f"{workers} workers × {worst[1]} threads = {total} > {cpus} usable CPUs")
        return [
            finding(
                SPEC.id,
                Status.WARN,
                f"Each worker runs {worst[0]} with {worst[1]} threads: {workers} workers × "
                f"{worst[1]} = {total} threads on {cpus} usable CPUs (oversubscription slows "
                "every worker).",
                evidence=evidence,
                evidence_text=text,
                fix=FIX,
            )
        ]
    return [
        finding(
            SPEC.id,
            Status.PASS,
            f"Threads per worker × {workers} workers fit the {cpus} usable CPUs.",
            evidence=evidence,
            evidence_text=text,
        )
    ]
