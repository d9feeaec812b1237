"""Fact collection for the doctor probes. Runs only in child processes (it touches user code).

Each probe's ``collect(ctx, send)`` (in its module under :mod:`dlcheck.doctor.probes`) returns
a JSON-able dict of facts and judges nothing; its ``judge`` turns facts into findings in the
parent. Errors the user's dataset raises are facts too (``"loader_error"``, ``"errors"``);
anything that escapes is a probe crash. This module holds what the probes share: the context,
rebuilding the target's loader, sample helpers, the attribute walk, the seeded passes and the
per-rank shard collection.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from torch.utils.data import IterableDataset

Send = Callable[[dict[str, Any]], None]

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
    # Under a launch, how many ranks share this host's /dev/shm and CPUs (None: one).
    ranks_on_host: int | None = None


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
    # user code: a __len__ that raises means the length is unknown
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
        ranks_on_host=int(options["ranks_on_host"]) if options.get("ranks_on_host") else None,
    )


def start_method(ctx: ProbeContext) -> str:
    """The start method the target's workers would use."""
    import multiprocessing as mp

    mpc = ctx.loader.multiprocessing_context if ctx.loader is not None else None
    if mpc is not None:
        return str(mpc.get_start_method())
    return str(mp.get_start_method(allow_none=True) or mp.get_context().get_start_method())


def dotted_name(obj: Any) -> str:
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
        "dataset_class": dotted_name(type(ctx.dataset)),
        "style": "iterable" if ctx.iterable else "map",
        "length": ctx.length,
        "start_method": start_method(ctx),
        "torch_version": torch.__version__,
    }
    if loader is not None:
        from torch.utils.data import DataLoader

        if type(loader) is not DataLoader:
            info["loader_class"] = dotted_name(type(loader))
        sampler = sampler_of(loader)
        info.update(
            num_workers=loader.num_workers,
            batch_size=loader.batch_size,
            sampler=dotted_name(type(sampler)) if sampler is not None else None,
            collate_fn=dotted_name(loader.collate_fn),
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
    elif isinstance(obj, (list, tuple)) and not is_array(obj):
        if len(obj) > 64 and all(isinstance(x, (int, float, bool)) for x in obj[:64]):
            yield path or "sample", obj
            return
        for i, v in enumerate(obj[:256]):
            yield from leaves(v, f"{path}[{i}]", depth + 1)
    else:
        yield path or "sample", obj


def is_array(obj: Any) -> bool:
    return hasattr(obj, "dtype") and hasattr(obj, "shape")


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
        if not is_array(leaf) or not (mod.startswith("torch") or mod == "numpy"):
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


def sampler_of(loader: Any) -> Any:
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
            # best effort: a worker may already be gone
            with contextlib.suppress(Exception):
                w.kill()
        for w in getattr(it, "_workers", None) or ():
            # best effort: a worker may already be gone
            with contextlib.suppress(Exception):
                w.join(timeout=1.0)
    _KEEP_ALIVE.clear()


class Stalled(BaseException):
    """Raised by SIGALRM at a pass's deadline; a BaseException so user code that catches
    Exception does not swallow it."""


@contextlib.contextmanager
def interrupt_at(deadline: float, when: Callable[[], bool]) -> Iterator[None]:
    """Raise Stalled in the main thread at ``deadline`` (time.monotonic()) if ``when()``,
    even while the dataset blocks (a stream that sleeps until new data arrives).

    An alarm an entry point already set (its whole-process bound) is re-armed afterwards.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        if when():
            raise Stalled

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


def iter_capped(it: Any, cap: int, deadline: float) -> tuple[list[Any], bool, str | None]:
    """Up to ``cap`` items from ``it`` before ``deadline``: (items, complete, error).

    A stream that stops delivering (the seed's log stream sleeps while no log is queued) ends
    the pass at the deadline with what arrived so far. A stream that delivers nothing at all
    hangs on, into the probe's timeout: that is a hang, reported once, and the probes after it
    that fetch samples are skipped.
    """
    items: list[Any] = []
    try:
        with interrupt_at(deadline, when=lambda: bool(items)):
            for x in keep_iter(it):
                items.append(x)
                if len(items) >= cap or time.monotonic() > deadline:
                    return items, False, None
    except Stalled:
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
            if isinstance(d, dict) and not is_array(obj):
                children.extend((f"{path}.{k}", v) for k, v in list(d.items())[:200])
            for slot in getattr(type(obj), "__slots__", ()) or ():
                if isinstance(slot, str) and not slot.startswith("__"):
                    # user code: a slot whose getter raises is simply not walked
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


def walk_all(ctx: ProbeContext) -> Iterator[tuple[str, Any]]:
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


# ---------------------------------------------------------------- what the runner saw


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


# ---------------------------------------------------------------- samples and workers


def fetch_sample(ctx: ProbeContext, index: int) -> Any:
    return ctx.dataset[index]


class OnceInEachWorker(IterableDataset):
    """Yields ``fn(dataset)`` once in each DataLoader worker: a probe's measurement made
    inside the workers of an IterableDataset. Here rather than in the probe's module because
    it subclasses torch's class, and a probe module imports with the stdlib only; ``fn`` is a
    module-level function, so it pickles under spawn."""

    def __init__(self, dataset: Any, fn: Callable[[Any], Any]):
        self.dataset = dataset
        self.fn = fn

    def __iter__(self) -> Iterator[Any]:
        yield self.fn(self.dataset)


# ---------------------------------------------------------------- seeded passes


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

    items, _complete, err = iter_capped(batches(), k, time.monotonic() + ctx.timeout * 0.4)
    return {"batches": items, "error": err, "num_workers": num_workers}


# ---------------------------------------------------------------- the probes' collectors


def _module_collectors() -> dict[str, Callable[[ProbeContext, Send], dict[str, Any]]]:
    from dlcheck.doctor.probes import probe_modules

    return {m.SPEC.id: m.collect for m in probe_modules()}


# One per probe: its module's ``collect(ctx, send) -> dict`` (doctor/probes/<id>.py).
COLLECTORS: dict[str, Callable[[ProbeContext, Send], dict[str, Any]]] = _module_collectors()


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
            fps, complete, err = iter_capped(
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
        tagged, complete, err = iter_capped(loader, DUP_CAP, time.monotonic() + ctx.timeout * 0.8)
        facts.update(samples=[f for _w, f in tagged], complete=complete, error=err)
        return facts
    sampler = sampler_of(ctx.loader) if ctx.loader is not None else None
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
            fetch_sample(ctx, i)
        except Exception as exc:  # user code raises anything: a fact
            facts["fetch_error"] = {"index": i, "error": last_line(exc)}
            break
    facts["fetched"] = min(fetch, len(indices))
    return facts
