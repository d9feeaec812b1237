"""Host limits for data loading: /dev/shm, open files, CPUs, memory, multiprocessing."""

from __future__ import annotations

from typing import Any

from dlcheck.env.checks.base import V, Verdict, check, group, skip, torch_ok
from dlcheck.env.records import EnvFacts
from dlcheck.fmt import size
from dlcheck.records import Status

GROUP = group("host", "Host limits for data loading")


SHM_FAIL = 128 * 1024**2
SHM_WARN = 1024**3


@check("host.shm", "/dev/shm size", "host")
def _shm(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    s = h.shm
    facts: dict[str, Any] = {
        "path": s.path,
        "total_bytes": s.total_bytes,
        "free_bytes": s.free_bytes,
    }
    if s.total_bytes is None:
        return skip(f"{s.path} not found (DataLoader workers use another mechanism)", **facts)
    fix = (
        "Give the container more shared memory: `docker run --shm-size=8g …` (or `--ipc=host`); "
        "on Kubernetes mount an emptyDir with `medium: Memory` at /dev/shm."
    )
    if s.total_bytes <= SHM_FAIL:
        return V(
            Status.FAIL,
            f"{s.path} is {size(s.total_bytes)} (Docker's default is 64 MiB): DataLoader workers "
            "die with 'bus error' / 'No space left on device'",
            fix,
            **facts,
        )
    if s.total_bytes < SHM_WARN:
        return V(
            Status.WARN,
            f"{s.path} is only {size(s.total_bytes)}: large batches from worker processes can "
            "exhaust it",
            fix,
            **facts,
        )
    if s.free_bytes is not None and s.free_bytes < min(SHM_WARN, s.total_bytes // 4):
        return V(
            Status.WARN,
            f"{s.path} is almost full: {size(s.free_bytes)} free of {size(s.total_bytes)}",
            "Look for leftovers from killed runs: `ls -la /dev/shm` (torch_* files) and delete "
            "those no process uses.",
            **facts,
        )
    return V(
        Status.PASS,
        f"{s.path}: {size(s.total_bytes)} ({size(s.free_bytes)} free)",
        **facts,
    )


NOFILE_WARN = 1024


@check("host.nofile", "Open-files limit", "host", "torch?")
def _nofile(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    n = h.nofile
    t = torch_ok(f)
    strategy = t.sharing_strategy if t else None
    facts: dict[str, Any] = {"soft": n.soft, "hard": n.hard, "sharing_strategy": strategy}
    if n.soft is None:
        return V(Status.PASS, "open-files limit: unlimited", **facts)
    if n.soft < NOFILE_WARN:
        target = 65536 if n.hard is None else min(n.hard, 65536)
        if target <= n.soft:
            how = (
                f"The hard limit is {n.hard} too, so only root can raise it: add "
                "`* soft nofile 65536` and `* hard nofile 65536` to /etc/security/limits.conf "
                "(or `docker run --ulimit nofile=65536:65536`), then log in again; meanwhile "
                "`torch.multiprocessing.set_sharing_strategy('file_system')` avoids the limit."
            )
        else:
            how = (
                f"Raise it in the shell that starts Python: `ulimit -n {target}`; or in code "
                "`resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))`; or "
                "`torch.multiprocessing.set_sharing_strategy('file_system')`."
            )
        extra = f" ({strategy} sharing passes one descriptor per shared tensor)" if strategy else ""
        return V(
            Status.WARN,
            f"open-files soft limit is {n.soft} (hard {n.hard or 'unlimited'}): DataLoader "
            f"workers can fail with 'Too many open files'{extra}",
            how,
            **facts,
        )
    return V(Status.PASS, f"open-files limit {n.soft} (hard {n.hard or 'unlimited'})", **facts)


@check("host.cpus", "Usable CPUs", "host")
def _cpus(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    c = h.cpu
    facts: dict[str, Any] = {
        "os_cpu_count": c.os_cpu_count,
        "affinity": c.affinity,
        "cgroup_quota": c.cgroup_quota,
        "cgroup_version": c.cgroup_version,
        "usable": c.usable,
        "limited_by": c.limited_by,
        "omp_num_threads": h.omp_num_threads,
    }
    if c.limited_by == "cgroup quota" and (c.os_cpu_count or 0) > c.usable:
        return V(
            Status.WARN,
            f"{c.usable} usable CPUs (cgroup quota {c.cgroup_quota:g}), but os.cpu_count() says "
            f"{c.os_cpu_count} and the affinity mask {c.affinity}: code that sizes num_workers "
            "or thread pools from them oversubscribes",
            f"Size num_workers from the quota (≤ {c.usable}) and set OMP_NUM_THREADS={c.usable} "
            "(or ask for more CPUs).",
            **facts,
        )
    why = {"affinity": " (limited by the affinity mask)", "none": ""}.get(c.limited_by, "")
    return V(Status.PASS, f"{c.usable} usable CPUs{why}", **facts)


@check("host.memory", "Memory and cgroup limit", "host")
def _memory(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    m = h.memory
    facts: dict[str, Any] = {
        "total_bytes": m.total_bytes,
        "available_bytes": m.available_bytes,
        "cgroup_limit_bytes": m.cgroup_limit_bytes,
    }
    if m.total_bytes is None:
        return skip("memory size unknown", **facts)
    limit = m.total_bytes
    text = f"{size(m.total_bytes)} RAM, {size(m.available_bytes)} available"
    if m.cgroup_limit_bytes and m.cgroup_limit_bytes < m.total_bytes:
        limit = m.cgroup_limit_bytes
        text += f", cgroup limit {size(m.cgroup_limit_bytes)}"
    if m.available_bytes is not None and m.available_bytes < limit // 10:
        return V(
            Status.WARN,
            text + ": less than 10% free, DataLoader workers may be OOM-killed",
            "Free memory, lower num_workers / prefetch_factor, or ask for a larger limit.",
            **facts,
        )
    return V(Status.PASS, text, **facts)


@check(
    "host.multiprocessing", "Multiprocessing start method and sharing strategy", "host", "torch?"
)
def _mp(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    t = torch_ok(f)
    strategy = t.sharing_strategy if t else None
    text = f"start method {h.start_method or '?'}"
    if strategy:
        text += f", torch sharing strategy {strategy}"
    return V(Status.PASS, text, start_method=h.start_method, sharing_strategy=strategy)
