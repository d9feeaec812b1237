"""Python API (for notebooks and scripts). Each function returns a report object."""

from __future__ import annotations

from typing import Any


def env(**options: Any) -> Any:
    """Run the `dlcheck env` checks and return the report."""
    from dlcheck.env.run import run_env

    return run_env(**options)


def profile(target: Any = None, **options: Any) -> Any:
    """Profile a TARGET string, Dataset or DataLoader; returns a ProfileReport."""
    from dlcheck.profile.run import run_profile

    return run_profile(target, **options)


def doctor(target: Any, **options: Any) -> Any:
    """Run the doctor probes on a TARGET string, Dataset or DataLoader; returns a report."""
    from dlcheck.doctor.run import run_doctor

    return run_doctor(target, **options)


def watch(loader: Any, name: str | None = None, output: Any = None, **options: Any) -> Any:
    """Wrap the loader of your own training loop; ``.summary()`` says how input-bound it is."""
    from dlcheck.watch.core import watch as _watch

    return _watch(loader, name, output, **options)


def trace(*paths: Any, **options: Any) -> Any:
    """Read torch.profiler Chrome traces (one per rank); returns a TraceReport."""
    from dlcheck.trace.run import run_trace

    return run_trace(list(paths), **options)
