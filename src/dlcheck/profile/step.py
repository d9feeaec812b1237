"""`profile --step` / `--step-time`: the training loop's input-bound share, per setting.

The loop is the real one (next batch → copy to the device → step) run over the same epochs the
engine measures. Its figures use the shared definition of :mod:`dlcheck.inputbound`; like
``dlcheck.watch``, each epoch's first batch (worker start-up) is left out of the share and shown
as its own figure. Option parsing and step resolution live here too; the loop itself runs in
:mod:`dlcheck.profile.measure`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dlcheck.errors import UsageError
from dlcheck.inputbound import MODERATE_FROM, input_bound_share, tier

#: Shares this close (absolute) count as a tie when no setting is under 5 %: the cheaper wins.
SHARE_TIE = 0.02

_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s)?\s*$")


def parse_step_time(raw: str) -> float:
    """``20ms``, ``0.02s`` or ``0.02`` (seconds) → seconds; UsageError otherwise."""
    m = _TIME.match(raw or "")
    value = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0) if m else 0.0
    if not m or value <= 0:
        raise UsageError(f"--step-time {raw!r} is not a positive duration: use e.g. 20ms or 0.02s.")
    return value


def check_step_spec(raw: str) -> str:
    """Validate the shape of --step (module:attr or file.py:attr) without importing anything."""
    from dlcheck.target import parse_target

    try:
        return parse_target(raw).raw
    except UsageError as exc:
        # One line: the TARGET message, about --step.
        raise UsageError(exc.message.replace("TARGET", "--step", 1)) from None


_RESOLVED: dict[str, Callable[[Any], Any]] = {}


def register_step(fn: Callable[[Any], Any]) -> str:
    """A step given as a function object (the Python API): the name the report shows, under
    which every child forked from this process finds it (none could import it by name)."""
    module = getattr(fn, "__module__", None) or "?"
    qual = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    name = f"<{module}.{qual}>"
    _RESOLVED[name] = fn
    return name


def resolve_step(raw: str) -> Callable[[Any], Any]:
    """Import --step's module and return the callable it names (in the child, like TARGET)."""
    if raw in _RESOLVED:
        return _RESOLVED[raw]
    import sys
    from pathlib import Path

    from dlcheck.target import _import_source, parse_target

    try:
        spec = parse_target(raw)
    except UsageError as exc:
        raise UsageError(exc.message.replace("TARGET", "--step", 1)) from None
    # The same file as TARGET (train.py:make_loader, train.py:train_step) is executed once.
    loaded = [
        m
        for m in list(sys.modules.values())
        if spec.is_file and getattr(m, "__file__", None) == spec.source
    ]
    try:
        obj: Any = loaded[0] if loaded else _import_source(spec)
    except UsageError as exc:
        raise UsageError(exc.message.replace("TARGET", "--step")) from None
    for part in spec.attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = Path(spec.source).name if spec.is_file else spec.source
            raise UsageError(f"--step {raw!r}: {where} has no attribute {part!r}.") from None
    if not callable(obj):
        raise UsageError(
            f"--step {raw!r} is a {type(obj).__name__}, not a function taking one batch."
        )
    _RESOLVED[raw] = obj
    return obj


def sleeping_step(step_s: float) -> Callable[[Any], None]:
    """--step-time: a step that sleeps (a GPU-bound step leaves the CPU free meanwhile)."""
    import time

    def step(batch: Any) -> None:
        time.sleep(step_s)

    return step


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class LoopEpoch:
    """One epoch of the loop: wait per step (next() + a copy not overlapped), step times, and
    the loop's wall time from the first batch's arrival to the end of the last step: its waits
    after the first plus its steps, dlcheck's own bookkeeping left out (all seconds)."""

    waits_s: tuple[float, ...]  # [0] is the time to the first batch (start-up)
    steps_s: tuple[float, ...]
    samples: tuple[int, ...]
    span_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "waits_s": [round(x, 6) for x in self.waits_s],
            "steps_s": [round(x, 6) for x in self.steps_s],
            "samples": list(self.samples),
            "span_s": round(self.span_s, 6),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopEpoch:
        return cls(
            tuple(d.get("waits_s", ())),
            tuple(d.get("steps_s", ())),
            tuple(d.get("samples", ())),
            float(d.get("span_s", 0.0)),
        )


@dataclass(frozen=True)
class LoopFigures:
    """The loop's figures for one setting (each epoch's first batch excluded, as watch does)."""

    input_bound: float | None  # share of the loop's wall time spent waiting for batches
    tier: str | None  # not / moderately / highly
    step_ms: float | None  # p50
    wait_ms: dict[str, float]  # p50 / p95 per step
    first_batch_ms: float | None  # p50 over epochs: time to each epoch's first batch
    samples_per_s: float | None  # samples the loop consumed / its wall time
    steps: int  # steps behind the figures


def _pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def loop_figures(epochs: Sequence[LoopEpoch]) -> LoopFigures | None:
    """Pool epochs (of one or several runs) into the loop's figures; None without any step."""
    waits = [w for e in epochs for w in e.waits_s[1:]]
    steps = [s for e in epochs for s in e.steps_s]
    if not steps:
        return None
    span = sum(e.span_s for e in epochs if len(e.waits_s) > 1)
    samples = sum(sum(e.samples[1:]) for e in epochs)
    share = input_bound_share(sum(waits), span) if waits else None
    t = tier(share)
    firsts = [e.waits_s[0] for e in epochs if e.waits_s]
    return LoopFigures(
        input_bound=share,
        tier=t.value if t is not None else None,
        step_ms=1000 * _pct(steps, 0.5),
        wait_ms={"p50": 1000 * _pct(waits, 0.5), "p95": 1000 * _pct(waits, 0.95)} if waits else {},
        first_batch_ms=1000 * _pct(firsts, 0.5) if firsts else None,
        samples_per_s=samples / span if span > 0 else None,
        steps=len(waits),
    )


# ---------------------------------------------------------------- judgement


def choose_by_share(group: list[Any], cost: Callable[[Any], Any]) -> Any | None:
    """The cheapest estimate whose loop waits under 5 %, else the one that waits least."""
    scored = [e for e in group if e.loop is not None and e.loop.input_bound is not None]
    if not scored:
        return None
    under = [e for e in scored if e.loop.input_bound < MODERATE_FROM]
    if under:
        return min(under, key=cost)
    # None is: the one that waits least, or a cheaper one within SHARE_TIE of it (noise).
    least = min(e.loop.input_bound for e in scored)
    return min((e for e in scored if e.loop.input_bound <= least + SHARE_TIE), key=cost)


def share_reason(rec: Any, group: list[Any]) -> str:
    """Why this setting, in the loop's terms (one line)."""
    lp = rec.loop
    w = rec.setting.num_workers
    at = f"{w} worker{'s' if w != 1 else ''}"
    pct = f"{100 * lp.input_bound:.0f}%"
    if lp.input_bound < MODERATE_FROM:
        return (
            f"cheapest setting where the loop is not input-bound: at {at} it waits {pct} of "
            f"its time (step {lp.step_ms:.0f} ms, wait p50 {lp.wait_ms.get('p50', 0):.1f} ms)"
        )
    most = max(e.setting.num_workers for e in group)
    even = f"even at {at}" if w >= most else f"at best, with {at}"
    return (
        f"the loader is the bottleneck: the loop waits {pct} of its time {even} "
        f"({lp.tier} input-bound); make __getitem__ cheaper or try more workers"
    )
