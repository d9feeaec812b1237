"""End to end over gloo: real processes launched by hand (RANK/WORLD_SIZE/MASTER_*) and by
torchrun, running tests/fixtures/dist/driver.py; plus in-process checks of the small helpers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlcheck.exitcodes import normalize_exit
from dlcheck.ranks import RankFailure, stdout_to_stderr, worst_exit

DRIVER = Path(__file__).parent / "fixtures" / "dist" / "driver.py"
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
               "MASTER_PORT", "GROUP_RANK", "DLCHECK_DISTRIBUTED")  # fmt: skip


@dataclass
class RankRun:
    rc: int | None
    stdout: str
    stderr: str
    wall_s: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in LAUNCH_VARS and not k.startswith(("SLURM_", "TORCHELASTIC_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def launch(
    scenario: str,
    ranks: tuple[int, ...] = (0, 1),
    *,
    world_size: int = 2,
    timeout: float = 60.0,
    start_timeout: float | None = None,
    ulimit_rank: int | None = None,
    stopped: tuple[int, ...] = (),
    deadline: float = 150.0,
    root_args: tuple[str, ...] = (),
) -> dict[int, RankRun]:
    """Start the given ranks by hand; ranks in ``stopped`` are killed once rank 0 is done."""
    env = clean_env()
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world_size))
    cmd = [sys.executable, str(DRIVER), scenario, "--timeout", str(timeout)]
    if start_timeout is not None:
        cmd += ["--start-timeout", str(start_timeout)]
    procs: dict[int, subprocess.Popen[str]] = {}
    start = time.monotonic()
    try:
        for r in ranks:
            argv = cmd
            if r == 0:
                argv = [*argv, *root_args]
            if r == ulimit_rank:
                argv = ["bash", "-c", 'ulimit -n 256; exec "$0" "$@"', *cmd]
            procs[r] = subprocess.Popen(
                argv,
                env={**env, "RANK": str(r)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        out: dict[int, RankRun] = {}
        for r in sorted(procs, key=lambda r: (r in stopped, r)):
            if r in stopped:
                procs[r].kill()
            stdout, stderr = procs[r].communicate(timeout=deadline)
            out[r] = RankRun(procs[r].returncode, stdout, stderr, time.monotonic() - start)
        return out
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def elapsed(run: RankRun) -> float:
    """Seconds from entering the session to the failure, as the driver measured it."""
    line = next(x for x in run.stderr.splitlines() if x.startswith("elapsed_s="))
    return float(line.split("=", 1)[1])


def one_document(stdout: str) -> dict:
    doc = json.loads(stdout)  # fails on anything besides exactly one document
    assert doc["schema"] == "dlcheck.test/1"
    return doc


def torchrun(scenario: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(DRIVER),
            scenario,
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )


@pytest.fixture(scope="module")
def scenarios() -> Iterator[dict[str, Future]]:
    """Every multi-process scenario, started at once: most of their time is spent importing
    torch or waiting for a timeout, so they overlap well. Generous timeouts where a scenario
    does not test one, so a loaded machine cannot turn a slow start into a false failure."""
    pool = ThreadPoolExecutor(max_workers=11)
    futures: dict[str, Future] = {
        # Rank 1 works 5 s, longer than the 3 s timeout: its heartbeat must keep it in.
        "ok": pool.submit(launch, "ok", ulimit_rank=1, timeout=3, start_timeout=120),
        "raise": pool.submit(launch, "raise"),
        "kill": pool.submit(launch, "kill"),
        "kill_term_teardown": pool.submit(launch, "kill", root_args=("--sigterm-at", "teardown")),
        "kill_term_report": pool.submit(launch, "kill", root_args=("--sigterm-at", "report")),
        "interrupt": pool.submit(launch, "interrupt"),
        "missing": pool.submit(launch, "ok", ranks=(0,), timeout=5),
        "stop": pool.submit(launch, "stop", timeout=4, start_timeout=120, stopped=(1,)),
        "no_root": pool.submit(launch, "ok", ranks=(1,), timeout=2),
        "torchrun": pool.submit(torchrun, "ok"),
        "torchrun_kill": pool.submit(torchrun, "kill"),
    }
    yield futures
    pool.shutdown(wait=True)


def test_gather_on_root_only_root_prints_and_low_nofile_rank_is_flagged(
    scenarios: dict[str, Future],
) -> None:
    runs = scenarios["ok"].result()
    assert [runs[r].rc for r in (0, 1)] == [0, 0], runs
    assert runs[1].stdout == ""
    assert "rank 1: a print that must not reach stdout" in runs[1].stderr
    doc = one_document(runs[0].stdout)
    assert doc["launcher"] == "env" and doc["world_size"] == 2
    assert doc["local_world_size"] == 2  # derived from the hosts the ranks checked in from
    assert [r["rank"] for r in doc["ranks"]] == [0, 1]
    assert doc["plans_seen"] == [{"settings": [0, 1]}] * 2  # broadcast + all_gather
    assert doc["ranks"][1]["value"]["nofile.soft"] == 256
    assert doc["ranks"][0]["value"]["nofile.soft"] != 256
    (node,) = doc["nodes"]
    assert node["ranks"] == [0, 1]
    checks = {c["id"]: c for c in doc["checks"]}
    nofile = checks["cluster.nofile.soft"]
    assert nofile["status"] == "warn"
    soft0 = doc["ranks"][0]["value"]["nofile.soft"]
    assert nofile["summary"] == f"nofile.soft differs: rank 0 = {soft0}, rank 1 = 256"
    assert checks["cluster.ranks"]["status"] == "pass"
    assert checks["cluster.python.version"]["status"] == "pass"


def test_rank_whose_work_raises_is_named_and_worst_exit_code_agreed(
    scenarios: dict[str, Future],
) -> None:
    # Rank 1's work raises (its local code is 1); rank 0 asks for 2: both exit 2.
    runs = scenarios["raise"].result()
    assert [runs[r].rc for r in (0, 1)] == [2, 2]
    doc = one_document(runs[0].stdout)
    assert doc["exit_code"] == 2
    bad = doc["ranks"][1]
    assert bad["ok"] is False and bad["rank"] == 1
    assert bad["error"]["message"] == "ValueError: cannot decode sample 37 on rank 1"
    assert "Traceback" not in runs[0].stderr and "Traceback" not in runs[1].stderr
    ranks_check = next(c for c in doc["checks"] if c["id"] == "cluster.ranks")
    assert ranks_check["status"] == "fail"
    assert "rank 1 failed: ValueError: cannot decode sample 37" in ranks_check["summary"]


def test_killed_rank_is_named_and_nothing_hangs(scenarios: dict[str, Future]) -> None:
    runs = scenarios["kill"].result()
    assert runs[1].rc == -signal.SIGKILL
    assert runs[0].rc == 1 and runs[0].stdout == ""
    assert "rank 1 exited during 'results'" in runs[0].stderr
    # Bounds are loose for a loaded CI machine; the point is not waiting for the 60 s timeout.
    assert elapsed(runs[0]) < 55  # its process is seen gone
    assert "frame #" not in runs[0].stderr  # no C++ stack trace from c10d


@pytest.mark.parametrize("where", ["teardown", "report"])
def test_launcher_sigterm_cannot_replace_or_cut_the_failure_rank_0_reports(
    scenarios: dict[str, Future], where: str
) -> None:
    # Rank 0 has seen rank 1 exit itself when torchrun's SIGTERM arrives: in the session's
    # teardown it must not replace the report, after it must not kill rank 0 before it prints.
    runs = scenarios[f"kill_term_{where}"].result()
    assert runs[1].rc == -signal.SIGKILL
    assert runs[0].rc == 1, runs[0].stderr
    assert "error: rank 1 exited during 'results'" in runs[0].stderr, runs[0].stderr
    assert "SIGTERM" not in runs[0].stderr


def test_missing_rank_is_reported_after_the_timeout(scenarios: dict[str, Future]) -> None:
    runs = scenarios["missing"].result()
    assert runs[0].rc == 1 and runs[0].stdout == ""
    assert "rank 1 of 2 did not reach 'start' within 5 s" in runs[0].stderr
    assert 5 <= elapsed(runs[0]) < 45  # waited for the timeout, then no hang


def test_silent_rank_is_reported_after_the_timeout(scenarios: dict[str, Future]) -> None:
    # Rank 1 stops itself (SIGSTOP) in its work: alive, but its heartbeat freezes, as a frozen
    # rank on another node would look. Rank 0 must name it once it has been silent 4 s.
    runs = scenarios["stop"].result()
    assert runs[0].rc == 1
    assert "rank 1 of 2 did not reach 'results' within 4 s" in runs[0].stderr
    assert 4 <= elapsed(runs[0]) < 45


def test_rank_without_rank_0_gives_up(scenarios: dict[str, Future]) -> None:
    runs = scenarios["no_root"].result()
    assert runs[1].rc == 1 and runs[1].stdout == ""
    assert "could not reach rank 0's store at 127.0.0.1" in runs[1].stderr
    assert "frame #" not in runs[1].stderr
    assert 2 <= elapsed(runs[1]) < 45


def test_interrupted_rank_makes_every_rank_exit_130(scenarios: dict[str, Future]) -> None:
    runs = scenarios["interrupt"].result()
    assert [runs[r].rc for r in (0, 1)] == [130, 130]
    assert runs[0].stdout == "" and "rank 1 interrupted" in runs[0].stderr
    assert elapsed(runs[0]) < 55  # rank 1 said so: no waiting for the 60 s timeout


def test_torchrun_standalone_two_ranks(scenarios: dict[str, Future]) -> None:
    proc = scenarios["torchrun"].result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = one_document(proc.stdout)
    assert doc["launcher"] == "torchrun"
    assert [r["rank"] for r in doc["ranks"]] == [0, 1] and doc["local_world_size"] == 2
    assert all(r["ok"] for r in doc["ranks"])


def test_torchrun_killed_rank_is_named_by_rank_0(scenarios: dict[str, Future]) -> None:
    # torchrun stops rank 0 (SIGTERM) as soon as rank 1 dies; rank 0 still names rank 1.
    proc = scenarios["torchrun_kill"].result()
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr
    assert "error: rank 1 exited during" in proc.stderr, proc.stderr


# ---- in-process helpers ------------------------------------------------------------------


def test_worst_exit_ordering() -> None:
    assert worst_exit([]) == 0
    assert worst_exit([0, 1, 0]) == 1
    assert worst_exit([1, 2, 1]) == 2
    assert worst_exit([2, 130, 1]) == 130
    assert worst_exit([0, None, 137]) == 1  # unknown non-zero counts as a failure
    assert normalize_exit(None) == 0 and normalize_exit(-9) == 1


def test_rank_failure_message_and_round_trip() -> None:
    failure = RankFailure(
        stage="results",
        world_size=4,
        timeout_s=5,
        missing=[3, 2],
        failed={1: "ValueError: x"},
        exited={},
    )
    assert failure.message == (
        "rank 1 failed: ValueError: x; ranks 2, 3 of 4 did not reach 'results' within 5 s "
        "(crashed, killed, hung or never launched)."
    )
    assert failure.ranks == [1, 2, 3] and int(failure.exit_code) == 1
    again = RankFailure.from_dict(json.loads(json.dumps(failure.to_dict())))
    assert again.message == failure.message and again.failed == {1: "ValueError: x"}
    assert (
        RankFailure(stage="s", world_size=2, timeout_s=1, interrupted=[1]).exit_code_agreed == 130
    )


def test_stdout_to_stderr_moves_python_and_fd_output(capfd: pytest.CaptureFixture[str]) -> None:
    with stdout_to_stderr():
        print("from python")
        os.write(1, b"from fd 1\n")
    print("back on stdout")
    out, err = capfd.readouterr()
    assert out == "back on stdout\n"
    assert "from python" in err and "from fd 1" in err


def test_sigterm_while_reporting_is_honoured_after_the_grace() -> None:
    # Deferred, not dropped: with the disposition the session found (here the default), so a
    # rank that does not end by itself still ends.
    code = (
        "import os, signal, time\n"
        "from dlcheck.ranks.session import _SigtermGuard\n"
        "guard = _SigtermGuard(grace_s=0.5)\n"
        "guard.install()\n"
        "guard.report()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "print('still here', flush=True)\n"
        "time.sleep(120)\n"
        "print('not reached')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=150, env=clean_env()
    )
    assert proc.stdout == "still here\n", proc.stderr
    assert proc.returncode == -signal.SIGTERM
