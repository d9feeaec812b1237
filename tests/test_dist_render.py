"""Golden output of the dlcheck.ranks renderers from hand-built records."""

from __future__ import annotations

import io

from rich.console import Console

from dlcheck.ranks.cluster import merge_env_reports
from dlcheck.ranks.render import node_table, throughput_table, workers_table
from dlcheck.ranks.throughput import aggregate_settings, recommend_workers


def render(renderable: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=100, color_system=None).print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


GPU = {"gpu.count": 2, "gpu.models": "H100, H100", "nvidia.driver": "570.86"}
REPORTS = [
    {"rank": 0, "local_rank": 0, "host": "a", "checks": [], "facts": GPU},
    {"rank": 1, "local_rank": 1, "host": "a", "checks": [], "facts": GPU},
    {"rank": 2, "local_rank": 0, "host": "b", "checks": [], "facts": {}, "error": {"message": "x"}},
]
RECORDS = [
    {"rank": 0, "setting": {"num_workers": 2}, "samples_per_s": 300.0, "error": None},
    {"rank": 1, "setting": {"num_workers": 2}, "samples_per_s": 150.0, "error": None},
    {"rank": 0, "setting": {"num_workers": 4}, "samples_per_s": 310.0, "error": None},
    {"rank": 1, "setting": {"num_workers": 4}, "samples_per_s": None, "error": "stalled"},
]


def test_node_table() -> None:
    nodes = merge_env_reports(REPORTS)["nodes"]
    assert render(node_table(nodes)) == (
        "Nodes\n"
        " host ┃ ranks         ┃ GPUs          ┃ driver\n"
        "━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━\n"
        " a    │ 0, 1          │ 2× H100, H100 │ 570.86\n"
        " b    │ 2 (failed: 2) │ none          │ n/a"
    )


def test_merge_env_reports_statuses() -> None:
    merged = merge_env_reports(REPORTS, world_size=3)
    assert merged["cluster_checks"][0]["id"] == "cluster.ranks"
    assert merged["cluster_checks"][0]["summary"] == "rank 2 failed: x"
    assert "fail" in merged["statuses"] and merged["checks"] == []


def test_throughput_table() -> None:
    text = render(throughput_table(aggregate_settings(RECORDS, world_size=2)))
    assert text.splitlines() == [
        "All ranks",
        "setting   ┃ ranks ┃ total/s ┃ lockstep/s ┃ slowest rank ┃ straggler ┃ failed",
        "━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━━━━",
        "workers=2 │     2 │     450 │        300 │    1 (150/s) │     1.50× │",
        "workers=4 │     1 │     310 │        310 │    0 (310/s) │     1.00× │ rank 1: stalled",
    ]


def test_workers_table() -> None:
    ranks = [{"rank": 0, "host": "a", "usable_cpus": 4}, {"rank": 1, "host": "a", "usable_cpus": 4}]
    text = render(workers_table(recommend_workers(RECORDS, ranks)))
    lines = text.splitlines()
    assert lines[0] == "num_workers per rank"
    assert lines[3].startswith("    0 │ a    │        4 (2) │           2 │ fewest workers within")
    assert any(line.startswith("    1 │ a    │        4 (2) │           2 │") for line in lines)
