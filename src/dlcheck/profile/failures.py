"""Turn what a failing setting raised into one clear sentence and a hint (pure functions).

DataLoader re-raises a worker's exception in the main process as
``Caught X in DataLoader worker process N.\\nOriginal Traceback ...``, and reports dead workers
as ``DataLoader worker (pid N) is killed by signal: Killed.``; these texts are parsed here.
The measuring child tags sample and collate failures itself (``SampleError`` / ``CollateError``)
so the failing index and the offending field survive the trip through the worker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dlcheck.fmt import last_text_line

SAMPLE_TAG = "SampleError: "
COLLATE_TAG = "CollateError: "

_SIGNALS = {
    "Killed": "SIGKILL",
    "Segmentation fault": "SIGSEGV",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Terminated": "SIGTERM",
    "Floating point exception": "SIGFPE",
    "Illegal instruction": "SIGILL",
}
_KILLED = re.compile(r"DataLoader worker \(pid (\d+)\) is killed by signal: ([^.\n]+)")
_EXITED_CODE = re.compile(
    r"DataLoader worker \(pid (\d+)\) exited unexpectedly with exit code (-?\d+)"
)
_EXITED = re.compile(r"DataLoader worker \(pid\(s\) ([\d, ]+)\) exited unexpectedly")
_CAUGHT = re.compile(r"Caught (\w+) in DataLoader worker process (\d+)")
_TIMEOUT = re.compile(r"DataLoader timed out after (\d+) seconds")


@dataclass(frozen=True)
class Failure:
    kind: str
    message: str
    hint: str | None = None


def _after_tag(text: str, tag: str) -> str | None:
    hits = [ln.strip() for ln in text.splitlines() if tag in ln]
    if not hits:
        return None
    return hits[-1].split(tag, 1)[1].strip()


def explain_exception(exc_type: str, text: str, *, num_workers: int = 0) -> Failure:
    """Classify an exception raised while iterating the loader (``text`` = str(exc))."""
    sample = (
        _after_tag(text, SAMPLE_TAG) if exc_type == "SampleError" or SAMPLE_TAG in text else None
    )
    if sample:
        return Failure(
            "sample",
            sample,
            _library_hint(sample)
            or "Fix the dataset's __getitem__/__iter__ for that sample, or skip bad samples "
            "(run with -v to see the traceback).",
        )
    collate = (
        _after_tag(text, COLLATE_TAG) if exc_type == "CollateError" or COLLATE_TAG in text else None
    )
    if collate:
        return Failure(
            "collate",
            collate,
            "Make every sample the same shape (resize/pad in the transform) or pass a "
            "collate_fn that pads or keeps a list.",
        )
    m = _KILLED.search(text)
    if m:
        pid, desc = m.group(1), m.group(2).strip()
        sig = _SIGNALS.get(desc, desc)
        hint = {
            "SIGKILL": "Usually the out-of-memory killer: use fewer workers, smaller batches, or "
            "less memory per sample.",
            "SIGBUS": "Usually /dev/shm is too small (Docker: --shm-size=8g or --ipc=host).",
            "SIGSEGV": "A native library crashed in the worker; libraries opened before the fork "
            "(LMDB, HDF5, OpenCV threads) often do: open them in worker_init_fn.",
        }.get(sig)
        return Failure(
            "worker_killed",
            f"DataLoader worker (pid {pid}) was killed by signal {sig} ({desc})",
            hint,
        )
    m = _EXITED_CODE.search(text)
    if m:
        return Failure(
            "worker_died",
            f"DataLoader worker (pid {m.group(1)}) exited unexpectedly with exit code {m.group(2)}",
            "Something in the dataset called sys.exit/os._exit or crashed; try --workers 0 to see "
            "the error in the main process.",
        )
    m = _EXITED.search(text)
    if m:
        return Failure(
            "worker_died",
            f"DataLoader worker (pid(s) {m.group(1).strip()}) exited unexpectedly",
            "Try --workers 0 to see the error in the main process.",
        )
    m = _TIMEOUT.search(text)
    if m:
        return Failure(
            "timeout",
            f"the DataLoader's own timeout fired: no batch within {m.group(1)} s",
            "A worker hangs or is too slow for the loader's timeout=.",
        )
    m = _CAUGHT.search(text)
    if m:
        inner = last_text_line(text.split("Original", 1)[-1])
        return Failure(
            "worker_error",
            f"in DataLoader worker {m.group(2)}: {inner}",
            _library_hint(inner),
        )
    line = last_text_line(text)
    msg = f"{exc_type}: {line}" if line and not line.startswith(exc_type) else (line or exc_type)
    return Failure("error", msg, _library_hint(msg))


def _library_hint(text: str) -> str | None:
    if "MDB_" in text or "lmdb" in text.lower():
        return (
            "An LMDB environment opened before the workers were forked is shared by all of them: "
            "open it lazily in each worker (in __getitem__ or worker_init_fn)."
        )
    if "HDF5" in text or "h5py" in text:
        return "Open HDF5 files in each worker (lazily), not before the fork."
    return None


# ---------------------------------------------------------------- collate failures


def _leaves(obj: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, shape/type description) for each leaf of a sample."""
    shape = getattr(obj, "shape", None)
    if shape is not None and not isinstance(obj, (str, bytes)):
        dtype = getattr(obj, "dtype", None)
        desc = f"{type(obj).__name__}{list(shape)}" + (f" {dtype}" if dtype is not None else "")
        return [(path or "sample", desc)]
    if isinstance(obj, Mapping):
        out = []
        for k, v in obj.items():
            out += _leaves(v, f"{path}[{k!r}]" if path else repr(k))
        return out
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)) and len(obj) <= 64:
        out = []
        for i, v in enumerate(obj):
            out += _leaves(v, f"{path}[{i}]" if path else f"field {i}")
        return out
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [(path or "sample", f"{type(obj).__name__} of length {len(obj)}")]
    return [(path or "sample", type(obj).__name__)]


def describe_collate_failure(
    samples: Sequence[Any], exc: BaseException, indices: Sequence[Any] | None = None
) -> str:
    """One sentence naming the field whose shapes or types differ across the batch."""
    labels = list(indices) if indices is not None and len(indices) == len(samples) else None
    reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    try:
        per_sample = [dict(_leaves(s)) for s in samples]
    # user samples of any shape: describing them must never fail the message
    except Exception:
        return f"cannot collate the batch: {reason}"
    if not per_sample:
        return f"cannot collate an empty batch: {reason}"
    fields = list(per_sample[0])
    if any(list(p) != fields for p in per_sample):
        other = next(list(p) for p in per_sample if list(p) != fields)
        return (
            "cannot collate the batch: samples have different structures "
            f"({', '.join(fields)} vs {', '.join(other)}); {reason}"
        )
    for name in fields:
        kinds: dict[str, list[Any]] = {}
        for i, p in enumerate(per_sample):
            kinds.setdefault(p[name], []).append(labels[i] if labels else i)
        if len(kinds) > 1:
            shown = sorted(kinds.items(), key=lambda kv: -len(kv[1]))[:3]
            word = "sample" if labels else "item"
            parts = [
                f"{desc} ({word}{'s' if len(idx) > 1 else ''} {', '.join(map(str, idx[:3]))}"
                f"{'…' if len(idx) > 3 else ''})"
                for desc, idx in shown
            ]
            return f"cannot collate {name}: " + " vs ".join(parts) + f" in one batch ({reason})"
    return f"cannot collate the batch: {reason}"
