"""Read a torch.profiler Chrome trace (``prof.export_chrome_trace``), ``.json`` or ``.json.gz``.

Facts only: the ProfilerStep#N spans, the DataLoader ``__next__`` spans and the CPU-side CUDA
runtime calls that issued a host-to-device copy. Anything unreadable is a UsageError naming the
path and the cause (exit 2, no traceback).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dlcheck.errors import UsageError
from dlcheck.trace.records import Span, TraceFile

STEP_RE = re.compile(r"^ProfilerStep#(\d+)$")
# enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__ (and _MultiProcessing...)
LOADER_RE = re.compile(r"DataLoader.*?#?(\w*DataLoaderIter\w*)?\.__next__$")


def load_events(path: str | os.PathLike[str]) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    """The trace's events and its top-level metadata; UsageError when it cannot be read."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        doc = json.loads(raw)
    except FileNotFoundError:
        raise UsageError(f"{p}: no such file.") from None
    except IsADirectoryError:
        raise UsageError(f"{p}: is a directory, not a trace file.") from None
    except (OSError, EOFError) as exc:  # unreadable, or a truncated/corrupt .gz
        raise UsageError(f"{p}: cannot be read ({exc.__class__.__name__}: {exc}).") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{p}: not JSON ({exc}); pass a file written by prof.export_chrome_trace(path)."
        ) from None
    if isinstance(doc, list):  # the Trace Event Format also allows a bare array
        doc = {"traceEvents": doc}
    events = doc.get("traceEvents") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise UsageError(
            f"{p}: JSON, but not a Chrome trace (no traceEvents list); "
            "pass a file written by prof.export_chrome_trace(path)."
        )
    return [e for e in events if isinstance(e, dict)], doc


def _span(e: Mapping[str, Any]) -> Span | None:
    try:
        return Span(str(e["name"]), float(e["ts"]), float(e.get("dur", 0.0)), e.get("tid"))
    except (KeyError, TypeError, ValueError):
        return None


def find_spans(events: Iterable[Mapping[str, Any]]) -> tuple[list, list, list, bool]:
    """(steps, DataLoader __next__ spans, host-to-device copy calls, trace has GPU activity)."""
    steps: list[Span] = []
    loader: list[Span] = []
    runtime: list[tuple[Any, Span]] = []
    h2d_ids: set[Any] = set()
    has_cuda = False
    for e in events:
        if e.get("ph") != "X":
            continue
        name = str(e.get("name", ""))
        cat = str(e.get("cat", ""))
        if cat.startswith(("gpu_", "kernel", "cuda")):
            has_cuda = True
        if cat == "gpu_memcpy" and "HtoD" in name:
            h2d_ids.add((e.get("args") or {}).get("correlation"))
            continue
        if cat == "cuda_runtime" or cat == "cuda_driver":
            corr = (e.get("args") or {}).get("correlation")
            s = _span(e)
            if s is not None and corr is not None:
                runtime.append((corr, s))
            continue
        if STEP_RE.match(name):
            s = _span(e)
            if s is not None:
                steps.append(s)
        elif LOADER_RE.search(name):
            s = _span(e)
            if s is not None:
                loader.append(s)
    h2d = [s for corr, s in runtime if corr in h2d_ids]
    steps.sort(key=lambda s: s.start_us)
    loader.sort(key=lambda s: s.start_us)
    h2d.sort(key=lambda s: s.start_us)
    return steps, loader, h2d, has_cuda


def read_trace(path: str | os.PathLike[str]) -> TraceFile:
    events, meta = load_events(path)
    steps, loader, h2d, has_cuda = find_spans(events)
    info = meta.get("distributedInfo") if isinstance(meta, dict) else None
    rank = info.get("rank") if isinstance(info, dict) else None
    return TraceFile(
        path=str(path),
        rank=rank if isinstance(rank, int) else None,
        steps=tuple(steps),
        loader_spans=tuple(loader),
        h2d_spans=tuple(h2d),
        has_cuda=has_cuda,
    )
