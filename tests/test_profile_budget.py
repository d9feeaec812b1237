"""Stay inside the machine: settings over the memory budget are skipped or stopped, named."""

from __future__ import annotations

import json
import threading
import time

import psutil
import pytest

from dlcheck.profile.budget import Budget, parse_size, predict_footprint, skip_reason
from dlcheck.profile.records import CostFigures, Setting, SettingResult
from profile_helpers import MARKER_ENV, leftovers, run_cli


def test_sizes_parse() -> None:
    assert parse_size("2GB") == 2 * 10**9
    assert parse_size("512M") == 512 * 10**6
    assert parse_size("1GiB") == 1024**3
    assert parse_size("300000") == 300000
    with pytest.raises(ValueError):
        parse_size("lots")


def test_footprint_prediction_skips_what_cannot_fit() -> None:
    measured = [
        SettingResult(
            Setting(2, 16, prefetch_factor=2),
            ok=True,
            peak_pss_bytes=300 * 10**6,
            cost=CostFigures(0.1, 1.0, 0.2, 16 * 10**6),
        )
    ]
    assert (
        predict_footprint(Setting(16, 16, prefetch_factor=2), measured)
        == 17 * 10**8 + 32 * 16 * 10**6
    )
    budget = Budget(10**9, None, "--max-memory")
    why = skip_reason(Setting(16, 16, prefetch_factor=2), measured, budget)
    assert why is not None and why.startswith("skipped: predicted to hold 2.2 GB")
    assert skip_reason(Setting(4, 16, prefetch_factor=2), measured, budget) is None


def _tree_peak(marker: str, stop: threading.Event, out: list[int]) -> None:
    """Peak PSS of every process of the run (by its marker) plus /dev/shm use."""
    from dlcheck.host import shm_used_bytes

    base = shm_used_bytes() or 0
    peak = 0
    while not stop.is_set():
        total = 0
        for p in psutil.process_iter():
            try:
                if p.environ().get(MARKER_ENV) == marker:
                    total += p.memory_full_info().pss
            except (psutil.Error, OSError):
                continue
        total += max(0, (shm_used_bytes() or 0) - base)
        peak = max(peak, total)
        time.sleep(0.1)
    out.append(peak)


def test_max_memory_is_never_exceeded_by_much_and_skips_are_named(monkeypatch) -> None:
    import uuid

    import profile_helpers

    marker = uuid.uuid4().hex
    monkeypatch.setattr(profile_helpers.uuid, "uuid4", lambda: uuid.UUID(marker))
    stop, out = threading.Event(), []
    watcher = threading.Thread(target=_tree_peak, args=(marker, stop, out), daemon=True)
    watcher.start()
    budget = 600 * 10**6
    try:
        run = run_cli(
            [
                "big_wait.py:big_wait",
                *("--workers", "0,2,16", "--batch-size", "16", "--duration", "1"),
                *("--max-memory", "600MB", "--json"),
            ],
            timeout=240,
        )
    finally:
        stop.set()
        watcher.join()
    assert run.returncode == 0, run.stderr[-2000:]  # a limit, not a failure
    doc = json.loads(run.stdout)
    by_w = {r["setting"]["num_workers"]: r for r in doc["results"]}
    assert by_w[0]["ok"]
    assert by_w[16]["error_kind"] == "over_budget", by_w[16]
    assert "memory budget" in by_w[16]["error"]
    # The watcher samples 4 times a second: allow what can grow between two looks.
    assert out[0] <= 1.25 * budget, out[0]
    assert leftovers(run.marker) == []
