"""Which settings to measure next, and which one to recommend (pure: no processes, no clock).

The adaptive planner measures 0 and 1 workers, then doubles (2, 4, 8, ... up to 64) while
throughput still rises beyond measured noise, stops after two steps without a real rise, and
then re-measures only where the recommendation is uncertain. The recommendation is the cheapest
setting (fewest workers, then least memory) within measured noise of the best; with ``need``,
the cheapest setting that meets it; with ``--step``, the cheapest setting whose training loop
waits for data less than 5 % of its time (else the one that waits least).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from dlcheck.profile.records import CostFigures, Recommendation, Setting, SettingResult
from dlcheck.profile.stats import (
    between_run_noise,
    interval,
    intervals_overlap,
    is_significant,
    is_uncertain,
    median,
    training_rate,
)
from dlcheck.profile.step import choose_by_share, loop_figures, share_reason

#: Doubling sequence of the adaptive worker search.
MAX_WORKERS = 64
#: Steps in a row without a significant rise before the doubling stops.
PATIENCE = 2
#: Stop after one flat step when far below the best (e.g. tiny samples, 0 workers best).
FAR_BELOW = 0.7
#: Repeat runs spent on close calls, at most, per batch size.
MAX_REPEATS = 4
#: After the search, settings this close to the best are contenders (repeated, interleaved).
CONTENDER_GAP = 0.25
MAX_CONTENDERS = 3
#: Relative run-to-run noise assumed at least (the windows of one run cannot see it).
BETWEEN_RUNS = 0.015


@dataclass(frozen=True)
class Estimate:
    """All measurements of one setting, pooled."""

    setting: Setting
    results: tuple[SettingResult, ...]
    samples_per_s: float | None
    rel_noise: float | None
    peak_uss_bytes: int | None
    reliable: bool = True  # False: too little measured to recommend from
    loop: Any = None  # --step: the loop's figures over all runs (dlcheck.profile.step)

    @property
    def ok(self) -> bool:
        return self.samples_per_s is not None

    @property
    def cost(self) -> CostFigures | None:
        """The cost figures of the latest run that has them."""
        costs = [r.cost for r in self.results if r.ok and r.cost is not None]
        return costs[-1] if costs else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """About 95 % of where the setting's figure lies (between-run noise included)."""
        return interval(self.samples_per_s, self.rel_noise) if self.samples_per_s else None


def estimates(results: list[SettingResult]) -> dict[tuple[object, ...], Estimate]:
    """Pool repeated measurements of the same setting (their epochs/windows are combined).

    Each setting's noise is at least the between-run noise measured from the settings run
    more than once (interleaved repeats of the contenders), over the square root of its runs;
    before any repeat, BETWEEN_RUNS stands in for it.
    """
    groups: dict[tuple[object, ...], list[SettingResult]] = {}
    for r in results:
        groups.setdefault(r.setting.key(), []).append(r)
    between = between_run_noise(
        [[r.samples_per_s or 0.0 for r in rs if r.ok] for rs in groups.values()]
    )
    out = {}
    for key, rs in groups.items():
        good = [r for r in rs if r.ok and r.stats and r.stats.samples_per_s]
        rate = noise = None
        reliable = any(r.stats.reliable for r in good)  # type: ignore[union-attr]
        if len(good) == 1:
            rate, noise = good[0].stats.samples_per_s, good[0].stats.rel_noise  # type: ignore[union-attr]
        elif good:
            s = rs[0].setting
            pooled = training_rate(
                [e for r in good for e in r.epochs],
                s.depth,
                s.num_workers,
                good[0].real_epoch_samples,
            )
            rate, noise = pooled.samples_per_s, pooled.rel_noise
            reliable = reliable or pooled.reliable
            if rate is None:  # no raw traces to pool (or too short): combine the figures
                rate = median([r.stats.samples_per_s for r in good])  # type: ignore[misc,union-attr]
                noises = [r.stats.rel_noise for r in good if r.stats.rel_noise is not None]  # type: ignore[union-attr]
                noise = median(noises) / math.sqrt(len(good)) if noises else None
        if rate is not None:
            # Windows and epochs of one run miss run-to-run drift (other load, frequency).
            floor = (BETWEEN_RUNS if between is None else between) / math.sqrt(len(good))
            noise = max(noise or 0.0, floor)
        uss = max((r.peak_uss_bytes or 0 for r in good), default=0) or None
        loop = loop_figures([e for r in good for e in r.loop_epochs])
        out[key] = Estimate(rs[0].setting, tuple(rs), rate, noise, uss, reliable, loop)
    return out


def cost(e: Estimate) -> tuple[float, ...]:
    """Cheaper first: fewer workers, no pinning, smaller prefetch, non-persistent, less memory."""
    s = e.setting
    return (
        s.num_workers,
        int(s.pin_memory),
        s.prefetch_factor or 0,
        int(s.persistent_workers),
        float(e.peak_uss_bytes or 0),
    )


class Planner(Protocol):
    def next(self, results: list[SettingResult]) -> list[tuple[Setting, int]]:
        """Settings still to measure (with their repeat round); empty when done."""
        ...


@dataclass
class SweepSpace:
    """What the user asked to sweep (lists are tried in the order given)."""

    batch_sizes: list[int | None]
    pin_memory: list[bool] = field(default_factory=lambda: [False])
    prefetch: list[int] = field(default_factory=lambda: [2])
    persistent: list[bool] = field(default_factory=lambda: [False])
    start_method: str | None = None
    workers: list[int] | None = None  # None: adaptive
    need: float | None = None
    baseline: Setting | None = None
    max_workers: int = MAX_WORKERS
    refine_rounds: int = 2
    usable_cpus: int = 1

    def setting(self, w: int, bs: int | None, pin: bool, pf: int, persistent: bool) -> Setting:
        return Setting(w, bs, pin, pf, persistent, self.start_method).normalised()


def _measured(results: list[SettingResult]) -> set[tuple[tuple[object, ...], int]]:
    return {(r.setting.key(), r.round) for r in results}


class FixedPlanner:
    """Every combination of the given lists (the baseline first)."""

    def __init__(self, space: SweepSpace):
        workers = space.workers or [0]
        combos = itertools.product(
            space.batch_sizes, workers, space.pin_memory, space.prefetch, space.persistent
        )
        todo: list[Setting] = [space.baseline] if space.baseline else []
        for bs, w, pin, pf, per in combos:
            s = space.setting(w, bs, pin, pf, per)
            if s not in todo:
                todo.append(s)
        self.todo = todo

    def next(self, results: list[SettingResult]) -> list[tuple[Setting, int]]:
        done = _measured(results)
        return [(s, 0) for s in self.todo if (s.key(), 0) not in done]


def worker_sequence(max_workers: int = MAX_WORKERS) -> list[int]:
    seq, w = [0, 1], 2
    while w <= max_workers:
        seq.append(w)
        w *= 2
    return seq


def doubling_done(
    rates: list[tuple[int, float | None, float | None]],
    need: float | None = None,
    usable_cpus: int = 1,
) -> bool:
    """Stop adding workers? ``rates``: (workers, samples/s or None if failed, noise) in order."""
    if need is not None and any(r is not None and r >= need for _, r, _ in rates):
        return True
    ok = [r for _, r, _ in rates if r is not None]
    best = max(ok, default=0.0)
    flat = 0
    for (_, r0, n0), (w1, r1, n1) in itertools.pairwise(rates):
        if w1 < 2:
            continue
        rising = r1 is not None and r0 is not None and r1 > r0 and is_significant(r1, n1, r0, n0)
        if r1 is not None and r0 is None:
            rising = True
        flat = 0 if rising else flat + 1
    if flat >= PATIENCE:
        return True
    # One flat step suffices far below the best, but only once the cores are covered: a
    # noisy dip at 2 workers must not end a CPU-bound search.
    last_w, last, _ = rates[-1] if rates else (0, None, None)
    covered = last_w >= 2 * usable_cpus
    return flat >= 1 and covered and (last is None or last < FAR_BELOW * best)


class AdaptivePlanner:
    """Double the workers while throughput rises; refine where the answer is uncertain."""

    def __init__(self, space: SweepSpace):
        self.space = space
        self.seq = worker_sequence(space.max_workers)
        self.primary = (space.pin_memory[0], space.prefetch[0], space.persistent[0])
        self._skipped: dict[tuple[object, int], str] = {}  # (batch size, workers) → why

    @property
    def notes(self) -> list[str]:
        """Settings skipped by the cost model, and why (the latest evidence for each)."""
        return list(self._skipped.values())

    def _cannot_win(self, w: int, measured: list[Estimate]) -> str | None:
        """Why ``w`` workers cannot beat what was measured, from the cost figures (or None).

        CPU-bound work that already keeps the usable cores busy gains nothing from more
        workers than twice the cores (unless the workers wait, which the figures would show).
        """
        cores = self.space.usable_cpus
        if w <= 2 * cores:
            return None
        for e in measured:
            found = bottleneck(e, cores)
            if found and found[0] == "cpu" and e.setting.num_workers >= cores:
                return (
                    f"{w}+ workers skipped: CPU-bound at {e.setting.num_workers} workers "
                    f"({found[1]}), so more workers cannot add cores"
                )
        return None

    def _primary(self, w: int, bs: int | None) -> Setting:
        pin, pf, per = self.primary
        return self.space.setting(w, bs, pin, pf, per)

    def next(self, results: list[SettingResult]) -> list[tuple[Setting, int]]:
        space = self.space
        done = _measured(results)
        if space.baseline and (space.baseline.key(), 0) not in done:
            return [(space.baseline, 0)]
        est = estimates(results)
        # 1. The doubling search, per batch size.
        for bs in space.batch_sizes:
            rates: list[tuple[int, float | None, float | None]] = []
            measured: list[Estimate] = []
            for w in self.seq:
                s = self._primary(w, bs)
                e = est.get(s.key())
                if e is None:
                    if rates and doubling_done(rates, space.need, space.usable_cpus):
                        break
                    why = self._cannot_win(w, measured) if space.need is None else None
                    if why:
                        self._skipped[(bs, w)] = why
                        break
                    self._skipped.pop((bs, w), None)
                    return [(s, 0)]
                rates.append((w, e.samples_per_s, e.rel_noise))
                if e.ok:
                    measured.append(e)
        # 2. Spend repeats where the recommendation could flip.
        for bs in space.batch_sizes:
            for s, rnd in self._uncertain(bs, est, results):
                if (s.key(), rnd) not in done:
                    return [(s, rnd)]
        # 3. The other pin/prefetch/persistence values, at the chosen worker count.
        for bs in space.batch_sizes:
            rec = choose(list(est.values()), bs, space.need)
            if rec is None or (rec.setting.num_workers == 0 and len(space.pin_memory) == 1):
                continue
            w = rec.setting.num_workers
            for pin, pf, per in itertools.product(
                space.pin_memory, space.prefetch, space.persistent
            ):
                s = space.setting(w, bs, pin, pf, per)
                if (s.key(), 0) not in done:
                    return [(s, 0)]
            # 4. Restarts cost a real share of each epoch: what would persistent workers gain?
            if w and restart_share(rec) >= RESTART_SHARE and True not in space.persistent:
                r = rec.setting
                s = space.setting(w, bs, r.pin_memory, r.prefetch_factor or 2, True)
                if (s.key(), 0) not in done:
                    return [(s, 0)]
        return []

    def _uncertain(
        self, bs: int | None, est: dict[tuple[object, ...], Estimate], results: list[SettingResult]
    ) -> list[tuple[Setting, int]]:
        """Repeat the contenders in fresh children, interleaved (A B C, A B C), so drift hits
        them all alike and their spread measures the between-run noise."""
        if self.space.need is not None:
            return []
        pin, _, per = self.primary

        def primary(s: Setting) -> bool:
            return s.batch_size == bs and (s.pin_memory, s.persistent_workers) == (pin, per)

        # Contenders are fixed by the first runs, so every round repeats the same settings.
        first = estimates([r for r in results if r.round == 0 and primary(r.setting)])
        order = contenders([e for e in first.values() if e.ok])
        if len(order) < 2:
            return []
        done = _measured(results)
        for rnd in range(1, self.space.refine_rounds + 1):
            if rnd > 1 and not self._still_open(bs, est, primary):
                break
            for e in order:
                if (e.setting.key(), rnd) not in done:
                    return [(e.setting, rnd)]
        return []

    def _still_open(
        self, bs: int | None, est: dict[tuple[object, ...], Estimate], primary: Any
    ) -> bool:
        group = [e for e in est.values() if e.ok and primary(e.setting)]
        rec = choose(group, bs, None)
        if rec is None:
            return False
        best = max(group, key=lambda e: e.samples_per_s or 0.0)
        return rec is not best or is_uncertain(
            rec.samples_per_s or 0.0, rec.rel_noise, best.samples_per_s or 0.0, best.rel_noise
        )


def contenders(group: list[Estimate]) -> list[Estimate]:
    """The settings worth repeating, cheapest first: the best, and up to MAX_CONTENDERS - 1
    others within CONTENDER_GAP of it (always the cheapest of those)."""
    ok = [e for e in group if e.ok and e.samples_per_s]
    if not ok:
        return []
    best = max(ok, key=lambda e: e.samples_per_s or 0.0)
    near = [
        e
        for e in ok
        if e is not best
        and (e.samples_per_s or 0.0) >= (1 - CONTENDER_GAP) * (best.samples_per_s or 0.0)
    ]
    near.sort(key=lambda e: -(e.samples_per_s or 0.0))
    picked = near[: MAX_CONTENDERS - 1]
    cheapest = min(near, key=cost) if near else None
    if cheapest is not None and cheapest not in picked:
        picked[-1] = cheapest
    return sorted([best, *picked], key=cost)


def choose(group: list[Estimate], bs: int | None, need: float | None) -> Estimate | None:
    """The cheapest setting within noise of the best at this batch size (or meeting ``need``)."""
    ok = [e for e in group if e.ok and e.setting.batch_size == bs]
    # Never recommend from a figure marked unreliable, while a reliable one exists.
    ok = [e for e in ok if e.reliable] or ok
    if not ok:
        return None
    best = max(ok, key=lambda e: e.samples_per_s or 0.0)
    if need is not None:
        meeting = [e for e in ok if (e.samples_per_s or 0.0) >= need]
        return min(meeting, key=cost) if meeting else best
    b = best.samples_per_s or 0.0
    close = [
        e for e in ok if intervals_overlap(e.samples_per_s or 0.0, e.rel_noise, b, best.rel_noise)
    ]
    return min(close, key=cost)


def _fmt(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}/s"


def dataloader_line(s: Setting, *, own_loader: bool, own_batching: str | None) -> str:
    """A copy-paste DataLoader(...) call for the recommended setting."""
    args = ["dataset"]
    if own_loader:
        args.append("...")  # the user's own sampler/collate_fn/... stay as they are
    if own_batching is None and s.batch_size is not None:
        args.append(f"batch_size={s.batch_size}")
        if not own_loader:
            args.append("shuffle=True")
    args.append(f"num_workers={s.num_workers}")
    args.append(f"pin_memory={s.pin_memory}")
    if s.num_workers:
        args.append(f"prefetch_factor={s.prefetch_factor or 2}")
        args.append(f"persistent_workers={s.persistent_workers}")
        if s.start_method:
            args.append(f"multiprocessing_context={s.start_method!r}")
    return f"DataLoader({', '.join(args)})"


#: Restarts taking this share of each epoch get persistent_workers=True measured too.
RESTART_SHARE = 0.1


def restart_share(e: Estimate) -> float:
    """Share of each epoch lost to starting and draining workers (ranking vs steady figure)."""
    sts = [r.stats for r in e.results if r.ok and r.stats]
    steady = [st.steady_samples_per_s for st in sts if st.steady_samples_per_s]
    if not steady or not e.samples_per_s or not any(st.basis.startswith("epochs") for st in sts):
        return 0.0
    return max(0.0, 1 - e.samples_per_s / median(steady))


def persistence_gain(rec: Estimate, group: list[Estimate]) -> str | None:
    """What persistent_workers=True gains over the recommendation, when both were measured."""
    s = rec.setting
    if not s.num_workers:
        return None
    twin = next(
        (
            e
            for e in group
            if e.ok
            and e.setting.persistent_workers != s.persistent_workers
            and (e.setting.num_workers, e.setting.pin_memory, e.setting.prefetch_factor)
            == (s.num_workers, s.pin_memory, s.prefetch_factor)
        ),
        None,
    )
    if twin is None or not twin.samples_per_s or not rec.samples_per_s:
        return None
    on, off = (twin, rec) if twin.setting.persistent_workers else (rec, twin)
    gain = (on.samples_per_s or 0.0) / (off.samples_per_s or 1.0) - 1
    return (
        f"persistent_workers=True: {_fmt(on.samples_per_s)} vs {_fmt(off.samples_per_s)} "
        f"({gain:+.0%}; restarts cost {restart_share(off):.0%} of each epoch)"
    )


#: Workers busy on at least this share of the usable cores: CPU-bound.
CPU_BOUND_SHARE = 0.8
#: Workers busy on less than this share of the cores they could use: mostly waiting.
WAIT_SHARE = 0.5
#: The main process busy on at least this share of a core: it is the bottleneck.
MAIN_BOUND = 0.85
#: Cores the loader is assumed to have at least, however busy the machine.
MIN_FREE_CORES = 0.5
#: Other processes' load worth naming in the evidence (cores).
OTHERS_SHOWN = 0.25


def bottleneck(e: Estimate, usable_cpus: int) -> tuple[str, str] | None:
    """(kind, evidence) from the cost figures: cpu, wait or main; None without figures."""
    c = e.cost
    if c is None:
        return None
    w = e.setting.num_workers
    cores = f"{usable_cpus} usable core{'s' if usable_cpus != 1 else ''}"
    main = ""
    if c.main_cpu_ms_per_batch is not None:
        size = ""
        if c.batch_bytes:
            b = c.batch_bytes
            size = (
                f", {b / 1e6:.1f} MB per batch" if b >= 10**5 else f", {b / 1e3:.0f} KB per batch"
            )
        main = f"main process {c.main_cpu_ms_per_batch:.1f} ms CPU per batch{size}"
    if w == 0:
        busy = c.main_busy or 0.0
        kind = "main" if busy >= MAIN_BOUND else "wait"
        return kind, f"main process busy {busy:.2f} of a core; {main}" if main else ""
    busy_cores = c.workers_busy_cores(e.samples_per_s)
    if busy_cores is None:
        return None
    per = f"{c.worker_cpu_ms_per_sample:.2f} ms CPU per sample"
    # Cores other processes kept busy were not the loader's to use: starved workers look idle,
    # and more of them only win a larger share from the others, which a training run on a
    # quieter machine would not see.
    others = c.others_busy or 0.0
    free = max(MIN_FREE_CORES, usable_cpus - others)
    taken = f" while other processes took {others:.1f}" if others >= OTHERS_SHOWN else ""
    if busy_cores >= CPU_BOUND_SHARE * min(w, free):
        return "cpu", f"workers busy {busy_cores:.1f} of {cores}{taken}; {per}"
    if (c.main_busy or 0.0) >= MAIN_BOUND:
        return "main", f"main process busy {c.main_busy:.2f} of a core ({main}); workers {per}"
    # Mostly idle for their number: each worker spends most of its time waiting.
    if busy_cores < WAIT_SHARE * w:
        return "wait", f"workers mostly idle: {busy_cores:.1f} cores busy across {w} workers; {per}"
    return None


def reason(
    rec: Estimate,
    group: list[Estimate],
    *,
    usable_cpus: int,
    need: float | None,
    max_workers: int = MAX_WORKERS,
) -> str:
    """One line saying why this setting (pure; shown under the table and in the JSON)."""
    text = _curve_reason(rec, group, usable_cpus=usable_cpus, need=need, max_workers=max_workers)
    found = bottleneck(rec, usable_cpus) if need is None else None
    if not found or not found[1]:
        return text
    kind, evidence = found
    w = rec.setting.num_workers
    if w and text.startswith(("CPU-bound", "I/O- or wait-bound")):
        # The cost figures, not the curve's shape, name the bottleneck.
        within = text[text.index(" (", text.index(")")) :] if "within noise" in text else ""
        head = {
            "cpu": "CPU-bound",
            "wait": "wait-bound (I/O, sleeps, remote reads)",
            "main": "main-process/IPC-bound",
        }[kind]
        return f"{head}: {w} workers give {_fmt(rec.samples_per_s)}{within}; {evidence}"
    return f"{text}; {evidence}"


def _curve_reason(
    rec: Estimate,
    group: list[Estimate],
    *,
    usable_cpus: int,
    need: float | None,
    max_workers: int = MAX_WORKERS,
) -> str:
    ok = [e for e in group if e.ok]
    best = max(ok, key=lambda e: e.samples_per_s or 0.0)
    w = rec.setting.num_workers
    rate = rec.samples_per_s
    cores = f"{usable_cpus} usable core{'s' if usable_cpus != 1 else ''}"
    if need is not None:
        if (rate or 0.0) >= need:
            return (
                f"cheapest setting that meets --need {need:,.0f}/s: {w} workers give {_fmt(rate)}"
            )
        return (
            f"no setting reaches --need {need:,.0f}/s; the best is {_fmt(best.samples_per_s)} "
            f"with {best.setting.num_workers} workers: data loading will limit training"
        )
    within = ""
    if best is not rec:
        within = (
            f" ({best.setting.num_workers} workers measured {_fmt(best.samples_per_s)}, "
            "within noise)"
        )
    if w == 0:
        multi = [e for e in ok if e.setting.num_workers > 0]
        top = max((e.samples_per_s or 0.0 for e in multi), default=None)
        if top:
            return (
                f"loading in the main process is fastest: worker IPC costs more than it saves "
                f"({_fmt(rate)} with 0 workers vs {_fmt(top)} at best with workers){within}"
            )
        return f"0 workers: {_fmt(rate)}{within}"
    widest = max(e.setting.num_workers for e in ok)
    if w >= widest and w >= max_workers:
        return (
            f"still rising at {w} workers (the most tried): wait-bound; try "
            f"--workers {w},{w * 3 // 2},{w * 2} to look further"
        )
    if w > 2 * usable_cpus:
        return (
            f"I/O- or wait-bound: throughput keeps rising past the {cores}, up to {w} workers "
            f"({_fmt(rate)}){within}"
        )
    return f"CPU-bound: saturates the {cores} at {w} workers ({_fmt(rate)}){within}"


def recommend(
    results: list[SettingResult],
    *,
    usable_cpus: int,
    need: float | None = None,
    own_loader: bool = False,
    own_batching: str | None = None,
    max_workers: int = MAX_WORKERS,
) -> list[Recommendation]:
    """One recommendation per batch size measured (in the order first measured)."""
    est = list(estimates(results).values())
    sizes: list[int | None] = []
    for r in results:
        if r.setting.batch_size not in sizes:
            sizes.append(r.setting.batch_size)
    out = []
    for bs in sizes:
        group = [e for e in est if e.setting.batch_size == bs and e.ok]
        # Figures marked unreliable neither win nor serve as the best to compare with.
        group = [e for e in group if e.reliable] or group
        # With --step the loop decides: the cheapest setting it does not wait on.
        by_share = choose_by_share(group, cost)
        rec = by_share or choose(group, bs, need)
        if rec is None:
            continue
        best = max(group, key=lambda e: e.samples_per_s or 0.0)
        s = rec.setting
        why = (
            share_reason(rec, group)
            if by_share is not None
            else _with_persistence(
                reason(rec, group, usable_cpus=usable_cpus, need=need, max_workers=max_workers),
                persistence_gain(rec, group),
            )
        )
        out.append(
            Recommendation(
                num_workers=s.num_workers,
                batch_size=s.batch_size,
                pin_memory=s.pin_memory,
                prefetch_factor=s.prefetch_factor,
                persistent_workers=s.persistent_workers,
                samples_per_s=rec.samples_per_s,
                reason=why,
                dataloader=dataloader_line(s, own_loader=own_loader, own_batching=own_batching),
                best_samples_per_s=best.samples_per_s,
                meets_need=None if need is None else (rec.samples_per_s or 0.0) >= need,
                interval=rec.interval,
                best_interval=best.interval,
                input_bound=rec.loop.input_bound if rec.loop else None,
                tier=rec.loop.tier if rec.loop else None,
            )
        )
    return out


def _with_persistence(text: str, gain: str | None) -> str:
    return f"{text}; {gain}" if gain else text


def attach_intervals(results: list[SettingResult]) -> None:
    """Give every result the interval of its setting's pooled estimate (for the table/JSON)."""
    est = estimates(results)
    for r in results:
        e = est.get(r.setting.key())
        r.interval = e.interval if e is not None and r.ok else None


def replayed_stream(results: list[SettingResult]) -> str | None:
    """An iterable dataset whose every worker iterates the whole stream, or None.

    Its complete epochs grow with the number of workers (2 workers: twice the samples of the
    main process alone), so the samples/s of settings with workers count each sample once per
    worker, unless the repeats are intended (a random synthetic stream). Judged from complete
    epochs only: an endless stream never ends one, and a sharded stream's epochs stay the same.
    """
    totals: dict[int, list[int]] = {}
    for r in results:
        if r.ok:
            done = [sum(e.samples) for e in r.epochs if e.complete and not e.capped]
            totals.setdefault(r.setting.num_workers, []).extend(done)
    typical = {w: sorted(t)[len(t) // 2] for w, t in totals.items() if t}
    if len({max(1, w) for w in typical}) < 2:
        return None  # one stream count only: nothing to compare
    lo, hi = min(typical), max(typical)
    per_stream = typical[lo] / max(1, lo)
    # Every setting must fit "each worker delivers a whole epoch" within 10 %; a sharded
    # stream's constant epochs miss it by 2× or more.
    if per_stream <= 0 or any(
        abs(total / (max(1, w) * per_stream) - 1) > 0.1 for w, total in typical.items()
    ):
        return None
    return (
        f"every worker iterates the whole stream: an epoch delivers {typical[lo]:,} samples "
        f"with num_workers={lo} and {typical[hi]:,} with num_workers={hi}. Unless the repeats "
        "are intended (random synthetic data), the figures with workers count each sample "
        "once per worker: shard the stream in __iter__ (get_worker_info()); `dlcheck doctor` "
        "checks for duplicates"
    )
