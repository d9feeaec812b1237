"""`dlcheck doctor` as every rank of a real gloo group: torchrun and ranks launched by hand
(RANK/WORLD_SIZE/MASTER_*); the rank-duplicates audit on the seed's worker-only iterable, no
false alarm on a DDP map-style loader, a dataset that fails, hangs or kills its rank on rank 1
only. Plus in-process checks of the merge and the option checks."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from dist_helpers import launch_dlcheck, torchrun_dlcheck
from dlcheck.doctor.judge import judge_ranks
from dlcheck.doctor.probes.resources import judge as judge_resources
from dlcheck.doctor.ranks import merge, run_doctor_distributed
from dlcheck.doctor.records import DoctorReport, Finding
from dlcheck.errors import UsageError
from dlcheck.ranks import LaunchInfo, RankFailure
from dlcheck.records import Status
from test_dist_session import RankRun, free_port

TESTS = Path(__file__).parent
WORKER_ONLY = f"{TESTS}/doctor_data/planted_duplicates.py:worker_only"
RANKED = f"{TESTS}/dist_doctor_data/rank_dependent.py"


def torchrun(args: list[str]) -> subprocess.CompletedProcess[str]:
    return torchrun_dlcheck("doctor", args)


def by_hand(args: list[str], deadline: float = 150.0) -> dict[int, RankRun]:
    return launch_dlcheck("doctor", args, deadline=deadline)


@pytest.fixture(scope="module")
def scenarios() -> Iterator[dict[str, Future]]:
    """Every multi-process run, started at once (mostly `import torch`: they overlap well)."""
    pool = ThreadPoolExecutor(max_workers=5)
    futures: dict[str, Future] = {
        # The full doctor, every probe, as the command line.
        "duplicates": pool.submit(torchrun, [WORKER_ONLY, "--json"]),
        "map": pool.submit(torchrun, [f"{RANKED}:make_loader", "-p", "duplicates", "--json"]),
        "rank1_raises": pool.submit(
            torchrun, [f"{RANKED}:fails_on_rank_1", "-p", "duplicates", "--json"]
        ),
        "rank1_killed": pool.submit(
            by_hand,
            [f"{RANKED}:kills_rank_1", "-p", "duplicates", "--json", "--dist-timeout", "20"],
        ),
        "rank1_hangs": pool.submit(
            by_hand, [f"{RANKED}:hangs_on_rank_1", "-p", "duplicates", "--timeout", "3"]
        ),
    }
    yield futures
    pool.shutdown(wait=True)


def shard_findings(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if f["title"].startswith("Shards across")]


def test_worker_only_iterable_under_torchrun_fails_duplicates_naming_ranks(
    scenarios: dict[str, Future],
) -> None:
    proc = scenarios["duplicates"].result()
    assert proc.returncode == 1, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # exactly one document, on rank 0's stdout only
    assert doc["schema"] == "dlcheck.doctor/1" and doc["exit_code"] == 1
    assert doc["launcher"] == "torchrun" and doc["world_size"] == 2
    assert [(r["rank"], r["status"], r["samples"]) for r in doc["ranks"]] == [
        (0, "ok", 100),
        (1, "ok", 100),
    ]
    assert [r["local_rank"] for r in doc["ranks"]] == [0, 1]
    (shard,) = shard_findings(doc)
    assert shard["probe"] == "duplicates" and shard["status"] == "fail"
    assert shard["title"] == "Shards across 2 ranks"
    assert "delivered to more than one rank" in shard["message"]
    assert shard["evidence"]["simulated"] is False
    assert shard["evidence"]["per_rank_samples"] == {"0": 100, "1": 100}
    assert shard["evidence"]["shared_by_ranks"] == {"0,1": 100}
    assert "torch.distributed.get_rank()" in shard["fix"] and "get_worker_info" in shard["fix"]
    # The other probes ran (on rank 0), every one of them.
    assert {f["probe"] for f in doc["findings"]} >= {"fork_safety", "determinism", "threads"}
    # torchrun prints its own traceback when a rank exits non-zero; none comes from dlcheck.
    assert "dlcheck/doctor" not in proc.stderr and "dlcheck/ranks" not in proc.stderr


def test_map_style_ddp_loader_under_torchrun_has_no_duplicates(
    scenarios: dict[str, Future],
) -> None:
    proc = scenarios["map"].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 0 and doc["world_size"] == 2
    assert not [f for f in doc["findings"] if f["status"] == "fail"]
    (shard,) = shard_findings(doc)
    assert shard["status"] == "pass" and "2 real ranks" in shard["message"]
    assert shard["evidence"]["per_rank_samples"] == {"0": 50, "1": 50}
    assert shard["evidence"]["sampler"] == "the loader's DistributedSampler"


def test_dataset_failing_on_rank_1_only_is_named_by_rank_0(scenarios: dict[str, Future]) -> None:
    proc = scenarios["rank1_raises"].result()
    assert proc.returncode == 1, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 1
    (shard,) = shard_findings(doc)
    assert shard["status"] == "fail"
    assert shard["message"] == (
        "Rank 1 raised fetching index 1 of its shard: FileNotFoundError: /data/shard-1.bin"
    )
    assert [r["status"] for r in doc["ranks"]] == ["ok", "failed"]
    assert doc["ranks"][1]["error"] == "FileNotFoundError: /data/shard-1.bin"
    # Rank 1 says so on its own stderr too.
    assert "rank 1: reading its shard failed: FileNotFoundError" in proc.stderr


def test_killed_rank_is_named_in_rank_0s_report(scenarios: dict[str, Future]) -> None:
    runs = scenarios["rank1_killed"].result()
    assert runs[1].rc == -9  # the dataset killed its own rank
    assert runs[0].rc == 1, runs[0].stderr[-3000:]
    doc = json.loads(runs[0].stdout)
    assert doc["exit_code"] == 1
    (shard,) = shard_findings(doc)
    assert shard["status"] == "fail"
    assert shard["message"].startswith("Rank 1 exited during 'shards' (process ")
    assert [(r["rank"], r["status"]) for r in doc["ranks"]] == [(0, "ok"), (1, "lost")]
    assert runs[0].wall_s < 90  # noticed at once (the process is gone), not after a timeout


def test_rank_hanging_on_its_shard_is_bounded_and_rendered(scenarios: dict[str, Future]) -> None:
    runs = scenarios["rank1_hangs"].result()
    assert [runs[r].rc for r in (0, 1)] == [1, 1], runs[0].stderr[-3000:]
    assert runs[1].stdout == ""
    out = " ".join(runs[0].stdout.split())
    assert "2 ranks on 1 node (env); shards read by every rank, probes run on rank 0" in out
    assert "rank 1 on " in out and ": failed — did not finish within 3 s" in out
    assert "✗ Shards across 2 ranks (duplicates)" in out
    assert "Rank 1 did not finish reading its shard in time" in out
    assert "rank 1: reading its shard failed: did not finish within 3 s" in runs[1].stderr


# ---------------------------------------------------------------- in-process


def _launch(rank: int = 0) -> LaunchInfo:
    return LaunchInfo("env", rank, 2, "127.0.0.1", free_port())


def test_bad_options_are_usage_errors_before_joining() -> None:
    # No rank 1 and no store: these must fail before any connection is tried.
    with pytest.raises(UsageError, match="--world-size 4 simulates ranks"):
        run_doctor_distributed(_launch(), WORKER_ONLY, print, world_size=4)
    with pytest.raises(UsageError, match="Unknown probe"):
        run_doctor_distributed(_launch(1), WORKER_ONLY, print, probes=["nope"])
    with pytest.raises(UsageError, match="--dist-timeout"):
        run_doctor_distributed(_launch(), WORKER_ONLY, print, dist_timeout=0)
    with pytest.raises(UsageError):
        run_doctor_distributed(_launch(), "no-colon-here", print)


def _report() -> DoctorReport:
    dup = Finding("duplicates", Status.PASS, "Samples delivered once", "ok")
    rng = Finding("shared_rng", Status.PASS, "Random augmentations differ per worker", "ok")
    return DoctorReport("t:x", None, [dup, rng], {"world_size": 2}, 1.0)


def _ctx() -> SimpleNamespace:
    peers = [SimpleNamespace(rank=0, host="a"), SimpleNamespace(rank=1, host="b")]
    return SimpleNamespace(world_size=2, peers=peers, local_rank=0)


def test_merge_judges_real_ranks_and_places_the_audit_after_duplicates() -> None:
    own = {"facts": {"style": "iterable", "samples": ["a", "b"], "complete": True}}
    box = {"rank_done": own, "rank_baseline": {"facts": None}}
    records = [
        {"rank": 0, "host": "a", "ok": True, "value": {"local_rank": 0, "samples": 2}},
        {
            "rank": 1,
            "host": "b",
            "ok": True,
            "value": {
                "local_rank": 0,
                "samples": 2,
                "shard": {"style": "iterable", "samples": ["a", "b"], "complete": True},
            },
        },
    ]
    merged = merge(_report(), box, records, _ctx(), "slurm")  # type: ignore[arg-type]
    assert [f.probe for f in merged.findings] == ["duplicates", "duplicates", "shared_rng"]
    audit = merged.findings[1]
    assert audit.status is Status.FAIL and audit.evidence["simulated"] is False
    assert merged.exit_code == 1
    doc = merged.to_dict()
    assert doc["launcher"] == "slurm" and doc["world_size"] == 2
    assert [(r["rank"], r["host"], r["status"]) for r in doc["ranks"]] == [
        (0, "a", "ok"),
        (1, "b", "ok"),
    ]


def test_merge_after_a_lost_rank_names_it_and_agreed_code_wins() -> None:
    own = {"facts": {"style": "map", "samples": ["index 0"], "complete": True}}
    lost = RankFailure(stage="shards", world_size=2, timeout_s=5.0, missing=[1])
    merged = merge(_report(), {"rank_done": own}, None, _ctx(), "torchrun", lost=lost)  # type: ignore[arg-type]
    (audit,) = [f for f in merged.findings if f.title == "Shards across 2 ranks"]
    assert audit.message == (
        "Rank 1 did not reach 'shards' within 5 s (crashed, killed, hung or never launched)."
    )
    assert [(r["rank"], r["status"]) for r in merged.ranks or []] == [(0, "ok"), (1, "lost")]
    merged.agreed_exit = 130  # a rank was interrupted: the worst code is the agreed one
    assert merged.exit_code == 130


def test_single_process_document_has_no_ranks_section() -> None:
    doc = _report().to_dict()
    assert "ranks" not in doc and "world_size" not in doc


def test_judge_ranks_names_every_failed_real_rank() -> None:
    partial = {"style": "iterable", "samples": ["a"], "complete": False, "error": "OSError: x"}
    fetch = {"style": "map", "samples": ["index 1"], "fetch_error": {"index": 1, "error": "E: y"}}
    ok = {"style": "iterable", "samples": ["b"], "complete": True}
    found = judge_ranks({0: ok, 1: partial, 2: fetch, 3: None}, {3: {"signal": "SIGKILL"}})
    # Simulated ranks keep a partial stream (rank 1 is not named); real ranks never do.
    assert [f.message for f in found] == [
        "Rank 3 died while reading its shard (SIGKILL).",
        "Rank 2 raised fetching index 1 of its shard: E: y",
    ]
    real = judge_ranks({0: ok, 1: partial}, {}, simulated=False)
    assert [f.message for f in real] == [
        "Rank 1 raised while reading its shard after 1 samples: OSError: x"
    ]
    assert all(f.status is Status.FAIL and f.probe == "duplicates" for f in found + real)


def test_resources_counts_every_rank_on_the_host() -> None:
    facts = {"num_workers": 4, "usable_cpus": 8, "batch_bytes": 1 << 20, "tensors_per_batch": 2,
             "shm_free_bytes": 40 << 20, "prefetch_factor": 2}  # fmt: skip
    (alone,) = judge_resources(facts)
    assert alone.status is Status.PASS  # 4 workers, 8 MiB in flight: fine for one process
    found = judge_resources({**facts, "ranks_on_host": 4})
    assert [f.status for f in found] == [Status.WARN, Status.WARN]
    shm, cpu = found
    assert "32.0 MiB" in shm.message and "× 4 ranks on this host" in shm.evidence_text[0]
    assert cpu.message.startswith("4 ranks on this host each start num_workers=4: 16 workers")
    assert "num_workers ≤ 1 per rank" in (cpu.fix or "")
