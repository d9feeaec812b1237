"""`dlcheck env` across ranks, in-process: the merged record, its renderers and schema, and the
command's decisions that need no process group (built from real single-process reports)."""

from __future__ import annotations

import copy
import io
import json
import re
from typing import Any

import pytest
from typer.testing import CliRunner

from dlcheck.cli import app
from dlcheck.env.records import SCHEMA_FILE, DistEnvReport
from dlcheck.output import console

LAUNCH = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999", "WORLD_SIZE": "2"}


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    """One real single-process report (host checks only: no torch import)."""
    from dlcheck.env.run import run_env

    return run_env(checks=["host"]).to_dict()


def entry(base: dict[str, Any], rank: int, host: str, *, nofile: int = 65536) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc.update(rank=rank, local_rank=rank % 2, host=host)
    doc["comparable"].update({"host": host, "nofile.soft": nofile, "cpu.usable": 8})
    for c in doc["checks"]:
        c["status"], c["fix"] = "pass", None
        if c["id"] == "host.nofile":
            c["summary"] = f"open-files soft limit is {nofile}"
            if nofile < 1024:
                c["status"], c["fix"] = "warn", "ulimit -n 65536"
    return doc


def failed(rank: int, host: str) -> dict[str, Any]:
    error = {"kind": "crash", "message": "RuntimeError: boom", "hint": None, "exit_code": 1}
    return {"rank": rank, "local_rank": None, "host": host, "error": error}


@pytest.fixture(scope="module")
def three(base: dict[str, Any]) -> DistEnvReport:
    """Ranks 0-1 on alpha-node (rank 1 with nofile 256), rank 2 on beta-node failed."""
    ranks = [
        failed(2, "beta-node"),
        entry(base, 0, "alpha-node"),
        entry(base, 1, "alpha-node", nofile=256),
    ]
    meta = {"dlcheck_version": "0.1.0", "created_at": "2026-11-27T00:00:00+00:00"}
    return DistEnvReport.from_ranks(
        ranks, launcher="torchrun", world_size=3, meta={**meta, "duration_s": 1.0}
    )


def validate(doc: dict[str, Any]) -> None:
    import jsonschema

    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))


def render(report: DistEnvReport, verbose: bool = False) -> str:
    from dlcheck.env.render import render_dist_console

    buf = io.StringIO()
    render_dist_console(report, console(file=buf, width=100), verbose=verbose)
    return buf.getvalue()


def test_merged_record_names_failed_and_differing_ranks(three: DistEnvReport) -> None:
    assert [e["rank"] for e in three.ranks] == [0, 1, 2]  # sorted by rank
    assert three.failed_ranks() == [2]
    assert [(n["host"], n["ranks"], n["failed_ranks"]) for n in three.nodes] == [
        ("alpha-node", [0, 1], []),
        ("beta-node", [2], [2]),
    ]
    assert three.node_labels() == {"alpha-node": "node0", "beta-node": "node1"}
    cluster = {c["id"]: c for c in three.cluster_checks}
    assert cluster["cluster.ranks"]["status"] == "fail"
    assert "rank 2 failed: RuntimeError: boom" in cluster["cluster.ranks"]["summary"]
    nofile = cluster["cluster.nofile.soft"]
    assert nofile["summary"] == "nofile.soft differs: rank 0 = 65536, rank 1 = 256"
    merged = {c["id"]: c for c in three.checks}
    assert merged["host.nofile"]["ranks"] == {"pass": [0], "warn": [1]}
    assert three.exit_code == 1


def test_distributed_document_is_valid_and_shaped(three: DistEnvReport) -> None:
    doc = three.to_dict()
    validate(doc)
    assert list(doc) == [
        "schema", "dlcheck_version", "created_at", "duration_s", "exit_code", "strict",
        "launcher", "world_size", "summary", "nodes", "cluster_checks", "checks", "ranks",
    ]  # fmt: skip
    assert doc["ranks"][2] == failed(2, "beta-node")
    assert doc["summary"]["fail"] == 1 and doc["exit_code"] == 1
    broken = {k: v for k, v in doc.items() if k != "ranks"}
    with pytest.raises(Exception, match="valid"):
        validate(broken)


def test_exit_code_warnings_strict_and_agreed(base: dict[str, Any]) -> None:
    report = DistEnvReport.from_ranks(
        [entry(base, 0, "a-host"), entry(base, 1, "a-host", nofile=256)],
        launcher="env",
        world_size=2,
    )
    from dataclasses import replace

    assert report.exit_code == 0 and replace(report, strict=True).exit_code == 1

    assert replace(report, agreed_exit=2).exit_code == 2  # another rank's usage error wins
    assert replace(report, agreed_exit=0, strict=True).exit_code == 1


def test_console_view_shows_nodes_cluster_checks_and_merged_checks(three: DistEnvReport) -> None:
    out = render(three)
    text = " ".join(out.split())
    assert out.startswith("dlcheck env · 3 ranks on 2 nodes (torchrun) · Python ")
    assert re.search(r"alpha-node\s+│\s+0, 1\s+│\s+none", out)
    assert re.search(r"beta-node\s+│\s+2 \(failed: 2\)", out)
    assert "[✗] Across ranks and nodes" in text
    assert "✗ rank 2 failed: RuntimeError: boom" in text
    assert "! nofile.soft differs: rank 0 = 65536, rank 1 = 256 → Raise the limit" in text
    assert "open-files soft limit is 256 (rank 1; pass on rank 0) → ulimit -n 65536" in text
    # The cluster group comes first, then the env groups.
    assert text.index("Across ranks and nodes") < text.index("Host limits for data loading")
    assert re.search(r"✗ 1 failure, \d+ warnings \(\d+ checks\)$", text)


def test_verbose_view_shows_which_ranks_had_which_status(three: DistEnvReport) -> None:
    text = " ".join(render(three, verbose=True).split())
    assert 'ranks: {"pass": [0], "warn": [1]}' in text
    assert "host.nofile" in text and "cluster.nofile.soft" in text


def test_markdown_uses_node_labels_not_host_names(three: DistEnvReport) -> None:
    from dlcheck.env.render import render_dist_markdown

    md = render_dist_markdown(three)
    assert md.startswith("#### `dlcheck env` across 3 ranks on 2 nodes (torchrun) — 1 failure")
    assert "| node0 | 0, 1 | none | n/a |" in md
    assert "| node1 | 2 (failed: 2) | none | n/a |" in md
    assert "alpha-node" not in md and "beta-node" not in md
    assert "| ✗ fail | `cluster.ranks` | rank 2 failed: RuntimeError: boom" in md
    assert "nofile.soft: 65536 (rank 0); 256 (rank 1)" in md


# ---- the command's decisions that need no process group ----------------------------------


def test_list_checks_prints_once_per_job() -> None:
    runner = CliRunner()
    other = runner.invoke(app, ["env", "--list-checks"], env={**LAUNCH, "RANK": "1"})
    assert other.exit_code == 0 and other.output == ""
    root = runner.invoke(app, ["env", "--list-checks"], env={**LAUNCH, "RANK": "0"})
    assert root.exit_code == 0 and "host.nofile" in root.output


def test_bad_timeout_is_a_usage_error_and_kills_the_prestarted_child(monkeypatch) -> None:
    from dlcheck.env import collect_torch as torchprobe

    killed: list[bool] = []

    class Probe:
        deep = False
        timeout = 60.0

        def kill(self) -> None:
            killed.append(True)

    monkeypatch.setattr(torchprobe, "_PRESTARTED", Probe())
    result = CliRunner().invoke(
        app, ["env"], env={**LAUNCH, "RANK": "0", "DLCHECK_DIST_TIMEOUT": "soon"}
    )
    assert result.exit_code == 2
    assert "DLCHECK_DIST_TIMEOUT='soon' is not a positive number" in " ".join(result.output.split())
    assert killed == [True] and torchprobe._PRESTARTED is None


def test_unknown_check_fails_on_every_rank_before_joining() -> None:
    result = CliRunner().invoke(app, ["env", "--check", "nope"], env={**LAUNCH, "RANK": "1"})
    assert result.exit_code == 2 and "unknown check id: nope" in result.output


def test_dist_timeout_must_be_positive() -> None:
    result = CliRunner().invoke(app, ["env", "--dist-timeout", "0"], env={**LAUNCH, "RANK": "0"})
    assert result.exit_code == 2
