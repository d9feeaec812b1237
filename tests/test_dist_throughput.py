"""Pure aggregation of per-rank profile results (fake records, no measuring)."""

from __future__ import annotations

from typing import Any

import pytest

from dlcheck.ranks.throughput import (
    aggregate_settings,
    best_lockstep,
    cpu_bound_workers,
    cpu_shares,
    local_cpu_info,
    recommend_workers,
)


def rec(rank: int, workers: int, sps: float | None, error: Any = None, bs: int = 64) -> dict:
    return {
        "rank": rank,
        "setting": {"num_workers": workers, "batch_size": bs},
        "samples_per_s": sps,
        "error": error,
    }


RECORDS = [
    rec(0, 0, 100.0),
    rec(1, 0, 90.0),
    rec(2, 0, 110.0),
    rec(0, 2, 300.0),
    rec(1, 2, 150.0),  # the straggler
    rec(2, 2, 310.0),
    rec(0, 4, 305.0),
    rec(1, 4, 290.0),
    rec(2, 4, 300.0),
]


def test_aggregate_per_setting() -> None:
    aggs = aggregate_settings(RECORDS, world_size=3)
    assert [a["setting"]["num_workers"] for a in aggs] == [0, 2, 4]
    two = aggs[1]
    assert two["aggregate_samples_per_s"] == pytest.approx(760.0)
    assert two["lockstep_samples_per_s"] == pytest.approx(450.0)
    assert (two["slowest_rank"], two["slowest_samples_per_s"]) == (1, 150.0)
    assert two["fastest_rank"] == 2 and two["median_samples_per_s"] == 300.0
    assert two["straggler_ratio"] == pytest.approx(2.0) and two["straggler"] is True
    assert two["complete"] is True and two["failed_ranks"] == {} and two["missing_ranks"] == []
    four = aggs[2]
    assert four["straggler_ratio"] == pytest.approx(300 / 290) and four["straggler"] is False


def test_failed_and_missing_ranks() -> None:
    records = [
        rec(0, 2, 300.0),
        rec(1, 2, None, error={"kind": "crash", "message": "sample 3: ValueError: bad"}),
    ]
    (agg,) = aggregate_settings(records, world_size=3)
    assert agg["failed_ranks"] == {1: "sample 3: ValueError: bad"}
    assert agg["missing_ranks"] == [2] and agg["complete"] is False
    assert agg["aggregate_samples_per_s"] == 300.0 and agg["slowest_rank"] == 0
    (none,) = aggregate_settings([rec(0, 1, None, error="stalled after 3 s")])
    assert none["aggregate_samples_per_s"] is None and none["straggler_ratio"] is None
    assert none["failed_ranks"] == {0: "stalled after 3 s"}


def test_setting_key_ignores_dict_order() -> None:
    a = {"rank": 0, "setting": {"batch_size": 64, "num_workers": 1}, "samples_per_s": 1.0}
    b = {"rank": 1, "setting": {"num_workers": 1, "batch_size": 64}, "samples_per_s": 3.0}
    (agg,) = aggregate_settings([a, b])
    assert agg["aggregate_samples_per_s"] == 4.0


def test_best_lockstep_prefers_cheapest_within_noise() -> None:
    aggs = aggregate_settings(RECORDS, world_size=3)
    best = best_lockstep(aggs)
    assert best is not None and best["setting"]["num_workers"] == 4  # 2 is paced by rank 1
    close = aggregate_settings(
        [rec(0, 2, 300.0), rec(1, 2, 298.0), rec(0, 8, 310.0), rec(1, 8, 309.0)]
    )
    best = best_lockstep(close)
    assert best is not None and best["setting"]["num_workers"] == 2
    assert best_lockstep(aggregate_settings([rec(0, 2, None, error="x")])) is None


def test_cpu_shares_even_split_and_pinned_sets() -> None:
    unpinned = [
        {"rank": 0, "host": "a", "usable_cpus": 16},
        {"rank": 1, "host": "a", "usable_cpus": 16},
        {"rank": 2, "host": "b", "usable_cpus": 8},
    ]
    assert cpu_shares(unpinned) == {0: 8.0, 1: 8.0, 2: 8.0}
    pinned = [
        {"rank": 0, "host": "a", "usable_cpus": 4, "cpu_set": [0, 1, 2, 3]},
        {"rank": 1, "host": "a", "usable_cpus": 4, "cpu_set": [4, 5, 6, 7]},
        {"rank": 2, "host": "b", "usable_cpus": 4, "cpu_set": [0, 1, 2, 3]},
        {"rank": 3, "host": "b", "usable_cpus": 2, "cpu_set": [2, 3]},
    ]
    assert cpu_shares(pinned) == {0: 4.0, 1: 4.0, 2: 3.0, 3: 1.0}


def test_cpu_bound_workers() -> None:
    assert [cpu_bound_workers(s) for s in (0.5, 1, 2, 8.0, 8.9)] == [0, 0, 1, 7, 7]


def test_recommend_workers_per_rank() -> None:
    ranks = [
        {"rank": 0, "host": "a", "usable_cpus": 8},
        {"rank": 1, "host": "a", "usable_cpus": 8},
        {"rank": 2, "host": "b", "usable_cpus": 2},
    ]
    records = [
        rec(0, 0, 100.0), rec(0, 2, 290.0), rec(0, 4, 300.0), rec(0, 8, 301.0),
        rec(1, 0, 100.0), rec(1, 2, 150.0), rec(1, 4, 300.0),
        rec(2, 0, None, error="x"), rec(2, 2, None, error="x"),
        rec(0, 16, 999.0, bs=8),  # another batch size: compared on its own
    ]  # fmt: skip
    out = {e["rank"]: e for e in recommend_workers(records, ranks)}
    assert out[0]["cpu_share"] == 4.0 and out[0]["ranks_on_host"] == 2
    # Rank 0's fastest is 16 workers at batch 8; at that batch size there is nothing cheaper.
    assert out[0]["measured_best_num_workers"] == 16
    assert out[0]["recommended_num_workers"] == 16
    assert "waits on I/O" in out[0]["reason"]
    assert out[1]["recommended_num_workers"] == 4 and "within 5% of its best" in out[1]["reason"]
    assert out[2]["measured_best_num_workers"] is None
    assert out[2]["recommended_num_workers"] == 1 and "no measurement" in out[2]["reason"]


def test_recommend_cheapest_within_noise() -> None:
    ranks = [{"rank": 0, "host": "a", "usable_cpus": 8}]
    records = [rec(0, 1, 280.0), rec(0, 2, 296.0), rec(0, 4, 300.0)]
    (entry,) = recommend_workers(records, ranks)
    assert entry["measured_best_num_workers"] == 4 and entry["recommended_num_workers"] == 2
    assert entry["samples_per_s"] == 296.0


def test_local_cpu_info() -> None:
    info = local_cpu_info()
    assert info["usable_cpus"] >= 1
    assert info["cpu_set"] is None or len(info["cpu_set"]) >= info["usable_cpus"]
