"""Every command's report keeps one protocol (dlcheck.records.Report): ``exit_code``,
``to_dict()`` (one JSON document, ``schema`` first) and ``render(console, verbose=)``.

Built in process from the same hand-built or real records the renderer tests use: env, env
across ranks, profile, profile across ranks, doctor and trace.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from dlcheck.records import Report


def env_report() -> Report:
    from test_env_render import REPORT

    return REPORT


def dist_env_report() -> Report:
    from dlcheck.env.records import DistEnvReport
    from dlcheck.env.run import run_env

    base = run_env(checks=["host"]).to_dict()  # host checks only: no torch import
    ranks = []
    for rank in (0, 1):
        doc = copy.deepcopy(base)
        doc.update(rank=rank, local_rank=rank, host="node-a")
        ranks.append(doc)
    meta = {"dlcheck_version": "0.1.0", "created_at": "2026-12-04T00:00:00+00:00"}
    return DistEnvReport.from_ranks(
        ranks, launcher="torchrun", world_size=2, meta={**meta, "duration_s": 1.0}
    )


def profile_report() -> Report:
    from test_profile_units import make_report

    return make_report()  # type: ignore[return-value]  # typed `object` there


def dist_profile_report() -> Report:
    from dlcheck.profile.ranks import DistProfileReport
    from dlcheck.ranks.throughput import aggregate_settings
    from test_profile_units import make_report

    report: Any = make_report()
    ranks = [{"rank": r, "host": "h", "usable_cpus": 2, "cpu_set": [0, 1]} for r in (0, 1)]
    merged = DistProfileReport(report=report, world_size=2, launcher="torchrun", ranks=ranks)
    merged.aggregates = aggregate_settings(
        [
            {"rank": r, "setting": {"num_workers": 0}, "samples_per_s": 900.0 - r, "error": None}
            for r in (0, 1)
        ],
        world_size=2,
    )
    return merged


def doctor_report() -> Report:
    from test_doctor_shapes import golden_report

    return golden_report()


def trace_report(tmp_path: Path) -> Report:
    from dlcheck.trace.run import run_trace

    def x(name: str, ts: int, dur: int, cat: str = "user_annotation") -> dict[str, Any]:
        return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "tid": 1, "args": {}}

    nxt = "enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__"
    events = []
    for step in range(4):  # 100 ms steps, 30 ms of each waiting on the loader
        t0 = step * 100_000
        events += [x(f"ProfilerStep#{step}", t0, 100_000), x(nxt, t0 + 10, 30_000)]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps({"traceEvents": events}))
    return run_trace([path])


BUILDERS: dict[str, Callable[..., Report]] = {
    "dlcheck.env/1": env_report,
    "dlcheck.env.distributed/1": dist_env_report,
    "dlcheck.profile/1": profile_report,
    "dlcheck.profile.distributed/1": dist_profile_report,
    "dlcheck.doctor/1": doctor_report,
    "dlcheck.trace/1": trace_report,
}


@pytest.fixture(params=sorted(BUILDERS))
def report(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Report]:
    build = BUILDERS[request.param]
    return request.param, build(tmp_path) if build is trace_report else build()


def test_exit_code_is_one_of_the_documented_codes(report: tuple[str, Report]) -> None:
    _, rep = report
    assert isinstance(rep.exit_code, int)
    assert rep.exit_code in (0, 1, 2, 130)


def test_to_dict_is_one_json_document_with_its_schema_first(report: tuple[str, Report]) -> None:
    expected, rep = report
    doc = rep.to_dict()
    assert next(iter(doc)) == "schema"
    # The schema names the document; a launcher's form may add a suffix of its own.
    assert doc["schema"].split("/")[0].startswith(expected.split("/")[0].split(".distributed")[0])
    assert json.loads(json.dumps(doc)) == doc  # plain JSON: nothing needs a custom encoder


@pytest.mark.parametrize("verbose", [False, True])
def test_render_prints_on_a_console_of_80_columns(
    report: tuple[str, Report], verbose: bool
) -> None:
    _, rep = report
    buf = io.StringIO()
    rep.render(Console(file=buf, width=80, color_system=None), verbose=verbose)
    text = buf.getvalue()
    assert text.strip(), "render() printed nothing"
    assert "…" not in text
