"""The last_batch probe: facts from real loaders (no sample fetched), pure judgement, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    Sampler,
)

from dlcheck.doctor.facts import make_context
from dlcheck.doctor.probes.last_batch import FIX, LastBatchFacts, judge, measure
from dlcheck.records import Status

TESTS = Path(__file__).resolve().parent


class NoFetch(Dataset):  # type: ignore[type-arg]
    """Fails the test if the probe fetches a sample."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        raise AssertionError("last_batch fetched a sample")


class Stream(IterableDataset):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 21

    def __iter__(self) -> Iterator[int]:
        raise AssertionError("last_batch iterated the stream")


class Unsized(Sampler):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[list[int]]:
        yield [0, 1]


def facts_of(target: Any) -> LastBatchFacts:
    return measure(make_context(target, {"timeout": 10}, None))


def only(findings: list[Any]) -> Any:
    assert len(findings) == 1, findings
    return findings[0]


# ---------------------------------------------------------------- facts (child side)


def test_loader_that_leaves_one_sample() -> None:
    f = facts_of(DataLoader(NoFetch(101), batch_size=10))
    assert (f.samples, f.batch_size, f.batches, f.last_batch_size) == (101, 10, 11, 1)


def test_drop_last_and_even_split() -> None:
    assert facts_of(DataLoader(NoFetch(101), batch_size=10, drop_last=True)).drop_last
    assert facts_of(DataLoader(NoFetch(100), batch_size=10)).last_batch_size == 10


def test_counts_per_rank_under_distributed_sampler() -> None:
    # 202 samples over 2 ranks: each rank's epoch is 101 samples, so each ends on 1.
    sampler = DistributedSampler(NoFetch(202), num_replicas=2, rank=1, shuffle=False)
    f = facts_of(DataLoader(NoFetch(202), batch_size=10, sampler=sampler))
    assert (f.samples, f.last_batch_size) == (101, 1)


def test_custom_batch_sampler_walked_by_indices_only() -> None:
    rng_before = torch.random.get_rng_state()
    bs = BatchSampler(torch.utils.data.RandomSampler(range(21)), batch_size=4, drop_last=False)
    f = facts_of(DataLoader(NoFetch(21), batch_sampler=bs))
    assert (f.source, f.samples, f.batch_size, f.last_batch_size) == ("batch_sampler", 21, 4, 1)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # later probes unaffected


@pytest.mark.parametrize(
    ("target", "why"),
    [
        (NoFetch(5), "Dataset"),
        (DataLoader(NoFetch(5), batch_size=None), "batch_size=None"),
        (DataLoader(NoFetch(5), batch_sampler=Unsized()), "no len"),
        (DataLoader(Stream(), batch_size=4, num_workers=2), "each worker"),
    ],
)
def test_skipped_when_it_cannot_be_measured(target: Any, why: str) -> None:
    assert why in (facts_of(target).skipped or "")


def test_iterable_with_len_and_no_workers_is_measured() -> None:
    assert facts_of(DataLoader(Stream(), batch_size=4)).last_batch_size == 1


# ---------------------------------------------------------------- judgement (pure)


def test_warns_on_last_batch_of_one_with_the_fix() -> None:
    f = only(judge(LastBatchFacts.example().to_dict()))
    assert f.status is Status.WARN and f.fix == FIX
    assert "Expected more than 1 value per channel" in f.message
    assert f.evidence["last_batch_size"] == 1


@pytest.mark.parametrize(
    ("facts", "status"),
    [
        (LastBatchFacts(samples=105, batch_size=10, batches=11, last_batch_size=5), Status.PASS),
        (LastBatchFacts(samples=101, batch_size=10, batches=10, drop_last=True), Status.PASS),
        (LastBatchFacts(samples=7, batch_size=1, batches=7, last_batch_size=1), Status.PASS),
        (LastBatchFacts(skipped="the dataset has no len"), Status.SKIP),
    ],
)
def test_passes_or_skips_otherwise(facts: LastBatchFacts, status: Status) -> None:
    assert only(judge(facts.to_dict())).status is status


def test_renamed_fact_field_breaks_the_judge() -> None:
    d = LastBatchFacts.example().to_dict()
    d["last_batch"] = d.pop("last_batch_size")
    with pytest.raises(TypeError):
        judge(d)


# ---------------------------------------------------------------- end to end


def run_probe(target: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "dlcheck", "doctor", target, "-p", "last_batch", "--json"],
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return dict(json.loads(out.stdout))


def test_cli_warns_on_planted_loader_and_passes_fixed_one() -> None:
    (bad,) = run_probe("doctor_data.planted_last_batch:loader")["findings"]
    assert bad["status"] == "warn" and bad["fix"] == FIX
    (good,) = run_probe("doctor_data.planted_last_batch:fixed")["findings"]
    assert good["status"] == "pass"
