"""Host facts that decide how data loading behaves: usable CPUs, /dev/shm, open files, memory.

Pure collection (no verdicts). Every function returns a value; failures become ``None``.
Paths are parameters so tests can point them at fake cgroup trees.
"""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class CpuFacts:
    os_cpu_count: int | None
    affinity: int | None  # CPUs in this process's affinity mask
    cgroup_quota: float | None  # CPUs allowed by the cgroup quota (v1 cfs or v2 cpu.max)
    cgroup_version: int | None

    @property
    def usable(self) -> int:
        """The effective number of CPUs: the smallest of the limits (at least 1)."""
        candidates = [c for c in (self.os_cpu_count, self.affinity) if c]
        if self.cgroup_quota:
            candidates.append(max(1, int(self.cgroup_quota + 0.999)))
        return max(1, min(candidates)) if candidates else 1

    @property
    def limited_by(self) -> str:
        usable = self.usable
        if (
            self.cgroup_quota
            and max(1, int(self.cgroup_quota + 0.999)) == usable
            and ((self.affinity or 0) > usable)
        ):
            return "cgroup quota"
        if self.affinity and self.affinity == usable and (self.os_cpu_count or 0) > usable:
            return "affinity"
        return "none"


@dataclass(frozen=True)
class ShmFacts:
    path: str
    total_bytes: int | None
    free_bytes: int | None


@dataclass(frozen=True)
class NofileFacts:
    soft: int | None
    hard: int | None


@dataclass(frozen=True)
class MemoryFacts:
    total_bytes: int | None
    available_bytes: int | None
    cgroup_limit_bytes: int | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dir_v2(root: Path, proc_cgroup: Path) -> Path | None:
    text = _read(proc_cgroup)
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("0::"):
            rel = line[3:].lstrip("/")
            cand = root / rel
            return cand if cand.is_dir() else root
    return None


def cgroup_cpu_quota(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> tuple[float | None, int | None]:
    """CPUs allowed by the cgroup quota, and the cgroup version that set it."""
    # cgroup v2: "max 100000" or "200000 100000"
    if (root / "cgroup.controllers").exists():
        d = _cgroup_dir_v2(root, proc_cgroup) or root
        for cand in (d, root):
            text = _read(cand / "cpu.max")
            if text:
                quota, _, period = text.partition(" ")
                if quota != "max" and period:
                    with contextlib.suppress(ValueError):
                        return int(quota) / int(period), 2
                return None, 2
        return None, 2
    # cgroup v1
    for d in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
        quota_v1 = _read(d / "cpu.cfs_quota_us")
        period_v1 = _read(d / "cpu.cfs_period_us")
        if quota_v1 is not None and period_v1:
            with contextlib.suppress(ValueError):
                q, p = int(quota_v1), int(period_v1)
                if q > 0 and p > 0:
                    return q / p, 1
            return None, 1
    return None, None


def cpu_facts(root: Path = CGROUP_ROOT) -> CpuFacts:
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    quota, version = cgroup_cpu_quota(root)
    return CpuFacts(os.cpu_count(), affinity, quota, version)


def usable_cpus() -> int:
    return cpu_facts().usable


def affinity_cpus() -> list[int] | None:
    """The ids of the CPUs this process may run on (None where the OS does not say)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def shm_facts(path: str = "/dev/shm") -> ShmFacts:
    try:
        st = os.statvfs(path)
    except OSError:
        return ShmFacts(path, None, None)
    return ShmFacts(path, st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


def shm_used_bytes(path: str = "/dev/shm") -> int | None:
    f = shm_facts(path)
    if f.total_bytes is None or f.free_bytes is None:
        return None
    return f.total_bytes - f.free_bytes


def nofile_facts() -> NofileFacts:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return NofileFacts(None, None)
    inf = resource.RLIM_INFINITY
    return NofileFacts(None if soft == inf else soft, None if hard == inf else hard)


def cgroup_memory_limit(root: Path = CGROUP_ROOT) -> int | None:
    candidates = []
    if (root / "cgroup.controllers").exists():
        d = _cgroup_dir_v2(root, Path("/proc/self/cgroup")) or root
        candidates = [d / "memory.max", root / "memory.max"]
    else:
        candidates = [root / "memory" / "memory.limit_in_bytes"]
    for c in candidates:
        text = _read(c)
        if text and text != "max":
            with contextlib.suppress(ValueError):
                value = int(text)
                if 0 < value < _UNLIMITED:
                    return value
    return None


def memory_facts(root: Path = CGROUP_ROOT) -> MemoryFacts:
    try:
        import psutil

        vm = psutil.virtual_memory()
        total: int | None = int(vm.total)
        available: int | None = int(vm.available)
    except Exception:  # psutil missing or a restricted /proc: "not available"
        total = available = None
    return MemoryFacts(total, available, cgroup_memory_limit(root))
