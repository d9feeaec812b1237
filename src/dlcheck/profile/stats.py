"""Statistics derived from raw per-batch arrival times (pure functions, no torch).

The steady state of a setting with W workers and prefetch factor P starts only after the
W x P batches prepared during start-up have been consumed: a window that includes them
measures the buffer, not the machine. It ends before the last W batches of an epoch, where
workers run out of indices and the pipeline drains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from dlcheck.profile.records import EpochTrace, Steady

#: How many pipeline depths a steady window should span for a trustworthy rate.
DEPTHS_PER_WINDOW = 3
#: Smallest number of steady batches worth computing statistics from.
MIN_STEADY_BATCHES = 12
MAX_WINDOWS = 10
#: Scale factors: MAD → standard deviation, and the median's extra standard error.
_MAD_TO_SD = 1.4826
_MEDIAN_SE = 1.2533


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of nothing")
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        raise ValueError("percentile of nothing")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def mad(values: Sequence[float]) -> float:
    m = median(values)
    return median([abs(v - m) for v in values])


def warmup_batches(depth: int) -> int:
    """Batches to discard after the first one: the start-up buffer (at least one batch)."""
    return max(1, depth)


def steady_intervals(epoch: EpochTrace, depth: int, num_workers: int) -> list[tuple[float, int]]:
    """(seconds, samples) per batch that arrived in the steady state of this epoch."""
    times, samples = epoch.times_s, epoch.samples
    start = 1 + warmup_batches(depth)
    end = len(times) - (num_workers if epoch.complete else 0)
    return [(times[i] - times[i - 1], samples[i]) for i in range(start, end) if i >= 1]


def target_batches(depth: int, num_workers: int) -> int:
    """Steady batches a window needs to span several pipeline depths."""
    return max(MIN_STEADY_BATCHES, DEPTHS_PER_WINDOW * max(depth, 2 * num_workers))


def _windows(runs: list[list[tuple[float, int]]], num_workers: int) -> list[float]:
    total = sum(len(r) for r in runs)
    size = max(2 * num_workers, 4, math.ceil(total / MAX_WINDOWS))
    rates = []
    for run in runs:
        chunks = [run[i : i + size] for i in range(0, len(run), size)]
        if len(chunks) > 1 and len(chunks[-1]) < size / 2:
            tail = chunks.pop()
            chunks[-1] = chunks[-1] + tail
        for chunk in chunks:
            dt = sum(d for d, _ in chunk)
            if dt > 0 and len(chunk) >= min(size, 4) / 2:
                rates.append(sum(n for _, n in chunk) / dt)
    return rates


def steady_stats(epochs: Iterable[EpochTrace], depth: int, num_workers: int) -> Steady:
    """Steady-state rate (median over windows), spread, latency percentiles and stalls."""
    epochs = list(epochs)
    runs = [steady_intervals(e, depth, num_workers) for e in epochs]
    runs = [r for r in runs if r]
    flat = [x for r in runs for x in r]
    first = epochs[0].times_s[0] - epochs[0].started_s if epochs and epochs[0].times_s else None
    restarts = [e.times_s[0] - e.started_s for e in epochs[1:] if e.times_s]
    restart = median(restarts) if restarts else None
    if not flat:
        return _epoch_rates(epochs, first, restart)
    steady_s = sum(d for d, _ in flat)
    n_samples = sum(n for _, n in flat)
    overall = n_samples / steady_s if steady_s > 0 else None
    rates = _windows(runs, num_workers)
    if len(rates) >= 3:
        rate = median(rates)
        rel_noise = _MEDIAN_SE * _MAD_TO_SD * mad(rates) / rate / math.sqrt(len(rates))
    else:
        rate, rel_noise = overall, None
    mean_batch = n_samples / len(flat)
    gaps = [d for d, _ in flat]
    mean_gap = steady_s / len(gaps)
    stall_s = max(0.1, 5 * max(1, num_workers) * mean_gap)
    return Steady(
        samples_per_s=rate,
        batches_per_s=rate / mean_batch if rate and mean_batch else None,
        spread=(min(rates), max(rates)) if rates else None,
        rel_noise=rel_noise,
        windows=len(rates),
        steady_batches=len(flat),
        steady_s=steady_s,
        latency_ms={q: percentile(gaps, float(q[1:])) * 1000 for q in ("p50", "p95", "p99")},
        stalls=sum(1 for g in gaps if g > stall_s),
        spans_depths=len(flat) / depth if depth else None,
        first_batch_s=first,
        epoch_restart_s=restart,
    )


def _epoch_rates(epochs: list[EpochTrace], first: float | None, restart: float | None) -> Steady:
    """Epochs too short to drain the pipeline: the rate per whole epoch, start-up included.

    The first epoch is left out when there are others (it pays for the initial start-up that
    later epochs only pay with non-persistent workers, which the restart figure shows).
    """
    done = [e for e in epochs if e.complete and e.times_s]
    use = done[1:] if len(done) > 1 else done
    rates = [
        sum(e.samples) / (e.times_s[-1] - e.started_s) for e in use if e.times_s[-1] > e.started_s
    ]
    if not rates:
        return Steady(
            None, None, None, None, 0, 0, 0.0, first_batch_s=first, epoch_restart_s=restart
        )
    rate = median(rates)
    noise = None
    if len(rates) >= 3:
        noise = _MEDIAN_SE * _MAD_TO_SD * mad(rates) / rate / math.sqrt(len(rates))
    batches = sum(len(e.times_s) for e in use)
    samples = sum(sum(e.samples) for e in use)
    return Steady(
        samples_per_s=rate,
        batches_per_s=rate * batches / samples if samples else None,
        spread=(min(rates), max(rates)),
        rel_noise=noise,
        windows=len(rates),
        steady_batches=0,
        steady_s=0.0,
        first_batch_s=first,
        epoch_restart_s=restart,
        basis="epoch",
    )


# ---------------------------------------------------------------- comparing settings

#: Differences below this are never called real (scheduler and frequency noise).
NOISE_FLOOR = 0.02
#: Never treat a setting more than this much slower as "as good as the best".
TOLERANCE_CAP = 0.05
#: Assumed relative error when a measurement has too few windows to estimate it.
UNKNOWN_NOISE = 0.04


def tolerance(noise_a: float | None, noise_b: float | None) -> float:
    """Relative gap two rates may differ by and still count as equal (about 2 sigma)."""
    a = UNKNOWN_NOISE if noise_a is None else noise_a
    b = UNKNOWN_NOISE if noise_b is None else noise_b
    return min(TOLERANCE_CAP, max(NOISE_FLOOR, 2 * math.hypot(a, b)))


def is_significant(
    rate_a: float, noise_a: float | None, rate_b: float, noise_b: float | None
) -> bool:
    """True when rate_a and rate_b differ by more than their measured noise (pyperf-style)."""
    hi = max(rate_a, rate_b)
    if hi <= 0:
        return False
    return abs(rate_a - rate_b) / hi > tolerance(noise_a, noise_b)


def is_uncertain(
    rate_a: float, noise_a: float | None, rate_b: float, noise_b: float | None
) -> bool:
    """True when the gap sits where more measurement could flip the equal/different call."""
    hi = max(rate_a, rate_b)
    if hi <= 0:
        return False
    gap = abs(rate_a - rate_b) / hi
    a = UNKNOWN_NOISE if noise_a is None else noise_a
    b = UNKNOWN_NOISE if noise_b is None else noise_b
    sigma = math.hypot(a, b)
    return sigma > NOISE_FLOOR / 2 and abs(gap - tolerance(noise_a, noise_b)) < 2 * sigma


# ---------------------------------------------------------------- what training gets

#: Whole epochs a training-rate figure needs before it may rank settings.
MIN_EPOCHS = 2


def _rel_se(rates: Sequence[float], centre: float) -> float | None:
    """Relative standard error of a figure from per-epoch rates (robust from 3 on)."""
    if len(rates) < 2 or centre <= 0:
        return None
    if len(rates) == 2:
        return abs(rates[0] - rates[1]) / 2 / centre
    return _MAD_TO_SD * mad(rates) / centre / math.sqrt(len(rates))


def training_rate(
    epochs: Sequence[EpochTrace],
    depth: int,
    num_workers: int,
    real_epoch_samples: int | None = None,
) -> Steady:
    """The ranking figure: samples over wall time across whole epochs (worker start-up,
    steady state, end-of-epoch drain and shutdown included), the steady rate beside it.

    A capped epoch (a bounded number of batches of a large dataset) has its overhead (wall
    time beyond what its samples take at the steady rate) spread over the real epoch length:
    ``real / (overhead + real / steady)``. Without workers there is nothing to restart and the
    steady rate is the figure. A figure from fewer than MIN_EPOCHS whole epochs (or a steady
    window of under 3 pipeline depths) is marked unreliable.
    """
    steady = steady_stats(epochs, depth, num_workers)
    done = [e for e in epochs if e.complete and e.times_s and e.ended_s is not None]
    if num_workers == 0 or not done:
        ok = num_workers == 0 or steady.basis == "epoch" or (steady.spans_depths or 0) >= 3
        flat = [x for e in epochs for x in steady_intervals(e, depth, num_workers)]
        dt = sum(d for d, _ in flat)
        if steady.basis != "steady" or dt <= 0 or not steady.samples_per_s:
            return _replace(steady, steady_samples_per_s=steady.samples_per_s, reliable=ok)
        # Samples over the whole steady wall time, pauses included (the windows' median
        # would leave out the preemptions and GC pauses training also pays for).
        rate = sum(n for _, n in flat) / dt
        return _replace(
            steady,
            samples_per_s=rate,
            batches_per_s=(steady.batches_per_s or 0) * rate / steady.samples_per_s or None,
            steady_samples_per_s=steady.samples_per_s,
            reliable=ok,
        )
    walls = [float(e.ended_s) - e.started_s for e in done]  # type: ignore[arg-type]
    counts = [sum(e.samples) for e in done]
    batches = sum(len(e.times_s) for e in done)
    capped = any(e.capped for e in done) and real_epoch_samples
    basis = "epochs"
    overhead = None
    if capped:
        runs = [steady_intervals(e, depth, num_workers) for e in done]
        flat = [x for r in runs for x in r]
        dt = sum(d for d, _ in flat)
        if not flat or dt <= 0:
            return _replace(steady, steady_samples_per_s=steady.samples_per_s, reliable=False)
        r_s = sum(n for _, n in flat) / dt
        real = float(real_epoch_samples)  # type: ignore[arg-type]
        overheads = [max(0.0, w - n / r_s) for w, n in zip(walls, counts, strict=True)]
        overhead = sum(overheads) / len(overheads)
        rates = [real / (o + real / r_s) for o in overheads]
        rate = real / (overhead + real / r_s)
        basis = "epochs-extrapolated"
    else:
        rates = [n / w for n, w in zip(counts, walls, strict=True) if w > 0]
        total_wall = sum(walls)
        rate = sum(counts) / total_wall if total_wall > 0 else 0.0
        if steady.samples_per_s and steady.samples_per_s > 0:
            overhead = max(0.0, total_wall - sum(counts) / steady.samples_per_s) / len(done)
    if rate <= 0:
        return _replace(steady, steady_samples_per_s=steady.samples_per_s, reliable=False)
    mean_batch = sum(counts) / batches if batches else None
    return _replace(
        steady,
        samples_per_s=rate,
        batches_per_s=rate / mean_batch if mean_batch else None,
        rel_noise=_rel_se(rates, rate),
        spread=(min(rates), max(rates)) if rates else None,
        windows=len(rates),
        basis=basis,
        steady_samples_per_s=steady.samples_per_s,
        epochs_timed=len(done),
        epoch_overhead_s=overhead,
        real_epoch_samples=int(real_epoch_samples) if capped else round(sum(counts) / len(done)),
        reliable=len(done) >= MIN_EPOCHS,
    )


def _replace(st: Steady, **changes: object) -> Steady:
    from dataclasses import replace

    return replace(st, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------- between-run noise

#: Half-width of an interval, in standard errors (about 95 %).
INTERVAL_Z = 1.96
#: Never treat a setting more than this much slower as "as good as the best", however wide
#: the intervals: the recommendation stays within 5 % of the best measured figure, leaving
#: room for noise under the 0.9-of-best target.
OVERLAP_CAP = 0.05


def between_run_noise(runs: Sequence[Sequence[float]]) -> float | None:
    """Relative standard deviation of one run's figure, pooled over settings run more than once.

    ``runs``: per setting, the figures of its separate runs (fresh children, interleaved).
    """
    ss, dof = 0.0, 0
    for rates in runs:
        rates = [r for r in rates if r and r > 0]
        if len(rates) < 2:
            continue
        m = sum(rates) / len(rates)
        ss += sum((r / m - 1) ** 2 for r in rates)
        dof += len(rates) - 1
    return math.sqrt(ss / dof) if dof else None


def interval(rate: float, rel_noise: float | None) -> tuple[float, float]:
    """The rate's interval (± INTERVAL_Z standard errors; UNKNOWN_NOISE when not measured)."""
    n = UNKNOWN_NOISE if rel_noise is None else rel_noise
    return rate * (1 - INTERVAL_Z * n), rate * (1 + INTERVAL_Z * n)


def intervals_overlap(
    rate_a: float, noise_a: float | None, rate_b: float, noise_b: float | None
) -> bool:
    """True when the two rates' intervals overlap (and they differ by at most OVERLAP_CAP)."""
    hi = max(rate_a, rate_b)
    if hi <= 0:
        return True
    if abs(rate_a - rate_b) / hi <= NOISE_FLOOR:
        return True
    if abs(rate_a - rate_b) / hi > OVERLAP_CAP:
        return False
    lo_a, hi_a = interval(rate_a, noise_a)
    lo_b, hi_b = interval(rate_b, noise_b)
    return lo_a <= hi_b and lo_b <= hi_a
