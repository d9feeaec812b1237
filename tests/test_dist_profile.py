"""`dlcheck profile` as every rank of a real gloo group: torchrun with 2 ranks measuring their
shards in lockstep, a dataset failing on rank 1 only, TARGET not loading on rank 1, rank 1 killed.

Every multi-process run starts at once (module fixture): they mostly wait on `import torch`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from dist_helpers import launch_dlcheck, torchrun_dlcheck
from dlcheck.profile.ranks import (
    DistProfileReport,
    combine_ranks,
    result_from_record,
    result_record,
)
from dlcheck.profile.records import (
    EpochTrace,
    LoaderShape,
    ProfileReport,
    Setting,
    SettingResult,
    Steady,
)
from test_dist_session import RankRun

DATA = str(Path(__file__).parent / "fixtures" / "dist_profile" / "rank_data.py")
FAST = ["--duration", "1", "--dist-timeout", "30"]


def torchrun(args: list[str]) -> subprocess.CompletedProcess[str]:
    return torchrun_dlcheck("profile", args)


def by_hand(args: list[str], deadline: float = 150.0) -> dict[int, RankRun]:
    return launch_dlcheck("profile", args, deadline=deadline)


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, Future]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield {
            "ok": pool.submit(torchrun, [f"{DATA}:small", "--workers", "0,1", "--json", *FAST]),
            "rank1_fails": pool.submit(
                torchrun, [f"{DATA}:fails_on_rank1", "--workers", "0", "--json", *FAST]
            ),
            "rank1_no_target": pool.submit(
                by_hand, [f"{DATA}:broken_on_rank1", "--workers", "0", "--json", *FAST]
            ),
            "rank1_killed": pool.submit(
                by_hand, [f"{DATA}:kills_rank1", "--workers", "0,1", "--json", *FAST]
            ),
        }


def test_torchrun_two_ranks_one_document(runs: dict[str, Future]) -> None:
    proc = runs["ok"].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # exactly one document: rank 1 printed nothing on stdout
    assert doc["schema"] == "dlcheck.profile/1"
    assert doc["exit_code"] == 0
    seen = {(r["rank"], r["setting"]["num_workers"]) for r in doc["results"]}
    assert seen == {(0, 0), (1, 0), (0, 1), (1, 1)}
    assert all(r["ok"] and r["samples_per_s"] > 0 for r in doc["results"])
    dist = doc["distributed"]
    assert dist["world_size"] == 2 and dist["launcher"] == "torchrun"
    assert [r["rank"] for r in dist["ranks"]] == [0, 1]
    assert [a["setting"]["num_workers"] for a in dist["settings"]] == [0, 1]
    for agg in dist["settings"]:
        rates = {p["rank"]: p["samples_per_s"] for p in agg["per_rank"]}
        assert set(rates) == {0, 1}
        assert agg["aggregate_samples_per_s"] == pytest.approx(sum(rates.values()))
        slowest = min(rates, key=lambda r: (rates[r], r))
        assert agg["slowest_rank"] == slowest
        assert agg["lockstep_samples_per_s"] == pytest.approx(2 * rates[slowest])
        # With two ranks the median is their mean.
        assert agg["straggler_ratio"] == pytest.approx(sum(rates.values()) / 2 / rates[slowest])
    # The headline figures are those of the setting with the best lockstep rate.
    best = max(dist["settings"], key=lambda a: a["lockstep_samples_per_s"])
    assert dist["slowest_rank"] == best["slowest_rank"]
    assert dist["straggler_ratio"] == best["straggler_ratio"]
    workers = dist["workers_per_rank"]
    assert [w["rank"] for w in workers] == [0, 1]
    # Both ranks share this host's CPUs: each can really use half of them.
    assert all(w["ranks_on_host"] == 2 for w in workers)
    assert all(w["cpu_share"] == pytest.approx(w["usable_cpus"] / 2) for w in workers)
    # Each rank's advice is the setting it measured fastest (of the two swept).
    for w in workers:
        mine = {
            a["setting"]["num_workers"]: next(
                p["samples_per_s"] for p in a["per_rank"] if p["rank"] == w["rank"]
            )
            for a in dist["settings"]
        }
        assert w["recommended_num_workers"] in mine


def test_dataset_failing_on_rank1_only(runs: dict[str, Future]) -> None:
    proc = runs["rank1_fails"].result()
    assert proc.returncode == 1, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 1
    assert doc["distributed"]["failed_ranks"] == [1]
    bad = [r for r in doc["results"] if not r["ok"]]
    assert [r["rank"] for r in bad] == [1]
    assert "shard file missing" in bad[0]["error"]
    good = [r for r in doc["results"] if r["ok"]]
    assert [r["rank"] for r in good] == [0]  # rank 0 still measured
    agg = doc["distributed"]["settings"][0]
    assert list(agg["failed_ranks"]) == ["1"] and not agg["complete"]


def test_target_not_loading_on_rank1(runs: dict[str, Future]) -> None:
    out = runs["rank1_no_target"].result()
    assert out[0].rc == 1 and out[1].rc == 1, out[0].stderr[-3000:]
    assert out[0].stdout == "" and out[1].stdout == ""
    assert "rank 1: broken_on_rank1() raised" in out[0].stderr
    assert "FileNotFoundError" in out[0].stderr
    assert "/data/shard-1.tar" in out[0].stderr
    assert "Traceback" not in out[0].stderr


def test_killed_rank_is_named_without_hanging(runs: dict[str, Future]) -> None:
    out = runs["rank1_killed"].result()
    assert out[1].rc == -9  # SIGKILL, from its own measuring child
    assert out[0].rc == 1, out[0].stderr[-3000:]
    assert out[0].wall_s < 100
    # Rank 0 still prints what both ranks measured before rank 1 died, naming it.
    doc = json.loads(out[0].stdout)
    assert doc["exit_code"] == 1
    assert doc["distributed"]["failed_ranks"] == [1]
    assert "rank 1 exited" in doc["distributed"]["lost"]["message"]
    assert {(r["rank"], r["setting"]["num_workers"]) for r in doc["results"]} == {(0, 0), (1, 0)}


# ---------------------------------------------------------------- pure parts


def _result(rank: int, rate: float | None, workers: int = 0) -> SettingResult:
    stats = None
    if rate is not None:
        stats = Steady(rate, rate / 64, (rate * 0.9, rate * 1.1), 0.02, 5, 50, 1.0)
    return SettingResult(
        setting=Setting(workers, 64),
        ok=rate is not None,
        rank=rank,
        error=None if rate is not None else "sample 3: ValueError: bad",
        stats=stats,
        epochs=[EpochTrace(0.0, (0.1, 0.2), (64, 64), False)],
    )


def test_result_record_round_trip() -> None:
    r = _result(1, 1000.0)
    back = result_from_record(json.loads(json.dumps(result_record(r))))
    assert back == r


def test_combine_ranks_slowest_or_failure() -> None:
    slow = combine_ranks([_result(0, 900.0), _result(1, 500.0)])
    assert slow.samples_per_s == 500.0 and slow.rank is None
    bad = combine_ranks([_result(0, 900.0), _result(1, None)])
    assert not bad.ok and bad.error.startswith("rank 1: sample 3")


def test_exit_code_and_summary_name_failed_rank() -> None:
    from dlcheck.ranks.throughput import aggregate_settings

    report = ProfileReport(
        target="x:y",
        shape=LoaderShape("map", False, "D", 100, 64, None),
        machine={},
        options={},
        results=[_result(0, 900.0), _result(1, None)],
    )
    ranks = [{"rank": r, "host": "h", "usable_cpus": 2, "cpu_set": [0, 1]} for r in (0, 1)]
    merged = DistProfileReport(report=report, world_size=2, launcher="torchrun", ranks=ranks)
    merged.aggregates = aggregate_settings(
        [
            {"rank": 0, "setting": {"num_workers": 0}, "samples_per_s": 900.0, "error": None},
            {"rank": 1, "setting": {"num_workers": 0}, "samples_per_s": None, "error": "bad"},
        ],
        world_size=2,
    )
    assert merged.failed_ranks == [1]
    assert merged.exit_code == 1
    doc = merged.to_dict()
    assert doc["distributed"]["failed_ranks"] == [1]
    assert [r["rank"] for r in doc["results"]] == [0, 1]
