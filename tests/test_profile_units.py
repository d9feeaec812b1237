"""Unit tests for `dlcheck profile`'s pure parts: statistics, search, judgement, renderers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dlcheck.profile import search, stats
from dlcheck.profile.failures import describe_collate_failure, explain_exception
from dlcheck.profile.records import EpochTrace, LoaderShape, Setting, SettingResult
from dlcheck.profile.search import AdaptivePlanner, FixedPlanner, SweepSpace
from dlcheck.profile.sweep import result_from_value, run_sweep
from dlcheck.records import Status

# ---------------------------------------------------------------- fake timings


def trace(
    rate_batches: float,
    n: int,
    *,
    first: float = 0.5,
    buffer: int = 0,
    batch: int = 64,
    complete: bool = False,
) -> EpochTrace:
    """An epoch: the first batch at ``first``, ``buffer`` batches instantly (the start-up
    buffer), then ``n`` batches at ``rate_batches`` per second."""
    times = [first]
    t = first
    for _ in range(buffer):
        t += 1e-4
        times.append(t)
    for _ in range(n):
        t += 1 / rate_batches
        times.append(t)
    return EpochTrace(0.0, tuple(times), tuple([batch] * len(times)), complete)


def fake_result(w: int, rate: float, noise: float | None = 0.01, bs: int = 64) -> SettingResult:
    st = stats.Steady(
        samples_per_s=rate,
        batches_per_s=rate / bs,
        spread=(rate * 0.98, rate * 1.02),
        rel_noise=noise,
        windows=5,
        steady_batches=100,
        steady_s=1.0,
    )
    return SettingResult(Setting(w, bs, prefetch_factor=2).normalised(), ok=True, stats=st)


# ---------------------------------------------------------------- statistics


def test_percentiles_and_median() -> None:
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 2, 3]) == 2.5
    assert stats.percentile([0, 10], 50) == 5
    assert stats.percentile(list(range(101)), 99) == 99
    assert stats.mad([1, 2, 3, 4, 100]) == 1


def test_steady_state_skips_the_startup_buffer() -> None:
    # 8 workers x prefetch 2: 16 batches were ready at start-up and arrive instantly.
    s = Setting(8, 64, prefetch_factor=2)
    e = trace(10.0, 60, buffer=16)
    st = stats.steady_stats([e], s.depth, s.num_workers)
    assert st.samples_per_s == pytest.approx(640, rel=1e-6)
    assert st.first_batch_s == 0.5
    # Counting the buffer would have overstated the rate.
    naive = sum(e.samples[1:]) / (e.times_s[-1] - e.times_s[0])
    assert naive > 1.2 * st.samples_per_s


def test_epoch_tail_is_excluded_and_restart_measured() -> None:
    s = Setting(2, 64, prefetch_factor=2)
    e1 = trace(20.0, 40, buffer=4, complete=True)
    e2 = EpochTrace(10.0, tuple(t + 10.0 + 0.3 for t in e1.times_s), e1.samples, True)
    st = stats.steady_stats([e1, e2], s.depth, s.num_workers)
    assert st.samples_per_s == pytest.approx(20 * 64)
    assert st.epoch_restart_s == pytest.approx(0.8)  # first batch 0.5 s after iter() + 0.3
    assert st.windows >= 3 and st.rel_noise is not None


def test_latency_percentiles_and_stalls() -> None:
    times = [0.0, 0.01]
    for i in range(60):
        times.append(times[-1] + (1.0 if i == 30 else 0.01))
    e = EpochTrace(0.0, tuple(times), tuple([8] * len(times)), False)
    st = stats.steady_stats([e], 0, 0)
    assert st.latency_ms["p50"] == pytest.approx(10, rel=1e-6)
    assert st.latency_ms["p99"] > 10
    assert st.stalls == 1


def test_short_epochs_fall_back_to_epoch_rate() -> None:
    epochs = [
        EpochTrace(i * 1.0, (i + 0.2, i + 0.3, i + 0.4), (10, 10, 10), True) for i in range(4)
    ]
    st = stats.steady_stats(epochs, depth=8, num_workers=4)
    assert st.basis == "epoch"
    assert st.samples_per_s == pytest.approx(30 / 0.4)


def test_significance_uses_noise_with_floor_and_cap() -> None:
    assert not stats.is_significant(100, 0.001, 101.5, 0.001)  # under the 2% floor
    assert stats.is_significant(100, 0.001, 103, 0.001)
    assert not stats.is_significant(100, 0.03, 104, 0.03)  # within 2 sigma
    assert stats.is_significant(100, 0.5, 106, 0.5)  # the cap: 5% is never "the same"
    assert stats.tolerance(None, None) == pytest.approx(0.05)


# ---------------------------------------------------------------- the search


def drive(rates: dict[int, float], space: SweepSpace, noise: float = 0.01) -> list[SettingResult]:
    """Run the planner against fake measurements."""

    def measure(s: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        if rates.get(s.num_workers) is None:
            return SettingResult(s, ok=False, error="boom", error_kind="crash")
        return fake_result(s.num_workers, rates[s.num_workers], noise, s.batch_size or 64)

    planner = AdaptivePlanner(space) if space.workers is None else FixedPlanner(space)
    return run_sweep(planner, measure).results


def tried(results: list[SettingResult]) -> list[int]:
    return [r.setting.num_workers for r in results if r.round == 0]


def rec_of(results: list[SettingResult], **kw: object) -> search.Recommendation:
    recs = search.recommend(results, usable_cpus=2, **kw)  # type: ignore[arg-type]
    assert recs
    return recs[0]


def test_cpu_bound_stops_after_two_flat_steps_and_picks_the_cheapest() -> None:
    rates = {0: 950, 1: 930, 2: 1750, 4: 1770, 8: 1740, 16: 1700, 32: 1650, 64: 1500}
    res = drive(rates, SweepSpace(batch_sizes=[64], usable_cpus=2))
    assert tried(res) == [0, 1, 2, 4, 8]
    rec = rec_of(res)
    assert rec.num_workers == 2
    assert rec.reason.startswith("CPU-bound: saturates the 2 usable cores at 2 workers")
    assert "num_workers=2" in rec.dataloader


def test_io_bound_keeps_doubling_to_the_cap() -> None:
    rates = {w: 250.0 * max(w, 1) for w in (0, 1, 2, 4, 8, 16, 32)} | {64: 15000.0}
    res = drive(rates, SweepSpace(batch_sizes=[64], usable_cpus=2))
    assert tried(res) == [0, 1, 2, 4, 8, 16, 32, 64]
    rec = rec_of(res)
    assert rec.num_workers == 64 and "still rising" in rec.reason


def test_io_bound_plateau_recommends_the_cheapest_on_it() -> None:
    rates = {0: 250, 1: 250, 2: 500, 4: 1000, 8: 2000, 16: 4000, 32: 7900, 64: 8000}
    res = drive(rates, SweepSpace(batch_sizes=[64], usable_cpus=2))
    rec = rec_of(res)
    assert rec.num_workers == 32
    assert rec.reason.startswith("I/O- or wait-bound") and "within noise" in rec.reason


def test_tiny_samples_stop_early_and_pick_zero_workers() -> None:
    rates = {0: 300000, 1: 50000, 2: 47000, 4: 48000, 8: 40000, 16: 39000}
    res = drive(rates, SweepSpace(batch_sizes=[64], usable_cpus=2))
    assert tried(res) == [0, 1, 2, 4]
    rec = rec_of(res)
    assert rec.num_workers == 0 and rec.reason.startswith("loading in the main process")


def test_a_noisy_dip_at_the_core_count_does_not_end_the_search() -> None:
    rates = {0: 160, 1: 610, 2: 320, 4: 1700, 8: 1720, 16: 1690}
    res = drive(rates, SweepSpace(batch_sizes=[64], usable_cpus=2))
    assert 4 in tried(res)
    assert rec_of(res).num_workers == 4


def test_need_picks_the_cheapest_setting_that_meets_it() -> None:
    rates = {0: 250, 1: 250, 2: 500, 4: 1000, 8: 2000, 16: 4000}
    res = drive(rates, SweepSpace(batch_sizes=[64], need=900, usable_cpus=2))
    assert tried(res) == [0, 1, 2, 4]  # stops as soon as the need is met
    rec = rec_of(res, need=900)
    assert rec.num_workers == 4 and rec.meets_need
    assert "meets --need 900/s" in rec.reason


def test_uncertain_decisions_get_repeats() -> None:
    rates = {0: 900, 1: 900, 2: 1700, 4: 1770, 8: 1760, 16: 1700}
    res = drive(rates, SweepSpace(batch_sizes=[64], usable_cpus=2), noise=0.02)
    repeats = [(r.setting.num_workers, r.round) for r in res if r.round]
    assert repeats and all(rnd <= 2 for _, rnd in repeats)


def test_failed_settings_count_as_not_rising_and_are_skipped() -> None:
    rates = {0: 900, 1: 900, 2: 1700, 4: None, 8: None}
    res = drive(rates, SweepSpace(batch_sizes=[64], usable_cpus=2))  # type: ignore[arg-type]
    assert tried(res) == [0, 1, 2, 4]  # the cores are covered and it broke: stop
    assert rec_of(res).num_workers == 2


def test_fixed_planner_measures_the_baseline_first_and_every_combination() -> None:
    base = Setting(3, 32, prefetch_factor=2)
    space = SweepSpace(
        batch_sizes=[32, 64], workers=[0, 2], baseline=base, pin_memory=[False, True]
    )
    todo = [s for s, _ in FixedPlanner(space).next([])]
    assert todo[0] == base and len(todo) == 1 + 2 * 2 * 2


def test_sweep_hooks_barrier_shard_combine_and_budget() -> None:
    calls: list[str] = []

    def measure(s: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        calls.append(f"measure {s.num_workers} {shard}")
        return fake_result(s.num_workers, 100.0 * (s.num_workers + 1))

    def combine(r: SettingResult) -> SettingResult:
        calls.append(f"combine {r.rank}")
        return r

    space = SweepSpace(batch_sizes=[64], workers=[0, 2])
    out = run_sweep(
        FixedPlanner(space),
        measure,
        barrier=lambda: calls.append("barrier"),
        shard=(1, 4),
        combine=combine,
    )
    assert calls == [
        "barrier", "measure 0 (1, 4)", "combine 1",
        "barrier", "measure 2 (1, 4)", "combine 1",
    ]  # fmt: skip
    assert [r.rank for r in out.results] == [1, 1]
    ticks = iter(range(100))
    out = run_sweep(FixedPlanner(space), measure, budget_s=0.5, clock=lambda: next(ticks))
    assert out.budget_exhausted and len(out.results) == 1


# ---------------------------------------------------------------- failures


def test_worker_exception_text_is_parsed() -> None:
    text = (
        "Caught SampleError in DataLoader worker process 1.\nOriginal Traceback (most recent "
        "call last):\n  File ...\ndlcheck.profile.measure.SampleError: sample 37: ValueError: "
        "cannot decode sample 37: truncated file\n"
    )
    f = explain_exception("SampleError", text)
    assert f.kind == "sample"
    assert f.message == "sample 37: ValueError: cannot decode sample 37: truncated file"


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        ("DataLoader worker (pid 123) is killed by signal: Killed.", "worker_killed", "SIGKILL"),
        ("DataLoader worker (pid 9) is killed by signal: Bus error.", "worker_killed", "SIGBUS"),
        ("DataLoader worker (pid(s) 5, 6) exited unexpectedly", "worker_died", "pid(s) 5, 6"),
        ("DataLoader timed out after 5 seconds", "timeout", "5 s"),
        (
            "Caught ReadersFullError in DataLoader worker process 0.\nOriginal Traceback:\n"
            "lmdb.ReadersFullError: mdb_txn_begin: MDB_READERS_FULL: limit reached",
            "worker_error",
            "in DataLoader worker 0: lmdb.ReadersFullError: mdb_txn_begin: MDB_READERS_FULL",
        ),
    ],
)
def test_dataloader_messages(text: str, kind: str, fragment: str) -> None:
    f = explain_exception("RuntimeError", text)
    assert f.kind == kind and fragment in f.message


def test_collate_failure_names_field_and_shapes() -> None:
    import torch

    samples = [(torch.zeros(3, 32, 32), 1) for _ in range(4)]
    samples[2] = (torch.zeros(3, 30, 32), 1)
    msg = describe_collate_failure(samples, RuntimeError("stack expects..."), [10, 11, 12, 13])
    assert msg.startswith(
        "cannot collate field 0: Tensor[3, 32, 32] torch.float32 (samples 10, 11, 13)"
    )
    assert "Tensor[3, 30, 32] torch.float32 (sample 12)" in msg
    dicts = [{"img": torch.zeros(2)}, {"img": None}]
    assert "cannot collate 'img'" in describe_collate_failure(dicts, TypeError("x"))


# ---------------------------------------------------------------- records, renderers, checks


def make_report(tmp: Path | None = None) -> object:
    from dlcheck.profile.records import ProfileReport

    shape = LoaderShape("map", False, "pkg.DS", 1000, 64, None, torch_version="2.x")
    results = [fake_result(0, 900.0), fake_result(2, 1750.0), fake_result(4, 1760.0)]
    results.append(
        SettingResult(
            Setting(8, 64, prefetch_factor=2),
            ok=False,
            error_kind="worker_killed",
            error="worker killed",
            hint="OOM",
        )
    )
    results[0].baseline = True
    rep = ProfileReport(
        target="data.py:ds", shape=shape, machine={"cpu_model": "X"}, options={}, results=results
    )
    rep.recommendations = search.recommend(results, usable_cpus=2)
    return rep


def test_json_document_and_csv() -> None:
    from dlcheck.profile.render import CSV_COLUMNS, csv_text

    rep = make_report()
    doc = json.loads(json.dumps(rep.to_dict()))  # type: ignore[attr-defined]
    assert doc["schema"] == "dlcheck.profile/1"
    assert doc["recommended"]["num_workers"] == 2
    assert set(doc["recommended"]) >= {
        "num_workers", "batch_size", "pin_memory", "prefetch_factor",
        "persistent_workers", "samples_per_s", "reason",
    }  # fmt: skip
    assert doc["exit_code"] == 1  # one setting failed
    lines = csv_text(rep).splitlines()  # type: ignore[arg-type]
    assert lines[0].split(",") == CSV_COLUMNS and len(lines) == 5


def test_rich_rendering_golden_bits() -> None:
    from dlcheck.output import console

    buf = io.StringIO()
    console(file=buf, width=160).print(make_report())
    out = buf.getvalue()
    assert "batch size 64 · pin_memory=False, prefetch_factor=2" in out
    assert "→" in out and "yours" in out
    assert "samples/s by num_workers" in out and "█" in out
    assert "✗ workers=8 batch=64: worker killed" in out
    assert "recommended: num_workers=2 → 1,750 samples/s" in out
    assert "no CUDA" in out


def test_baseline_and_min_throughput_checks(tmp_path: Path) -> None:
    from dlcheck.errors import UsageError
    from dlcheck.profile.run import ProfileOptions, baseline_checks, ci_checks

    rep = make_report()
    base = rep.to_dict()  # type: ignore[attr-defined]
    base["recommended"]["samples_per_s"] = 3000.0
    base["machine"] = {"cpu_model": "Y"}
    path = tmp_path / "base.json"
    path.write_text(json.dumps(base))
    checks = baseline_checks(rep, str(path), 0.1)  # type: ignore[arg-type]
    assert [c.status for c in checks] == [Status.WARN, Status.FAIL]
    assert "cpu_model: 'Y' → 'X'" in checks[0].message and "regression" in checks[1].message
    ok = ci_checks(rep, ProfileOptions(min_throughput=100))  # type: ignore[arg-type]
    assert any(c.id == "min_throughput" and c.status is Status.PASS for c in ok)
    # An unmet --need warns: exit 0, unless --strict.
    rep.results = [r for r in rep.results if r.ok]  # type: ignore[attr-defined]
    rep.recommendations = search.recommend(rep.results, usable_cpus=2, need=1e9)  # type: ignore[attr-defined]
    rep.checks = ci_checks(rep, ProfileOptions(need=1e9))  # type: ignore[arg-type]
    assert [(c.id, c.status) for c in rep.checks] == [("need", Status.WARN)]
    assert rep.exit_code == 0  # type: ignore[attr-defined]
    rep.options["strict"] = True  # type: ignore[attr-defined]
    assert rep.exit_code == 1  # type: ignore[attr-defined]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(UsageError):
        baseline_checks(rep, str(bad), 0.1)  # type: ignore[arg-type]


def test_result_from_child_value_and_notes() -> None:
    s = Setting(4, 64, prefetch_factor=2)
    e = trace(10.0, 10, buffer=8)
    value = {
        "epochs": [{"started_s": 0.0, "times_s": list(e.times_s), "samples": list(e.samples),
                    "complete": False}],
        "peak_uss_bytes": 10, "peak_pss_bytes": 12, "peak_shm_bytes": 0, "error": None,
        "gpu": {"available": False, "reason": "no CUDA"},
    }  # fmt: skip
    r = result_from_value(s, value, wall_s=1.0, baseline=False)
    assert r.ok and r.samples_per_s == pytest.approx(640)
    assert any("pipeline depths" in n for n in r.notes)  # 10 steady batches < 3 x depth 8
    assert r.gpu is not None and not r.gpu.available


def test_fake_cuda_interface() -> None:
    import torch

    from dlcheck.cuda import FakeCuda, nbytes

    batch = [torch.zeros(4, 256, dtype=torch.float32), torch.zeros(4, dtype=torch.int64)]
    assert nbytes(batch) == 4 * 256 * 4 + 32
    # Nested batches (dicts, tuples, non-tensors) count every tensor once.
    nested = {"img": batch[0], "meta": ("name", 3, batch[1]), "none": None}
    assert nbytes(nested) == nbytes(batch)
    # The fake reports the bytes it was given, as the real device does.
    _, n = FakeCuda(gb_per_s=8.0).copy(nested, non_blocking=True)
    assert n == nbytes(batch)


def test_get_cuda_without_a_gpu_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlcheck.cuda import FakeCuda, get_cuda

    monkeypatch.delenv("DLCHECK_FAKE_CUDA", raising=False)
    assert get_cuda() is None  # no GPU here; never raises
    monkeypatch.setenv("DLCHECK_FAKE_CUDA", "5")
    fake = get_cuda()
    assert isinstance(fake, FakeCuda) and fake.gb_per_s == 5


def test_cli_usage_errors_exit_2() -> None:
    from typer.testing import CliRunner

    from dlcheck.cli import app

    runner = CliRunner()
    for args in (
        ["profile", "--workers", "two"],
        ["profile", "--pin-memory", "maybe"],
        ["profile", "--output", "x.txt"],
        ["profile", "--plot", "x.jpg"],
        ["profile", "--start-method", "thread"],
        ["profile", "--duration", "0"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)


def test_build_loader_keeps_the_users_settings() -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from dlcheck.profile.measure import build_loader

    ds = TensorDataset(torch.arange(100))
    gen = torch.Generator().manual_seed(1)

    def coll(b: list) -> list:
        return b

    user = DataLoader(
        ds, batch_size=10, shuffle=True, collate_fn=coll, drop_last=True, generator=gen, timeout=7
    )
    new = build_loader(user, Setting(2, 32, prefetch_factor=4, persistent_workers=True))
    assert new.batch_size == 32 and new.num_workers == 2 and new.prefetch_factor == 4
    assert new.persistent_workers and new.drop_last and new.timeout == 7
    assert new.collate_fn is coll and new.generator is gen and new.sampler is user.sampler
    nb = build_loader(DataLoader(ds, batch_size=None), Setting(0, None))
    assert nb.batch_size is None and nb.batch_sampler is None
    sharded = build_loader(ds, Setting(0, 8), shard=(1, 4))
    assert type(sharded.sampler).__name__ == "DistributedSampler" and len(sharded.sampler) == 25


def test_a_subclass_loader_is_named_and_its_figures_qualified() -> None:
    # Each setting is measured with a plain DataLoader: the note says the subclass's own
    # behaviour is not in the figures.
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from dlcheck.profile.measure import _shape
    from dlcheck.profile.run import ProfileOptions, build_space

    class EpochLoader(DataLoader):  # type: ignore[type-arg]
        pass

    data = TensorDataset(torch.zeros(8, 2))
    shape = LoaderShape.from_dict(_shape(EpochLoader(data, batch_size=4), None))
    assert shape.loader_type is not None and shape.loader_type.endswith("EpochLoader")
    _, notes = build_space(ProfileOptions(), shape)
    assert any("a DataLoader subclass" in n and "EpochLoader" in n for n in notes), notes
    plain = LoaderShape.from_dict(_shape(DataLoader(data, batch_size=4), None))
    assert plain.loader_type is None
    assert not any("subclass" in n for n in build_space(ProfileOptions(), plain)[1])


def test_replayed_stream_is_told_from_epochs_that_grow_with_the_workers() -> None:
    def with_epochs(w: int, *totals: int, complete: bool = True) -> SettingResult:
        r = fake_result(w, 1000.0)
        r.epochs = [
            EpochTrace(0.0, tuple(float(i) for i in range(t // 10)), (10,) * (t // 10), complete)
            for t in totals
        ]
        return r

    # Each worker replays the 2,000-sample stream: 2 workers 4,000 per epoch, 4 workers 8,000.
    replayed = [with_epochs(0, 2000, 2000), with_epochs(2, 4000, 4000), with_epochs(4, 8000)]
    note = search.replayed_stream(replayed)
    assert note is not None
    assert "2,000 samples with num_workers=0 and 8,000 with num_workers=4" in note
    # Sharded: the same epoch whatever the workers.
    sharded = [with_epochs(0, 2000), with_epochs(2, 2000), with_epochs(4, 2000)]
    assert search.replayed_stream(sharded) is None
    # 0 and 1 worker are one stream each: nothing to compare.
    assert search.replayed_stream([with_epochs(0, 2000), with_epochs(1, 2000)]) is None
    # An endless stream never completes an epoch; a failed setting does not count.
    endless = [with_epochs(0, 2000, complete=False), with_epochs(2, 4000, complete=False)]
    assert search.replayed_stream(endless) is None
    broken = with_epochs(2, 4000)
    broken.ok = False
    assert search.replayed_stream([with_epochs(0, 2000), broken]) is None
    # Partly growing (a stream that shards only some of its data) is not called replayed.
    assert search.replayed_stream([with_epochs(0, 2000), with_epochs(4, 3000)]) is None
