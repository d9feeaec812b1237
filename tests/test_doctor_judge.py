"""Pure judgement, records and rendering of `dlcheck doctor`, from hand-built facts."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from dlcheck.cli import app
from dlcheck.doctor import judge as J
from dlcheck.doctor.probes import (
    corrupt_samples,
    cuda_in_worker,
    determinism,
    duplicates,
    fork_safety,
    memory_growth,
    resources,
    sample_contract,
    sampler_epoch,
    shared_rng,
    spawn_safety,
    threads,
)
from dlcheck.doctor.records import PROBE_IDS, DoctorReport, Finding, TargetInfo
from dlcheck.doctor.render import render_report
from dlcheck.doctor.run import validate_probes
from dlcheck.errors import UsageError
from dlcheck.output import console
from dlcheck.records import Status


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


# ---------------------------------------------------------------- shard audit


def test_audit_rank_shards_flags_iterable_read_by_every_rank() -> None:
    samples = [f"s{i}" for i in range(100)]
    f = only(J.audit_rank_shards({0: samples, 1: samples}, style="iterable"))
    assert f.status is Status.FAIL and f.probe == "duplicates"
    assert "rank" in f.message and "every rank reads the same data" in f.message
    assert "get_rank()" in (f.fix or "") and "get_worker_info()" in (f.fix or "")
    assert f.evidence["shared_samples"] == 100
    assert f.evidence["shared_by_ranks"] == {"0,1": 100}


def test_audit_rank_shards_passes_disjoint_equal_shards() -> None:
    f = only(J.audit_rank_shards({0: ["a", "b"], 1: ["c", "d"]}, style="iterable"))
    assert f.status is Status.PASS


def test_audit_rank_shards_uneven_lengths_warn() -> None:
    f = only(J.audit_rank_shards({0: ["a", "b", "c"], 1: ["d"]}, style="iterable"))
    assert f.status is Status.WARN and "hang" in f.message


def test_audit_rank_shards_padding_is_info_and_coverage() -> None:
    # 5 indices over 2 ranks: DistributedSampler pads index 0 onto rank 1.
    per_rank = {0: ["index 0", "index 2", "index 4"], 1: ["index 1", "index 3", "index 0"]}
    f = only(J.audit_rank_shards(per_rank, dataset_len=5, padding=1, style="map"))
    assert f.status is Status.INFO and "pads" in f.message
    missing = J.audit_rank_shards({0: ["index 0"], 1: ["index 1"]}, dataset_len=10, style="map")
    assert only(missing).status is Status.WARN and "8 of 10" in only(missing).message


def test_audit_rank_shards_map_fix_names_distributed_sampler() -> None:
    idx = [f"index {i}" for i in range(8)]
    f = only(J.audit_rank_shards({0: idx, 1: idx, 2: idx}, dataset_len=8, style="map"))
    assert f.status is Status.FAIL and "DistributedSampler" in (f.fix or "")


def test_audit_rank_shards_ignores_data_repeated_within_a_rank() -> None:
    # A constant stream is repeated data, not a sharding bug (nor a proven pass: info).
    f = only(J.audit_rank_shards({0: ["x", "x"], 1: ["x", "x"]}, style="iterable"))
    assert f.status is Status.INFO and "not judged" in f.message


def test_judge_ranks_reports_failing_rank() -> None:
    f = only(J.judge_ranks({0: None, 1: None}, {1: {"message": "boom", "timed_out": False}}))
    assert f.status is Status.FAIL and "Rank 1" in f.message


# ---------------------------------------------------------------- probes


def test_duplicates_fail_from_fake_worker_streams() -> None:
    zero = [f"f{i}" for i in range(10)]
    many = [[0, fp] for fp in zero] + [[1, fp] for fp in zero]
    facts = {
        "style": "iterable",
        "workers": 2,
        "zero": zero,
        "zero_complete": True,
        "many": many,
        "many_complete": True,
    }
    f = only(duplicates.judge(facts))
    assert f.status is Status.FAIL
    assert "more than one worker" in f.message and "get_worker_info" in (f.fix or "")
    assert f.evidence["per_worker"] == {"0": 10, "1": 10}


def test_duplicates_missing_warns_and_random_streams_pass() -> None:
    zero = [f"f{i}" for i in range(10)]
    facts = {
        "style": "iterable",
        "workers": 2,
        "zero": zero,
        "zero_complete": True,
        "many": [[i % 2, fp] for i, fp in enumerate(zero[:8])],
        "many_complete": True,
    }
    f = only(duplicates.judge(facts))
    assert f.status is Status.WARN and "2 of 10 samples are missing" in f.message
    facts["many"] = [[i % 2, f"other{i}"] for i in range(10)]
    assert only(duplicates.judge(facts)).status is Status.PASS


def test_shared_rng_fail_names_attribute() -> None:
    facts = {
        "random": True,
        "what": "index 0",
        "rng_attributes": [{"path": "dataset.rng", "type": "numpy.random.Generator"}],
        "epochs": [{"0": "a", "1": "a"}, {"0": "a", "1": "a"}],
        "persistent_workers": False,
    }
    f = only(shared_rng.judge(facts))
    assert f.status is Status.FAIL
    assert "dataset.rng" in f.message and "worker_init_fn" in (f.fix or "")
    facts["epochs"] = [{"0": "a", "1": "b"}, {"0": "c", "1": "d"}]
    assert only(shared_rng.judge(facts)).status is Status.PASS


def test_spawn_safety_fail_only_when_not_fork() -> None:
    culprit = {"path": "dataset.f", "value": "<lambda>", "type": "function", "error": "x"}
    facts = {"culprits": [culprit], "pickled_bytes": {}, "start_method": "fork"}
    f = only(spawn_safety.judge(facts))
    assert f.status is Status.WARN and "`dataset.f` → `<lambda>`" in f.message
    assert "3.14" in f.message
    facts["start_method"] = "forkserver"
    assert only(spawn_safety.judge(facts)).status is Status.FAIL


def test_fork_safety_handle_warns_with_path() -> None:
    facts = {
        "handles": [{"path": "dataset.f", "kind": "h5py.File", "description": "h5py.File 'a'"}],
        "live_threads": [],
        "start_method": "fork",
    }
    f = only(fork_safety.judge(facts))
    assert f.status is Status.WARN and "`dataset.f`" in f.message and "lazily" in (f.fix or "")


def test_cuda_in_worker_from_fake_cuda_facts() -> None:
    base = {"cuda_tensors": [], "start_method": "fork", "num_workers": 2, "available": True}
    assert only(cuda_in_worker.judge({**base, "initialized": False})).status is Status.PASS
    f = only(cuda_in_worker.judge({**base, "initialized": True}))
    assert f.status is Status.FAIL and "forked subprocess" in f.message
    assert (
        only(cuda_in_worker.judge({**base, "initialized": True, "start_method": "spawn"})).status
        is Status.PASS
    )
    g = only(cuda_in_worker.judge({**base, "initialized": False, "cuda_tensors": ["dataset.x"]}))
    assert g.status is Status.FAIL and "dataset.x" in g.message


def test_corrupt_samples_caps_screen_but_keeps_all_indices() -> None:
    bad = [{"index": i, "error": "ValueError: bad"} for i in range(25)]
    f = only(corrupt_samples.judge({"bad": bad, "checked": 100, "scan": True}))
    assert f.status is Status.FAIL
    assert f.evidence["bad_indices"] == list(range(25))
    assert len(f.evidence_text) == J.SCREEN_CAP + 1 and "15 more" in f.evidence_text[-1]
    assert "and 15 more" in f.message


def test_sample_contract_ragged_names_field_and_padding() -> None:
    structs = [
        {"['tokens']": {"type": "tensor", "dtype": "torch.int64", "shape": [5 + i]}}
        for i in range(3)
    ]
    facts = {
        "style": "map",
        "length": 3,
        "fetched": 3,
        "structures": structs,
        "keys": [],
        "collate_error": "RuntimeError: stack expects each tensor to be equal size",
        "collate_fn": "default_collate",
        "default_collate": True,
    }
    f = only(sample_contract.judge(facts))
    assert f.status is Status.FAIL and "`['tokens']`" in f.message and "(5,)" in f.message
    assert "pad" in (f.fix or "")


def test_sample_contract_index_error_and_empty() -> None:
    facts = {"style": "map", "length": 100, "first_index_error": 90, "index_errors": [93]}
    f = sample_contract.judge(facts)[0]
    assert f.status is Status.FAIL and "__getitem__(90)" in f.message
    assert only(sample_contract.judge({"style": "map", "length": 0})).status is Status.FAIL


def test_memory_growth_warns_only_when_measured_growth_is_large() -> None:
    container = {"path": "dataset.items", "type": "list", "items": 10**6, "approx_bytes": 90 << 20}
    facts = {
        "containers": [container],
        "length": 10**6,
        "num_workers": 4,
        "measured": True,
        "touched": 4000,
        "uss_growth_bytes": 16 << 20,
    }
    f = only(memory_growth.judge(facts))
    assert f.status is Status.WARN and "dataset.items" in f.message and "Arrow" in (f.fix or "")
    assert only(memory_growth.judge({**facts, "uss_growth_bytes": 1000})).status is Status.PASS
    assert only(memory_growth.judge({**facts, "containers": []})).status is Status.PASS


def test_resources_shm_fds_and_cpus() -> None:
    facts = {
        "batch_bytes": 100 << 20,
        "tensors_per_batch": 2,
        "num_workers": 8,
        "prefetch_factor": 2,
        "shm_free_bytes": 64 << 20,
        "nofile_soft": 20,
        "sharing_strategy": "file_descriptor",
        "usable_cpus": 4,
        "cpu_limited_by": "cgroup quota",
        "os_cpu_count": 64,
    }
    found = resources.judge(facts)
    msgs = " | ".join(f.message for f in found)
    assert [f.status for f in found] == [Status.FAIL, Status.FAIL, Status.WARN]
    assert "/dev/shm" in msgs and "open-files limit of 20" in msgs
    assert "limited by cgroup quota" in msgs


def test_threads_warn_only_when_pools_really_run_in_parallel() -> None:
    pools = [{"library": "openblas", "api": "blas", "num_threads": 8}]
    facts = {
        "per_worker": [{"pools": pools, "busy_threads": 8}],
        "num_workers": 4,
        "usable_cpus": 8,
    }
    f = only(threads.judge(facts))
    assert f.status is Status.WARN and "32 threads" in f.message
    facts["per_worker"] = [{"pools": pools, "busy_threads": 1}]
    assert only(threads.judge(facts)).status is Status.PASS


def _determinism_facts(style: str, zero_workers: list[str]) -> dict[str, Any]:
    """A seeded run of two batches with 2 workers, and what 0 workers delivered."""
    return {
        "run": {"batches": ["a", "b"], "num_workers": 2},
        "zero_workers": {"batches": zero_workers},
        "seed": 0,
        "style": style,
    }


def test_determinism_differs_warns_and_worker_dependence_is_info() -> None:
    facts = _determinism_facts("map", ["c", "d"])
    found = determinism.judge(facts, {"batches": ["a", "x"]})
    assert [f.status for f in found] == [Status.WARN, Status.INFO]
    assert "batch 1" in found[0].message
    assert determinism.judge(facts, {"batches": ["a", "b"]})[0].status is Status.PASS
    assert "per-worker seeds" in found[1].message


def test_determinism_worker_dependence_of_a_stream_blames_the_turns_not_shards() -> None:
    # An unsharded stream's workers each repeat it: "its own shard" would contradict the
    # duplicates probe's failure in the same report.
    facts = _determinism_facts("iterable", ["a", "a"])
    _, info = determinism.judge(facts, {"batches": ["a", "b"]})
    assert info.status is Status.INFO
    assert "shard" not in info.message and "each worker's own iterator in turn" in info.message
    assert info.fix is not None and "seeding" not in info.fix


def test_sampler_epoch_warns_without_set_epoch() -> None:
    facts = {
        "loader": True,
        "distributed": True,
        "shuffle": True,
        "same_order_without_set_epoch": True,
        "set_epoch_in_source": False,
        "padding": 2,
        "dataset_len": 50,
        "num_replicas": 4,
    }
    found = sampler_epoch.judge(facts)
    assert [f.status for f in found] == [Status.WARN, Status.INFO]
    assert "set_epoch" in found[0].message
    facts["set_epoch_in_source"] = True
    assert sampler_epoch.judge(facts)[0].status is Status.PASS


def test_failures_hang_kill_and_crash() -> None:
    hang = J.judge_failure(
        "corrupt_samples", {"timed_out": True, "last_step": "fetching index 3"}, 5
    )
    assert hang.status is Status.FAIL and "within 5 s" in hang.message and "index 3" in hang.message
    killed = J.judge_failure("threads", {"timed_out": False, "signal": "SIGKILL"}, 5)
    assert killed.status is Status.FAIL and "SIGKILL" in killed.message
    crash = J.judge_failure("threads", {"timed_out": False, "returncode": 3, "message": "X"}, 5)
    assert crash.status is Status.ERROR


def test_dataset_exceptions_are_reported_once() -> None:
    root = Finding("corrupt_samples", Status.FAIL, "t", "m")
    echo = J.loader_error_finding("determinism", "ValueError: x", "iterating")
    out = J.dedupe_dataset_exceptions([root, echo])
    assert out[1].status is Status.SKIP and out[1].message.startswith("Not checked")
    died = J.loader_error_finding("threads", "DataLoader worker (pid 1) exited unexpectedly", "x")
    assert J.dedupe_dataset_exceptions([root, died])[1].status is Status.FAIL


# ---------------------------------------------------------------- records, rendering, CLI


def _report(status: Status) -> DoctorReport:
    info = TargetInfo("m:x", "dataset", "m.DS", "map", 10)
    findings = [
        Finding("fork_safety", Status.PASS, "No handles", "fine"),
        Finding("duplicates", status, "Samples delivered once", "bad", ["ev line"], fix="do x"),
    ]
    findings[1].evidence_text = ["ev line"]
    findings[1].evidence = {}
    return DoctorReport("m:x", info, findings, {}, 1.0)


def test_report_json_and_exit_codes() -> None:
    report = _report(Status.WARN)
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["schema"] == "dlcheck.doctor/1"
    assert {f["probe"] for f in doc["findings"]} == {"fork_safety", "duplicates"}
    assert set(doc["findings"][0]) >= {"probe", "status", "title", "message", "evidence", "fix"}
    assert report.exit_code == 0
    report.strict = True
    assert report.exit_code == 1
    assert _report(Status.FAIL).exit_code == 1


def test_render_groups_findings_with_evidence_and_fix() -> None:
    buf = io.StringIO()
    render_report(_report(Status.FAIL), console(file=buf, width=100))
    text = buf.getvalue()
    assert "✓ No handles (fork_safety)" in text
    assert "✗ Samples delivered once (duplicates)" in text
    assert "• ev line" in text and "fix: do x" in text
    assert "1 failure" in text


def test_validate_probes() -> None:
    assert validate_probes(None)[0] == "fork_safety"
    assert validate_probes(["threads", "duplicates"]) == ["duplicates", "threads"]
    with pytest.raises(UsageError) as exc:
        validate_probes(["dupes"])
    assert "duplicates" in (exc.value.hint or "")


def test_cli_list_probes_and_unknown_probe() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["doctor", "--list-probes", "--json"])
    assert out.exit_code == 0
    assert [p["id"] for p in json.loads(out.stdout)["probes"]] == list(PROBE_IDS)
    bad = runner.invoke(app, ["doctor", "m:x", "--probe", "nope"])
    assert bad.exit_code == 2 and "shared_rng" in bad.output
    missing = runner.invoke(app, ["doctor"])
    assert missing.exit_code == 2


def test_fingerprint_distinguishes_structure_and_bytes() -> None:
    import numpy as np
    import torch

    from dlcheck.doctor.facts import fingerprint, sample_problems

    a = {"x": torch.zeros(3), "y": 1}
    assert fingerprint(a) == fingerprint({"x": torch.zeros(3), "y": 1})
    assert fingerprint(a) != fingerprint({"x": torch.zeros(3), "y": 2})
    assert fingerprint(torch.zeros(3)) != fingerprint(torch.zeros(3, dtype=torch.float64))
    assert fingerprint(np.arange(3)) != fingerprint(np.arange(3).astype(np.int32))
    probs = sample_problems({"x": torch.tensor([float("nan"), float("inf")]), "y": None})
    assert probs == ["['x'] has 1 NaN", "['x'] has 1 Inf", "['y'] is None"]


def test_worker_death_escaping_a_probe_is_a_fail_not_a_crash() -> None:
    msg = "RuntimeError: DataLoader worker (pid 12) is killed by signal: Killed."
    f = J.judge_failure("shared_rng", {"timed_out": False, "returncode": 3, "message": msg}, 5)
    assert f.status is Status.FAIL and "worker died" in f.message


def test_audit_rank_shards_iterable_coverage_against_whole_stream() -> None:
    expected = [f"s{i}" for i in range(10)]
    found = J.audit_rank_shards(
        {0: expected[0:10:2], 1: expected[1:8:2]}, style="iterable", expected=expected
    )
    statuses = {f.status for f in found}
    assert statuses == {Status.WARN}
    assert any(
        "1 of 10 samples of the whole stream are read by no rank" in f.message for f in found
    )
    # Random streams share nothing with a separate pass: no coverage verdict.
    other = J.audit_rank_shards({0: ["a"], 1: ["b"]}, style="iterable", expected=["x", "y"])
    assert only(other).status is Status.PASS


def test_spawn_safety_pickling_never_touches_cuda_tensors() -> None:
    """On a GPU, a CUDA tensor pickled in a fork of a CUDA-initialised process crashes."""
    from dlcheck.doctor.probes.spawn_safety import find_unpicklable, pickled_size
    from doctor_data.planted_misc import CudaLikeHolder

    holder = CudaLikeHolder()
    assert find_unpicklable(holder, "dataset") is None
    assert pickled_size(holder) > 0


def test_shard_audit_sees_ranks_that_each_replay_an_unsharded_stream() -> None:
    # Two workers per rank replay the same logs: each rank repeats every sample, and so does
    # the other rank. One process reads each log once, so the repeats are not data.
    per_rank = {0: ["a", "a", "b", "b"], 1: ["a", "a", "b", "b"]}
    (f,) = J.audit_rank_shards(per_rank, stream=["a", "b"])
    assert f.status is Status.FAIL and "every rank reads the same data" in f.message
    # Equal samples in the data itself: the overlap cannot be judged, and no pass is claimed.
    for stream in (["a", "a", "b", "b"], None):
        (g,) = J.audit_rank_shards(per_rank, stream=stream)
        assert g.status is Status.INFO and "not judged" in g.message
