"""Every probe on a planted-defect dataset, and the clean datasets on which nothing fails.

These go through the Python API with in-memory objects (``dlcheck.doctor(obj)``): the probes
run in forks of the test process, so no torch import per run. End-to-end CLI runs are in
test_doctor_cli.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import dlcheck
from dlcheck.doctor.records import DoctorReport, Finding
from dlcheck.records import Status

sys.path.insert(0, str(Path(__file__).parent))

from doctor_data import (
    clean_arrow,
    clean_h5py,
    clean_images,
    clean_iterable,
    clean_tensor,
    clean_wds,
    planted_contract,
    planted_corrupt,
    planted_duplicates,
    planted_fork,
    planted_memory,
    planted_misc,
    planted_rng,
    planted_spawn,
    planted_threads,
)


def doctor(obj: Any, *probes: str, **kw: Any) -> DoctorReport:
    kw.setdefault("timeout", 30)
    report = dlcheck.doctor(obj, probes=list(probes) or None, **kw)
    assert isinstance(report, DoctorReport)
    return report


def finding(report: DoctorReport, probe: str, status: Status | None = None) -> Finding:
    found = report.by_probe(probe)
    if status is not None:
        found = [f for f in found if f.status is status]
    assert found, [(f.probe, f.status, f.message) for f in report.findings]
    return found[0]


# ---------------------------------------------------------------- planted defects


def test_duplicates_unsharded_iterable_fails() -> None:
    f = finding(doctor(planted_duplicates.unsharded, "duplicates"), "duplicates")
    assert f.status is Status.FAIL
    assert "120 samples were delivered by more than one worker" in f.message
    assert f.evidence["per_worker"] == {"0": 120, "1": 120}


def test_duplicates_gappy_shards_warn_missing() -> None:
    f = finding(doctor(planted_duplicates.gappy, "duplicates"), "duplicates")
    assert f.status is Status.WARN and "5 of 100 samples are missing" in f.message


def test_shared_rng_fails_naming_the_generator() -> None:
    f = finding(doctor(planted_rng.dataset, "shared_rng"), "shared_rng")
    assert f.status is Status.FAIL
    assert "dataset.rng (numpy.random.Generator)" in f.message
    assert "drew the same sample" in f.message and "next epoch" in f.message
    assert finding(doctor(planted_rng.clean, "shared_rng"), "shared_rng").status is Status.PASS


def test_spawn_safety_names_the_lambda() -> None:
    report = doctor(planted_spawn.dataset, "spawn_safety")
    f = finding(report, "spawn_safety")
    assert f.status is Status.WARN and report.exit_code == 0
    assert "`dataset.f` → `WithLambda.__init__.<locals>.<lambda>`" in f.message
    assert "spawn/forkserver" in f.message


def test_spawn_safety_fails_under_spawn_loader() -> None:
    report = doctor(planted_spawn.spawn_loader(), "spawn_safety")
    f = finding(report, "spawn_safety")
    assert f.status is Status.FAIL and "'spawn'" in f.message


@pytest.mark.parametrize(
    ("factory", "kind"),
    [(planted_fork.eager_h5, "h5py.File"), (planted_fork.eager_lmdb, "lmdb.Environment")],
)
def test_fork_safety_flags_handles_opened_in_init(factory: Any, kind: str) -> None:
    f = finding(doctor(factory(), "fork_safety"), "fork_safety")
    assert f.status is Status.WARN
    assert kind in f.message and "lazily" in (f.fix or "")


def test_fork_safety_flags_sqlite_and_open_file() -> None:
    f = finding(doctor(planted_fork.EagerSqliteAndFile(), "fork_safety"), "fork_safety")
    assert f.status is Status.WARN
    assert {h["path"] for h in f.evidence["handles"]} == {"dataset.db", "dataset.index"}


def test_fork_safety_flags_thread_started_in_init(monkeypatch: pytest.MonkeyPatch) -> None:
    # A TARGET string: the thread must be started by the loaded module, not by this process.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    report = doctor("doctor_data.planted_fork:with_thread", "fork_safety")
    f = finding(report, "fork_safety")
    assert f.status is Status.WARN
    assert "`dataset.prefetcher` is a running thread" in f.message
    assert "worker_init_fn" in (f.fix or "")


def test_fork_safety_lazy_lmdb_passes() -> None:
    report = doctor(planted_fork.lazy_lmdb(), "fork_safety", "spawn_safety", "corrupt_samples")
    assert all(f.status is Status.PASS for f in report.findings), report.findings


def test_corrupt_samples_scan_finds_every_bad_index() -> None:
    report = doctor(planted_corrupt.dataset, "corrupt_samples", scan=True)
    f = finding(report, "corrupt_samples")
    assert f.status is Status.FAIL
    assert f.evidence["bad_indices"] == [7, 13, 64, 300, 301]
    assert "index 7: ValueError: cannot decode record 7" in f.evidence_text
    assert "index 13: ['x'] has 1 NaN" in f.evidence_text
    assert "index 64: ['y'] is None" in f.evidence_text
    assert f.evidence["checked"] == 400


def test_sample_contract_len_too_long_names_first_index() -> None:
    f = finding(doctor(planted_contract.len_too_long, "sample_contract"), "sample_contract")
    assert f.status is Status.FAIL and "__getitem__(90) raises IndexError" in f.message


def test_sample_contract_ragged_keys_float64_and_empty() -> None:
    ragged = finding(doctor(planted_contract.ragged, "sample_contract"), "sample_contract")
    assert ragged.status is Status.FAIL
    assert "`['tokens']`" in ragged.message and "pad" in (ragged.fix or "")
    keys = finding(doctor(planted_contract.changing_keys, "sample_contract"), "sample_contract")
    assert keys.status is Status.WARN and "weight" in keys.message
    f64 = finding(doctor(planted_contract.float64, "sample_contract"), "sample_contract")
    assert f64.status is Status.WARN and "float64" in f64.message
    empty = finding(doctor(planted_contract.empty, "sample_contract"), "sample_contract")
    assert empty.status is Status.FAIL and "empty" in empty.message


def test_memory_growth_copy_on_read_warns() -> None:
    f = finding(doctor(planted_memory.make_dataset(), "memory_growth"), "memory_growth")
    assert f.status is Status.WARN
    assert "dataset.records" in f.message and "1,000,000" in f.message
    assert any("private memory grew" in line for line in f.evidence_text)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_resources_more_workers_than_cpus() -> None:
    f = finding(doctor(planted_misc.too_many_workers(), "resources"), "resources", Status.WARN)
    assert "num_workers=64" in f.message and "CPUs are usable" in f.message


def test_threads_blas_oversubscription() -> None:
    # Forked workers inherit a BLAS pool as large as the usable CPUs: 2 workers × that many
    # threads oversubscribe any machine, and the matmuls really run those threads.
    from threadpoolctl import threadpool_limits

    from dlcheck.host import usable_cpus

    with threadpool_limits(max(2, usable_cpus()), user_api="blas"):
        report = doctor(planted_threads.dataset, "threads", workers=2)
    f = finding(report, "threads")
    assert f.status is Status.WARN, f
    assert "threads" in f.message and "threadpool_limits" in (f.fix or "")


def test_determinism_unseeded_rng_warns() -> None:
    f = finding(doctor(planted_misc.unseeded, "determinism"), "determinism", Status.WARN)
    assert "different batches" in f.message


def test_sampler_epoch_without_set_epoch_warns_and_padding_info() -> None:
    report = doctor(planted_misc.distributed_loader(), "sampler_epoch")
    assert "set_epoch" in finding(report, "sampler_epoch", Status.WARN).message
    assert "pads 2" in finding(report, "sampler_epoch", Status.INFO).message


def test_cuda_initialised_before_fork_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    loader = clean_tensor.make_loader()
    f = finding(doctor(loader, "cuda_in_worker"), "cuda_in_worker")
    assert f.status is Status.FAIL and "Cannot re-initialize CUDA" in f.message


def test_shard_audit_worker_only_iterable_fails_naming_ranks() -> None:
    report = doctor(planted_duplicates.worker_only, "duplicates", world_size=2)
    f = next(x for x in report.by_probe("duplicates") if "ranks" in x.title)
    assert f.status is Status.FAIL and "rank" in f.message
    assert "torch.distributed.get_rank()" in (f.fix or "")
    assert "get_worker_info()" in (f.fix or "")
    ok = doctor(planted_duplicates.rank_and_worker, "duplicates", world_size=2)
    assert all(x.status is Status.PASS for x in ok.findings), ok.findings


def test_shard_audit_iterable_rank_gap_warns_coverage_and_lengths() -> None:
    report = doctor(planted_duplicates.rank_gap, "duplicates", world_size=2)
    warns = [f.message for f in report.by_probe("duplicates") if f.status is Status.WARN]
    assert any("10 of 100 samples of the whole stream are read by no rank" in m for m in warns)
    assert any("different numbers of samples (40 to 50)" in m for m in warns)


def test_shard_audit_map_style_passes_and_plain_sampler_fails() -> None:
    report = doctor(clean_tensor.dataset, "duplicates", world_size=4)
    assert all(f.status is Status.PASS for f in report.findings), report.findings
    bad = doctor(planted_misc.plain_random_loader(), "duplicates", world_size=2)
    f = finding(bad, "duplicates", Status.FAIL)
    assert "every rank reads the same data" in f.message


def test_spawn_loader_workers_start_and_are_judged() -> None:
    # Python 3.14 makes forkserver the Linux default: worker probes must work with a
    # non-fork context too (our worker_init_fn and wrappers pickle; workers import cleanly).
    from torch.utils.data import DataLoader

    loader = DataLoader(
        clean_tensor.TensorPairs(32), batch_size=4, num_workers=2, multiprocessing_context="spawn"
    )
    report = doctor(loader, "threads", "spawn_safety")
    assert [f.status for f in report.findings] == [Status.PASS, Status.PASS], report.findings
    assert finding(report, "threads").evidence["busy_threads_per_worker"] is not None


# ---------------------------------------------------------------- clean datasets


CLEAN = {
    "tensor map-style": lambda: clean_tensor.dataset,
    "tensor loader": clean_tensor.make_loader,
    "worker-sharded iterable": lambda: clean_iterable.dataset,
    "image folder": clean_images.make_dataset,
    "lazy h5py": clean_h5py.make_dataset,
    "arrow (HF datasets)": clean_arrow.make_hf,
    "arrow wrapped": clean_arrow.make_wrapped,
    "webdataset": clean_wds.make_pipeline,
}


@pytest.mark.parametrize("name", list(CLEAN))
def test_clean_dataset_has_no_failure(name: str) -> None:
    report = doctor(CLEAN[name]())
    bad = [
        (f.probe, f.status.value, f.message)
        for f in report.findings
        if f.status in (Status.FAIL, Status.ERROR)
    ]
    assert not bad
    assert report.exit_code == 0
    # No false alarm on the named concerns either.
    for probe in ("duplicates", "memory_growth", "fork_safety", "shared_rng"):
        assert all(f.status is not Status.WARN for f in report.by_probe(probe)), report.by_probe(
            probe
        )
    assert {f.probe for f in report.findings} >= {"duplicates", "determinism", "cuda_in_worker"}
