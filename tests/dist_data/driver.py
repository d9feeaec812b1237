"""A small dlcheck.ranks program run as every rank by tests/test_dist_session.py.

Usage: python driver.py SCENARIO [--timeout S]. Rank 0 prints one JSON document on stdout;
errors go to stderr as one message and set the exit code, like a dlcheck command.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from dlcheck import host
from dlcheck.errors import DlcheckError
from dlcheck.output import emit_json
from dlcheck.ranks import detect_launch, session
from dlcheck.ranks.cluster import cluster_checks, node_summary


def facts() -> dict:
    nofile = host.nofile_facts()
    shm = host.shm_facts()
    return {
        "python.version": ".".join(str(x) for x in sys.version_info[:3]),
        "nofile.soft": nofile.soft,
        "nofile.hard": nofile.hard,
        "cpu.usable": host.cpu_facts().usable,
        "shm.total_bytes": shm.total_bytes,
        "shm.free_bytes": shm.free_bytes,
        "host": os.uname().nodename,
    }


def work(scenario: str, rank: int) -> dict:
    if scenario == "raise" and rank == 1:
        raise ValueError(f"cannot decode sample 37 on rank {rank}")
    if scenario == "ok" and rank == 1:
        time.sleep(5)  # busy for longer than the 3 s timeout, but its heartbeat goes on
    if scenario == "interrupt" and rank == 1:
        raise KeyboardInterrupt  # Ctrl-C on one rank
    if scenario == "kill" and rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if scenario == "stop" and rank == 1:
        # Alive but silent (heartbeat frozen), like a rank on another node that froze.
        os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(600)
    return facts()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--start-timeout", type=float, default=None)
    args = parser.parse_args()
    launch = detect_launch()
    if launch is None:
        print("not distributed", file=sys.stderr)
        return 2
    import torch.distributed  # noqa: F401  (so elapsed_s measures the protocol, not the import)

    t0 = time.monotonic()
    try:
        with (
            session(launch, timeout_s=args.timeout, start_timeout_s=args.start_timeout) as ctx,
            ctx.root_only_stdout(),
        ):
            if not ctx.is_root:
                print(f"rank {ctx.rank}: a print that must not reach stdout")
            # The plan comes from rank 0 (as a profile sweep's settings would), then all start
            # together.
            plan = ctx.broadcast({"settings": [0, 1]} if ctx.is_root else None, stage="plan")
            ctx.barrier(stage="setting 0")
            mine = ctx.capture(lambda: work(args.scenario, ctx.rank))
            records = ctx.gather(mine, stage="results")
            local = 0 if mine["ok"] else 1
            if args.scenario == "raise" and ctx.rank == 0:
                local = 2  # as if rank 0 had a usage error: the worst code must win everywhere
            code = ctx.agree_exit(local)
            plans_seen = ctx.all_gather(plan, stage="plans")
            if records is not None:
                per_rank = [
                    {
                        "rank": r["rank"],
                        "local_rank": None,
                        "host": r["host"],
                        "facts": r.get("value") or {},
                        "checks": [],
                        "error": r.get("error"),
                    }
                    for r in records
                ]
                failed = [r["rank"] for r in records if not r["ok"]]
                code = max(code, 1 if failed else 0)
                # print() here goes to rank 0's real stdout: proves nothing else reached it.
                emit_json(
                    {
                        "schema": "dlcheck.test/1",
                        "launcher": launch.launcher,
                        "world_size": ctx.world_size,
                        "local_world_size": ctx.local_world_size,
                        "exit_code": code,
                        "plans_seen": plans_seen,
                        "ranks": records,
                        "nodes": node_summary(per_rank),
                        "checks": cluster_checks(per_rank),
                    }
                )
            return code
    except DlcheckError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        print(f"elapsed_s={time.monotonic() - t0:.2f}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(f"elapsed_s={time.monotonic() - t0:.2f}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
