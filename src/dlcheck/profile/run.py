"""`dlcheck profile` as a service: resolve TARGET in a child, sweep, judge, return a report.

The parent never imports the user's code: a "describe" child resolves TARGET and reports the
loader's shape, then each setting is measured by a fresh child (:mod:`dlcheck.profile.measure`).
Used by the CLI (:mod:`dlcheck.profile.command`) and the Python API ``dlcheck.profile()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcheck.errors import DlcheckError, UsageError
from dlcheck.profile.records import (
    SCHEMA,
    Check,
    LoaderShape,
    ProfileReport,
    Setting,
    SettingResult,
)
from dlcheck.profile.search import (
    MAX_WORKERS,
    AdaptivePlanner,
    FixedPlanner,
    SweepSpace,
    attach_intervals,
    recommend,
)
from dlcheck.profile.sweep import SweepOutcome, outcome_to_result, run_sweep
from dlcheck.records import Status
from dlcheck.useroutput import Relay, dedupe, write_stderr

DEMO_TARGET = "dlcheck.profile.demo:demo_dataset"
DEFAULT_BUDGET_S = 90.0
# Steady seconds per setting at least: with 1 s, the same 2-worker setting on 2 busy cores
# read 1,447 and 1,777 samples/s in two runs; 2 s halves that spread at a few s per sweep.
MIN_STEADY_S = 2.0
DEFAULT_TOLERANCE = 0.10
#: Seconds one setting may take at most (whole epochs of a slow loader), and at least when the
#: search's --budget is nearly spent.
MAX_SETTING_S = 20.0
MIN_SETTING_S = 4.0

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class ProfileOptions:
    """Typed options (the CLI's flags; the Python API's keyword arguments)."""

    workers: list[int] | None = None  # None: adaptive ("auto")
    batch_size: list[int] | None = None
    pin_memory: str | None = None  # on / off / both; None: both with CUDA, else off
    prefetch: list[int] | None = None
    persistent_workers: str | None = None  # on / off / both; None: the loader's own (off)
    start_method: str | None = None
    duration: float | None = None  # steady seconds per setting; None: adaptive
    stall_timeout: float = 30.0
    need: float | None = None
    budget: float = DEFAULT_BUDGET_S
    max_workers: int = MAX_WORKERS
    min_throughput: float | None = None
    baseline: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    strict: bool = False  # a warning check (an unmet --need, a baseline's other machine) exits 1
    output: str | None = None
    shard: tuple[int, int] | None = None
    isolation: str = "auto"  # auto: fork each setting from one build; fresh: a new process each
    max_memory: int | None = None  # bytes a setting's process tree may hold; None: a safe share
    # The training step: a callable taking one batch, as module:attr (a function object in
    # the Python API, registered under a name when the sweep starts).
    step: str | Callable[[Any], Any] | None = None
    step_s: float | None = None  # --step-time: a sleeping step of this many seconds

    def step_request(self) -> dict[str, Any]:
        """What the children need to run the training loop (empty without a step)."""
        if self.step:
            return {"step": self.step}
        if self.step_s:
            return {"step_s": self.step_s}
        return {}


# ---------------------------------------------------------------- machine metadata

#: Metadata that must match for a baseline comparison to be like for like.
CHECKED_METADATA = ("cpu_model", "usable_cpus", "torch_version", "cuda_device", "python")


def machine_metadata(shape: LoaderShape | None) -> dict[str, Any]:
    from dlcheck import __version__
    from dlcheck.host import cpu_facts, memory_facts

    cpu = cpu_facts()
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = memory_facts()
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": model or platform.processor() or None,
        "cpu_count": cpu.os_cpu_count,
        "usable_cpus": cpu.usable,
        "cpu_limited_by": cpu.limited_by,
        "memory_bytes": mem.total_bytes,
        "torch_version": shape.torch_version if shape else None,
        "cuda_device": shape.cuda_device if shape else None,
        "dlcheck_version": __version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---------------------------------------------------------------- child plumbing


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The user's module is resolved relative to where dlcheck was started.
    cwd = os.getcwd()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (cwd, env.get("PYTHONPATH", "")) if p)
    return env


def _raise_child_error(outcome: Any, what: str) -> None:
    err = outcome.error or {}
    kind = err.get("kind")
    message = str(err.get("message") or outcome.message)
    hint = err.get("hint")
    detail = err.get("detail") or outcome.stderr_tail or None
    if kind == "UsageError":
        raise UsageError(message, hint, detail=detail)
    if outcome.stalled:
        raise DlcheckError(
            f"{what} stalled: nothing happened for the stall timeout.",
            "Importing the module or calling the factory hangs; raise --stall-timeout if it is "
            "just slow.",
            detail=detail,
        )
    if kind in (None, "crash") and not err:
        message = f"{what} failed: {outcome.message}"
    raise DlcheckError(message, hint or "Run with -v to see the traceback.", detail=detail)


def _show_output(progress: ProgressFn | None) -> Callable[[str], None]:
    """Where the user's own output goes live: the progress display, else our stderr."""
    if progress is not None:
        return lambda line: progress({"type": "output", "line": line})
    return write_stderr


def describe_target(
    target: str,
    obj: Any,
    *,
    stall_timeout: float,
    relay: Relay | None = None,
    step: dict[str, Any] | None = None,
) -> LoaderShape:
    """Resolve TARGET in a child process; raise UsageError (exit 2) / DlcheckError (exit 1)."""
    from dlcheck.proc import run_child

    on_output, _ = (relay or Relay(_show_output(None))).collector()
    outcome = run_child(
        "dlcheck.profile.measure:describe",
        {"target": target, **(step or {})},
        obj=obj,
        stall_timeout=max(stall_timeout, 60.0),
        timeout=max(stall_timeout, 60.0) * 4,
        env=None if obj is not None else _child_env(),
        on_output=on_output,
    )
    if not outcome.ok:
        _raise_child_error(outcome, f"Loading {target}")
    return LoaderShape.from_dict(outcome.value)


#: Why the sweep runs each setting in a fresh process although a template was wanted.
CUDA_IN_BUILD = (
    "building the dataset initialised CUDA, and forking a process that holds CUDA is unsafe: "
    "each setting runs in a fresh process (and builds the dataset again)"
)
FRESH_ASKED = (
    "--isolation fresh: each setting runs in a fresh process (and builds the dataset again)"
)


def start_template(
    target: str,
    *,
    stall_timeout: float,
    relay: Relay | None = None,
    step: dict[str, Any] | None = None,
) -> tuple[Any, LoaderShape, str | None]:
    """Build TARGET once in a template process that forks a child per setting.

    Returns (fork server or None, shape, why not forking). Errors in the user's code raise as
    :func:`describe_target` does.
    """
    from dlcheck.proc import ForkServer

    server = ForkServer(
        "dlcheck.profile.measure:template", {"target": target, **(step or {})}, env=_child_env()
    )
    wait = max(stall_timeout, 60.0)
    try:
        on_output, _ = (relay or Relay(_show_output(None))).collector()
        outcome = server.start(stall_timeout=wait, timeout=wait * 4, on_output=on_output)
        if not outcome.ok:
            _raise_child_error(outcome, f"Loading {target}")
    # close the template on any exit (Ctrl-C included), then re-raise
    except BaseException:
        server.close()
        raise
    shape = LoaderShape.from_dict(outcome.value["shape"])
    if outcome.value.get("cuda_initialized"):
        server.close()
        return None, shape, CUDA_IN_BUILD
    return server, shape, None


def _busy_machine(usable_cpus: int) -> str | None:
    """A note when other work already keeps the cores busy (figures then vary run to run, and
    starved workers look idle to the cost model)."""
    with contextlib.suppress(OSError, AttributeError):
        load = os.getloadavg()[0]
        if load > 1.5 * usable_cpus:
            return (
                f"the machine is busy (load average {load:.1f} on {usable_cpus} usable cores): "
                "figures vary more between runs and the bottleneck may be misnamed"
            )
    return None


def _flags(value: str | None, default: list[bool]) -> list[bool]:
    if value is None:
        return default
    v = value.lower()
    if v in ("on", "true", "yes", "1"):
        return [True]
    if v in ("off", "false", "no", "0"):
        return [False]
    if v == "both":
        return [False, True]
    raise UsageError(f"Expected on, off or both, got {value!r}.")


def build_space(opts: ProfileOptions, shape: LoaderShape) -> tuple[SweepSpace, list[str]]:
    """What to sweep, from the options and the loader's own settings (plus notes to show)."""
    from dlcheck.host import usable_cpus

    notes = []
    if shape.loader_type:
        notes.append(
            f"the loader is a {shape.loader_type} (a DataLoader subclass): measured as a plain "
            "DataLoader with its dataset and settings, so what the subclass adds (its own "
            "__iter__, say) is not in these figures"
        )
    if shape.own_batching is not None:
        sizes: list[int | None] = [None]
        if opts.batch_size:
            own = "batch_sampler" if shape.own_batching == "batch_sampler" else "batch_size=None"
            notes.append(f"the loader batches with its own {own}: --batch-size is ignored")
    else:
        sizes = list(opts.batch_size) if opts.batch_size else [shape.batch_size or 64]
    pin = _flags(
        opts.pin_memory, [False, True] if shape.cuda else [shape.pin_memory and shape.cuda]
    )
    if not shape.cuda and any(pin):
        notes.append("no CUDA here: pin_memory has no effect on these figures")
    persistent = _flags(opts.persistent_workers, [shape.persistent_workers])
    prefetch = list(opts.prefetch) if opts.prefetch else [shape.prefetch_factor or 2]
    space = SweepSpace(
        batch_sizes=sizes,
        pin_memory=pin,
        prefetch=prefetch,
        persistent=persistent,
        start_method=opts.start_method or shape.start_method,
        workers=opts.workers,
        need=opts.need,
        baseline=shape.baseline(),
        max_workers=opts.max_workers,
        usable_cpus=usable_cpus(),
    )
    return space, notes


def measure_fn(
    target: str,
    obj: Any,
    shape: LoaderShape,
    opts: ProfileOptions,
    progress: ProgressFn | None,
    baseline: Setting | None,
    relay: Relay | None = None,
    server: Any = None,
    budget: Any = None,
    history: list[SettingResult] | None = None,
    deadline: float | None = None,
) -> Callable[[Setting, int, tuple[int, int] | None], SettingResult]:
    """Measure one setting: forked from ``server`` (a template) when given, else a new child.

    ``deadline`` (time.monotonic) is when the search's --budget runs out: no setting is
    measured for longer than what is left of it (at least a few seconds).
    """
    from dlcheck.proc import run_child

    env = None if obj is not None else _child_env()
    relay = relay or Relay(_show_output(progress))

    def measure(setting: Setting, rnd: int, shard: tuple[int, int] | None) -> SettingResult:
        request: dict[str, Any] = {
            "target": target,
            "setting": setting.to_dict(),
            "shard": list(shard) if shard else None,
            "gpu": shape.cuda,
            **opts.step_request(),
        }
        if budget is not None:
            from dlcheck.profile.budget import skip_reason
            from dlcheck.profile.sweep import failed_result

            why = skip_reason(setting, history or [], budget)
            if why:
                result = failed_result(
                    setting,
                    "over_budget",
                    why,
                    hint="Raise --max-memory to measure it, or use fewer workers.",
                    baseline=setting == baseline,
                )
                if progress:
                    progress({"type": "start", "setting": setting, "round": rnd})
                    progress({"type": "done", "setting": setting, "result": result})
                return result
            request["max_memory_bytes"] = budget.memory_bytes
            request["max_shm_bytes"] = budget.shm_bytes
        if opts.duration is not None:
            request["duration_s"] = opts.duration
        else:
            # A repeat spent on an uncertain decision gets a longer window.
            request.update(min_s=MIN_STEADY_S + 0.5 * rnd, max_s=6.0)
            if deadline is not None:
                left = deadline - time.monotonic()
                request["max_total_s"] = max(MIN_SETTING_S, min(MAX_SETTING_S, left))
        if progress:
            progress({"type": "start", "setting": setting, "round": rnd})

        def on_event(ev: dict[str, Any]) -> None:
            if progress:
                progress({"type": "batch", "setting": setting, **ev})

        cap = (opts.duration or 8.0) * 4 + opts.stall_timeout + 60
        on_output, lines = relay.collector()
        if server is not None:
            outcome = server.run(
                "dlcheck.profile.measure:measure",
                request,
                stall_timeout=opts.stall_timeout,
                timeout=cap,
                on_event=on_event,
                on_output=on_output,
            )
        else:
            outcome = run_child(
                "dlcheck.profile.measure:measure",
                request,
                obj=obj,
                stall_timeout=opts.stall_timeout,
                timeout=cap,
                on_event=on_event,
                env=env,
                on_output=on_output,
            )
        result = outcome_to_result(
            setting, outcome, stall_timeout=opts.stall_timeout, baseline=setting == baseline
        )
        result.output = dedupe(lines)
        if progress:
            progress({"type": "done", "setting": setting, "result": result})
        return result

    return measure


# ---------------------------------------------------------------- judgement


def ci_checks(report: ProfileReport, opts: ProfileOptions) -> list[Check]:
    checks = []
    rec = report.recommended
    rate = rec.samples_per_s if rec else None
    if report.broken:
        n = len(report.broken)
        checks.append(Check("settings", Status.FAIL, f"{n} setting{'s' if n != 1 else ''} failed"))
    if opts.need is not None and rec is not None and not rec.meets_need:
        checks.append(
            Check(
                "need",
                Status.WARN,
                f"no setting reaches --need {opts.need:,.0f} samples/s (best {rate or 0:,.0f}/s)",
            )
        )
    if opts.min_throughput is not None:
        if rate is None or rate < opts.min_throughput:
            checks.append(
                Check(
                    "min_throughput",
                    Status.FAIL,
                    f"recommended setting gives {rate or 0:,.0f} samples/s, below "
                    f"--min-throughput {opts.min_throughput:,.0f}",
                )
            )
        else:
            checks.append(
                Check(
                    "min_throughput",
                    Status.PASS,
                    f"{rate:,.0f} samples/s ≥ --min-throughput {opts.min_throughput:,.0f}",
                )
            )
    if opts.baseline:
        checks += baseline_checks(report, opts.baseline, opts.tolerance)
    return checks


def load_baseline(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"Cannot read --baseline {path}: {exc.strerror}.") from None
    except ValueError:
        raise UsageError(
            f"--baseline {path} is not JSON.", "Use a file written by --output x.json."
        ) from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise UsageError(
            f"--baseline {path} is not a {SCHEMA} document.",
            "Write one with `dlcheck profile TARGET --output baseline.json`.",
        )
    return doc


def baseline_checks(report: ProfileReport, path: str, tolerance: float) -> list[Check]:
    """Compare with a previous run: a regression beyond ``tolerance`` fails."""
    doc = load_baseline(path)
    checks = []
    old_machine = doc.get("machine") or {}
    differ = [k for k in CHECKED_METADATA if old_machine.get(k) != report.machine.get(k)]
    if differ:
        checks.append(
            Check(
                "baseline_machine",
                Status.WARN,
                "baseline was measured on a different machine or software ("
                + ", ".join(
                    f"{k}: {old_machine.get(k)!r} → {report.machine.get(k)!r}" for k in differ
                )
                + ")",
            )
        )
    old = (doc.get("recommended") or {}).get("samples_per_s")
    rec = report.recommended
    new = rec.samples_per_s if rec else None
    if old is None or new is None:
        checks.append(Check("baseline", Status.WARN, "nothing to compare with the baseline"))
        return checks
    change = (new - old) / old
    text = f"{new:,.0f} samples/s vs baseline {old:,.0f} ({change:+.1%}, tolerance {tolerance:.0%})"
    status = Status.FAIL if change < -tolerance else Status.PASS
    checks.append(
        Check("baseline", status, ("regression: " if status is Status.FAIL else "") + text)
    )
    return checks


# ---------------------------------------------------------------- the service


def run_profile(
    target_or_object: Any = None,
    *,
    progress: ProgressFn | None = None,
    barrier: Callable[[], None] | None = None,
    combine: Callable[[SettingResult], SettingResult] | None = None,
    **options: Any,
) -> ProfileReport:
    """Profile TARGET (a string, or a Dataset/DataLoader object) and return the report.

    Options are :class:`ProfileOptions` fields (``workers=[0, 2]``, ``duration=1``, ...).
    On Ctrl-C the partial results are written to ``output`` and KeyboardInterrupt propagates.
    """
    opts = options.pop("_opts", None) or ProfileOptions(**options)
    if opts.step and opts.step_s:
        raise UsageError("--step and --step-time exclude each other: give one of them.")
    step_object = callable(opts.step)
    if callable(opts.step):
        from dlcheck.profile.step import register_step

        opts.step = register_step(opts.step)
    elif opts.step:
        from dlcheck.profile.step import check_step_spec

        opts.step = check_step_spec(opts.step)
    started = time.monotonic()
    obj = None
    if target_or_object is None:
        target = DEMO_TARGET
    elif isinstance(target_or_object, str):
        from dlcheck.target import parse_target

        target = parse_target(target_or_object).raw
    else:
        obj = target_or_object
        target = f"<{type(obj).__module__}.{type(obj).__qualname__} object>"
    if step_object and obj is None:
        # A function object reaches only children forked from this process: build TARGET here
        # (what a notebook does anyway) and fork each setting from it.
        from dlcheck.target import load_target

        obj = load_target(target)
    if opts.baseline:
        load_baseline(opts.baseline)  # a bad file is a usage error before minutes of sweeping
    if progress:
        progress({"type": "describe", "target": target})
    relay = Relay(_show_output(progress))
    server = None
    why_fresh = None
    if obj is not None or opts.isolation == "fresh":
        # An in-memory object is built already: each setting forks from this process.
        shape = describe_target(
            target, obj, stall_timeout=opts.stall_timeout, relay=relay, step=opts.step_request()
        )
        why_fresh = FRESH_ASKED if obj is None else None
    else:
        server, shape, why_fresh = start_template(
            target, stall_timeout=opts.stall_timeout, relay=relay, step=opts.step_request()
        )
    try:
        return _profile(
            target, obj, shape, opts, started, progress, barrier, combine, server, why_fresh, relay
        )
    finally:
        if server is not None:
            server.close()


def _profile(
    target: str,
    obj: Any,
    shape: LoaderShape,
    opts: ProfileOptions,
    started: float,
    progress: ProgressFn | None,
    barrier: Callable[[], None] | None,
    combine: Callable[[SettingResult], SettingResult] | None,
    server: Any,
    why_fresh: str | None,
    relay: Relay,
) -> ProfileReport:
    if shape.kind == "map" and shape.length == 0:
        raise DlcheckError(
            f"The dataset is empty: len({shape.dataset_type.rsplit('.', 1)[-1]}) == 0, so there "
            "is nothing to load.",
            "Check the path, split or filter that builds it.",
        )
    space, notes = build_space(opts, shape)
    if why_fresh:
        notes.append(why_fresh)
    busy = _busy_machine(space.usable_cpus)
    if busy:
        notes.append(busy)
    isolation = "fresh" if server is None and obj is None else "fork"
    report = ProfileReport(
        target=target,
        shape=shape,
        machine=machine_metadata(shape),
        options={**{k: v for k, v in vars(opts).items()}, "isolation": isolation, "notes": notes},
    )
    planner = FixedPlanner(space) if opts.workers is not None else AdaptivePlanner(space)
    sweep = SweepOutcome(results=report.results)

    def on_result(results: list[SettingResult]) -> None:
        _finish(report, opts, space, started)
        if opts.output:
            write_output(report, opts.output)

    from dlcheck.profile.budget import default_budget

    budget = default_budget(opts.max_memory)
    report.options["memory_budget_bytes"] = budget.memory_bytes
    report.options["shm_budget_bytes"] = budget.shm_bytes
    measure = measure_fn(
        target,
        obj,
        shape,
        opts,
        progress,
        space.baseline,
        relay,
        server,
        budget,
        report.results,
        deadline=started + opts.budget if opts.workers is None else None,
    )
    try:
        run_sweep(
            planner,
            measure,
            barrier=barrier,
            shard=opts.shard,
            combine=combine,
            on_result=on_result,
            budget_s=opts.budget if opts.workers is None else None,
            outcome=sweep,
        )
    except KeyboardInterrupt:
        report.interrupted = True
        _finish(report, opts, space, started)
        if opts.output:
            write_output(report, opts.output)
        raise
    report.budget_exhausted = sweep.budget_exhausted
    for note in getattr(planner, "notes", []):
        report.options["notes"].append(note)
    if shape.kind == "iterable":
        from dlcheck.profile.search import replayed_stream

        replayed = replayed_stream(report.results)
        if replayed:
            report.options["notes"].append(replayed)
    _finish(report, opts, space, started)
    report.checks = ci_checks(report, opts)
    if opts.output:
        write_output(report, opts.output)
    return report


def _finish(
    report: ProfileReport,
    opts: ProfileOptions,
    space: SweepSpace,
    started: float,
) -> None:
    from dlcheck.host import usable_cpus

    shape = report.shape
    attach_intervals(report.results)
    report.recommendations = recommend(
        report.results,
        usable_cpus=usable_cpus(),
        need=opts.need,
        own_loader=bool(shape and shape.is_loader),
        own_batching=shape.own_batching if shape else None,
        max_workers=space.max_workers,
    )
    report.wall_s = time.monotonic() - started


def write_output(report: ProfileReport, path: str) -> None:
    """Rewrite --output (JSON or CSV, by suffix) atomically."""
    from dlcheck.output import dumps, write_text_file
    from dlcheck.profile.render import csv_text, json_document

    if path.lower().endswith(".csv"):
        write_text_file(path, csv_text(report), "--output")
    else:
        write_text_file(path, dumps(json_document(report, raw=True)) + "\n", "--output")
