"""Fact collection for the doctor probes. Runs only in child processes (it touches user code).

Each ``collect_<probe>(ctx, send)`` returns a JSON-able dict of facts and judges nothing;
:mod:`dlcheck.doctor.judge` turns facts into findings in the parent. Errors the user's dataset
raises are facts too (``"loader_error"``, ``"errors"``); anything that escapes is a probe crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import pickle
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from torch.utils.data import IterableDataset

Send = Callable[[dict[str, Any]], None]

CONTAINER_MIN_ITEMS = 10_000  # below this, copy-on-read growth is too small to matter
DUP_CAP = 20_000  # samples per pass in the duplicates probe
FINGERPRINT_BYTES_CAP = 1 << 24  # hash at most 16 MiB of one array


# ---------------------------------------------------------------- context


@dataclass
class ProbeContext:
    """The resolved target and the options every probe reads."""

    target: Any
    loader: Any  # a DataLoader, or None for a dataset target
    dataset: Any
    iterable: bool
    length: int | None
    workers: int  # workers the probes use (--workers)
    target_workers: int  # what training uses: the loader's num_workers, else --workers
    scan: bool
    timeout: float
    seed: int
    source_file: str | None


def last_line(exc: BaseException) -> str:
    """``Type: message`` of an exception; for a worker's re-raised error, the original's."""
    text = str(exc)
    if "Original Traceback" in text:  # torch's ExceptionWrapper: the cause is the last line
        tail = [line.strip() for line in text.splitlines() if line.strip()]
        worker = text.splitlines()[0].strip()
        return f"{tail[-1]} ({worker.removeprefix('Caught ').rstrip('.')})"[:500]
    lines = traceback.format_exception_only(type(exc), exc)
    return (lines[-1].strip() if lines else type(exc).__name__)[:500]


def make_context(target: Any, options: dict[str, Any], source_file: str | None) -> ProbeContext:
    from torch.utils.data import IterableDataset

    from dlcheck.target import is_loader

    loader = target if is_loader(target) else None
    dataset = loader.dataset if loader is not None else target
    iterable = isinstance(dataset, IterableDataset)
    length: int | None = None
    with contextlib.suppress(Exception):
        length = len(dataset)
    workers = int(options.get("workers", 2))
    target_workers = loader.num_workers if loader is not None else workers
    return ProbeContext(
        target=target,
        loader=loader,
        dataset=dataset,
        iterable=iterable,
        length=length,
        workers=workers,
        target_workers=target_workers,
        scan=bool(options.get("scan", False)),
        timeout=float(options.get("timeout", 30.0)),
        seed=int(options.get("seed", 0)),
        source_file=source_file,
    )


def start_method(ctx: ProbeContext) -> str:
    """The start method the target's workers would use."""
    import multiprocessing as mp

    mpc = ctx.loader.multiprocessing_context if ctx.loader is not None else None
    if mpc is not None:
        return str(mpc.get_start_method())
    return str(mp.get_start_method(allow_none=True) or mp.get_context().get_start_method())


def _name(obj: Any) -> str:
    if obj is None:
        return "None"
    qual = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    if mod and mod.startswith("_dlcheck_target_"):  # a file TARGET: show the file's stem
        mod = mod.removeprefix("_dlcheck_target_")
    return f"{mod}.{qual}" if mod and mod != "builtins" else str(qual)


def describe(ctx: ProbeContext, raw: str) -> dict[str, Any]:
    import torch

    loader = ctx.loader
    info: dict[str, Any] = {
        "raw": raw,
        "kind": "loader" if loader is not None else "dataset",
        "dataset_class": _name(type(ctx.dataset)),
        "style": "iterable" if ctx.iterable else "map",
        "length": ctx.length,
        "start_method": start_method(ctx),
        "torch_version": torch.__version__,
    }
    if loader is not None:
        sampler = _sampler_of(loader)
        info.update(
            num_workers=loader.num_workers,
            batch_size=loader.batch_size,
            sampler=_name(type(sampler)) if sampler is not None else None,
            collate_fn=_name(loader.collate_fn),
        )
    return info


# ---------------------------------------------------------------- sample helpers


def fingerprint(obj: Any) -> str:
    """A short hash of a sample's structure and bytes (tensors, arrays, containers, scalars)."""
    h = hashlib.blake2b(digest_size=10)
    _feed(h, obj, 0)
    return h.hexdigest()


def _feed(h: Any, obj: Any, depth: int) -> None:
    if depth > 20:
        h.update(b"<deep>")
        return
    mod = type(obj).__module__
    if mod.startswith("torch") and hasattr(obj, "dtype") and hasattr(obj, "shape"):
        import torch

        if isinstance(obj, torch.Tensor):
            t = obj.detach()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            try:
                flat = t.cpu().contiguous().reshape(-1)
                if flat.dtype != torch.uint8:
                    flat = flat.view(torch.uint8)
                h.update(flat.numpy()[:FINGERPRINT_BYTES_CAP].tobytes())
            except Exception:  # no byte view (sparse, meta): use repr
                h.update(repr(t.tolist()).encode())
            return
    if mod == "numpy" and hasattr(obj, "dtype") and hasattr(obj, "tobytes"):
        h.update(f"A{obj.dtype}{getattr(obj, 'shape', ())}".encode())
        if obj.dtype == object:
            for x in obj.ravel()[:10_000]:
                _feed(h, x, depth + 1)
        else:
            h.update(obj.tobytes()[:FINGERPRINT_BYTES_CAP])
        return
    if isinstance(obj, dict):
        h.update(b"{")
        for k, v in obj.items():
            h.update(repr(k).encode())
            _feed(h, v, depth + 1)
        h.update(b"}")
        return
    if isinstance(obj, (list, tuple)):
        h.update(b"[" if isinstance(obj, list) else b"(")
        for v in obj:
            _feed(h, v, depth + 1)
        h.update(b"]")
        return
    if isinstance(obj, (str, int, float, bool, bytes, type(None))):
        h.update(f"{type(obj).__name__}:".encode())
        h.update(obj if isinstance(obj, bytes) else repr(obj).encode())
        return
    if mod.startswith("PIL") and hasattr(obj, "tobytes"):
        h.update(f"I{obj.mode}{obj.size}".encode())
        h.update(obj.tobytes())
        return
    d = getattr(obj, "__dict__", None)
    h.update(type(obj).__qualname__.encode())
    if isinstance(d, dict):
        _feed(h, d, depth + 1)
    else:
        h.update(repr(obj).encode()[:4096])


def worker_fingerprint(sample: Any) -> tuple[int, str]:
    """collate_fn used inside workers: (worker id, fingerprint); ships no tensors back."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return (info.id if info is not None else -1, fingerprint(sample))


def identity(x: Any) -> Any:
    return x


def leaves(obj: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs of a sample: tensors, arrays, scalars, strings, None."""
    if depth > 12:
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{path}[{k!r}]", depth + 1)
    elif isinstance(obj, (list, tuple)) and not _is_array(obj):
        if len(obj) > 64 and all(isinstance(x, (int, float, bool)) for x in obj[:64]):
            yield path or "sample", obj
            return
        for i, v in enumerate(obj[:256]):
            yield from leaves(v, f"{path}[{i}]", depth + 1)
    else:
        yield path or "sample", obj


def _is_array(obj: Any) -> bool:
    return hasattr(obj, "dtype") and hasattr(obj, "shape")


def leaf_summary(obj: Any) -> dict[str, Any]:
    """Type, dtype and shape of one leaf (what collation cares about)."""
    mod = type(obj).__module__
    if _is_array(obj) and (mod.startswith("torch") or mod == "numpy"):
        kind = "tensor" if mod.startswith("torch") else "ndarray"
        return {"type": kind, "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if mod.startswith("PIL") and hasattr(obj, "size"):
        return {"type": "PIL.Image", "dtype": getattr(obj, "mode", None), "shape": list(obj.size)}
    if isinstance(obj, (list, tuple)):
        return {"type": type(obj).__name__, "dtype": None, "shape": [len(obj)]}
    return {"type": type(obj).__name__, "dtype": None, "shape": None}


def structure(sample: Any) -> dict[str, dict[str, Any]]:
    return {p: leaf_summary(v) for p, v in leaves(sample)}


def dict_keys(sample: Any, path: str = "sample", depth: int = 0) -> dict[str, list[str]]:
    """Keys of every dict in a sample, by path."""
    out: dict[str, list[str]] = {}
    if depth > 8:
        return out
    if isinstance(sample, dict):
        out[path] = [str(k) for k in sample]
        for k, v in sample.items():
            out.update(dict_keys(v, f"{path}[{k!r}]", depth + 1))
    elif isinstance(sample, (list, tuple)):
        for i, v in enumerate(sample[:32]):
            out.update(dict_keys(v, f"{path}[{i}]", depth + 1))
    return out


def sample_problems(sample: Any) -> list[str]:
    """None values and NaN/Inf in floating data, as human-readable strings."""
    problems = []
    if sample is None:
        return ["sample is None"]
    for path, leaf in leaves(sample):
        if leaf is None:
            problems.append(f"{path} is None")
            continue
        if isinstance(leaf, float):
            if math.isnan(leaf) or math.isinf(leaf):
                problems.append(f"{path} is {leaf}")
            continue
        mod = type(leaf).__module__
        if not _is_array(leaf) or not (mod.startswith("torch") or mod == "numpy"):
            continue
        try:
            if mod.startswith("torch"):
                import torch

                if not (leaf.is_floating_point() or leaf.is_complex()):
                    continue
                n_nan = int(torch.isnan(leaf).sum())
                n_inf = int(torch.isinf(leaf).sum())
            else:
                import numpy as np

                if leaf.dtype.kind not in "fc":
                    continue
                n_nan = int(np.isnan(leaf).sum())
                n_inf = int(np.isinf(leaf).sum())
        except Exception:  # numpy can't test this leaf: skip
            continue
        if n_nan:
            problems.append(f"{path} has {n_nan} NaN")
        if n_inf:
            problems.append(f"{path} has {n_inf} Inf")
    return problems


def spread_indices(n: int, k: int) -> list[int]:
    """k indices spread over range(n), first and last included."""
    if n <= k:
        return list(range(n))
    if k <= 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


class DieWithParent:
    """worker_init_fn wrapper: the worker is SIGKILLed when its probe process dies, even while
    it is stuck in the user's __getitem__ (torch's watchdog only checks between samples)."""

    def __init__(self, user_fn: Callable[[int], Any] | None):
        self.user_fn = user_fn

    def __call__(self, worker_id: int) -> None:
        from dlcheck.proc import _set_parent_death_signal

        _set_parent_death_signal()
        if self.user_fn is not None:
            self.user_fn(worker_id)


def loader_options(loader: Any, num_workers: int, *, batching: bool = True) -> dict[str, Any]:
    """The DataLoader arguments that rebuild ``loader`` with ``num_workers`` (reads, never
    iterates). ``batching``: keep its sampler, batching and collate_fn too; without, only the
    settings every worker sees (worker_init_fn, generator, start method, prefetch)."""
    from torch.utils.data import IterableDataset

    opts: dict[str, Any] = {"num_workers": num_workers}
    if loader is None:
        return opts
    if batching:
        if loader.batch_size is None and loader.batch_sampler is not None:
            # The user's own batch_sampler: DataLoader refuses batch_size, shuffle, sampler
            # and drop_last next to it (it holds its own sampler).
            opts["batch_sampler"] = loader.batch_sampler
        else:
            opts["batch_size"] = loader.batch_size  # None (automatic batching off) stays None
            if loader.batch_size is not None:
                opts["drop_last"] = loader.drop_last
            # The sampler object itself: shuffle=True left a RandomSampler holding the user's
            # generator. An IterableDataset takes no sampler (DataLoader raises).
            if not isinstance(loader.dataset, IterableDataset):
                opts["sampler"] = loader.sampler
        opts["collate_fn"] = loader.collate_fn
    opts["generator"] = loader.generator  # seeds the workers' base_seed and RandomSampler
    if hasattr(loader, "in_order"):  # torch >= 2.6
        opts["in_order"] = loader.in_order
    # DataLoader refuses these without workers.
    if num_workers > 0:
        opts["worker_init_fn"] = loader.worker_init_fn
        opts["multiprocessing_context"] = loader.multiprocessing_context
        opts["prefetch_factor"] = loader.prefetch_factor  # None with 0 workers: torch's 2
        opts["persistent_workers"] = loader.persistent_workers
    # Left out on purpose. ``timeout``: with one set, a worker that dies before torch
    # registers its pid is noticed only when the timeout expires; without, torch polls worker
    # liveness every 5 s, and hangs are bounded by the probe's own timeout. ``pin_memory``:
    # pinning never changes a batch's content, and in a probe (a fork) it would initialise
    # CUDA, which fails when the user's code initialised it before the fork (cuda_in_worker
    # reports that). ``resources`` reads pin_memory from the user's loader itself.
    return opts


def build_loader(
    ctx: ProbeContext, dataset: Any = None, *, num_workers: int, **probe_opts: Any
) -> Any:
    """The one place probes build DataLoaders.

    ``dataset=None``: the target's own DataLoader with only ``num_workers`` changed (sampler,
    batch_sampler, batch_size, drop_last, collate_fn, generator and worker settings kept; for
    a dataset TARGET, DataLoader's defaults and ``probe_opts``). Otherwise a probe's loader
    over ``dataset``, batched as ``probe_opts`` say, with the target's worker settings.
    """
    from torch.utils.data import DataLoader

    opts = loader_options(ctx.loader, num_workers, batching=dataset is None)
    opts.update(probe_opts)
    if num_workers > 0:
        opts["worker_init_fn"] = DieWithParent(opts.get("worker_init_fn"))
    else:
        for key in ("worker_init_fn", "multiprocessing_context", "prefetch_factor"):
            opts.pop(key, None)
        opts.pop("persistent_workers", None)
    return DataLoader(ctx.dataset if dataset is None else dataset, **opts)


def _sampler_of(loader: Any) -> Any:
    bs = getattr(loader, "batch_sampler", None)
    inner = getattr(bs, "sampler", None)
    return inner if inner is not None else getattr(loader, "sampler", None)


# DataLoader iterators are kept alive until the probe process exits: a graceful shutdown
# after a worker error waits seconds per worker, and the runner kills the process group anyway.
_KEEP_ALIVE: list[Any] = []


def keep_iter(iterable: Any) -> Any:
    it = iter(iterable)
    _KEEP_ALIVE.append(it)
    return it


def reap_workers() -> None:
    """Kill the DataLoader workers our probes started (they hold the result pipe open)."""
    import signal

    # torch's SIGCHLD handler raises in the main thread when a worker dies: once the probe
    # has its facts, that exception could land anywhere (even mid-way through reporting).
    with contextlib.suppress(Exception):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for it in _KEEP_ALIVE:
        for w in getattr(it, "_workers", None) or ():
            with contextlib.suppress(Exception):
                w.kill()
        for w in getattr(it, "_workers", None) or ():
            with contextlib.suppress(Exception):
                w.join(timeout=1.0)
    _KEEP_ALIVE.clear()


class _Stalled(BaseException):
    """Raised by SIGALRM at a pass's deadline; a BaseException so user code that catches
    Exception does not swallow it."""


@contextlib.contextmanager
def _interrupt_at(deadline: float, when: Callable[[], bool]) -> Iterator[None]:
    """Raise _Stalled in the main thread at ``deadline`` (time.monotonic()) if ``when()``,
    even while the dataset blocks (a stream that sleeps until new data arrives).

    An alarm an entry point already set (its whole-process bound) is re-armed afterwards.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        if when():
            raise _Stalled

    started = time.monotonic()
    if deadline == math.inf:
        yield
        return
    previous = signal.signal(signal.SIGALRM, on_alarm)
    pending, _ = signal.setitimer(signal.ITIMER_REAL, max(0.001, deadline - started))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending > 0:
            left = pending - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(0.001, left))


def _iter_capped(it: Any, cap: int, deadline: float) -> tuple[list[Any], bool, str | None]:
    """Up to ``cap`` items from ``it`` before ``deadline``: (items, complete, error).

    A stream that stops delivering (the seed's log stream sleeps while no log is queued) ends
    the pass at the deadline with what arrived so far. A stream that delivers nothing at all
    hangs on, into the probe's timeout: that is a hang, reported once, and the probes after it
    that fetch samples are skipped.
    """
    items: list[Any] = []
    try:
        with _interrupt_at(deadline, when=lambda: bool(items)):
            for x in keep_iter(it):
                items.append(x)
                if len(items) >= cap or time.monotonic() > deadline:
                    return items, False, None
    except _Stalled:
        return items, False, None
    except Exception as exc:  # user code raises anything: a fact
        return items, False, last_line(exc)
    return items, True, None


# ---------------------------------------------------------------- attribute walk


def walk(
    root: Any, name: str, max_depth: int = 4, max_nodes: int = 4000
) -> Iterator[tuple[str, Any]]:
    """(attribute path, object) for everything reachable from ``root`` through attributes and
    container items; skips modules, classes and functions; bounded in depth and size."""
    import types

    seen: set[int] = set()
    stack: list[tuple[str, Any, int]] = [(name, root, 0)]
    skip = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    nodes = 0
    while stack and nodes < max_nodes:
        path, obj, depth = stack.pop(0)
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        nodes += 1
        yield path, obj
        if depth >= max_depth or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            continue
        children: list[tuple[str, Any]] = []
        if isinstance(obj, dict):
            for i, (k, v) in enumerate(obj.items()):
                if i >= 20:
                    break
                children.append((f"{path}[{k!r}]", v))
        elif isinstance(obj, (list, tuple, set, frozenset)):
            for i, v in enumerate(obj):
                if i >= 20:
                    break
                children.append((f"{path}[{i}]", v))
        else:
            d = getattr(obj, "__dict__", None)
            if isinstance(d, dict) and not _is_array(obj):
                children.extend((f"{path}.{k}", v) for k, v in list(d.items())[:200])
            for slot in getattr(type(obj), "__slots__", ()) or ():
                if isinstance(slot, str) and not slot.startswith("__"):
                    with contextlib.suppress(Exception):
                        children.append((f"{path}.{slot}", getattr(obj, slot)))
        stack.extend((p, c, depth + 1) for p, c in children)


def roots(ctx: ProbeContext) -> list[tuple[str, Any]]:
    """What the workers receive: the dataset, collate_fn and worker_init_fn."""
    out: list[tuple[str, Any]] = [("dataset", ctx.dataset)]
    if ctx.loader is not None:
        out.append(("collate_fn", ctx.loader.collate_fn))
        out.append(("worker_init_fn", ctx.loader.worker_init_fn))
    return out


def _walk_all(ctx: ProbeContext) -> Iterator[tuple[str, Any]]:
    for name, obj in roots(ctx):
        if obj is None:
            continue
        yield from walk(obj, name)
        # Closures (lambdas, partials) hold state too.
        for attr in ("__closure__",):
            cells = getattr(obj, attr, None) or ()
            for i, cell in enumerate(cells):
                with contextlib.suppress(ValueError):
                    yield from walk(cell.cell_contents, f"{name}.<closure {i}>")


# ---------------------------------------------------------------- static probes


# Threads alive in the runner right after TARGET loaded (id → name). Probe forks inherit this:
# after a fork only the forking thread survives, so the fork itself cannot see them.
THREADS_AT_LOAD: dict[int, str] = {}


def snapshot_threads() -> None:
    """Remember the threads running now (call in the runner before forking the probes)."""
    current = threading.current_thread()
    THREADS_AT_LOAD.clear()
    THREADS_AT_LOAD.update(
        {id(t): t.name for t in threading.enumerate() if t is not current and t.is_alive()}
    )


def classify_handle(obj: Any) -> str | None:
    """What fork-unsafe resource ``obj`` is, if it is one and it is open."""
    import io
    import socket
    import sqlite3

    tmod = type(obj).__module__ or ""
    tname = type(obj).__name__
    if tmod.startswith("h5py") and tname in ("File", "Group", "Dataset"):
        with contextlib.suppress(Exception):
            return f"h5py.{tname}" if bool(obj) else None
        return None
    lmdb = sys.modules.get("lmdb")
    lmdb_types = tuple(
        t for t in (getattr(lmdb, n, None) for n in ("Environment", "Transaction", "Cursor")) if t
    )
    if lmdb_types and isinstance(obj, lmdb_types):
        if tname == "Environment":
            try:
                obj.flags()
            except Exception:  # a closed env raises lmdb's own error type
                return None
        return f"lmdb.{tname}"
    if isinstance(obj, sqlite3.Connection):
        try:
            obj.total_changes  # noqa: B018 - raises when the connection is closed
        except Exception:  # a closed connection raises sqlite3's (or a subclass's) own error
            return None
        return "sqlite3.Connection"
    if isinstance(obj, socket.socket):
        return "socket" if obj.fileno() != -1 else None
    if isinstance(obj, io.IOBase):
        if obj.closed or obj in (sys.stdin, sys.stdout, sys.stderr):
            return None
        return f"open file ({tname})"
    if isinstance(obj, threading.Thread):
        return "running thread" if id(obj) in THREADS_AT_LOAD or obj.is_alive() else None
    if tname in ("lock", "RLock", "_RLock") and tmod in ("_thread", "threading"):
        with contextlib.suppress(Exception):
            locked = obj.locked() if hasattr(obj, "locked") else obj._is_owned()
            return "lock held at fork time" if locked else None
        return None
    if tmod.startswith("torch") and getattr(obj, "is_cuda", False) is True:
        return "CUDA tensor"
    return None


def collect_fork_safety(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    handles = []
    for path, obj in _walk_all(ctx):
        kind = classify_handle(obj)
        if kind:
            desc = kind
            fname = getattr(obj, "filename", None) or getattr(obj, "name", None)
            if isinstance(fname, str) and kind != "running thread":
                desc = f"{kind} {fname!r}"
            handles.append({"path": path, "kind": kind, "description": desc})
    return {
        "handles": handles,
        "live_threads": sorted(THREADS_AT_LOAD.values()),
        "start_method": start_method(ctx),
    }


def cuda_state() -> dict[str, Any]:
    """CUDA facts behind one small interface (tests fake torch.cuda.is_initialized)."""
    import torch

    initialized = False
    with contextlib.suppress(Exception):
        initialized = bool(torch.cuda.is_initialized())
    available = False
    with contextlib.suppress(Exception):
        available = bool(torch.cuda.is_available()) if initialized else False
    return {"initialized": initialized, "available": available}


def collect_cuda_in_worker(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    cuda_paths = []
    for path, obj in _walk_all(ctx):
        if type(obj).__module__.startswith("torch") and getattr(obj, "is_cuda", False) is True:
            cuda_paths.append(path)
    return {
        "cuda_tensors": cuda_paths,
        **cuda_state(),
        "start_method": start_method(ctx),
        "num_workers": ctx.target_workers,
    }


class _CountingSink:
    def __init__(self) -> None:
        self.n = 0

    def write(self, b: bytes) -> int:
        self.n += len(b)
        return len(b)


def _cuda_placeholder(shape: tuple[int, ...]) -> None:
    return None


class _SizingPickler(pickle.Pickler):
    """Pickles like spawn would, but never touches CUDA.

    Under spawn a CUDA tensor travels by CUDA IPC, so it is not a pickling culprit (the
    cuda_in_worker probe judges it); serialising it here, in a fork of a process that already
    initialised CUDA, would fail with "CUDA error: initialization error" instead.
    """

    def reducer_override(self, obj: Any) -> Any:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(obj, torch.Tensor) and obj.is_cuda:
            return _cuda_placeholder, (tuple(obj.shape),)
        return NotImplemented


def _pickled_size(obj: Any) -> int:
    sink = _CountingSink()
    _SizingPickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return sink.n


def _pickle_error(obj: Any) -> str | None:
    try:
        _pickled_size(obj)
        return None
    except RecursionError:
        return "RecursionError: too deeply nested to pickle"
    except Exception as exc:  # pickling user objects can raise anything: that is the finding
        return last_line(exc)


def _pickle_children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [(f"[{k!r}]", v) for k, v in list(obj.items())[:500]]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"[{i}]", v) for i, v in enumerate(list(obj)[:500])]
    out: list[tuple[str, Any]] = []
    state: Any = None
    getstate = getattr(type(obj), "__getstate__", None)
    if getstate is not None and getstate is not getattr(object, "__getstate__", None):
        with contextlib.suppress(Exception):
            state = obj.__getstate__()
    if state is None:
        state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        out.extend((f".{k}", v) for k, v in list(state.items())[:500])
    elif isinstance(state, tuple):  # (dict, slots) form
        for part in state:
            if isinstance(part, dict):
                out.extend((f".{k}", v) for k, v in list(part.items())[:500])
    cells = getattr(obj, "__closure__", None) or ()
    for i, cell in enumerate(cells):
        with contextlib.suppress(ValueError):
            out.append((f".<closure {i}>", cell.cell_contents))
    for attr in ("func", "args", "keywords"):  # functools.partial
        if type(obj).__name__ == "partial" and hasattr(obj, attr):
            out.append((f".{attr}", getattr(obj, attr)))
    return out


def find_unpicklable(obj: Any, path: str, depth: int = 0) -> dict[str, Any] | None:
    """The deepest attribute path whose value cannot be pickled, or None if ``obj`` pickles."""
    error = _pickle_error(obj)
    if error is None:
        return None
    if depth < 10:
        for suffix, child in _pickle_children(obj):
            found = find_unpicklable(child, path + suffix, depth + 1)
            if found is not None:
                return found
    value = getattr(obj, "__qualname__", None) or repr(obj)[:120]
    return {"path": path, "value": str(value), "type": _name(type(obj)), "error": error}


def collect_spawn_safety(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    from torch.utils.data._utils.collate import default_collate, default_convert

    culprits = []
    sizes: dict[str, int] = {}
    for name, obj in roots(ctx):
        if obj is None or obj in (default_collate, default_convert):
            continue
        found = find_unpicklable(obj, name)
        if found is not None:
            culprits.append(found)
        else:
            sizes[name] = _pickled_size(obj)
    return {"culprits": culprits, "pickled_bytes": sizes, "start_method": start_method(ctx)}


def _source_mentions(path: str | None, word: str) -> bool | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return word in f.read()
    except OSError:
        return None


def collect_sampler_epoch(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    from torch.utils.data.distributed import DistributedSampler

    if ctx.loader is None:
        return {"loader": False}
    sampler = _sampler_of(ctx.loader)
    if not isinstance(sampler, DistributedSampler):
        return {"loader": True, "distributed": False, "sampler": _name(type(sampler))}
    first = list(iter(sampler))
    second = list(iter(sampler))
    n = len(sampler.dataset)  # type: ignore[arg-type]
    return {
        "loader": True,
        "distributed": True,
        "sampler": _name(type(sampler)),
        "shuffle": bool(sampler.shuffle),
        "same_order_without_set_epoch": first == second,
        "set_epoch_in_source": _source_mentions(ctx.source_file, "set_epoch"),
        "source_file": ctx.source_file,
        "drop_last": bool(sampler.drop_last),
        "num_replicas": int(sampler.num_replicas),
        "dataset_len": n,
        "padding": int(sampler.total_size - n) if not sampler.drop_last else 0,
        "dropped": int(n - sampler.total_size) if sampler.drop_last else 0,
    }


# ---------------------------------------------------------------- sample probes


def _fetch(ctx: ProbeContext, index: int) -> Any:
    return ctx.dataset[index]


def _first_index_error(ctx: ProbeContext, ok_below: int, fails_at: int) -> int:
    """Binary search for the first index that raises IndexError (assumes a failing suffix)."""
    lo, hi = ok_below, fails_at  # lo fetched fine (or -1), hi raised IndexError
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            _fetch(ctx, mid)
            lo = mid
        except IndexError:
            hi = mid
        except Exception:  # user code raises anything: a fact
            lo = mid
    return hi


def _samples_for_contract(
    ctx: ProbeContext, send: Send, k: int
) -> tuple[list[Any], dict[str, Any]]:
    facts: dict[str, Any] = {"style": "iterable" if ctx.iterable else "map", "length": ctx.length}
    samples: list[Any] = []
    if ctx.iterable:
        deadline = time.monotonic() + ctx.timeout * 0.5
        items, complete, err = _iter_capped(iter(ctx.dataset), k, deadline)
        samples = items
        facts.update(fetched=len(items), iter_error=err, exhausted=complete)
        return samples, facts
    n = ctx.length
    if n is None:
        facts["len_error"] = "the dataset has no __len__"
        return samples, facts
    indices = spread_indices(n, k)
    index_errors: list[int] = []
    other_errors = 0
    last_ok = -1
    for i in indices:
        send({"step": f"fetching index {i}"})
        try:
            samples.append(_fetch(ctx, i))
            last_ok = i
        except IndexError:
            index_errors.append(i)
        except Exception:  # user code raises anything: a fact
            other_errors += 1
    first_bad = None
    if index_errors:
        first = index_errors[0]
        prev_ok = max((i for i in indices if i < first and i <= last_ok), default=-1)
        first_bad = _first_index_error(ctx, prev_ok, first)
    facts.update(
        indices_checked=indices,
        fetched=len(samples),
        index_errors=index_errors,
        first_index_error=first_bad,
        other_errors=other_errors,
    )
    return samples, facts


def collect_sample_contract(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    import torch
    from torch.utils.data._utils.collate import default_collate, default_convert

    samples, facts = _samples_for_contract(ctx, send, 32)
    facts["structures"] = [structure(s) for s in samples]
    facts["keys"] = [dict_keys(s) for s in samples]
    loader = ctx.loader
    batched = loader is None or loader.batch_size is not None or loader.batch_sampler is not None
    collate = loader.collate_fn if loader is not None else default_collate
    facts["collate_fn"] = _name(collate)
    facts["default_collate"] = collate in (default_collate, default_convert)
    facts["batched"] = batched
    facts["collate_error"] = None
    facts["float64_fields"] = []
    if samples and batched:
        # A batch as big as the loader's (a custom batch_sampler's own size when it has one).
        bs = None
        if loader is not None:
            bs = loader.batch_size or getattr(loader.batch_sampler, "batch_size", None)
        bs = bs if isinstance(bs, int) and bs > 0 else len(samples)
        batch_size = max(2, min(len(samples), bs))
        try:
            out = collate(samples[:batch_size])
            # Ragged samples further away are as real as in the first batch.
            if len(samples) > batch_size and facts["default_collate"]:
                collate(samples)
            facts["float64_fields"] = [
                p
                for p, leaf in leaves(out, "batch")
                if isinstance(leaf, torch.Tensor) and leaf.dtype == torch.float64
            ]
        except Exception as exc:  # user code raises anything: a fact
            facts["collate_error"] = last_line(exc)
    return facts


def _check_one(ctx: ProbeContext, i: int) -> dict[str, Any] | None:
    try:
        sample = _fetch(ctx, i)
    except Exception as exc:  # user code raises anything: a fact
        return {"index": i, "error": last_line(exc)}
    problems = sample_problems(sample)
    return {"index": i, "problems": problems} if problems else None


class CheckingDataset:
    """Wraps a map-style dataset for the --scan pass: each item is the check result."""

    def __init__(self, dataset: Any, indices: list[int]):
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> tuple[int, Any]:
        i = self.indices[j]
        try:
            sample = self.dataset[i]
        except Exception as exc:  # user code raises anything: a fact
            return (i, {"index": i, "error": last_line(exc)})
        problems = sample_problems(sample)
        return (i, {"index": i, "problems": problems} if problems else None)


def collect_corrupt_samples(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    bad: list[dict[str, Any]] = []
    facts: dict[str, Any] = {"scan": ctx.scan, "bad": bad}
    if ctx.iterable:
        cap = 10_000_000 if ctx.scan else 64
        checked = 0
        last = time.monotonic()
        # Without --scan, a stream that goes quiet before 64 samples (it waits for new data)
        # ends the check with what arrived; --scan is bounded by progress (the runner's stall
        # timeout) instead.
        deadline = math.inf if ctx.scan else time.monotonic() + ctx.timeout * 0.8
        try:
            with _interrupt_at(deadline, when=lambda: checked > 0):
                for sample in ctx.dataset:
                    problems = sample_problems(sample)
                    if problems:
                        bad.append({"index": checked, "problems": problems})
                    checked += 1
                    if time.monotonic() - last > 0.25:
                        last = time.monotonic()
                        send({"progress": checked, "total": None})
                    if checked >= cap:
                        break
        except _Stalled:
            facts["stalled"] = True
        except Exception as exc:  # user code raises anything: a fact
            bad.append({"index": checked, "error": last_line(exc), "stream_position": True})
        facts.update(checked=checked, total=None, stream=True)
        return facts
    n = ctx.length or 0
    indices = list(range(n)) if ctx.scan else spread_indices(n, 64)
    facts.update(total=len(indices), stream=False)
    if not ctx.scan or n < 256 or ctx.workers == 0:
        for k, i in enumerate(indices):
            send({"step": f"fetching index {i}", "progress": k, "total": len(indices)})
            found = _check_one(ctx, i)
            if found:
                bad.append(found)
        facts["checked"] = len(indices)
        return facts
    # --scan: all indices, in parallel, in DataLoader workers; a stall is bounded by the runner.
    loader = build_loader(
        ctx,
        CheckingDataset(ctx.dataset, indices),
        batch_size=None,
        collate_fn=identity,
        num_workers=ctx.workers,
        prefetch_factor=8,
    )
    checked = 0
    last = 0.0
    try:
        for _i, found in keep_iter(loader):
            checked += 1
            if found:
                bad.append(found)
            now = time.monotonic()
            if now - last > 0.2:
                last = now
                nxt = indices[checked] if checked < len(indices) else None
                send(
                    {
                        "progress": checked,
                        "total": len(indices),
                        "step": f"scanning: {checked} of {len(indices)} checked, next index {nxt}",
                    }
                )
    except Exception as exc:  # user code raises anything: a fact
        facts["loader_error"] = last_line(exc)
        facts["stopped_at"] = indices[checked] if checked < len(indices) else None
    send({"progress": checked, "total": len(indices)})
    facts["checked"] = checked
    return facts


def _nbytes(batch: Any) -> tuple[int, int]:
    """(bytes, tensor count) of the tensors and arrays in a batch."""
    total = count = 0
    for _p, leaf in leaves(batch):
        mod = type(leaf).__module__
        if mod.startswith("torch") and _is_array(leaf):
            total += int(leaf.element_size() * leaf.nelement())
            count += 1
        elif mod == "numpy" and _is_array(leaf):
            total += int(leaf.nbytes)
    return total, count


def collect_resources(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    import torch.multiprocessing as tmp

    from dlcheck import host

    loader = ctx.loader
    facts: dict[str, Any] = {}
    if loader is not None:
        dl = build_loader(ctx, num_workers=0)  # the user's batches, in this process
        prefetch = loader.prefetch_factor if loader.num_workers > 0 else None
    else:
        dl = build_loader(ctx, num_workers=0, batch_size=1)
        prefetch = 2
    try:
        batch = next(iter(dl))
        batch_bytes, tensors = _nbytes(batch)
        facts.update(batch_bytes=batch_bytes, tensors_per_batch=tensors, batch_error=None)
    except StopIteration:
        facts.update(batch_bytes=None, tensors_per_batch=None, batch_error="the loader is empty")
    except Exception as exc:  # user code raises anything: a fact
        facts.update(batch_bytes=None, tensors_per_batch=None, batch_error=last_line(exc))
    shm = host.shm_facts()
    nofile = host.nofile_facts()
    cpus = host.cpu_facts()
    facts.update(
        batch_size=loader.batch_size if loader is not None else 1,
        per_sample=loader is None,
        num_workers=ctx.target_workers,
        prefetch_factor=prefetch or 2,
        pin_memory=bool(loader.pin_memory) if loader is not None else False,
        shm_free_bytes=shm.free_bytes,
        shm_total_bytes=shm.total_bytes,
        nofile_soft=nofile.soft,
        sharing_strategy=tmp.get_sharing_strategy(),
        usable_cpus=cpus.usable,
        cpu_limited_by=cpus.limited_by,
        os_cpu_count=cpus.os_cpu_count,
    )
    return facts


# ---------------------------------------------------------------- worker probes


def collect_duplicates(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    if not ctx.iterable:
        return _duplicates_map(ctx)
    # The workers' pass first: they must fork from the dataset as loaded. A stream that
    # consumes a shared queue or cursor (the seed's log source pops its logs) would otherwise
    # reach the workers already drained by the single-process pass.
    send({"step": f"iterating with {ctx.workers} workers"})
    loader = build_loader(
        ctx, ctx.dataset, batch_size=None, collate_fn=worker_fingerprint, num_workers=ctx.workers
    )
    deadline = time.monotonic() + ctx.timeout * 0.45
    tagged, many_complete, many_err = _iter_capped(loader, DUP_CAP * max(1, ctx.workers), deadline)
    reap_workers()  # the 0-worker pass needs neither their CPU nor their memory
    send({"step": "iterating with 0 workers"})
    deadline = time.monotonic() + ctx.timeout * 0.35
    zero, zero_complete, zero_err = _iter_capped(
        (fingerprint(s) for s in ctx.dataset), DUP_CAP, deadline
    )
    return {
        "style": "iterable",
        "workers": ctx.workers,
        # Under --world-size the stream is this rank's shard, whose content may depend on
        # the worker count by design; coverage across ranks is the shard audit's job.
        "world_size": int(os.environ.get("WORLD_SIZE", "1") or 1),
        "zero": zero,
        "zero_complete": zero_complete,
        "zero_error": zero_err,
        "many": [[int(w), f] for w, f in tagged],
        "many_complete": many_complete,
        "loader_error": many_err,
    }


def _duplicates_map(ctx: ProbeContext) -> dict[str, Any]:
    from torch.utils.data import RandomSampler, WeightedRandomSampler

    sampler = _sampler_of(ctx.loader) if ctx.loader is not None else None
    facts: dict[str, Any] = {
        "style": "map",
        "sampler": _name(type(sampler)) if sampler is not None else None,
        "length": ctx.length,
    }
    if sampler is None or ctx.length is None or ctx.length > 2_000_000:
        return facts
    replacement = isinstance(sampler, WeightedRandomSampler) or (
        isinstance(sampler, RandomSampler) and sampler.replacement
    )
    try:
        indices = [int(i) for i in iter(sampler)]
    except Exception as exc:  # user code raises anything: a fact
        facts["sampler_error"] = last_line(exc)
        return facts
    counts = Counter(indices)
    facts.update(
        replacement=replacement,
        sampled=len(indices),
        distinct=len(counts),
        repeated=sum(c - 1 for c in counts.values() if c > 1),
    )
    return facts


def _first_per_worker(
    loader: Any, workers: int, deadline: float
) -> tuple[dict[int, str], str | None]:
    firsts: dict[int, str] = {}
    try:
        for w, f in keep_iter(loader):
            firsts.setdefault(int(w), f)
            if len(firsts) >= workers or time.monotonic() > deadline:
                break
    except Exception as exc:  # user code raises anything: a fact
        return firsts, last_line(exc)
    return firsts, None


def _rng_attributes(ctx: ProbeContext) -> list[dict[str, str]]:
    import random

    found = []
    np_mod = sys.modules.get("numpy")
    torch_mod = sys.modules.get("torch")
    for path, obj in _walk_all(ctx):
        kind = None
        if isinstance(obj, random.Random) and obj is not getattr(random, "_inst", None):
            kind = "random.Random"
        elif np_mod is not None and isinstance(obj, np_mod.random.Generator):
            kind = "numpy.random.Generator"
        elif np_mod is not None and isinstance(obj, np_mod.random.RandomState):
            if obj is not getattr(np_mod.random.mtrand, "_rand", None):
                kind = "numpy.random.RandomState"
        elif (
            torch_mod is not None
            and isinstance(obj, torch_mod.Generator)
            and obj is not torch_mod.default_generator
        ):
            kind = "torch.Generator"
        if kind:
            found.append({"path": path, "type": kind})
    return found


_EMPTY = object()  # next()'s default: a stream that ends before its first sample


def collect_shared_rng(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    workers = max(2, ctx.workers)
    facts: dict[str, Any] = {"workers": workers, "rng_attributes": _rng_attributes(ctx)}
    persistent = bool(ctx.loader.persistent_workers) if ctx.loader is not None else False
    facts["persistent_workers"] = persistent
    facts["iterable"] = ctx.iterable
    if ctx.iterable:
        two_firsts = [next(iter(ctx.dataset), _EMPTY) for _ in range(2)]
        if any(x is _EMPTY for x in two_firsts):
            return {**facts, "random": None, "reason": "the stream yields no sample"}
        a, b = (fingerprint(x) for x in two_firsts)
        facts["what"] = "the first sample of a fresh iterator"
        dataset, sampler = ctx.dataset, None
    else:
        if not ctx.length:
            return {**facts, "random": None, "reason": "the dataset is empty"}
        a = fingerprint(_fetch(ctx, 0))
        b = fingerprint(_fetch(ctx, 0))
        facts["what"] = "index 0"
        dataset, sampler = ctx.dataset, [0] * workers
    facts["random"] = a != b
    if a == b:
        return facts
    loader = build_loader(
        ctx,
        dataset,
        batch_size=None,
        sampler=sampler,
        collate_fn=worker_fingerprint,
        num_workers=workers,
        persistent_workers=persistent,
    )
    epochs = []
    for _epoch in range(2):
        deadline = time.monotonic() + ctx.timeout * 0.3
        firsts, err = _first_per_worker(loader, workers, deadline)
        epochs.append({str(k): v for k, v in sorted(firsts.items())})
        if err:
            facts["loader_error"] = err
            break
    facts["epochs"] = epochs
    return facts


def _uss() -> int | None:
    import psutil

    try:
        return int(psutil.Process().memory_full_info().uss)
    except Exception:  # psutil may lack uss on this platform or be denied: not available
        return None


def collect_memory_growth(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    containers = []
    for path, obj in walk(ctx.dataset, "dataset", max_depth=3):
        n = None
        if isinstance(obj, (list, dict, set, frozenset, tuple)) or type(obj).__name__ == "deque":
            n = len(obj)
        elif _is_array(obj) and type(obj).__module__ == "numpy" and obj.dtype == object:
            n = int(obj.size)
        if n is not None and n >= CONTAINER_MIN_ITEMS:
            # Never copy the container: that would touch (and un-share) every item before
            # the measurement below.
            source = obj.values() if isinstance(obj, dict) else obj
            items = (
                list(obj.ravel()[:200]) if _is_array(obj) else list(itertools.islice(source, 200))
            )
            per_item = sum(sys.getsizeof(x) for x in items) / max(1, len(items))
            est = int(sys.getsizeof(obj) + per_item * n)
            containers.append(
                {"path": path, "type": type(obj).__name__, "items": n, "approx_bytes": est}
            )
    facts: dict[str, Any] = {
        "containers": containers,
        "length": ctx.length,
        "num_workers": ctx.target_workers,
        "measured": False,
    }
    if not containers or ctx.iterable or not ctx.length:
        return facts
    # Confirm in a forked process, like a fork-started worker: touch spread-out samples and
    # measure how much of the inherited memory became private (USS).
    import gc

    gc.collect()
    gc.freeze()  # a collection would touch every tracked object and inflate the figure
    indices = spread_indices(ctx.length, min(ctx.length, 4000))
    before = _uss()
    deadline = time.monotonic() + min(3.0, ctx.timeout * 0.3)
    touched = 0
    for i in indices:
        _fetch(ctx, i)
        touched += 1
        if time.monotonic() > deadline:
            break
    after = _uss()
    if before is not None and after is not None:
        facts.update(
            measured=True,
            touched=touched,
            uss_growth_bytes=max(0, after - before),
        )
    return facts


class ThreadsProbeDataset:
    """Map-style wrapper: fetch one real sample in the worker, then report its thread pools."""

    def __init__(self, dataset: Any, n: int):
        self.dataset = dataset
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        err = None
        before = thread_cpu_times()
        try:
            for j in range(min(8, len(self.dataset))):
                self.dataset[j]
        except Exception as exc:  # user code raises anything: a fact
            err = last_line(exc)
        return thread_facts(err, before)


class ThreadsProbeIterable(IterableDataset):
    """Iterable wrapper: one real sample in the worker, then its thread pools."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __iter__(self) -> Iterator[dict[str, Any]]:
        err = None
        before = thread_cpu_times()
        try:
            for j, _sample in enumerate(self.dataset):
                if j >= 7:
                    break
        except Exception as exc:  # user code raises anything: a fact
            err = last_line(exc)
        yield thread_facts(err, before)


def thread_cpu_times() -> dict[int, float]:
    """CPU seconds used so far by each OS thread of this process."""
    import psutil

    try:
        return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
    except Exception:  # psutil may be denied the thread list: not available
        return {}


def busy_threads(before: dict[int, float], min_cpu_s: float = 0.02) -> int | None:
    """Threads that used CPU since ``before`` (pools that really ran while fetching samples,
    not start-up work or pools that merely exist)."""
    after = thread_cpu_times()
    if not after:
        return None
    return sum(1 for tid, cpu in after.items() if cpu - before.get(tid, 0.0) >= min_cpu_s)


def thread_facts(sample_error: str | None, before: dict[int, float]) -> dict[str, Any]:
    import torch
    from torch.utils.data import get_worker_info

    pools: list[dict[str, Any]] = [
        {"library": "torch", "api": "intra-op", "num_threads": torch.get_num_threads()}
    ]
    try:
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            pools.append(
                {
                    "library": str(p.get("prefix") or p.get("internal_api")),
                    "api": str(p.get("user_api")),
                    "num_threads": int(p.get("num_threads") or 1),
                }
            )
    except Exception:  # psutil may be denied or the worker gone: no worker rows
        pass
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        with contextlib.suppress(Exception):
            pools.append({"library": "opencv", "api": "cv2", "num_threads": cv2.getNumThreads()})
    info = get_worker_info()
    return {
        "worker": info.id if info is not None else -1,
        "pools": pools,
        "busy_threads": busy_threads(before),
        "python_threads": threading.active_count(),
        "sample_error": sample_error,
        "env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
            if k in os.environ
        },
    }


def collect_threads(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    from dlcheck import host

    workers = max(1, ctx.workers)
    if ctx.iterable:
        ds: Any = ThreadsProbeIterable(ctx.dataset)
        loader = build_loader(ctx, ds, batch_size=None, collate_fn=identity, num_workers=workers)
    else:
        ds = ThreadsProbeDataset(ctx.dataset, workers)
        loader = build_loader(ctx, ds, batch_size=None, collate_fn=identity, num_workers=workers)
    reports, _complete, err = _iter_capped(loader, workers, time.monotonic() + ctx.timeout * 0.8)
    return {
        "per_worker": reports,
        "loader_error": err,
        "num_workers": ctx.target_workers,
        "usable_cpus": host.cpu_facts().usable,
    }


def set_seeds(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    np_mod = sys.modules.get("numpy")
    if np_mod is not None:
        np_mod.random.seed(seed)


def batch_fingerprints(ctx: ProbeContext, num_workers: int, k: int = 4) -> dict[str, Any]:
    """Fingerprints of the first ``k`` batches the target delivers with ``num_workers``."""
    set_seeds(ctx.seed)
    if ctx.loader is not None:
        dl = build_loader(ctx, num_workers=num_workers)
    else:
        dl = build_loader(ctx, num_workers=num_workers, batch_size=None if ctx.iterable else 8)

    def batches() -> Iterator[str]:  # lazy: starting the workers may raise too
        for b in keep_iter(dl):
            yield fingerprint(b)

    items, _complete, err = _iter_capped(batches(), k, time.monotonic() + ctx.timeout * 0.4)
    return {"batches": items, "error": err, "num_workers": num_workers}


def _generators(loader: Any) -> list[Any]:
    """The torch.Generators a loader draws from: its own and its sampler's."""
    import torch

    if loader is None:
        return []
    found = [loader.generator, getattr(loader.sampler, "generator", None)]
    inner = getattr(loader.batch_sampler, "sampler", None)
    found.append(getattr(inner, "generator", None))
    unique: dict[int, Any] = {id(g): g for g in found if isinstance(g, torch.Generator)}
    return list(unique.values())


def collect_determinism(ctx: ProbeContext, send: Send) -> dict[str, Any]:
    workers = ctx.target_workers if ctx.target_workers > 0 else ctx.workers
    # Both passes start from the generator states the user's code left, like the second
    # process does: otherwise the 0-worker pass would continue the first pass's shuffle.
    generators = _generators(ctx.loader)
    states = [g.get_state() for g in generators]
    run = batch_fingerprints(ctx, workers)
    for g, state in zip(generators, states, strict=True):
        g.set_state(state)
    zero = batch_fingerprints(ctx, 0) if workers > 0 else None
    return {
        "run": run,
        "zero_workers": zero,
        "seed": ctx.seed,
        "style": "iterable" if ctx.iterable else "map",
    }


COLLECTORS: dict[str, Callable[[ProbeContext, Send], dict[str, Any]]] = {
    "duplicates": collect_duplicates,
    "shared_rng": collect_shared_rng,
    "spawn_safety": collect_spawn_safety,
    "fork_safety": collect_fork_safety,
    "corrupt_samples": collect_corrupt_samples,
    "sample_contract": collect_sample_contract,
    "memory_growth": collect_memory_growth,
    "resources": collect_resources,
    "threads": collect_threads,
    "determinism": collect_determinism,
    "sampler_epoch": collect_sampler_epoch,
    "cuda_in_worker": collect_cuda_in_worker,
}


def _add_module_collectors() -> None:
    from dlcheck.doctor.probes import probe_modules

    COLLECTORS.update({m.SPEC.id: m.collect for m in probe_modules()})


_add_module_collectors()


# ---------------------------------------------------------------- shard audit (one rank)


def patch_distributed(
    rank: int,
    world_size: int,
    *,
    local_rank: int | None = None,
    local_world_size: int | None = None,
) -> None:
    """Make this process look like rank ``rank`` of ``world_size`` to user code (simulated
    ranks all live on one host, so the local rank defaults to the rank)."""
    import torch.distributed as dist

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank if local_rank is None else local_rank),
        LOCAL_WORLD_SIZE=str(world_size if local_world_size is None else local_world_size),
    )
    dist.is_available = lambda: True
    dist.is_initialized = lambda: True
    dist.get_rank = lambda group=None: rank
    dist.get_world_size = lambda group=None: world_size


def rank_samples(
    ctx: ProbeContext, rank: int, world_size: int, *, baseline: bool = False, fetch: int = 0
) -> dict[str, Any]:
    """What rank ``rank`` would read in one epoch: indices (map-style) or fingerprints.

    ``baseline``: the whole stream of an iterable dataset as one process sees it (world size
    1, no workers), which the ranks' shards together should cover. ``fetch``: also fetch the
    first ``fetch`` samples of a map-style shard (a real rank that cannot load its own samples
    is a rank that fails in training); the first exception lands in ``fetch_error``.
    """
    from torch.utils.data.distributed import DistributedSampler

    facts: dict[str, Any] = {"rank": rank, "style": "iterable" if ctx.iterable else "map"}
    if baseline:
        if ctx.iterable:
            fps, complete, err = _iter_capped(
                (fingerprint(s) for s in ctx.dataset), DUP_CAP, time.monotonic() + ctx.timeout * 0.8
            )
            facts.update(samples=fps, complete=complete, error=err)
        return facts
    if ctx.iterable:
        loader = build_loader(
            ctx,
            ctx.dataset,
            batch_size=None,
            collate_fn=worker_fingerprint,
            num_workers=ctx.workers,
        )
        tagged, complete, err = _iter_capped(loader, DUP_CAP, time.monotonic() + ctx.timeout * 0.8)
        facts.update(samples=[f for _w, f in tagged], complete=complete, error=err)
        return facts
    sampler = _sampler_of(ctx.loader) if ctx.loader is not None else None
    if sampler is None:
        sampler = DistributedSampler(ctx.dataset, num_replicas=world_size, rank=rank, shuffle=False)
        facts["sampler_source"] = "assumed DistributedSampler(dataset) (TARGET is a dataset)"
    elif isinstance(sampler, DistributedSampler) and (
        sampler.num_replicas != world_size or sampler.rank != rank
    ):
        # Built with a fixed rank/world size: re-create it as this simulated rank would.
        sampler = DistributedSampler(
            sampler.dataset,
            num_replicas=world_size,
            rank=rank,
            shuffle=sampler.shuffle,
            seed=sampler.seed,
            drop_last=sampler.drop_last,
        )
        facts["sampler_source"] = "the loader's DistributedSampler, re-created per rank"
    else:
        facts["sampler_source"] = f"the loader's {type(sampler).__name__}"
    facts["distributed_sampler"] = isinstance(sampler, DistributedSampler)
    if isinstance(sampler, DistributedSampler):
        facts["padding"] = 0 if sampler.drop_last else int(sampler.total_size - len(ctx.dataset))
        facts["drop_last"] = bool(sampler.drop_last)
    facts["dataset_len"] = ctx.length
    try:
        indices = [int(i) for i in iter(sampler)]
        facts["samples"] = [f"index {i}" for i in indices]
        facts["complete"] = True
    except Exception as exc:  # user code raises anything: a fact
        facts.update(samples=[], complete=False, error=last_line(exc))
        return facts
    for i in indices[:fetch]:
        try:
            _fetch(ctx, i)
        except Exception as exc:  # user code raises anything: a fact
            facts["fetch_error"] = {"index": i, "error": last_line(exc)}
            break
    facts["fetched"] = min(fetch, len(indices))
    return facts
