"""spawn_safety: what the workers receive must pickle under spawn/forkserver.

Under spawn or forkserver (the default on macOS, Windows and Linux with Python 3.14+) every
worker receives the dataset, collate_fn and worker_init_fn pickled: a lambda or an open handle
breaks the DataLoader as it starts its workers. One pickle of each (into a byte counter, never
touching CUDA); for a culprit, the deepest attribute path that does not pickle.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="spawn_safety",
    title="Works under spawn/forkserver",
    detects="dataset, collate_fn or worker_init_fn that cannot be pickled (lambdas, handles)",
    cost="one pickle of the dataset (no sample fetched)",
    touches_samples=False,
    run_order=30,
    list_order=30,
)

FIX = (
    "Replace lambdas and local functions with module-level functions (or "
    "functools.partial of one); open files/handles lazily in the worker instead of "
    "holding them in the dataset; or implement __getstate__ to drop them."
)
FIX_BIG = (
    "Keep the data on disk or in shared memory (numpy.memmap, Arrow, "
    "tensor.share_memory_()) and store only paths in the dataset."
)
BIG_BYTES = 512 << 20  # pickled size above which spawn's start-up copy is worth a warning


@dataclass(frozen=True)
class SpawnSafetyFacts(ProbeFacts):
    """What does not pickle (path, value, type, error) and what pickles to how many bytes."""

    culprits: list[dict[str, Any]] = field(default_factory=list)
    pickled_bytes: dict[str, int] = field(default_factory=dict)  # by root: dataset, collate_fn
    start_method: str = "fork"

    @classmethod
    def example(cls) -> SpawnSafetyFacts:
        culprit = {"path": "dataset.f", "value": "<lambda>", "type": "function", "error": "x"}
        return cls(culprits=[culprit], pickled_bytes={"collate_fn": 40})


FACTS = SpawnSafetyFacts


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


def pickled_size(obj: Any) -> int:
    sink = _CountingSink()
    _SizingPickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return sink.n


def _pickle_error(obj: Any) -> str | None:
    from dlcheck.doctor.facts import last_line

    try:
        pickled_size(obj)
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
        # user code: a __getstate__ that raises falls back to __dict__
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
    from dlcheck.doctor.facts import dotted_name

    error = _pickle_error(obj)
    if error is None:
        return None
    if depth < 10:
        for suffix, child in _pickle_children(obj):
            found = find_unpicklable(child, path + suffix, depth + 1)
            if found is not None:
                return found
    value = getattr(obj, "__qualname__", None) or repr(obj)[:120]
    return {"path": path, "value": str(value), "type": dotted_name(type(obj)), "error": error}


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: pickle each root the workers receive; find the culprit of any that fails."""
    from torch.utils.data._utils.collate import default_collate, default_convert

    from dlcheck.doctor.facts import roots, start_method

    culprits = []
    sizes: dict[str, int] = {}
    for name, obj in roots(ctx):
        if obj is None or obj in (default_collate, default_convert):
            continue
        found = find_unpicklable(obj, name)
        if found is not None:
            culprits.append(found)
        else:
            sizes[name] = pickled_size(obj)
    return SpawnSafetyFacts(
        culprits=culprits, pickled_bytes=sizes, start_method=start_method(ctx)
    ).to_dict()


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Warn under fork (it breaks only under spawn), fail when the workers spawn."""
    from dlcheck.doctor.judge import finding, mb
    from dlcheck.records import Status

    f = SpawnSafetyFacts.from_dict(facts)
    method = f.start_method or "fork"
    culprits = f.culprits
    sizes = f.pickled_bytes
    evidence = f.to_dict()
    text = [f"{name}: pickles to {mb(n)}" for name, n in sizes.items()]
    if not culprits:
        big = {k: v for k, v in sizes.items() if v > BIG_BYTES}
        if big:
            return [
                finding(
                    SPEC.id,
                    Status.WARN,
                    "Picklable, but spawn/forkserver sends "
                    + ", ".join(f"{k} ({mb(v)})" for k, v in big.items())
                    + " to every worker at start-up.",
                    evidence=evidence,
                    evidence_text=text,
                    fix=FIX_BIG,
                )
            ]
        return [
            finding(
                SPEC.id,
                Status.PASS,
                "Everything the workers receive pickles (works under spawn and forkserver).",
                evidence=evidence,
                evidence_text=text,
            )
        ]
    for c in culprits:
        text.insert(0, f"{c['path']} → {c['value']} ({c['type']}): {c['error']}")
    first = culprits[0]
    where = f"`{first['path']}` → `{first['value']}`"
    if method == "fork":
        status = Status.WARN
        lead = (
            f"{where} cannot be pickled: it works with fork, but breaks under spawn/forkserver "
            "(the default start method on macOS, Windows and Linux with Python 3.14+)."
        )
    else:
        status = Status.FAIL
        lead = (
            f"{where} cannot be pickled, and workers start with {method!r}: the DataLoader "
            "fails as soon as it starts its workers."
        )
    return [finding(SPEC.id, status, lead, evidence=evidence, evidence_text=text, fix=FIX)]
