"""`dlcheck profile --step / --step-time`: the loop's input-bound share, checked against a loop
timed by hand on the same loader in the same run (tests/fixtures/inputbound_loops.py: 4 ms samples,
batches of 16, a 20 ms step: about 0.69, 0.38 and 0 with 1, 2 and 4 workers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dlcheck.errors import UsageError
from dlcheck.profile.step import (
    LoopEpoch,
    choose_by_share,
    loop_figures,
    parse_step_time,
    share_reason,
)

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"
WORKERS = (1, 2, 4)
#: Measured share vs the hand-timed loop, same machine, same run.
TOLERANCE = 0.08


def _dlcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS / "fixtures")]),
        "COLUMNS": "80",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "dlcheck", "profile", *args],
        cwd=TESTS,
        env=full,
        capture_output=True,
        text=True,
        timeout=240,
    )


def hand_timed(epochs: int = 2) -> dict[int, tuple[float, float]]:
    """(wait, wall) per worker count of the loop timed by hand over ``epochs`` epochs (each
    epoch's first batch left out, as watch and profile do)."""
    from inputbound_loops import hand_timed_loop, sleepy_loader
    from step_target import BATCHES

    timed = {}
    for w in WORKERS:
        loader = sleepy_loader(w, BATCHES)
        runs = [hand_timed_loop(loader) for _ in range(epochs)]
        timed[w] = (sum(r.wait_s for r in runs), sum(r.wall_s for r in runs))
    return timed


def _profile_between_hand_loops(*args: str, env: dict[str, str] | None = None) -> tuple:
    """The profile run, with the loop timed by hand just before and just after it: on a shared
    machine the load drifts, and the run is compared with the hand loops around it."""
    before = hand_timed()
    proc = _dlcheck(*args, env=env)
    after = hand_timed()
    hand = {
        w: {
            "before": before[w][0] / before[w][1],
            "after": after[w][0] / after[w][1],
            "pooled": (before[w][0] + after[w][0]) / (before[w][1] + after[w][1]),
        }
        for w in WORKERS
    }
    return proc, hand


def _first_under_5(shares: dict[int, float]) -> int:
    """search.py's rule: the cheapest under 5 %, else the least waiting (2 points are a tie)."""
    under = [w for w in sorted(shares) if shares[w] < 0.05]
    if under:
        return under[0]
    least = min(shares.values())
    return min(w for w in shares if shares[w] <= least + 0.02)


def _check_against_hand(
    proc: subprocess.CompletedProcess, timed: dict[int, dict[str, float]]
) -> None:
    import jsonschema

    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, json.loads((SRC / "dlcheck/profile/schema.json").read_text()))
    shares = {}
    for r in doc["results"]:
        w = r["setting"]["num_workers"]
        assert r["tier"] in ("not", "moderately", "highly")
        assert 17 <= r["step_ms"] <= 40, r["step_ms"]  # a 20 ms sleep, on a busy machine
        assert r["wait_ms"]["p50"] <= r["wait_ms"]["p95"]
        assert r["loop_samples_per_s"] > 0
        shares[w] = r["input_bound"]
    assert set(shares) == set(WORKERS)
    hand = {w: timed[w]["pooled"] for w in WORKERS}
    side_by_side = {
        w: (round(shares[w], 3), *(round(timed[w][k], 3) for k in ("before", "after")))
        for w in WORKERS
    }
    print("profile vs hand-timed (before, after):", side_by_side)
    for w in WORKERS:
        near = min(abs(shares[w] - x) for x in timed[w].values())
        assert near <= TOLERANCE, side_by_side
    # The recommendation follows the rule on its own figures ...
    rec = doc["recommended"]
    assert rec["num_workers"] == _first_under_5(shares), (rec, side_by_side)
    assert rec["input_bound"] == pytest.approx(shares[rec["num_workers"]])
    # ... and agrees with the hand-timed loop unless a figure sits right at the 5 % line.
    if all((shares[w] < 0.05) == (hand[w] < 0.05) for w in WORKERS):
        assert rec["num_workers"] == _first_under_5(hand), side_by_side
    if shares[rec["num_workers"]] >= 0.05:
        assert "the loader is the bottleneck" in rec["reason"]


def test_step_function_share_matches_hand_timed_loop() -> None:
    proc, hand = _profile_between_hand_loops(
        "step_target:loader",
        "--step",
        "step_target:train_step",
        "--workers",
        ",".join(map(str, WORKERS)),
        "--json",
    )
    _check_against_hand(proc, hand)


def test_step_time_share_matches_hand_timed_loop_with_fake_cuda() -> None:
    # FakeCuda moves each batch (a few microseconds at 12 GB/s): the copy path is exercised.
    proc, hand = _profile_between_hand_loops(
        "step_target:loader",
        "--step-time",
        "20ms",
        "--workers",
        ",".join(map(str, WORKERS)),
        "--pin-memory",
        "off",
        "--json",
        env={"DLCHECK_FAKE_CUDA": "12"},
    )
    _check_against_hand(proc, hand)
    doc = json.loads(proc.stdout)
    assert all(r["gpu"]["available"] for r in doc["results"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--step", "step_target:no_such_step"], "--step 'step_target:no_such_step'"),
        (["--step", "step_target:not_callable"], "not a function"),
        (["--step", "no colon here"], "--step 'no colon here' is not of the form"),
        (["--step", "no_such_module:step"], "No module named 'no_such_module' (--step"),
        (["--step", "step_target:train_step", "--step-time", "20ms"], "exclude each other"),
        (["--step-time", "soon"], "--step-time 'soon'"),
    ],
)
def test_bad_step_is_a_one_line_usage_error(args: list[str], says: str) -> None:
    proc = _dlcheck("step_target:loader", *args, "--workers", "0", "--duration", "0.5")
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert says in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_table_fits_80_columns_with_step() -> None:
    proc = _dlcheck(
        "step_target:loader", "--step-time", "0.02", "--workers", "2", "--duration", "0.5"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wait %" in proc.stdout and "HIGH" in proc.stdout  # 2 workers: about 38 %
    assert "…" not in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


# ---------------------------------------------------------------- pure parts


@pytest.mark.parametrize(("raw", "s"), [("20ms", 0.02), ("0.02s", 0.02), ("0.02", 0.02)])
def test_parse_step_time(raw: str, s: float) -> None:
    assert parse_step_time(raw) == pytest.approx(s)


@pytest.mark.parametrize("raw", ["", "0", "-1ms", "20 minutes", "ms"])
def test_parse_step_time_rejects(raw: str) -> None:
    with pytest.raises(UsageError):
        parse_step_time(raw)


def test_loop_figures_leave_out_each_epochs_first_batch() -> None:
    # Two epochs: a 1 s start-up, then 3 steps of 20 ms each waiting 10 ms: share 1/3.
    e = LoopEpoch((1.0, 0.01, 0.01, 0.01), (0.02,) * 4, (16,) * 4, 0.02 + 3 * 0.03)
    f = loop_figures([e, e])
    assert f is not None
    assert f.input_bound == pytest.approx(0.03 / 0.11)
    assert f.tier == "highly"
    assert f.first_batch_ms == pytest.approx(1000)
    assert f.wait_ms["p50"] == pytest.approx(10)
    assert f.step_ms == pytest.approx(20)
    assert f.samples_per_s == pytest.approx(48 / 0.11)


class _E:
    def __init__(self, w: int, share: float):
        from dlcheck.profile.records import Setting

        self.setting = Setting(num_workers=w, batch_size=16)
        e = LoopEpoch((0.1, share * 0.1), (0.1 * (1 - share),) * 2, (16, 16), 0.1)
        self.loop = loop_figures([e])


def test_choose_by_share_cheapest_under_5_percent_else_least_waiting() -> None:
    def cost(e: _E) -> int:
        return e.setting.num_workers

    group = [_E(1, 0.69), _E(2, 0.38), _E(4, 0.01), _E(8, 0.0)]
    assert choose_by_share(group, cost).setting.num_workers == 4
    slow = [_E(1, 0.69), _E(2, 0.5), _E(4, 0.38)]
    rec = choose_by_share(slow, cost)
    assert rec.setting.num_workers == 4
    assert share_reason(rec, slow).startswith(
        "the loader is the bottleneck: the loop waits 38% of its time even at 4 workers"
    )


def _with_loop(share_by_workers: dict[int, float]) -> object:
    """The hand-built report of test_profile_units, each ok result given a loop of that share."""
    from dlcheck.profile import search
    from dlcheck.profile.records import GpuFigures
    from test_profile_units import make_report

    rep = make_report()
    for r in rep.results:  # type: ignore[attr-defined]
        share = share_by_workers.get(r.setting.num_workers)
        if r.ok and share is not None:
            e = LoopEpoch((0.3,) + (0.064 * share,) * 9, (0.02,) * 10, (64,) * 10, 9 * 0.064)
            r.loop_epochs = [e]
            r.loop = loop_figures([e])
            r.gpu = GpuFigures(True, device="Fake GPU", h2d_ms_p50=0.84, h2d_gb_per_s=43.2)
    rep.recommendations = search.recommend(rep.results, usable_cpus=2)  # type: ignore[attr-defined]
    return rep


def test_hand_built_step_report_renders_in_80_columns_and_recommends_by_share() -> None:
    import io

    from dlcheck.output import console
    from dlcheck.profile.render import report_renderable

    rep = _with_loop({0: 0.69, 2: 0.03, 4: 0.0})
    buf = io.StringIO()
    console(file=buf, width=80).print(report_renderable(rep, wide=False))
    text = buf.getvalue()
    assert "…" not in text
    assert max(len(ln) for ln in text.splitlines()) <= 80
    head = next(ln for ln in text.splitlines() if "workers" in ln and "samples/s" in ln)
    assert "wait %" in head and "1st batch" in head and "H2D" in head
    assert "69% HIGH" in text
    assert rep.recommended.num_workers == 2  # type: ignore[attr-defined]
    assert "cheapest setting where the loop is not input-bound" in text
    doc = json.loads(json.dumps(rep.to_dict(raw=True)))  # type: ignore[attr-defined]
    import jsonschema

    jsonschema.validate(doc, json.loads((SRC / "dlcheck/profile/schema.json").read_text()))
    by_w = {r["setting"]["num_workers"]: r for r in doc["results"] if r["ok"]}
    assert by_w[0]["tier"] == "highly" and by_w[2]["tier"] == "not"
    assert doc["recommended"]["tier"] == "not"


def test_without_a_step_nothing_changes() -> None:
    from test_profile_units import make_report

    doc = json.loads(json.dumps(make_report().to_dict()))  # type: ignore[attr-defined]
    assert all("input_bound" not in r for r in doc["results"])
    assert doc["recommended"]["num_workers"] == 2  # by samples/s, as before
    assert doc["recommended"]["input_bound"] is None


def test_when_every_setting_waits_the_output_names_the_loader() -> None:
    rep = _with_loop({0: 0.69, 2: 0.45, 4: 0.38})
    rec = rep.recommended  # type: ignore[attr-defined]
    assert rec.num_workers == 4
    assert rec.reason.startswith(
        "the loader is the bottleneck: the loop waits 38% of its time even at 4 workers"
    )


def test_fake_cuda_move_keeps_the_batch_shape() -> None:
    import torch

    from dlcheck.cuda import FakeCuda, map_tensors

    batch = {"x": torch.ones(2, 3), "y": (torch.zeros(2), "label")}
    assert FakeCuda().move(batch, non_blocking=True) is batch
    doubled = map_tensors(batch, lambda t: t * 2)
    assert doubled["x"].sum().item() == 12 and doubled["y"][1] == "label"


def test_a_step_that_raises_is_that_settings_error() -> None:
    proc = _dlcheck(
        "step_target:loader",
        "--step",
        "step_target:failing_step",
        "--workers",
        "0",
        "--duration",
        "0.3",
        "--json",
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    (r,) = [r for r in json.loads(proc.stdout)["results"] if r["setting"]["num_workers"] == 0]
    assert r["error_kind"] == "step"
    assert r["error"] == "your --step raised ValueError: shapes do not match"


def test_csv_has_the_loop_columns() -> None:
    import csv
    import io

    from dlcheck.profile.render import csv_text

    rows = list(csv.DictReader(io.StringIO(csv_text(_with_loop({0: 0.69, 2: 0.03})))))  # type: ignore[arg-type]
    by_w = {r["num_workers"]: r for r in rows if r["ok"] == "True"}
    assert by_w["0"]["tier"] == "highly" and float(by_w["0"]["input_bound"]) == pytest.approx(0.69)
    assert by_w["4"]["input_bound"] == ""  # no loop figures: empty


@pytest.mark.parametrize("as_object", [False, True])
def test_python_api_takes_the_step_as_a_function(as_object: bool) -> None:
    # A notebook's step is a function object, not an importable name: every setting forks
    # from this process (TARGET is built here when it is a string) and calls it.
    import time

    import dlcheck
    import step_target

    def train_step(batch: Any) -> None:
        time.sleep(0.02)

    target = step_target.loader() if as_object else "step_target:loader"
    report = dlcheck.profile(target, step=train_step, workers=[0], duration=0.5, stall_timeout=60)
    assert report.exit_code == 0, report.to_dict()["results"]
    doc = report.to_dict()
    assert doc["options"]["step"].endswith(".train_step>")
    assert doc["options"]["isolation"] == "fork"
    for r in doc["results"]:  # the setting and its repeats
        assert r["step_ms"] >= 19, r  # the 20 ms sleep ran in the measuring child
        assert r["input_bound"] is not None
