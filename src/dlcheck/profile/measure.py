"""What runs inside the isolated child processes of `dlcheck profile` (imports torch and user code).

``describe`` resolves TARGET and reports the loader's shape without fetching a sample;
``measure`` rebuilds the loader for one setting, iterates it and returns raw per-batch arrival
times (plus memory, /dev/shm and optional GPU-copy figures). Failures come back as a value
(with the partial trace) rather than an exception, so the parent keeps what was measured.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from dlcheck.profile.failures import describe_collate_failure, explain_exception
from dlcheck.profile.records import EpochTrace, Setting
from dlcheck.profile.stats import (
    MIN_EPOCHS,
    steady_intervals,
    target_batches,
    warmup_batches,
)

Send = Callable[[dict[str, Any]], None]


# ---------------------------------------------------------------- tagged worker failures


class SampleError(Exception):
    """A sample failed to load; the message names its index (survives DataLoader's re-raise)."""


class CollateError(Exception):
    """A batch failed to collate; the message names the field and the shapes."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _collate(fetcher: Any, data: Any, indices: Sequence[Any] | None) -> Any:
    try:
        return fetcher.collate_fn(data)
    except Exception as exc:
        samples = data if isinstance(data, list) else [data]
        raise CollateError(describe_collate_failure(samples, exc, indices)) from exc


def _map_fetch(self: Any, index: Any) -> Any:
    if self.auto_collation:
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems:
            try:
                data = getitems(index)
            except Exception as exc:
                # Find the culprit one by one: the batch call cannot tell which index failed.
                for idx in index:
                    try:
                        self.dataset[idx]
                    except Exception as inner:
                        raise SampleError(f"sample {idx}: {_one_line(inner)}") from inner
                raise SampleError(f"samples {list(index)[:8]}: {_one_line(exc)}") from exc
        else:
            data = []
            for idx in index:
                try:
                    data.append(self.dataset[idx])
                except Exception as exc:
                    raise SampleError(f"sample {idx}: {_one_line(exc)}") from exc
        return _collate(self, data, list(index))
    try:
        data = self.dataset[index]
    except Exception as exc:
        raise SampleError(f"sample {index}: {_one_line(exc)}") from exc
    return _collate(self, data, [index])


def _stream_position(self: Any) -> str:
    pos = getattr(self, "_dlcheck_pos", 0)
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    where = f" of worker {info.id}'s stream" if info is not None else " of the stream"
    return f"item {pos}{where}"


def _next(self: Any) -> Any:
    try:
        item = next(self.dataset_iter)
    except StopIteration:
        raise
    except Exception as exc:
        raise SampleError(f"{_stream_position(self)}: {_one_line(exc)}") from exc
    self._dlcheck_pos = getattr(self, "_dlcheck_pos", 0) + 1
    return item


def _iterable_fetch(self: Any, index: Any) -> Any:
    if self.ended:
        raise StopIteration
    if self.auto_collation:
        data = []
        for _ in index:
            try:
                data.append(_next(self))
            except StopIteration:
                self.ended = True
                break
        if len(data) == 0 or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return _collate(self, data, None)
    return _collate(self, _next(self), None)


def install_fetch_tags() -> None:
    """Make the DataLoader's fetchers name the failing sample index / collate field."""
    from torch.utils.data._utils import fetch

    fetch._MapDatasetFetcher.fetch = _map_fetch  # type: ignore[method-assign]
    fetch._IterableDatasetFetcher.fetch = _iterable_fetch  # type: ignore[method-assign]


class _TaggingWorkerInit:
    """worker_init_fn wrapper: re-installs the tags in spawn/forkserver workers, then the user's."""

    def __init__(self, user_fn: Callable[[int], Any] | None):
        self.user_fn = user_fn

    def __call__(self, worker_id: int) -> None:
        install_fetch_tags()
        if self.user_fn is not None:
            self.user_fn(worker_id)


# ---------------------------------------------------------------- loading and rebuilding


def _load(request: dict[str, Any]) -> Any:
    if "_object" in request:
        return request["_object"]
    from dlcheck.target import load_target, parse_target

    spec = parse_target(request["target"])
    obj = load_target(spec)
    if spec.is_file:
        _importable_for_spawn(spec.source)
    return obj


def _step(request: dict[str, Any]) -> Callable[[Any], Any] | None:
    """The loop body of ``profile --step``/``--step-time``, or None (a bad spec: UsageError)."""
    from dlcheck.profile.step import resolve_step, sleeping_step

    if request.get("step"):
        return resolve_step(request["step"])
    if request.get("step_s"):
        return sleeping_step(float(request["step_s"]))
    return None


def _importable_for_spawn(path: str) -> None:
    """Let spawn/forkserver workers re-import a file TARGET under the name it was loaded as.

    Workers started that way unpickle the dataset by module name (``_dlcheck_target_<stem>``),
    which only exists in this process; a symlink of that name on sys.path (which spawn passes
    on to its children) makes it importable there too.
    """
    import sys
    import tempfile
    from pathlib import Path

    with contextlib.suppress(OSError):
        shim = Path(tempfile.mkdtemp(prefix="dlcheck-target-"))
        link = shim / f"_dlcheck_target_{Path(path).stem}.py"
        link.symlink_to(path)
        sys.path.append(str(shim))


def _short(obj: Any) -> str | None:
    if obj is None:
        return None
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{mod}.{name}" if mod and not mod.startswith("builtins") else name


def describe(request: dict[str, Any], send: Send) -> dict[str, Any]:
    """Resolve TARGET and report the loader's shape (no sample is fetched)."""
    send({"phase": "describe"})
    obj = _load(request)
    _step(request)
    from dlcheck.cuda import get_cuda

    cuda = get_cuda()
    return _shape(obj, cuda.name if cuda is not None else None)


def template(request: dict[str, Any], send: Send) -> None:
    """Build TARGET once, report its shape, then fork one child per setting (a fork server).

    Forking a process that has initialised CUDA is unsafe, so the template never touches the
    device itself (a short forked probe reads its name) and reports whether the user's code did.
    """
    with _heartbeat(send, "load"):
        obj = _load(request)
        _step(request)
        import torch

        install_fetch_tags()
        cuda_in_build = bool(torch.cuda.is_initialized())
        shape = _shape(obj, _probe_cuda_name())
    send({"phase": "ready", "shape": shape, "cuda_initialized": cuda_in_build})
    if cuda_in_build:
        return  # the parent falls back to fresh processes
    from dlcheck.proc import serve_forks

    serve_forks(obj)


def _probe_cuda_name() -> str | None:
    """The CUDA device's name from a forked child, so this process never initialises CUDA."""
    import os

    from dlcheck.cuda import FAKE_ENV, get_cuda

    if os.environ.get(FAKE_ENV):
        cuda = get_cuda()
        return cuda.name if cuda is not None else None
    import torch

    if not torch.cuda.is_available():
        return None
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            cuda = get_cuda()
            os.write(write_fd, (cuda.name if cuda is not None else "").encode()[:4000])
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        name = f.read().decode("utf-8", "replace")
    os.waitpid(pid, 0)
    return name or None


def _shape(obj: Any, cuda_name: str | None) -> dict[str, Any]:
    import torch
    from torch.utils.data import IterableDataset

    from dlcheck.target import is_loader

    loader = obj if is_loader(obj) else None
    ds = loader.dataset if loader is not None else obj
    kind = "iterable" if isinstance(ds, IterableDataset) else "map"
    length = None
    # user code: a __len__ that raises means the length is unknown
    with contextlib.suppress(Exception):
        length = len(ds)
    shape: dict[str, Any] = {
        "kind": kind,
        "is_loader": loader is not None,
        "dataset_type": _short(type(ds)),
        "length": length,
        "batch_size": 64,
        "own_batching": None,
        "cuda": cuda_name is not None,
        "cuda_device": cuda_name,
        "torch_version": torch.__version__,
    }
    if loader is not None:
        from torch.utils.data import DataLoader

        if type(loader) is not DataLoader:
            shape["loader_type"] = _short(type(loader))
        own = None
        if loader.batch_size is None:
            own = "batch_sampler" if loader.batch_sampler is not None else "none"
        ctx = loader.multiprocessing_context
        shape.update(
            batch_size=loader.batch_size,
            own_batching=own,
            num_workers=loader.num_workers,
            pin_memory=bool(loader.pin_memory),
            prefetch_factor=loader.prefetch_factor if loader.num_workers else None,
            persistent_workers=bool(loader.persistent_workers),
            start_method=ctx.get_start_method() if ctx is not None else None,
            sampler=_short(type(loader.sampler)) if kind == "map" else None,
            batch_sampler=_short(type(loader.batch_sampler)) if own == "batch_sampler" else None,
            collate_fn=_short(loader.collate_fn),
            drop_last=bool(loader.drop_last),
        )
    return shape


def build_loader(
    obj: Any,
    setting: Setting,
    shard: Sequence[int] | None = None,
    epoch_batches: int | None = None,
) -> Any:
    """A DataLoader for ``setting`` that keeps everything else the user configured.

    ``epoch_batches`` bounds an epoch of a map-style dataset (its sampler or batch sampler
    is cut short), so whole epochs of a huge dataset fit in a measurement.
    """
    from torch.utils.data import DataLoader, IterableDataset

    from dlcheck.target import is_loader

    s = setting.normalised()
    swept: dict[str, Any] = {
        "num_workers": s.num_workers,
        "pin_memory": s.pin_memory,
        "prefetch_factor": s.prefetch_factor,
        "persistent_workers": s.persistent_workers,
    }
    if s.start_method:
        swept["multiprocessing_context"] = s.start_method
    base = obj if is_loader(obj) else None
    dataset = base.dataset if base is not None else obj
    iterable = isinstance(dataset, IterableDataset)
    kept: dict[str, Any] = {}
    if base is not None:
        kept.update(
            collate_fn=base.collate_fn,
            timeout=base.timeout,
            worker_init_fn=base.worker_init_fn,
            generator=base.generator,
            pin_memory_device=base.pin_memory_device,
        )
        if hasattr(base, "in_order"):
            kept["in_order"] = base.in_order
        if not s.start_method and base.multiprocessing_context is not None:
            kept["multiprocessing_context"] = base.multiprocessing_context
        if base.batch_size is not None:
            kept.update(batch_size=s.batch_size or base.batch_size, drop_last=base.drop_last)
            if not iterable:
                kept["sampler"] = base.sampler
        elif base.batch_sampler is not None:
            kept["batch_sampler"] = base.batch_sampler
        else:
            kept["batch_size"] = None
            if not iterable:
                kept["sampler"] = base.sampler
    else:
        # A bare dataset is loaded the way training loads it: shuffled, in batches.
        kept.update(batch_size=s.batch_size or 64, shuffle=not iterable)
    if shard is not None and not iterable and "batch_sampler" not in kept:
        from torch.utils.data.distributed import DistributedSampler

        rank, world = int(shard[0]), int(shard[1])
        kept.pop("shuffle", None)
        kept["sampler"] = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True)
    if s.num_workers:
        kept["worker_init_fn"] = _TaggingWorkerInit(kept.get("worker_init_fn"))
    if epoch_batches is not None and not iterable:
        if "batch_sampler" in kept:
            kept["batch_sampler"] = _Capped(kept["batch_sampler"], epoch_batches)
        elif kept.get("batch_size") is not None:
            n = epoch_batches * int(kept["batch_size"])
            if kept.pop("shuffle", False):
                kept["sampler"] = _RandomSubset(len(dataset), n)
            else:
                kept["sampler"] = _Capped(kept.get("sampler") or range(len(dataset)), n)
    return DataLoader(dataset, **kept, **swept)


class _Capped:
    """The first ``n`` items of each pass over a sampler (a bounded epoch)."""

    def __init__(self, sampler: Any, n: int):
        self.sampler, self.n = sampler, n

    def __iter__(self) -> Iterator[Any]:
        import itertools

        return itertools.islice(iter(self.sampler), self.n)

    def __len__(self) -> int:
        try:
            return min(self.n, len(self.sampler))
        except TypeError:
            return self.n


class _RandomSubset:
    """``n`` distinct random indices per pass (shuffle=True, without a full permutation)."""

    def __init__(self, size: int, n: int):
        self.size, self.n = size, min(n, size)

    def __iter__(self) -> Iterator[int]:
        import random

        return iter(random.sample(range(self.size), self.n))

    def __len__(self) -> int:
        return self.n


#: Real epochs up to this many batches (the demo's 4,096 images at batch 64) are measured
#: whole, as training runs them; longer ones are bounded.
EPOCH_WHOLE_BATCHES = 64
#: A bounded epoch spans at least this many batches and 4 pipeline depths: enough for a steady
#: rate and the per-epoch overhead, short enough that slow settings still get several epochs.
EPOCH_MIN_BATCHES = 16
EPOCH_DEPTHS = 4


def epoch_cap(setting: Setting) -> int:
    """Batches in a bounded epoch: the overhead is measured on it, then spread (stats)."""
    return max(EPOCH_MIN_BATCHES, EPOCH_DEPTHS * setting.depth)


def _real_epoch(loader: Any) -> tuple[int | None, int | None]:
    """(batches, samples) in one real epoch of ``loader``; None where it has no length."""
    try:
        batches = len(loader)
    except TypeError:
        return None, None
    samples = None
    with contextlib.suppress(TypeError, AttributeError):
        if loader.batch_size is not None:
            samples = len(loader.sampler)
            if loader.drop_last:
                samples = batches * loader.batch_size
    if samples is None:
        samples = batches * (loader.batch_size or 1)
    return batches, samples


# ---------------------------------------------------------------- sampling memory and shm


class _Peaks(threading.Thread):
    """Samples USS/PSS of the main process plus its workers and /dev/shm use, keeping peaks."""

    def __init__(
        self,
        interval_s: float = 0.5,
        limit_bytes: int | None = None,
        shm_limit_bytes: int | None = None,
    ):
        super().__init__(daemon=True, name="dlcheck-peaks")
        self.interval_s = interval_s
        self.uss = 0
        self.pss = 0
        self.shm = 0
        self.limit_bytes = limit_bytes
        self.shm_limit_bytes = shm_limit_bytes
        self.over: str | None = None  # why the budget stopped this setting
        self._stop_evt = threading.Event()
        from dlcheck.host import shm_used_bytes

        self._shm_used = shm_used_bytes
        self._shm_base = shm_used_bytes() or 0

    def sample(self) -> None:
        import psutil

        me = psutil.Process()
        procs = [me]
        with contextlib.suppress(psutil.Error):
            procs += me.children(recursive=True)
        uss = pss = 0
        for p in procs:
            with contextlib.suppress(psutil.Error, OSError, AttributeError):
                info = p.memory_full_info()
                uss += getattr(info, "uss", 0)
                pss += getattr(info, "pss", 0)
        self.uss = max(self.uss, uss)
        self.pss = max(self.pss, pss)
        used = self._shm_used()
        shm = 0
        if used is not None:
            shm = max(0, used - self._shm_base)
            self.shm = max(self.shm, shm)
        # Reading smaps of many workers costs CPU: sample less often as the pool grows
        # (but at least 4 times a second while a budget is watched).
        slowest = 0.25 if self.limit_bytes else 0.5
        self.interval_s = max(slowest, len(procs) / 16) if not self.limit_bytes else slowest
        self._enforce(pss + shm, shm, procs[1:])

    def _enforce(self, held: int, shm: int, workers: list[Any]) -> None:
        """Over the budget: remember why and kill the workers (the loop then stops)."""
        if self.over is not None:
            return
        if self.limit_bytes and held > self.limit_bytes:
            self.over = (
                f"stopped: the process tree held {held / 1e9:.2f} GB (PSS + /dev/shm), over the "
                f"memory budget of {self.limit_bytes / 1e9:.2f} GB"
            )
        elif self.shm_limit_bytes and shm > self.shm_limit_bytes:
            self.over = (
                f"stopped: {shm / 1e9:.2f} GB in /dev/shm, over the /dev/shm budget of "
                f"{self.shm_limit_bytes / 1e9:.2f} GB"
            )
        else:
            return
        import signal

        for w in workers:
            # best effort: the worker may already be gone
            with contextlib.suppress(Exception):
                w.send_signal(signal.SIGKILL)

    def run(self) -> None:
        while not self._stop_evt.wait(self.interval_s):
            # a sample of a vanishing process tree may fail; the next one counts
            with contextlib.suppress(Exception):
                self.sample()

    def stop(self) -> None:
        self._stop_evt.set()


class _CpuMeter:
    """CPU seconds used by the workers (this process's children) and by this process.

    Non-persistent workers exit at the end of each epoch and take their counters with them, so
    they are read right before: when an epoch's last batch arrives, and when measuring stops.
    """

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._last: dict[int, float] = {}
        self.workers_s = 0.0
        self._main0 = self._main()
        self._host0 = self._host()

    def _main(self) -> float:
        t = self._me.cpu_times()
        return float(t.user + t.system)

    def sample_workers(self) -> None:
        # processes come and go while being read; the next sample counts
        with contextlib.suppress(Exception):
            for p in self._me.children(recursive=True):
                try:
                    t = p.cpu_times()
                except self._psutil.Error:
                    continue
                used = float(t.user + t.system)
                prev = self._last.get(p.pid, 0.0)
                if used > prev:
                    self.workers_s += used - prev
                    self._last[p.pid] = used

    def main_s(self) -> float:
        return self._main() - self._main0

    def _host(self) -> float | None:
        """CPU seconds spent so far on the CPUs this process may run on, by anyone."""
        from dlcheck.host import affinity_cpus

        cpus = affinity_cpus()
        if cpus is None:
            return None  # without the CPU ids the others' share stays unknown
        try:
            per = self._psutil.cpu_times(percpu=True)
        except (self._psutil.Error, OSError):
            return None  # likewise without per-CPU counters
        busy = 0.0
        for i in cpus:
            if i < len(per):
                t = per[i]
                # Not idle, not waiting on I/O; steal is time the hypervisor gave elsewhere.
                busy += sum(
                    getattr(t, f, 0.0)
                    for f in ("user", "nice", "system", "irq", "softirq", "steal")
                )
        return busy

    def host_s(self) -> float | None:
        """CPU seconds used on this process's CPUs since it started counting (all processes)."""
        now = self._host()
        return None if now is None or self._host0 is None else now - self._host0


# ---------------------------------------------------------------- measuring one setting


def _nbytes(batch: Any) -> int:
    from dlcheck.cuda import nbytes

    return nbytes(batch)


def _first_leaf(obj: Any, depth: int = 0) -> Any:
    if hasattr(obj, "shape") and not isinstance(obj, (str, bytes)):
        return obj
    if depth > 4:
        return None
    if isinstance(obj, Mapping):
        for v in obj.values():
            leaf = _first_leaf(v, depth + 1)
            if leaf is not None:
                return leaf
    elif isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        for v in obj[:4]:
            leaf = _first_leaf(v, depth + 1)
            if leaf is not None:
                return leaf
    return None


def batch_len(batch: Any, auto_batched: bool, fallback: int) -> int:
    """Samples in one batch: the leading dimension of its first tensor (1 without batching)."""
    if not auto_batched:
        return 1
    # Fast path for the common (tensor, ...) batch: this runs once per batch.
    if type(batch) in (list, tuple) and batch:
        shape = getattr(batch[0], "shape", None)
        if shape is not None and len(shape) >= 1:
            return int(shape[0])
    leaf = _first_leaf(batch)
    shape = getattr(leaf, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    if isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        return len(batch)
    return fallback


class _Plan:
    """When to stop measuring: whole epochs (with workers, when the loader has a length), else
    a fixed steady duration or enough pipeline depths and seconds."""

    def __init__(self, req: dict[str, Any], setting: Setting, *, epochs: bool = False):
        self.duration = req.get("duration_s")
        self.min_s = float(req.get("min_s", 2.0))
        self.max_s = float(req.get("max_s", 6.0))
        self.max_total = float(req.get("max_total_s", 20.0))
        self.depth = setting.depth
        self.workers = setting.num_workers
        self.target = target_batches(self.depth, self.workers)
        self.epochs = epochs
        self.min_epochs = int(req.get("min_epochs", 3))
        # Two whole epochs suffice once this long has passed (repeats add runs, not epochs).
        self.two_epochs_s = float(req.get("two_epochs_s", 4.0))

    def done(
        self,
        steady_batches: int,
        steady_s: float,
        since_first_s: float,
        *,
        now: float = 0.0,
        epochs: int | None = None,
    ) -> bool:
        """``epochs`` (whole epochs so far) is given only at an epoch's end."""
        if self.epochs:
            cap = self.max_total if self.duration is None else max(3 * self.duration, 15.0)
            if now >= cap:
                return True
            if epochs is None:
                return False
            if self.duration is not None:
                return epochs >= MIN_EPOCHS and now >= float(self.duration)
            if epochs >= self.min_epochs and now >= self.min_s:
                return True
            return epochs >= MIN_EPOCHS and now >= self.two_epochs_s
        if self.duration is not None:
            d = float(self.duration)
            return steady_s >= d or since_first_s >= max(3 * d, d + 5)
        if steady_batches >= self.target and steady_s >= self.min_s:
            return True
        return steady_s >= self.max_s or since_first_s >= self.max_total


def _steady_so_far(epoch: EpochTrace, setting: Setting) -> tuple[int, float]:
    runs = steady_intervals(epoch, setting.depth, setting.num_workers)
    return len(runs), sum(d for d, _ in runs)


#: glibc's ceiling for its dynamic mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit).
_MMAP_THRESHOLD_MAX = 32 << 20


def settle_allocator() -> None:
    """Put glibc's allocator in the state a training process is in, before measuring.

    glibc serves a block of at least its mmap threshold (128 KB at start) with fresh pages
    from the kernel, and raises the threshold to the size of any such block that is freed
    (up to 32 MB; trimming starts at twice it). A training step frees tensors of 1-32 MB every
    iteration (activations, gradients), so in training the threshold soon sits near its top
    and samples of a few hundred KB are reused from the heap. A data-only loop frees nothing
    that large, and then whether each batch's samples are page-faulted afresh depends on heap
    layout: measured on 600 KB samples with 0 workers, 1,800 or 3,300 samples/s by the luck of
    the process (8 fresh processes: 4 slow; the same after freeing one 32 MB block: 8 of 8
    fast). Freeing one block just under the ceiling makes every child start where training
    runs, so repeats agree and the figure is training's. Nothing to do elsewhere.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    # best effort: an allocator that cannot be reached is measured as it is
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        block = libc.malloc(_MMAP_THRESHOLD_MAX - (64 << 10))
        if block:
            libc.free(block)


@contextlib.contextmanager
def _heartbeat(send: Send, phase: str, every_s: float = 0.5) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            send({"phase": phase})

    send({"phase": phase})
    t = threading.Thread(target=beat, daemon=True, name="dlcheck-heartbeat")
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def measure(request: dict[str, Any], send: Send) -> dict[str, Any]:
    """Iterate one setting; return raw traces, peaks, GPU figures, or an error with the partials."""
    setting = Setting.from_dict(request["setting"]).normalised()
    # Importing torch and the user's module can take seconds on a busy machine: keep the stall
    # clock (meant for batches) from firing meanwhile. describe() already imported it once.
    with _heartbeat(send, "load"):
        obj = _load(request)
        import torch

        install_fetch_tags()
        settle_allocator()  # workers fork from here and inherit it
        step = _step(request)
        loader = build_loader(obj, setting, request.get("shard"))
        # Rank by whole epochs as training runs them; a huge dataset gets bounded epochs.
        real_batches, real_samples = _real_epoch(loader)
        capped = False
        bound = max(EPOCH_WHOLE_BATCHES, epoch_cap(setting))
        if setting.num_workers and real_batches and real_batches > bound:
            # a loader that cannot be rebuilt capped is measured uncapped
            with contextlib.suppress(Exception):
                loader = build_loader(obj, setting, request.get("shard"), epoch_cap(setting))
                capped = True
    auto_batched = loader.batch_size is not None or loader.batch_sampler is not None
    fallback = loader.batch_size or 1
    plan = _Plan(request, setting, epochs=bool(setting.num_workers and real_batches))
    gpu = None
    if request.get("gpu"):
        from dlcheck.cuda import get_cuda

        gpu = get_cuda()
    h2d_ms: list[float] = []
    h2d_bytes: list[int] = []
    peaks = _Peaks(
        limit_bytes=request.get("max_memory_bytes"), shm_limit_bytes=request.get("max_shm_bytes")
    )
    peaks.start()
    cpu = _CpuMeter()
    epoch_len = None
    with contextlib.suppress(TypeError):
        epoch_len = len(loader)
    batch_bytes = None
    epochs: list[EpochTrace] = []
    loop: list[dict[str, Any]] = []  # with a step: per epoch, the loop's waits and steps
    notes: list[str] = []
    error: dict[str, Any] | None = None
    event_every = float(request.get("event_every_s", 0.25))
    t0 = time.perf_counter()
    last_event = -1.0
    done_batches = 0
    done_s = 0.0
    first_at: float | None = None
    stop = False
    skip = 1 + warmup_batches(setting.depth)
    iterator: Any = None
    try:
        while not stop:
            started = time.perf_counter() - t0
            times: list[float] = []
            sizes: list[int] = []
            complete = False
            ended = None
            waits: list[float] = []
            steps: list[float] = []
            asked = time.perf_counter()  # the first wait includes iter() (worker start-up)
            iterator = iter(loader)
            try:
                while True:
                    try:
                        batch = next(iterator)
                    except StopIteration:
                        complete = True
                        ended = time.perf_counter() - t0
                        break
                    now = time.perf_counter() - t0
                    if gpu is not None and step is not None:
                        # As training moves it; a copy the step must wait for counts as wait.
                        c0 = time.perf_counter()
                        batch = gpu.move(batch, non_blocking=setting.pin_memory)
                        h2d_ms.append(1e3 * (time.perf_counter() - c0))
                        h2d_bytes.append(_nbytes(batch))
                        now = time.perf_counter() - t0
                    elif gpu is not None:
                        ms, copied = gpu.copy(batch, non_blocking=setting.pin_memory)
                        h2d_ms.append(ms)
                        h2d_bytes.append(copied)
                        now = time.perf_counter() - t0
                    times.append(now)
                    sizes.append(batch_len(batch, auto_batched, fallback))
                    if step is not None:
                        waits.append(now + t0 - asked)
                        s0 = time.perf_counter()
                        try:
                            step(batch)
                        # user code raises anything: it is this setting's step error
                        except Exception as exc:
                            raise _StepFailed(_one_line(exc)) from exc
                        if gpu is not None:
                            gpu.synchronize()  # the step's own GPU work is step time, not wait
                        steps.append(time.perf_counter() - s0)
                    # No `del batch`: like `for batch in loader`, the previous batch stays alive
                    # while the next is fetched (freeing it first would flatter large batches).
                    if epoch_len is not None and len(times) == epoch_len:
                        cpu.sample_workers()  # the workers exit with the epoch's end
                    if first_at is None:
                        first_at = now
                        peaks.sample()
                        # best effort: bytes per batch are evidence, not the measurement
                        with contextlib.suppress(Exception):
                            from dlcheck.cuda import nbytes

                            batch_bytes = nbytes(batch)
                    # Incremental (O(1) per batch): fast loaders must not pay for the bookkeeping.
                    n = max(0, len(times) - skip)
                    s = times[-1] - times[skip - 1] if n else 0.0
                    if now - last_event >= event_every or len(times) == 1:
                        last_event = now
                        send(
                            {
                                "phase": "batch",
                                "batches": len(times),
                                "epoch": len(epochs),
                                "steady_batches": done_batches + n,
                                "steady_s": done_s + s,
                            }
                        )
                    if plan.done(done_batches + n, done_s + s, now - first_at, now=now):
                        stop = True
                        cpu.sample_workers()
                        break
                    if peaks.over is not None:
                        raise _OverBudget()
                    asked = time.perf_counter()
            finally:
                epochs.append(
                    EpochTrace(started, tuple(times), tuple(sizes), complete, ended, capped)
                )
                if step is not None and steps:
                    loop.append(
                        {
                            "waits_s": waits[: len(steps)],
                            "steps_s": steps,
                            "samples": sizes[: len(steps)],
                            # From the first batch on, the loop is its waits and its steps
                            # (dlcheck's own bookkeeping between them is not your loop's).
                            "span_s": sum(waits[1 : len(steps)]) + sum(steps),
                        }
                    )
            if not times and not epochs[:-1]:
                raise _Empty()
            if not times:
                # A second pass yields nothing (a one-shot generator): measure what we have.
                notes.append("the dataset yielded nothing on a second pass (iterable only once?)")
                break
            n, s = _steady_so_far(epochs[-1], setting)
            done_batches += n
            done_s += s
            if not stop and complete and first_at is not None:
                # A short epoch: go round again (a new epoch; workers restart unless persistent).
                now = time.perf_counter() - t0
                send({"phase": "epoch", "epoch": len(epochs)})
                whole = sum(1 for e in epochs if e.complete)
                if plan.done(done_batches, done_s, now - first_at, now=now, epochs=whole):
                    stop = True
    except _OverBudget:
        error = _over_budget(peaks.over)
    except _StepFailed as exc:
        error = {
            "kind": "step",
            "message": f"your --step raised {exc}",
            "hint": "Fix the step function (run with -v to see the traceback).",
            "detail": traceback.format_exc(),
        }
    except _Empty:
        error = {
            "kind": "empty",
            "message": _empty_message(loader),
            "hint": "Check the dataset's path/filters; an IterableDataset must yield samples "
            "(with workers, each worker must get a share of the stream).",
        }
    except Exception as exc:
        if peaks.over is not None:  # the watcher killed the workers: not the dataset's fault
            error = _over_budget(peaks.over)
        else:
            error = _failure(exc, setting, iterator)
    finally:
        peaks.stop()
    wall = time.perf_counter() - t0
    # a last sample of a tree that is exiting may fail
    with contextlib.suppress(Exception):
        peaks.sample()
    result: dict[str, Any] = {
        "setting": setting.to_dict(),
        "epochs": [
            {
                "started_s": round(e.started_s, 6),
                "times_s": [round(t, 6) for t in e.times_s],
                "samples": list(e.samples),
                "complete": e.complete,
                "ended_s": None if e.ended_s is None else round(e.ended_s, 6),
                "capped": e.capped,
            }
            for e in epochs
        ],
        "real_epoch_samples": real_samples,
        "cost": {
            "worker_cpu_s": cpu.workers_s,
            "main_cpu_s": cpu.main_s(),
            "host_busy_s": cpu.host_s(),
            "samples": sum(sum(e.samples) for e in epochs),
            "batches": sum(len(e.times_s) for e in epochs),
            "batch_bytes": batch_bytes,
            "wall_s": wall,
        },
        "peak_uss_bytes": peaks.uss or None,
        "peak_pss_bytes": peaks.pss or None,
        "peak_shm_bytes": peaks.shm,
        "error": error,
        "notes": notes,
    }
    if step is not None:
        result["loop"] = loop
    if setting.pin_memory and not torch.cuda.is_available() and gpu is None:
        result["notes"].append("pin_memory has no effect without CUDA")
    if request.get("gpu"):
        result["gpu"] = _gpu_figures(gpu, h2d_ms, h2d_bytes, setting.pin_memory)
    return result


class _OverBudget(Exception):
    pass


class _StepFailed(Exception):
    """The user's --step raised (the message is its one-line summary)."""


def _over_budget(why: str | None) -> dict[str, Any]:
    return {
        "kind": "over_budget",
        "message": why or "stopped: over the memory budget",
        "hint": "Use fewer workers, a smaller prefetch_factor or batch size, or raise "
        "--max-memory.",
    }


def _failure(exc: BaseException, setting: Setting, iterator: Any) -> dict[str, Any]:
    """The error of a setting whose loop raised: one sentence and a hint (tagged failures)."""
    text = "".join(traceback.format_exception_only(type(exc), exc))
    failure = explain_exception(type(exc).__name__, text, num_workers=setting.num_workers)
    if failure.kind == "worker_died":
        # DataLoader only says "exited unexpectedly": ask the dead workers how they ended.
        dead = _dead_workers(iterator)
        if dead:
            failure = explain_exception(type(exc).__name__, dead, num_workers=setting.num_workers)
    return {
        "kind": failure.kind,
        "message": failure.message,
        "hint": failure.hint,
        "detail": traceback.format_exc(),
    }


def _dead_workers(iterator: Any) -> str:
    """DataLoader-style lines for workers that died, with their exit code or signal."""
    import signal

    lines = []
    for w in getattr(iterator, "_workers", None) or []:
        code = None
        # a worker object of another shape: exit code unknown
        with contextlib.suppress(Exception):
            code = w.exitcode
        if code is None or code == 0:
            continue
        if code < 0:
            try:
                desc = signal.strsignal(-code) or f"signal {-code}"
            except ValueError:
                desc = f"signal {-code}"
            lines.append(f"DataLoader worker (pid {w.pid}) is killed by signal: {desc}.")
        else:
            lines.append(
                f"DataLoader worker (pid {w.pid}) exited unexpectedly with exit code {code}."
            )
    return "\n".join(lines)


class _Empty(Exception):
    pass


def _empty_message(loader: Any) -> str:
    ds = loader.dataset
    n = None
    # user code: a __len__ that raises means the length is unknown
    with contextlib.suppress(Exception):
        n = len(ds)
    if n == 0:
        return "the dataset is empty: len(dataset) == 0, so the loader produced no batch"
    if n is not None and loader.drop_last and loader.batch_size and n < loader.batch_size:
        return f"no full batch: {n} samples with batch_size={loader.batch_size} and drop_last=True"
    return "the loader produced no batch: the dataset yielded no samples"


def _gpu_figures(
    gpu: Any, h2d_ms: list[float], h2d_bytes: list[int], pinned: bool
) -> dict[str, Any]:
    if gpu is None:
        return {"available": False, "reason": "no CUDA"}
    if not h2d_ms:
        return {"available": True, "device": gpu.name, "reason": "no batch copied"}
    from dlcheck.profile.stats import median

    ms = median(h2d_ms)
    nbytes = int(median([float(b) for b in h2d_bytes]))
    gbps = (nbytes / 1e9) / (ms / 1e3) if ms > 0 else None
    peak = None
    # no GPU reference figure: the H2D share of peak is left out
    with contextlib.suppress(Exception):
        peak = gpu.reference_gb_per_s(max(nbytes, 1 << 20), pinned=True)
    return {
        "available": True,
        "device": gpu.name,
        "pinned": pinned,
        "h2d_ms_p50": ms,
        "h2d_gb_per_s": gbps,
        "peak_gb_per_s": peak,
        "pct_of_peak": (100 * gbps / peak) if gbps and peak else None,
        "bytes_per_batch": nbytes,
    }


def warmup_for(setting: Setting) -> int:
    """Batches discarded after the first (exported for the benchmark's bare loop)."""
    return warmup_batches(setting.depth)
