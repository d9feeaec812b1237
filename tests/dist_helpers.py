"""Start `dlcheck COMMAND` as every rank of a 2-rank job: under torchrun, or by hand."""

from __future__ import annotations

import subprocess
import sys
import time

from test_dist_session import RankRun, clean_env, free_port

LOW_NOFILE = 'ulimit -n 256; exec "$0" "$@"'


def torchrun_dlcheck(command: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "dlcheck", command, *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )  # fmt: skip


def launch_dlcheck(
    command: str,
    args: list[str],
    ranks: tuple[int, ...] = (0, 1),
    *,
    low_nofile_rank: int | None = None,
    extra_env: dict[str, str] | None = None,
    rank_env: dict[int, dict[str, str]] | None = None,
    deadline: float = 150.0,
) -> dict[int, RankRun]:
    """Ranks of a 2-rank job started by hand with RANK/WORLD_SIZE/MASTER_* (no launcher)."""
    env = clean_env()
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2", COLUMNS="120")
    env.update(extra_env or {})
    procs: dict[int, subprocess.Popen[str]] = {}
    start = time.monotonic()
    try:
        for r in ranks:
            argv = [sys.executable, "-m", "dlcheck", command, *args]
            if r == low_nofile_rank:
                argv = ["bash", "-c", LOW_NOFILE, *argv]
            procs[r] = subprocess.Popen(
                argv,
                env={**env, **(rank_env or {}).get(r, {}), "RANK": str(r)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        out: dict[int, RankRun] = {}
        for r, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=deadline)
            out[r] = RankRun(proc.returncode, stdout, stderr, time.monotonic() - start)
        return out
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
