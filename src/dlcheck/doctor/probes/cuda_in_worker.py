"""cuda_in_worker: CUDA tensors in the dataset, or CUDA initialised before workers fork.

A forked worker cannot use CUDA once its parent initialised it ("Cannot re-initialize CUDA in
forked subprocess"), and CUDA tensors the dataset holds are unusable there. Found by an
attribute walk and torch.cuda's own state; no sample is fetched.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="cuda_in_worker",
    title="No CUDA before workers fork",
    detects="CUDA tensors held by the dataset, CUDA initialised before fork",
    cost="an attribute walk (no sample fetched)",
    touches_samples=False,
    run_order=20,
    list_order=120,
)

FIX = (
    "Keep samples on the CPU in the dataset and move batches in the training loop "
    "(`batch.to('cuda', non_blocking=True)` with pin_memory=True); don't touch CUDA "
    "before building the DataLoader, or use multiprocessing_context='spawn'."
)


@dataclass(frozen=True)
class CudaInWorkerFacts(ProbeFacts):
    """CUDA as the workers would inherit it."""

    cuda_tensors: list[str] = field(default_factory=list)  # attribute paths
    initialized: bool = False  # torch.cuda initialised in the process that forks the workers
    available: bool = False
    start_method: str = "fork"
    num_workers: int = 0  # the target's

    @classmethod
    def example(cls) -> CudaInWorkerFacts:
        return cls(cuda_tensors=["dataset.x"], initialized=True, available=True, num_workers=2)


FACTS = CudaInWorkerFacts


def cuda_state() -> dict[str, Any]:
    """CUDA facts behind one small interface (tests fake torch.cuda.is_initialized)."""
    import torch

    initialized = False
    # a broken CUDA install reads as 'not initialised'
    with contextlib.suppress(Exception):
        initialized = bool(torch.cuda.is_initialized())
    available = False
    # a broken CUDA install reads as 'not available'
    with contextlib.suppress(Exception):
        available = bool(torch.cuda.is_available()) if initialized else False
    return {"initialized": initialized, "available": available}


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: CUDA tensors reachable from what the workers receive, and CUDA's state."""
    from dlcheck.doctor.facts import start_method, walk_all

    cuda_paths = []
    for path, obj in walk_all(ctx):
        if type(obj).__module__.startswith("torch") and getattr(obj, "is_cuda", False) is True:
            cuda_paths.append(path)
    return CudaInWorkerFacts(
        cuda_tensors=cuda_paths,
        **cuda_state(),
        start_method=start_method(ctx),
        num_workers=ctx.target_workers,
    ).to_dict()


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Fail when workers would inherit CUDA tensors, or fork after CUDA was initialised."""
    from dlcheck.doctor.judge import capped, finding
    from dlcheck.records import Status

    f = CudaInWorkerFacts.from_dict(facts)
    tensors = f.cuda_tensors
    forks = f.start_method == "fork" and (f.num_workers or 0) > 0
    problems = []
    if tensors:
        problems.append(
            f"the dataset holds CUDA tensors ({capped(tensors, 5)}): workers cannot "
            "use CUDA tensors they inherit"
        )
    if f.initialized and forks:
        problems.append(
            "CUDA is initialised before the workers fork: a worker that touches CUDA fails "
            "with 'Cannot re-initialize CUDA in forked subprocess'"
        )
    if not problems:
        return [
            finding(
                SPEC.id,
                Status.PASS,
                "No CUDA tensors in the dataset; CUDA is not initialised before workers fork.",
                evidence=f.to_dict(),
            )
        ]
    return [
        finding(
            SPEC.id,
            Status.FAIL,
            "; ".join(problems)[0].upper() + "; ".join(problems)[1:] + ".",
            evidence=f.to_dict(),
            evidence_text=[f"CUDA tensor: {p}" for p in tensors],
            fix=FIX,
        )
    ]
