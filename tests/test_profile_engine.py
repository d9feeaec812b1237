"""The measurement engine (issue 9): whole-epoch ranking figure, bounded epochs, interleaved
repeats with measured between-run noise, intervals."""

from __future__ import annotations

import pytest

from dlcheck.profile import search, stats
from dlcheck.profile.records import EpochTrace, Setting, SettingResult
from dlcheck.profile.search import AdaptivePlanner, SweepSpace
from dlcheck.profile.sweep import result_from_value, run_sweep


def epoch(
    start: float, n: int, *, startup: float, per_batch: float, drain: float, capped: bool = False
) -> EpochTrace:
    """Workers start (``startup`` s), ``n`` batches at ``per_batch`` s, shutdown (``drain``)."""
    times = tuple(start + startup + i * per_batch for i in range(n))
    return EpochTrace(start, times, (64,) * n, True, times[-1] + drain, capped)


def test_the_ranking_figure_is_samples_over_whole_epochs_with_steady_beside_it() -> None:
    s = Setting(2, 64, prefetch_factor=2)
    epochs = []
    t = 0.0
    for _ in range(3):
        e = epoch(t, 40, startup=0.5, per_batch=0.05, drain=0.1)
        epochs.append(e)
        t = e.ended_s + 0.01  # type: ignore[operator]
    st = stats.training_rate(epochs, s.depth, s.num_workers)
    wall = 0.5 + 39 * 0.05 + 0.1
    assert st.basis == "epochs" and st.epochs_timed == 3 and st.reliable
    assert st.samples_per_s == pytest.approx(40 * 64 / wall)
    assert st.steady_samples_per_s == pytest.approx(64 / 0.05)
    assert st.samples_per_s < 0.8 * st.steady_samples_per_s  # restarts cost a real share


def test_bounded_epochs_spread_their_overhead_over_the_real_epoch() -> None:
    s = Setting(2, 64, prefetch_factor=2)
    epochs = [
        epoch(i * 10.0, 32, startup=0.5, per_batch=0.05, drain=0.1, capped=True) for i in range(3)
    ]
    real = 3200 * 64  # 100 times the bounded epoch
    st = stats.training_rate(epochs, s.depth, s.num_workers, real)
    assert st.basis == "epochs-extrapolated"
    steady = 64 / 0.05
    overhead = 0.5 + 31 * 0.05 + 0.1 - 32 * 64 / steady
    assert st.epoch_overhead_s == pytest.approx(overhead)
    assert st.samples_per_s == pytest.approx(real / (overhead + real / steady))
    assert 0.99 * steady < st.samples_per_s < steady


def test_one_whole_epoch_is_unreliable_and_never_recommended() -> None:
    s1, s2 = Setting(1, 64, prefetch_factor=2), Setting(2, 64, prefetch_factor=2)
    one = stats.training_rate(
        [epoch(0, 40, startup=0.1, per_batch=0.01, drain=0.0)], s2.depth, s2.num_workers
    )
    assert not one.reliable
    good = stats.training_rate(
        [epoch(i, 40, startup=0.1, per_batch=0.05, drain=0.0) for i in range(3)],
        s1.depth,
        s1.num_workers,
    )
    results = [SettingResult(s1, ok=True, stats=good), SettingResult(s2, ok=True, stats=one)]
    rec = search.recommend(results, usable_cpus=2)[0]
    assert rec.num_workers == 1  # the faster figure is marked unreliable


def test_child_traces_become_a_whole_epoch_result_with_notes() -> None:
    s = Setting(2, 64, prefetch_factor=2)
    value = {
        "epochs": [
            {
                "started_s": i * 10.0,
                "times_s": [i * 10.0 + 0.5 + k * 0.05 for k in range(64)],
                "samples": [64] * 64,
                "complete": True,
                "ended_s": i * 10.0 + 0.5 + 63 * 0.05 + 0.1,
                "capped": True,
            }
            for i in range(3)
        ],
        "real_epoch_samples": 100_000,
    }
    r = result_from_value(s, value, wall_s=5.0, baseline=False)
    assert r.ok and r.stats and r.stats.basis == "epochs-extrapolated"
    assert r.real_epoch_samples == 100_000
    assert any("epochs bounded at 64 batches" in n for n in r.notes)


def test_between_run_noise_and_intervals() -> None:
    assert stats.between_run_noise([[100.0], [50.0]]) is None
    noise = stats.between_run_noise([[90.0, 110.0], [190.0, 210.0]])
    assert noise == pytest.approx(((0.1**2 * 2 + 0.05**2 * 2) / 2) ** 0.5)
    lo, hi = stats.interval(100.0, 0.05)
    assert lo == pytest.approx(90.2) and hi == pytest.approx(109.8)
    assert stats.intervals_overlap(100, 0.05, 104.5, 0.05)
    assert not stats.intervals_overlap(100, 0.005, 104.5, 0.005)
    assert not stats.intervals_overlap(100, 0.5, 106, 0.5)  # never more than 5 % apart


def test_contenders_are_repeated_interleaved_and_their_spread_sets_the_noise() -> None:
    rates = {0: 300, 1: 500, 2: 1000, 4: 1050, 8: 980, 16: 900}
    wobble = iter([1.0] * 6 + [0.9, 1.1, 0.95, 1.05, 1.0, 1.0, 1.0, 1.0, 1.0])
    order: list[tuple[int, int]] = []

    def measure(s: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        order.append((s.num_workers, rnd))
        rate = rates[s.num_workers] * next(wobble)
        st = stats.Steady(rate, rate / 64, None, 0.005, 5, 100, 1.0)
        return SettingResult(s, ok=True, stats=st)

    space = SweepSpace(batch_sizes=[64], usable_cpus=2)
    results = run_sweep(AdaptivePlanner(space), measure).results
    repeats = [o for o in order if o[1]]
    # Round 1 repeats every contender once, cheapest first, before round 2 starts.
    assert repeats[:3] == [(2, 1), (4, 1), (8, 1)]
    est = search.estimates(results)
    between = stats.between_run_noise(
        [[r.samples_per_s or 0.0 for r in e.results] for e in est.values()]
    )
    assert between is not None and between > 0.03
    e2 = est[Setting(2, 64, prefetch_factor=2).key()]
    assert e2.rel_noise == pytest.approx(between / len(e2.results) ** 0.5)
    search.attach_intervals(results)
    assert all(r.interval is not None for r in results)


def test_a_huge_dataset_gets_bounded_epochs() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    from dlcheck.profile.measure import build_loader, epoch_cap

    ds = TensorDataset(torch.zeros(100_000, 1))
    s = Setting(2, 64, prefetch_factor=2)
    cap = epoch_cap(s)
    assert len(build_loader(ds, s, epoch_batches=cap)) == cap
    own = DataLoader(ds, batch_size=32, shuffle=True)
    assert len(build_loader(own, s, epoch_batches=cap)) == cap
    indices = list(iter(build_loader(ds, s, epoch_batches=cap).sampler))
    assert len(indices) == len(set(indices)) == cap * 64


def _costed(
    w: int, rate: float, cpu_ms: float, main_busy: float = 0.3, others: float | None = None
) -> SettingResult:
    from dlcheck.profile.records import CostFigures

    st = stats.Steady(rate, rate / 64, None, 0.01, 5, 100, 1.0)
    cost = CostFigures(cpu_ms if w else None, 2.0, main_busy, 600_000, others)
    return SettingResult(
        Setting(w, 64, prefetch_factor=2).normalised(), ok=True, stats=st, cost=cost
    )


def test_the_cost_figures_name_the_bottleneck_with_evidence() -> None:
    cpu = [_costed(0, 600, 0, 0.99), _costed(1, 900, 1.0), _costed(2, 1800, 1.0)]
    cpu += [_costed(4, 1850, 1.0)]
    rec = search.recommend(cpu, usable_cpus=2)[0]
    assert rec.reason.startswith("CPU-bound: 2 workers give 1,800/s")
    assert "workers busy 1.8 of 2 usable cores; 1.00 ms CPU per sample" in rec.reason
    wait = [_costed(w, 250.0 * max(w, 1), 0.1) for w in (0, 1, 2, 4, 8, 16)]
    wait += [_costed(32, 4050, 0.1)]
    rec = search.recommend(wait, usable_cpus=2)[0]
    assert rec.reason.startswith("wait-bound") and "workers mostly idle" in rec.reason


def test_cpu_bound_work_skips_worker_counts_that_cannot_win() -> None:
    rates = {0: 600.0, 1: 900.0, 2: 1800.0, 4: 1850.0, 8: 1900.0, 16: 1950.0, 32: 2000.0}

    def measure(s: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        return _costed(s.num_workers, rates[s.num_workers], 1.0)

    planner = AdaptivePlanner(SweepSpace(batch_sizes=[64], usable_cpus=2))
    results = run_sweep(planner, measure).results
    assert max(r.setting.num_workers for r in results) == 4
    assert planner.notes and planner.notes[0].startswith("8+ workers skipped: CPU-bound")


def test_cores_other_processes_take_count_against_the_usable_ones() -> None:
    """On a machine another job keeps one core busy, 1 ms/sample work at 2 workers gets one
    core: CPU-bound on what is left, not "mostly idle", so the search does not escalate to
    worker counts that only win a larger share from the other job."""
    # Each doubling wins the loader a larger share from the other job (CFS shares per thread).
    rates = {0: 500.0, 1: 700.0, 2: 1000.0, 4: 1150.0, 8: 1300.0, 16: 1450.0, 32: 1600.0}

    def measure(s: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        w = s.num_workers
        return _costed(w, rates[w], 1.0, 0.2, others=max(0.3, 1.0 - 0.02 * w))

    planner = AdaptivePlanner(SweepSpace(batch_sizes=[64], usable_cpus=2))
    results = run_sweep(planner, measure).results
    assert max(r.setting.num_workers for r in results) == 4
    assert planner.notes and planner.notes[0].startswith("8+ workers skipped: CPU-bound")
    rec = search.recommend(results, usable_cpus=2)[0]
    assert rec.reason == (
        "CPU-bound: 4 workers give 1,150/s; workers busy 1.2 of 2 usable cores while other "
        "processes took 0.9; 1.00 ms CPU per sample"
    )

    # Without the others' figure the same curve reads as idle workers and doubles on.
    def unaware(s: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        return _costed(s.num_workers, rates[s.num_workers], 1.0, 0.2)

    planner = AdaptivePlanner(SweepSpace(batch_sizes=[64], usable_cpus=2))
    assert max(r.setting.num_workers for r in run_sweep(planner, unaware).results) > 4


def test_cost_figures_count_what_other_processes_used() -> None:
    from dlcheck.profile.sweep import cost_figures

    raw = {
        "worker_cpu_s": 2.0,
        "main_cpu_s": 0.5,
        "host_busy_s": 4.5,
        "samples": 2000,
        "batches": 32,
        "wall_s": 2.0,
    }
    c = cost_figures(raw, Setting(2, 64).normalised())
    assert c is not None and c.others_busy == pytest.approx(1.0)
    assert (
        cost_figures({**raw, "host_busy_s": None}, Setting(2, 64).normalised()).others_busy is None
    )
    # Counters read a moment apart can make ours exceed the host's: never negative.
    assert cost_figures({**raw, "host_busy_s": 2.0}, Setting(2, 64).normalised()).others_busy == 0


def test_costly_restarts_get_persistent_workers_measured_and_the_gain_said() -> None:
    rates = {0: 300.0, 1: 600.0, 2: 1000.0, 4: 1010.0, 8: 990.0, 16: 980.0}

    def measure(s: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        rate = 1900.0 if s.persistent_workers else rates[s.num_workers]
        steady = 2000.0 if s.num_workers else rate
        st = stats.Steady(
            rate, rate / 64, None, 0.005, 3, 100, 1.0, basis="epochs", steady_samples_per_s=steady
        )
        return SettingResult(s, ok=True, stats=st)

    results = run_sweep(AdaptivePlanner(SweepSpace(batch_sizes=[64], usable_cpus=2)), measure)
    persistent = [r for r in results.results if r.setting.persistent_workers]
    assert persistent and persistent[0].setting.num_workers == 2
    rec = search.recommend(results.results, usable_cpus=2)[0]
    assert rec.persistent_workers  # far outside the other's interval
    assert "persistent_workers=True: 1,900/s vs 1,000/s (+90%" in rec.reason
