from __future__ import annotations

import os
from pathlib import Path

from dlcheck.host import CpuFacts, cgroup_cpu_quota, cpu_facts, nofile_facts, shm_facts


def test_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory")
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/\n")
    assert cgroup_cpu_quota(tmp_path, proc) == (2.0, 2)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path, proc) == (None, 2)


def test_v1_quota(tmp_path: Path) -> None:
    d = tmp_path / "cpu"
    d.mkdir()
    (d / "cpu.cfs_quota_us").write_text("150000")
    (d / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_quota(tmp_path) == (1.5, 1)


def test_usable_is_smallest_limit() -> None:
    f = CpuFacts(os_cpu_count=64, affinity=64, cgroup_quota=2.0, cgroup_version=2)
    assert f.usable == 2 and f.limited_by == "cgroup quota"
    f = CpuFacts(os_cpu_count=64, affinity=8, cgroup_quota=None, cgroup_version=2)
    assert f.usable == 8 and f.limited_by == "affinity"
    f = CpuFacts(os_cpu_count=4, affinity=4, cgroup_quota=1.5, cgroup_version=1)
    assert f.usable == 2


def test_real_host_facts() -> None:
    import resource

    assert 1 <= cpu_facts().usable <= len(os.sched_getaffinity(0))
    assert nofile_facts().soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    st = os.statvfs("/dev/shm")
    assert shm_facts().total_bytes == st.f_blocks * st.f_frsize
