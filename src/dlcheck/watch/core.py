"""`dlcheck.watch(loader)`: wrap the loader of your own training loop and time its waits.

The hot path is one generator: two ``perf_counter_ns`` calls and two list appends per batch,
no locks, and the batches are yielded untouched. Everything else happens at the end of an
epoch or when you ask for :meth:`Watch.summary`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from dlcheck.watch.records import WatchSummary
from dlcheck.watch.stats import EpochMarks, summarize, with_ranks

T = TypeVar("T")

#: Set to 1 to silence the end-of-epoch verdict line of every watch.
QUIET_VAR = "DLCHECK_WATCH_QUIET"


class Watch(Generic[T]):
    """An iterable over ``loader`` that records how long each ``next()`` waited.

    Each ``iter()`` is an epoch; iterate it again for the next one (one pass at a time).
    ``len()`` and other attributes (``dataset``, ``sampler``...) are the loader's own.
    """

    def __init__(
        self,
        loader: Iterable[T],
        name: str | None = None,
        output: str | os.PathLike[str] | None = None,
        *,
        verdict: bool = True,
        stream: IO[str] | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
    ):
        self.loader = loader
        self.name = name
        self.output = output
        self.verdict = verdict and os.environ.get(QUIET_VAR, "").strip() not in ("1", "true")
        self._stream = stream
        self._clock = clock
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._epochs: list[EpochMarks] = []

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        # The loader's own attributes (dataset, sampler, batch_size...) read through the watch.
        if name == "loader":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[T]:
        return self._epoch()

    def _epoch(self) -> Iterator[T]:
        clock = self._clock
        add_start, add_end = self._starts.append, self._ends.append
        index = len(self._epochs)
        self._epochs.append(EpochMarks(len(self._starts), clock(), None))
        it = iter(self.loader)  # starts the workers: part of the time to first batch
        t0 = clock()
        for batch in it:
            add_end(clock())
            add_start(t0)
            yield batch
            t0 = clock()
        self._epochs[index] = self._epochs[index]._replace(end_ns=t0)
        self._epoch_done()

    # Marks from outside a generator (the Lightning callback): same lists, same figures.
    def _begin_epoch(self, now_ns: int) -> None:
        self._epochs.append(EpochMarks(len(self._starts), now_ns, None))

    def _batch(self, asked_ns: int, got_ns: int) -> None:
        self._starts.append(asked_ns)
        self._ends.append(got_ns)

    def _end_epoch(self, now_ns: int) -> None:
        if self._epochs and self._epochs[-1].end_ns is None:
            self._epochs[-1] = self._epochs[-1]._replace(end_ns=now_ns)
            self._epoch_done()

    def summary(self, gather: bool = False) -> WatchSummary:
        """The figures so far. ``gather=True`` under torch.distributed is a collective.

        With ``gather=True`` every rank must call it: it exchanges the summaries with
        ``all_gather_object`` and returns this rank's own, with ``ranks`` (every rank's),
        ``slowest_rank`` and ``straggler_ratio`` filled in, on every rank. Without an
        initialised process group it is the same as ``summary()``.
        """
        from dlcheck.watch.distributed import all_gather, dist_rank

        where = dist_rank()
        own = summarize(
            self._starts,
            self._ends,
            self._epochs,
            name=self.name,
            rank=where[0] if where else None,
            world_size=where[1] if where else None,
        )
        if not gather or where is None:
            return own
        return with_ranks(own, all_gather(own))

    def output_path(self) -> Path | None:
        """``output``, with ``{rank}`` filled in; under torch.distributed without ``{rank}``,
        ``-rank<N>`` goes before the suffix so ranks never overwrite each other."""
        if self.output is None:
            return None
        from dlcheck.watch.distributed import dist_rank

        where = dist_rank()
        text = os.fspath(self.output)
        rank = where[0] if where else 0
        if "{rank}" in text:
            return Path(text.replace("{rank}", str(rank)))
        p = Path(text)
        if where is not None and where[1] > 1:
            return p.with_name(f"{p.stem}-rank{rank}{p.suffix}")
        return p

    def _epoch_done(self) -> None:
        if not self.verdict and self.output is None:
            return
        s = self.summary()
        stream = self._stream or sys.stderr
        path = self.output_path()
        if path is not None:
            from dlcheck.errors import DlcheckError
            from dlcheck.output import dumps, write_text_file

            try:
                # Inside a training script a run folder is made on demand (the CLI's
                # --output checks its folder up front instead).
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                write_text_file(path, dumps(s.to_dict()) + "\n")
            except (OSError, DlcheckError) as exc:  # never stop training for a result file
                why = exc.message if isinstance(exc, DlcheckError) else f"{path}: {exc}."
                stream.write(f"dlcheck.watch: cannot write the summary ({why}) Training goes on.\n")
        if self.verdict:
            from dlcheck.watch.render import verdict_line

            stream.write(verdict_line(s) + "\n")
            stream.flush()


def watch(
    loader: Iterable[T],
    name: str | None = None,
    output: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Watch[T]:
    """Wrap ``loader`` in your own loop: ``for batch in dlcheck.watch(train_loader): ...``.

    ``output``: a JSON file (schema ``dlcheck.watch/1``) rewritten after every epoch.
    ``verdict=False`` (or DLCHECK_WATCH_QUIET=1) silences the line printed at each epoch's end.
    """
    return Watch(loader, name, output, **options)
