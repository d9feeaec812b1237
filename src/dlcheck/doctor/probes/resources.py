"""resources: batches in flight against /dev/shm, open files and CPUs.

Workers hand batches to the main process through shared memory: ``batch bytes × num_workers
× prefetch_factor`` (× ranks on this host under a launch) must fit /dev/shm, and with the
file_descriptor sharing strategy every tensor in flight holds a descriptor. One real batch,
built with 0 workers, gives the sizes; the host gives the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts, absent
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="resources",
    title="Batch fits /dev/shm, open files and CPUs",
    detects="batches × workers × prefetch over /dev/shm, fd limit, more workers than CPUs",
    cost="one real batch with 0 workers",
    touches_samples=True,
    run_order=70,
    list_order=80,
)

FIX_BATCH = "See `corrupt_samples` and `sample_contract` for the cause."
FIX_SHM = (
    "Give the container more shared memory (`docker run --shm-size=8g`, or "
    "`--ipc=host`), or lower num_workers / prefetch_factor / batch size."
)
FIX_SHM_HALF = "Raise --shm-size (or --ipc=host), or lower num_workers / prefetch_factor."
FIX_FDS = (
    "`ulimit -n 65536`, or "
    "`torch.multiprocessing.set_sharing_strategy('file_system')`, or collate "
    "into fewer, larger tensors."
)


@dataclass(frozen=True)
class ResourcesFacts(ProbeFacts):
    """One batch's size and the host limits it meets."""

    batch_bytes: int | None = None  # tensors and arrays of one batch (one sample: per_sample)
    tensors_per_batch: int | None = None
    batch_error: str | None = None  # building that batch raised
    batch_size: int | None = None
    per_sample: bool = False  # TARGET is a dataset: sizes are of one sample
    num_workers: int = 0  # the target's
    prefetch_factor: int = 2
    pin_memory: bool = False
    shm_free_bytes: int | None = None
    shm_total_bytes: int | None = None
    nofile_soft: int | None = None
    sharing_strategy: str | None = None  # torch.multiprocessing's
    usable_cpus: int | None = None
    cpu_limited_by: str | None = None  # "cgroup quota" | "affinity" | "none"
    os_cpu_count: int | None = None
    # Under a launch, how many ranks share this host's /dev/shm and CPUs (more than 1 only).
    ranks_on_host: int | None = absent()

    @classmethod
    def example(cls) -> ResourcesFacts:
        return cls(
            batch_bytes=100 << 20,
            tensors_per_batch=2,
            batch_size=32,
            num_workers=8,
            shm_free_bytes=64 << 20,
            shm_total_bytes=64 << 20,
            nofile_soft=1024,
            sharing_strategy="file_descriptor",
            usable_cpus=4,
            cpu_limited_by="cgroup quota",
            os_cpu_count=64,
            ranks_on_host=2,
        )


FACTS = ResourcesFacts


def _nbytes(batch: Any) -> tuple[int, int]:
    """(bytes, tensor count) of the tensors and arrays in a batch."""
    from dlcheck.doctor.facts import is_array, leaves

    total = count = 0
    for _p, leaf in leaves(batch):
        mod = type(leaf).__module__
        if mod.startswith("torch") and is_array(leaf):
            total += int(leaf.element_size() * leaf.nelement())
            count += 1
        elif mod == "numpy" and is_array(leaf):
            total += int(leaf.nbytes)
    return total, count


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: one real batch's size (0 workers) and the host's limits."""
    import torch.multiprocessing as tmp

    from dlcheck import host
    from dlcheck.doctor.facts import build_loader, last_line

    loader = ctx.loader
    if loader is not None:
        dl = build_loader(ctx, num_workers=0)  # the user's batches, in this process
        prefetch = loader.prefetch_factor if loader.num_workers > 0 else None
    else:
        dl = build_loader(ctx, num_workers=0, batch_size=1)
        prefetch = 2
    batch: dict[str, Any]
    try:
        batch_bytes, tensors = _nbytes(next(iter(dl)))
        batch = {"batch_bytes": batch_bytes, "tensors_per_batch": tensors, "batch_error": None}
    except StopIteration:
        batch = {
            "batch_bytes": None,
            "tensors_per_batch": None,
            "batch_error": "the loader is empty",
        }
    except Exception as exc:  # user code raises anything: a fact
        batch = {"batch_bytes": None, "tensors_per_batch": None, "batch_error": last_line(exc)}
    shm = host.shm_facts()
    nofile = host.nofile_facts()
    cpus = host.cpu_facts()
    launch = {"ranks_on_host": ctx.ranks_on_host} if ctx.ranks_on_host else {}
    return ResourcesFacts(
        **batch,
        batch_size=loader.batch_size if loader is not None else 1,
        per_sample=loader is None,
        num_workers=ctx.target_workers,
        prefetch_factor=prefetch or 2,
        pin_memory=bool(loader.pin_memory) if loader is not None else False,
        shm_free_bytes=shm.free_bytes,
        shm_total_bytes=shm.total_bytes,
        nofile_soft=nofile.soft,
        sharing_strategy=tmp.get_sharing_strategy(),
        usable_cpus=cpus.usable,
        cpu_limited_by=cpus.limited_by,
        os_cpu_count=cpus.os_cpu_count,
        **launch,
    ).to_dict()


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Fail or warn for /dev/shm, open files and CPUs the workers would exhaust."""
    from dlcheck.doctor.judge import finding, mb
    from dlcheck.records import Status

    f = ResourcesFacts.from_dict(facts)
    evidence = f.to_dict()
    out: list[Finding] = []
    workers = int(f.num_workers or 0)
    prefetch = int(f.prefetch_factor or 2)
    text = []
    if f.batch_error:
        out.append(
            finding(
                SPEC.id,
                Status.FAIL,
                f"Could not build one batch: {f.batch_error}",
                evidence=evidence,
                fix=FIX_BATCH,
            )
        )
        return out
    batch = f.batch_bytes or 0
    unit = "sample" if f.per_sample else "batch"
    # Under a launch, the ranks on one host share its /dev/shm and CPUs: each rank starts its
    # own num_workers workers.
    local = max(1, int(f.ranks_on_host or 1))
    per_host = f" × {local} ranks on this host" if local > 1 else ""
    in_flight = batch * workers * prefetch * local
    free = f.shm_free_bytes
    text.append(
        f"one {unit}: {mb(batch)} in {f.tensors_per_batch} tensors; in flight: "
        f"{workers} workers × prefetch {prefetch}{per_host} = {mb(in_flight)}; /dev/shm free: "
        f"{mb(free)}"
    )
    if workers > 0 and free is not None and in_flight > free:
        out.append(
            finding(
                SPEC.id,
                Status.FAIL,
                f"Batches in flight need {mb(in_flight)} of shared memory but /dev/shm has "
                f"{mb(free)} free: workers die with 'bus error' or 'No space left on device'.",
                evidence=evidence,
                evidence_text=text,
                fix=FIX_SHM,
            )
        )
    elif workers > 0 and free is not None and in_flight > free / 2:
        out.append(
            finding(
                SPEC.id,
                Status.WARN,
                f"Batches in flight use {mb(in_flight)}, over half of the {mb(free)} free in "
                "/dev/shm: a larger batch or a second job will exhaust it.",
                evidence=evidence,
                evidence_text=text,
                fix=FIX_SHM_HALF,
            )
        )
    nofile = f.nofile_soft
    tensors = int(f.tensors_per_batch or 0)
    fds = tensors * workers * prefetch
    if f.sharing_strategy == "file_descriptor" and nofile and workers:
        text.append(f"file descriptors in flight: {fds} of the open-files limit {nofile}")
        if fds > nofile / 2:
            out.append(
                finding(
                    SPEC.id,
                    Status.FAIL if fds > nofile else Status.WARN,
                    f"About {fds} tensors are in flight, each holding a file descriptor, against "
                    f"an open-files limit of {nofile}: 'Too many open files'.",
                    evidence=evidence,
                    evidence_text=text,
                    fix=FIX_FDS,
                )
            )
    cpus = f.usable_cpus
    if cpus and local > 1 and workers * local > cpus:
        out.append(
            finding(
                SPEC.id,
                Status.WARN,
                f"{local} ranks on this host each start num_workers={workers}: "
                f"{workers * local} workers share {cpus} usable CPUs, so they compete with each "
                "other and with the training processes.",
                evidence=evidence,
                evidence_text=text,
                fix=f"Use num_workers ≤ {max(1, cpus // local - 1)} per rank ({cpus} CPUs / "
                f"{local} ranks, one left for each training process), or measure with "
                "`torchrun ... -m dlcheck profile`.",
            )
        )
    elif cpus and workers > cpus:
        limited = f.cpu_limited_by
        by = (
            f" (limited by {limited}; the machine has {f.os_cpu_count})"
            if limited and limited != "none"
            else ""
        )
        out.append(
            finding(
                SPEC.id,
                Status.WARN,
                f"num_workers={workers} but only {cpus} CPUs are usable{by}: workers compete "
                "with each other and the training process.",
                evidence=evidence,
                evidence_text=text,
                fix=f"Use num_workers ≤ {max(1, cpus - 1)} (or measure with `dlcheck profile`).",
            )
        )
    if not out:
        out.append(
            finding(
                SPEC.id,
                Status.PASS,
                f"{workers} workers{' per rank' if local > 1 else ''} fit the usable CPUs "
                f"({cpus}), /dev/shm and the open-files limit.",
                evidence=evidence,
                evidence_text=text,
            )
        )
    return out
