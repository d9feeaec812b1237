"""Pure judgement across ranks: per-node summary, `cluster` checks, merged per-rank checks."""

from __future__ import annotations

from typing import Any

from dlcheck.ranks.cluster import (
    FACT_SPECS,
    cluster_checks,
    compress_ranks,
    fact_check,
    merge_checks,
    node_summary,
)
from dlcheck.records import Status

GIB = 1 << 30

BASE = {
    "python.version": "3.11.7",
    "torch.version": "2.13.0+cu128",
    "torch.cuda": "12.8",
    "cudnn.version": "91002",
    "nccl.version": "2.27.3",
    "nvidia.driver": "570.86.15",
    "gpu.models": ["NVIDIA H100 80GB HBM3"] * 2,
    "gpu.count": 2,
    "shm.total_bytes": 64 * GIB,
    "shm.free_bytes": 60 * GIB,
    "nofile.soft": 65536,
    "nofile.hard": 65536,
    "cpu.usable": 32,
    "memory.total_bytes": 512 * GIB,
    "mp.start_method": "fork",
    "torch.sharing_strategy": "file_descriptor",
}


def rank(r: int, host: str, **changes: Any) -> dict[str, Any]:
    facts = {**BASE, "host": host, **changes}
    return {"rank": r, "local_rank": r % 2, "host": host, "facts": facts, "checks": []}


def two_nodes(**per_rank: dict[str, Any]) -> list[dict[str, Any]]:
    hosts = ["a", "a", "b", "b"]
    return [rank(r, hosts[r], **per_rank.get(f"r{r}", {})) for r in range(4)]


def by_id(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in checks}


def test_identical_ranks_all_pass() -> None:
    checks = cluster_checks(two_nodes())
    assert {c["status"] for c in checks} == {"pass"}
    ids = [c["id"] for c in checks]
    assert ids[0] == "cluster.ranks"
    assert ids[1:] == [f"cluster.{s.name}" for s in FACT_SPECS if s.name in BASE]
    for c in checks:
        assert c["group"] == "cluster" and c["title"] and c["fix"] is None
        Status(c["status"])  # a valid dlcheck status
    assert by_id(checks)["cluster.nvidia.driver"]["summary"] == (
        "nvidia.driver = 570.86.15 on all 2 nodes"
    )
    assert by_id(checks)["cluster.nofile.soft"]["summary"] == "nofile.soft = 65536 on all 4 ranks"


def test_nofile_differs_on_one_rank_names_it() -> None:
    reports = [rank(0, "vm", **{"nofile.soft": 20000}), rank(1, "vm", **{"nofile.soft": 256})]
    check = by_id(cluster_checks(reports))["cluster.nofile.soft"]
    assert check["status"] == "warn"
    assert check["summary"] == "nofile.soft differs: rank 0 = 20000, rank 1 = 256"
    assert "ulimit -n" in check["fix"]
    assert check["facts"]["values"] == [
        {"value": 20000, "ranks": [0], "hosts": ["vm"]},
        {"value": 256, "ranks": [1], "hosts": ["vm"]},
    ]


def test_node_level_difference_is_described_by_node() -> None:
    reports = two_nodes(r2={"nvidia.driver": "535.104"}, r3={"nvidia.driver": "535.104"})
    check = by_id(cluster_checks(reports))["cluster.nvidia.driver"]
    assert check["status"] == "fail"
    assert check["summary"] == (
        "nvidia.driver differs: a (ranks 0, 1) = 570.86.15, b (ranks 2, 3) = 535.104"
    )


def test_version_mismatches_fail_host_limits_warn() -> None:
    reports = two_nodes(
        r3={
            "torch.version": "2.12.0+cu126",
            "nccl.version": "2.21.5",
            "shm.total_bytes": 64 << 20,
            "cpu.usable": 4,
            "memory.total_bytes": 256 * GIB,
            "mp.start_method": "spawn",
        }
    )
    checks = by_id(cluster_checks(reports))
    assert checks["cluster.torch.version"]["status"] == "fail"
    assert "rank 3 = 2.12.0+cu126" in checks["cluster.torch.version"]["summary"]
    assert checks["cluster.nccl.version"]["status"] == "fail"
    assert checks["cluster.shm.total_bytes"]["status"] == "warn"
    assert "rank 3 = 64.0 MiB" in checks["cluster.shm.total_bytes"]["summary"]
    assert "ranks 0-2 = 64.0 GiB" in checks["cluster.shm.total_bytes"]["summary"]
    assert checks["cluster.cpu.usable"]["status"] == "warn"
    assert checks["cluster.memory.total_bytes"]["status"] == "warn"
    assert checks["cluster.mp.start_method"]["status"] == "warn"
    assert checks["cluster.gpu.models"]["status"] == "pass"


def test_python_patch_warns_minor_fails() -> None:
    patch = [rank(0, "a"), rank(1, "b", **{"python.version": "3.11.9"})]
    minor = [rank(0, "a"), rank(1, "b", **{"python.version": "3.12.1"})]
    assert by_id(cluster_checks(patch))["cluster.python.version"]["status"] == "warn"
    assert by_id(cluster_checks(minor))["cluster.python.version"]["status"] == "fail"


def test_free_space_varies_without_alarm() -> None:
    reports = two_nodes(r1={"shm.free_bytes": 10 * GIB}, r2={"shm.free_bytes": 61 * GIB})
    check = by_id(cluster_checks(reports))["cluster.shm.free_bytes"]
    assert check["status"] == "info"
    assert check["summary"].startswith("shm.free_bytes varies from 10.0 GiB (rank 1) to 61.0 GiB")


def test_missing_value_on_one_rank_is_a_difference_and_all_missing_is_skip() -> None:
    reports = [rank(0, "a"), rank(1, "b", **{"nccl.version": None})]
    check = by_id(cluster_checks(reports))["cluster.nccl.version"]
    assert check["status"] == "fail" and "rank 1 = n/a" in check["summary"]
    both = [rank(0, "a", **{"nccl.version": None}), rank(1, "b", **{"nccl.version": None})]
    assert by_id(cluster_checks(both))["cluster.nccl.version"]["status"] == "skip"


def test_unknown_fact_differs_as_info() -> None:
    reports = [rank(0, "a", extra=1), rank(1, "a", extra=2)]
    check = fact_check(reports, "extra")
    assert check["status"] == "info" and check["id"] == "cluster.extra"


def test_failed_and_absent_ranks_fail_cluster_ranks_and_are_not_compared() -> None:
    reports = [
        rank(0, "a"),
        {"rank": 1, "host": "a", "facts": {}, "checks": [], "error": {"message": "boom"}},
        rank(2, "b", **{"nofile.soft": 1}),
    ]
    checks = by_id(cluster_checks(reports, world_size=4))
    ranks = checks["cluster.ranks"]
    assert ranks["status"] == "fail"
    assert ranks["summary"] == "rank 1 failed: boom; rank 3 did not report"
    assert ranks["facts"]["failed"] == [1] and ranks["facts"]["absent"] == [3]
    assert checks["cluster.nofile.soft"]["summary"] == (
        "nofile.soft differs: rank 0 = 65536, rank 2 = 1"
    )


def test_node_summary() -> None:
    reports = two_nodes(r2={"gpu.count": 8, "gpu.models": ["A100"] * 8})
    reports[3]["error"] = {"message": "x"}
    nodes = node_summary(reports)
    assert [n["host"] for n in nodes] == ["a", "b"]
    assert nodes[0]["ranks"] == [0, 1] and nodes[0]["local_ranks"] == {"0": 0, "1": 1}
    assert nodes[0]["gpu_count"] == 2 and nodes[0]["nvidia_driver"] == "570.86.15"
    assert nodes[1]["gpu_models"] == ["A100"] * 8 and nodes[1]["failed_ranks"] == [3]


def test_compress_ranks() -> None:
    assert compress_ranks([5, 0, 1, 2, 3, 9, 10]) == "0-3, 5, 9, 10"
    assert compress_ranks([]) == ""


def _check(cid: str, status: str, summary: str) -> dict[str, Any]:
    return {"id": cid, "group": "host", "title": cid, "status": status, "summary": summary,
            "fix": None if status == "pass" else "fix it", "facts": {"s": summary}}  # fmt: skip


def test_merge_checks_worst_status_names_ranks() -> None:
    reports = [
        {"rank": 0, "checks": [_check("nofile", "pass", "20000"), _check("shm", "pass", "ok")]},
        {
            "rank": 1,
            "checks": [_check("nofile", "warn", "256 is low"), _check("shm", "pass", "ok")],
        },
        {"rank": 2, "checks": [_check("nofile", "pass", "20000"), _check("gpu", "skip", "no")]},
    ]
    merged = merge_checks(reports)
    assert [c["id"] for c in merged] == ["nofile", "shm", "gpu"]
    nofile = merged[0]
    assert nofile["status"] == "warn" and nofile["fix"] == "fix it"
    assert nofile["ranks"] == {"pass": [0, 2], "warn": [1]}
    assert nofile["summary"] == "256 is low (rank 1; pass on ranks 0, 2)"
    assert merged[1]["summary"] == "ok" and merged[1]["ranks"] == {"pass": [0, 1]}
    assert merged[2]["ranks"] == {"skip": [2]}


def test_merge_checks_same_status_different_summaries() -> None:
    reports = [
        {"rank": 0, "checks": [_check("shm", "fail", "64 MB")]},
        {"rank": 1, "checks": [_check("shm", "fail", "32 MB")]},
    ]
    (merged,) = merge_checks(reports)
    assert merged["status"] == "fail"
    assert merged["summary"] == "64 MB (rank 0; fail on ranks 0, 1)"


def test_merge_checks_passing_with_different_wording_is_left_alone() -> None:
    reports = [
        {"rank": 0, "checks": [_check("torch.import", "pass", "import torch in 1.2 s")]},
        {"rank": 1, "checks": [_check("torch.import", "pass", "import torch in 1.9 s")]},
    ]
    (merged,) = merge_checks(reports)
    assert merged["summary"] == "import torch in 1.2 s" and merged["ranks"] == {"pass": [0, 1]}
