"""End-to-end `dlcheck doctor` runs as real subprocesses: JSON, exit codes, time bounds and
no leftovers (processes, /dev/shm)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from dlcheck.doctor.records import PROBE_IDS
from interrupt import sigint_default

TESTS = Path(__file__).parent
SHM = Path("/dev/shm")


def shm() -> set[str]:
    try:
        return {n for n in os.listdir(SHM) if n.startswith(("torch_", "sem.mp-"))}
    except OSError:
        return set()


def tagged_env() -> tuple[dict[str, str], str]:
    """The environment for one dlcheck run, marked so that its processes (and only its: not
    another doctor run on the same machine) can be found by their environment."""
    tag = uuid.uuid4().hex
    return {**os.environ, "DLCHECK_TEST_RUN": tag}, tag


def doctor_processes(tag: str) -> list[str]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "dlcheck.doctor.collect" in cmd or "dlcheck._child dlcheck.doctor" in cmd:
            try:
                if p.environ().get("DLCHECK_TEST_RUN") != tag:
                    continue
            except psutil.Error:  # gone meanwhile, or another user's process: not ours
                continue
            found.append(f"{p.pid}: {cmd}")
    return found


def assert_no_leftovers(shm_before: set[str], tag: str) -> None:
    deadline = time.monotonic() + 3
    while True:
        procs = doctor_processes(tag)
        # Other test suites may create and remove segments concurrently: only ones that stay count.
        new = shm() - shm_before
        if not procs and not new:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not procs, procs
    assert not new, new


def run(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    before = shm()
    env, tag = tagged_env()
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "dlcheck", "doctor", *args],
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    wall = time.monotonic() - t0
    assert_no_leftovers(before, tag)
    return out, wall


def findings(doc: dict[str, Any], probe: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["probe"] == probe]


def test_clean_dataset_json_exit_0_all_probes_within_budget() -> None:
    out, wall = run("doctor_data.clean_tensor:make_loader", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == "dlcheck.doctor/1"
    probes = {f["probe"] for f in doc["findings"]}
    assert probes == set(PROBE_IDS)  # every registered probe reports
    assert all(f["status"] in ("pass", "info", "skip", "warn") for f in doc["findings"])
    assert doc["target_info"]["kind"] == "loader" and doc["target_info"]["num_workers"] == 2
    assert doc["exit_code"] == 0
    assert wall < 60


def test_planted_failure_exits_1_with_grouped_output() -> None:
    out, _ = run("doctor_data.planted_rng:dataset", "-p", "shared_rng", "-p", "fork_safety")
    assert out.returncode == 1
    assert "✗ Random augmentations differ per worker (shared_rng)" in out.stdout
    assert "✓ No handles shared across fork (fork_safety)" in out.stdout
    assert "fix:" in out.stdout and "1 failure" in out.stdout


def test_strict_turns_warnings_into_exit_1() -> None:
    # Without --strict this warning exits 0 (checked through the API in test_doctor_probes).
    out, _ = run("doctor_data.planted_spawn:dataset", "-p", "spawn_safety", "--json", "--strict")
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert findings(doc, "spawn_safety")[0]["status"] == "warn"
    assert doc["counts"]["fail"] == 0 and doc["exit_code"] == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("doctor_data.clean_tensor:dataset", "--probe", "dupes"), "Valid probe ids"),
        (("doctor_data.planted_failures:not_a_dataset",), "not a Dataset"),
        (("no_such_module_xyz:data",), "No module named"),
        (("doctor_data.clean_tensor:dataset", "--workers", "0"), "--workers"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], needle: str) -> None:
    out, _ = run(*args)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_user_code_error_exit_1_traceback_only_with_verbose() -> None:
    out, _ = run("doctor_data.planted_failures:broken_factory", "--json")
    assert out.returncode == 1
    assert "RuntimeError: database password rejected" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    verbose, _ = run("doctor_data.planted_failures:broken_factory", "-v")
    assert "Traceback" in verbose.stderr
    # -v also lets the user's own output through (the module prints at import).
    assert "user code says hello on stdout" in verbose.stderr and verbose.stdout == ""


def test_hanging_dataset_is_bounded_and_reported() -> None:
    out, wall = run("doctor_data.planted_failures:hangs", "--timeout", "3", "--json")
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    hung = findings(doc, "sample_contract")[0]
    assert hung["status"] == "fail" and "did not finish within 3 s" in hung["message"]
    assert "fetching index 0" in hung["message"]
    assert findings(doc, "corrupt_samples")[0]["status"] == "skip"
    assert findings(doc, "fork_safety")[0]["status"] == "pass"
    assert wall < 40


def test_worker_killing_dataset_is_reported_and_bounded() -> None:
    out, wall = run(
        "doctor_data.planted_failures:kills_worker", "-p", "threads", "--timeout", "20", "--json"
    )
    assert out.returncode == 1
    assert "hello" not in out.stdout  # the user's print at import never reaches the JSON
    f = findings(json.loads(out.stdout), "threads")[0]
    assert f["status"] == "fail" and "worker died" in f["message"], f
    assert wall < 60


def test_world_size_shard_audit_cli() -> None:
    out, _ = run(
        "doctor_data.planted_duplicates:worker_only",
        "--world-size",
        "2",
        "-p",
        "duplicates",
        "--json",
    )
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    ranks = next(f for f in findings(doc, "duplicates") if "ranks" in f["title"])
    assert ranks["status"] == "fail" and "rank" in ranks["message"]
    assert ranks["evidence"]["per_rank_samples"] == {"0": 100, "1": 100}
    ok, _ = run(
        "doctor_data.planted_misc:distributed_from_env", "--world-size", "2", "-p", "duplicates"
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✓ Shards across 2 ranks" in ok.stdout


def test_ctrl_c_exits_130_and_cleans_up() -> None:
    before = shm()
    env, tag = tagged_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcheck", "doctor", "doctor_data.planted_failures:hangs"],
        cwd=TESTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=sigint_default,
    )
    # Wait until the runner child exists (TARGET loaded or loading), then interrupt.
    deadline = time.monotonic() + 60
    while not doctor_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)  # quick when quiet; loose for a busy machine
    assert proc.returncode == 130, err
    assert_no_leftovers(before, tag)


def test_cleanup_never_removes_a_live_semaphore_of_another_process() -> None:
    # A spawn/forkserver DataLoader passes its queues' semaphores to workers *by name*: a
    # cleanup that removed every new sem.mp-* entry broke concurrent jobs (found by doctor's
    # spawn-loader runs). Entries still mapped by a live process must survive.
    import multiprocessing as mp

    from dlcheck.proc import cleanup_shm

    lock = mp.get_context("spawn").Lock()
    name = "sem." + lock._semlock.name.lstrip("/")  # type: ignore[attr-defined]
    assert (SHM / name).exists()
    removed = cleanup_shm(set(), set(), since=0.0)
    assert name not in removed and (SHM / name).exists()


def test_the_users_own_output_reaches_stderr_once() -> None:
    out, _ = run("doctor_data.chatty:make", "-p", "corrupt_samples", "-p", "sample_contract")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "building index of 64 files" in out.stderr  # the factory's print
    assert out.stderr.count("decoding slowly") == 1  # every sample prints it: shown once
    assert "decoding slowly" not in out.stdout
