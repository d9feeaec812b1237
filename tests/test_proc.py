from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from dlcheck.proc import run_child

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parent / "fixtures")}


def test_result_and_events_and_user_print_isolated(capfd: pytest.CaptureFixture[str]) -> None:
    events = []
    out = run_child("_child_funcs:echo", {"x": 5}, timeout=60, on_event=events.append, env=ENV)
    assert out.ok, out
    assert out.value == {"got": 5}
    assert events == [{"type": "event", "step": 1}]
    assert "user code printing" in out.stderr_tail
    assert "user code printing" not in capfd.readouterr().out


def test_stall_kills_the_group() -> None:
    t0 = time.monotonic()
    out = run_child("_child_funcs:hang", {}, stall_timeout=1.5, env=ENV)
    assert not out.ok and out.stalled
    assert time.monotonic() - t0 < 60  # the child sleeps 600 s: killed at the stall, not then


def test_killed_child_reports_signal() -> None:
    out = run_child("_child_funcs:die", {}, timeout=60, env=ENV)
    assert not out.ok
    assert out.signal == "SIGKILL"
    assert "SIGKILL" in out.message


def test_exception_is_reported_with_last_line() -> None:
    out = run_child("_child_funcs:raise_value_error", {}, timeout=60, env=ENV)
    assert not out.ok
    assert out.error is not None
    assert out.error["message"] == "ValueError: boom 37"
    assert "Traceback" in out.error["detail"]


def test_grandchildren_are_killed() -> None:
    pids: list[int] = []
    out = run_child(
        "_child_funcs:spawn_grandchildren",
        {},
        stall_timeout=2,
        on_event=lambda m: pids.extend(m["pids"]),
        env=ENV,
    )
    assert out.stalled
    assert len(pids) == 2
    time.sleep(0.2)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_fork_mode_passes_object() -> None:
    import _child_funcs  # noqa: F401 - importable in the forked child

    out = run_child("_child_funcs:use_object", {}, obj=[1, 2, 3], timeout=30)
    assert out.ok, out
    assert out.value == {"len": 3}


@pytest.mark.parametrize("forked", [False, True])
def test_user_output_reaches_on_output(forked: bool) -> None:
    """The user's prints and warnings (workers' too) arrive line by line, in fork and fresh mode."""
    from _child_funcs import chatty

    lines: list[str] = []
    if forked:
        out = run_child("_child_funcs:chatty", {}, timeout=120, obj=chatty, on_output=lines.append)
    else:
        out = run_child("_child_funcs:chatty", {}, timeout=120, env=ENV, on_output=lines.append)
    assert out.ok, out
    text = "\n".join(lines)
    expected_lines = ["line from stdout", "line from stderr", "from a worker"]
    if not forked:  # a fork inherits pytest's in-process warning recorder
        expected_lines.append("a user warning")
    for expected in expected_lines:
        assert expected in text
        assert expected in out.stderr_tail
