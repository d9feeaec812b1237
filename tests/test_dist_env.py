"""End to end: `dlcheck env` as every rank of a real gloo group (torchrun, and ranks launched by
hand with RANK/WORLD_SIZE/MASTER_*), one rank with a low open-files limit, a missing rank."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from dist_helpers import launch_dlcheck, torchrun_dlcheck
from dlcheck.env.records import SCHEMA_FILE
from test_dist_session import RankRun

# Set on rank 1 only: rank 0, which prints, cannot know these values.
SECRETS = {
    "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwx",
    "TORCH_HUB_PROXY": "http://bob:Pr0xyPassw0rd@proxy.internal:3128",
}


def launch_env(args: list[str], ranks: tuple[int, ...] = (0, 1), **kw: Any) -> dict[int, RankRun]:
    """Start `dlcheck env ARGS` as the given ranks of a 2-rank job, by hand."""
    return launch_dlcheck("env", args, ranks, **kw)


def torchrun_env(args: list[str]) -> subprocess.CompletedProcess[str]:
    return torchrun_dlcheck("env", args)


@pytest.fixture(scope="module")
def scenarios() -> Iterator[dict[str, Future]]:
    """Every multi-process run, started at once (they spend most of their time importing torch,
    so they overlap well)."""
    pool = ThreadPoolExecutor(max_workers=4)
    futures: dict[str, Future] = {
        "torchrun": pool.submit(torchrun_env, ["--json"]),
        "nofile_json": pool.submit(
            launch_env, ["--json"], low_nofile_rank=1, rank_env={1: SECRETS}
        ),
        "nofile_strict": pool.submit(launch_env, ["--strict"], low_nofile_rank=1),
        # The option wins over the environment variable (which would make the test hang).
        "missing": pool.submit(
            launch_env,
            ["--json", "--dist-timeout", "3"],
            ranks=(0,),
            extra_env={"DLCHECK_DIST_TIMEOUT": "600"},
        ),
    }
    yield futures
    pool.shutdown(wait=True)


def valid_document(stdout: str) -> dict:
    import jsonschema

    doc = json.loads(stdout)  # fails on anything besides exactly one document
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))
    return doc


def flat(text: str) -> str:
    return " ".join(text.split())


def test_torchrun_two_ranks_one_document(scenarios: dict[str, Future]) -> None:
    proc = scenarios["torchrun"].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = valid_document(proc.stdout)
    assert doc["schema"] == "dlcheck.env/1" and doc["exit_code"] == 0
    assert doc["launcher"] == "torchrun" and doc["world_size"] == 2
    assert [r["rank"] for r in doc["ranks"]] == [0, 1]
    assert [r["local_rank"] for r in doc["ranks"]] == [0, 1]
    # Each rank's entry is that rank's full single-process report.
    for entry in doc["ranks"]:
        assert entry["schema"] == "dlcheck.env/1" and entry["comparable"]["torch.version"]
        assert any(c["id"] == "torch.import" and c["status"] == "pass" for c in entry["checks"])
    (node,) = doc["nodes"]
    assert node["ranks"] == [0, 1] and node["failed_ranks"] == []
    cluster = {c["id"]: c for c in doc["cluster_checks"]}
    assert cluster["cluster.ranks"]["status"] == "pass"
    assert cluster["cluster.torch.version"]["status"] == "pass"
    merged = {c["id"]: c for c in doc["checks"]}
    assert merged["torch.import"]["ranks"] == {"pass": [0, 1]}
    assert "Traceback" not in proc.stderr


def test_low_nofile_rank_is_flagged_by_rank_and_only_warns(scenarios: dict[str, Future]) -> None:
    runs = scenarios["nofile_json"].result()
    assert [runs[r].rc for r in (0, 1)] == [0, 0], runs[0].stderr[-3000:]
    assert runs[1].stdout == ""
    doc = valid_document(runs[0].stdout)
    assert doc["launcher"] == "env" and doc["exit_code"] == 0
    assert doc["ranks"][1]["comparable"]["nofile.soft"] == 256
    soft0 = doc["ranks"][0]["comparable"]["nofile.soft"]
    assert soft0 != 256
    cluster = {c["id"]: c for c in doc["cluster_checks"]}
    nofile = cluster["cluster.nofile.soft"]
    assert nofile["status"] == "warn"
    assert nofile["summary"] == f"nofile.soft differs: rank 0 = {soft0}, rank 1 = 256"
    host_nofile = next(c for c in doc["checks"] if c["id"] == "host.nofile")
    assert host_nofile["status"] == "warn"
    assert host_nofile["ranks"] == {"pass": [0], "warn": [1]}
    assert host_nofile["summary"].endswith("(rank 1; pass on rank 0)")
    assert doc["summary"]["fail"] == 0 and doc["summary"]["warn"] >= 2
    # Rank 1's secrets are listed (masked) in its report but never reach rank 0's output.
    assert "TORCH_HUB_PROXY" in json.dumps(doc["ranks"][1]["facts"]["envvars"])
    for secret in ("hf_abcdefghijklmnopqrstuvwx", "Pr0xyPassw0rd"):
        assert secret not in runs[0].stdout + runs[0].stderr + runs[1].stderr


def test_strict_fails_every_rank_and_human_view_shows_nodes_and_cluster(
    scenarios: dict[str, Future],
) -> None:
    runs = scenarios["nofile_strict"].result()
    assert [runs[r].rc for r in (0, 1)] == [1, 1]  # the warning fails under --strict, everywhere
    assert runs[1].stdout == ""
    out = runs[0].stdout
    assert out.startswith("dlcheck env · 2 ranks on 1 node (RANK/WORLD_SIZE) · Python ")
    assert re.search(r"host\s+┃\s+ranks\s+┃\s+GPUs\s+┃\s+driver", out)
    assert re.search(r"│\s+0, 1\s+│\s+none\s+│", out)
    text = flat(out)
    assert "[!] Across ranks and nodes" in text
    assert "✓ 2 ranks on 1 node reported" in text
    assert re.search(r"! nofile\.soft differs: rank 0 = \d+, rank 1 = 256", text)
    assert "(rank 1; pass on rank 0)" in text
    assert re.search(r"! \d+ warnings \(\d+ checks\)$", text)
    assert "TORCH_CPP_LOG_LEVEL" not in out  # dlcheck's own variable is not the user's


def test_missing_rank_is_named_by_rank_0_within_the_timeout(scenarios: dict[str, Future]) -> None:
    runs = scenarios["missing"].result()
    run = runs[0]
    assert run.rc == 1 and run.stdout == ""
    assert "rank 1 of 2 did not reach 'start' within 3 s" in flat(run.stderr)
    assert "Traceback" not in run.stderr and "frame #" not in run.stderr
    # Start-up and `import torch` (slow when the 2 CPUs are shared with the other scenarios)
    # plus 3 s; far below the 600 s the environment asked for.
    assert run.wall_s < 120
