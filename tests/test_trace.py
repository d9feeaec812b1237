"""dlcheck trace: real torch.profiler traces against a loop timed by hand; errors; JSON."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
from rich.console import Console

from dlcheck.trace.records import SCHEMA_FILE
from dlcheck.trace.run import run_trace
from inputbound_loops import BATCH, SAMPLE_S, STEP_S, profiled_loop, sleepy_loader

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def dlcheck_trace(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # Wide enough that Rich does not wrap a one-line message (a terminal would, at its width).
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-m", "dlcheck", "trace", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, dict]]:
    """workers -> (trace file, hand-timed steps) for 0 workers (slow) and 2 workers."""
    d = tmp_path_factory.mktemp("traces")
    out = {}
    for workers in (0, 2):
        path = d / f"workers{workers}.json"
        out[workers] = (path, profiled_loop(sleepy_loader(workers, batches=11), str(path)))
    return out


def _hand_share(timed: dict, steps: list[int]) -> float:
    return sum(timed[k][0] for k in steps if k in timed) / sum(
        timed[k][1] for k in steps if k in timed
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_share_matches_hand_timed_loop(traces, workers: int) -> None:
    path, timed = traces[workers]
    proc = dlcheck_trace("--json", path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))
    (rank,) = doc["ranks"]
    kind = "_SingleProcessDataLoaderIter" if workers == 0 else "_MultiProcessingDataLoaderIter"
    assert rank["loader"] == kind
    steps = [s["step"] for s in rank["steps"]]
    assert steps == list(range(2, 10))  # the schedule's active steps
    hand = _hand_share(timed, steps)
    assert rank["input_bound_share"] == pytest.approx(hand, abs=0.08), (workers, hand)
    for s in rank["steps"]:  # and step by step
        wait, wall = timed[s["step"]]
        assert s["loader_wait_ms"] == pytest.approx(1e3 * wait, abs=0.08 * 1e3 * wall)
    # By construction: 0 workers, 16 x 4 ms per batch and a 20 ms step -> 0.76; 2 workers
    # -> 0.375. A busy machine can only make the workers slower (a higher share), never faster.
    made = BATCH * SAMPLE_S / max(1, workers)
    expected = (made - STEP_S) / made if workers else made / (made + STEP_S)
    assert rank["input_bound_share"] >= expected - 0.1
    if workers == 0:
        assert rank["input_bound_share"] == pytest.approx(expected, abs=0.1)


def test_several_files_name_the_slowest_rank(traces, tmp_path: Path) -> None:
    fast, slow = traces[2][0], traces[0][0]
    gz = tmp_path / "slow.json.gz"
    gz.write_bytes(gzip.compress(slow.read_bytes()))
    report = run_trace([fast, gz])
    assert [r.rank for r in report.ranks] == [0, 1]
    assert report.slowest_rank == 1 and report.straggler_ratio is not None
    assert report.straggler_ratio > 1.2
    buf = io.StringIO()
    Console(file=buf, width=80, color_system=None).print(report)
    text = buf.getvalue()
    assert "…" not in text and max(len(x) for x in text.splitlines()) <= 80
    assert "slowest rank: 1" in text and "Longest waits, rank 1" in text


def test_python_api(traces) -> None:
    import dlcheck

    path = traces[2][0]
    assert dlcheck.trace(path).ranks[0].loader_kind == "_MultiProcessingDataLoaderIter"
    import dlcheck.trace.run  # now the attribute dlcheck.trace is the subpackage

    report = dlcheck.trace(path, traces[0][0], max_input_bound=0.99)
    assert len(report.ranks) == 2 and report.exit_code == 0


def test_threshold_and_strict(traces) -> None:
    from typer.testing import CliRunner

    from dlcheck.cli import app

    def code(*args: str) -> tuple[int, str]:  # in process: these only judge figures
        result = CliRunner().invoke(app, ["trace", str(traces[0][0]), *args])  # highly bound
        return result.exit_code, result.output

    rc, out = code("--max-input-bound", "0.05")
    assert rc == 1 and "above --max-input-bound 0.05" in out, out
    assert code("--max-input-bound", "0.99")[0] == 0
    assert code()[0] == 0  # highly input-bound is a warning...
    assert code("--strict")[0] == 1  # ...which --strict fails
    assert code("--max-input-bound", "7")[0] == 2


def test_rank_from_distributed_info(traces, tmp_path: Path) -> None:
    doc = json.loads(traces[2][0].read_text())
    doc["distributedInfo"] = {"backend": "gloo", "rank": 3, "world_size": 4}
    p = tmp_path / "rank3.json"
    p.write_text(json.dumps(doc))
    assert [r.rank for r in run_trace([p]).ranks] == [3]
    proc = dlcheck_trace(p, p)
    assert proc.returncode == 2 and "both rank 3" in proc.stderr


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_trace_without_steps_or_loader(tmp_path: Path) -> None:
    from torch.profiler import ProfilerActivity, profile, schedule

    no_steps = tmp_path / "nosteps.json"
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in sleepy_loader(0, batches=2, sample_s=0.0):
            torch.ones(4).sum()
    prof.export_chrome_trace(str(no_steps))
    _one_line_error(dlcheck_trace(no_steps), "nosteps.json", "no ProfilerStep#N spans")

    no_loader = tmp_path / "noloader.json"
    with profile(
        activities=[ProfilerActivity.CPU], schedule=schedule(wait=0, warmup=1, active=3, repeat=1)
    ) as prof:
        for _ in range(4):
            torch.ones(4).sum()
            prof.step()
    prof.export_chrome_trace(str(no_loader))
    _one_line_error(dlcheck_trace(no_loader), "noloader.json", "no DataLoader __next__ span")


def test_bad_files(tmp_path: Path, traces) -> None:
    text = tmp_path / "notes.json"
    text.write_text("this is not json")
    _one_line_error(dlcheck_trace(text), "notes.json", "not JSON")
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    _one_line_error(dlcheck_trace(other), "other.json", "not a Chrome trace")
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(gzip.compress(traces[0][0].read_bytes())[:200])
    _one_line_error(dlcheck_trace(cut), "cut.json.gz", "cannot be read")
    _one_line_error(dlcheck_trace(tmp_path / "missing.json"), "missing.json", "no such file")
    good = tmp_path / "good.json"
    shutil.copy(traces[0][0], good)
    _one_line_error(dlcheck_trace(good, text), "notes.json")  # the bad one is named


def test_host_to_device_copy_outside_next_counts() -> None:
    """A CUDA trace (hand-built, in torch's format): a blocking HtoD copy after next()."""
    from dlcheck.trace.reader import find_spans
    from dlcheck.trace.records import TraceFile
    from dlcheck.trace.stats import rank_figures

    def x(name, ts, dur, cat="cpu_op", **args):
        return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "tid": 1, "args": args}

    events = [
        x("ProfilerStep#5", 0, 100_000, "user_annotation"),
        x("enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__", 10, 20_000,
          "user_annotation"),
        x("cudaMemcpyAsync", 20_100, 30_000, "cuda_runtime", correlation=7),
        x("Memcpy HtoD (Pageable -> Device)", 20_200, 29_000, "gpu_memcpy", correlation=7),
        x("cudaLaunchKernel", 50_200, 10, "cuda_runtime", correlation=8),
        x("Memcpy DtoH (Device -> Pageable)", 60_000, 5_000, "gpu_memcpy", correlation=8),
    ]  # fmt: skip
    steps, loader, h2d, has_cuda = find_spans(events)
    r = rank_figures(
        TraceFile("t.json", None, tuple(steps), tuple(loader), tuple(h2d), has_cuda), 0
    )
    (s,) = r.steps
    assert has_cuda and s.loader_wait_ms == pytest.approx(20) and s.h2d_wait_ms == pytest.approx(30)
    assert r.input_bound_share == pytest.approx(0.5)
