"""One build per sweep: the template process builds TARGET once and forks a child per setting."""

from __future__ import annotations

import json
from pathlib import Path

from profile_helpers import leftovers, run_cli

ARGS = ["--workers", "0,1,2", "--duration", "0.5", "--stall-timeout", "10", "--json"]


def _calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_factory_runs_once_per_sweep(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    run = run_cli(
        ["counting.py:counted_dataset", *ARGS], extra_env={"DLCHECK_TEST_CALLS": str(calls)}
    )
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(run.stdout)
    assert [r["setting"]["num_workers"] for r in doc["results"]] == [0, 1, 2]
    assert all(r["ok"] for r in doc["results"])
    assert doc["options"]["isolation"] == "fork"
    assert _calls(calls) == 1
    assert leftovers(run.marker) == [] and run.shm_new == set()


def test_isolation_fresh_builds_per_setting_and_says_so(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    run = run_cli(
        ["counting.py:counted_dataset", *ARGS, "--isolation", "fresh"],
        extra_env={"DLCHECK_TEST_CALLS": str(calls)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(run.stdout)
    assert doc["options"]["isolation"] == "fresh"
    assert any("--isolation fresh" in n for n in doc["options"]["notes"])
    assert _calls(calls) == 1 + 3  # the describe child, then one build per setting


def test_cuda_initialised_while_building_falls_back_to_fresh_processes(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    run = run_cli(["counting.py:cuda_dataset", *ARGS], extra_env={"DLCHECK_TEST_CALLS": str(calls)})
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(run.stdout)
    assert doc["options"]["isolation"] == "fresh"
    assert any("initialised CUDA" in n for n in doc["options"]["notes"])
    assert all(r["ok"] for r in doc["results"])
    assert _calls(calls) == 1 + 3
