"""sample_contract: ``__len__``, ``__getitem__`` and collation agree.

32 indices spread over the dataset (or the first 32 samples of a stream) are fetched, their
structure recorded (type, dtype and shape of every leaf; the keys of every dict), and one batch
collated with the loader's own collate_fn: an index below ``len`` that raises IndexError, ragged
shapes, keys or dtypes that change between samples and float64 batches come out of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts, absent
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="sample_contract",
    title="len, indexing and collation agree",
    detects="__len__ vs __getitem__, ragged shapes, changing keys/dtypes, float64",
    cost="32 spread indices and one collate call",
    touches_samples=True,
    run_order=50,
    list_order=60,
)

FIX_EMPTY = "Check the path/glob that lists the samples and the filtering in __init__."
FIX_LEN = (
    "Make __len__ return the number of readable samples (e.g. len of the same "
    "list __getitem__ indexes)."
)
FIX_EMPTY_STREAM = "Check what __iter__ reads (paths, filters, worker sharding)."
FIX_RAGGED = (
    "Resize/crop to one shape in the transform, or pass a padding collate_fn "
    "(e.g. `torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)` per field)."
)
FIX_COLLATE = (
    "Return tensors, numpy arrays, numbers, strings or dicts/lists of them, or "
    "write a collate_fn for your sample type."
)
FIX_KEYS = (
    "Return the same keys for every sample (fill missing ones with a "
    "default), or write a collate_fn that merges them."
)
FIX_DTYPE = "Cast each field to one dtype in __getitem__."
FIX_FLOAT64 = (
    "Convert in the dataset: `np.asarray(x, dtype=np.float32)` / "
    "`torch.as_tensor(x, dtype=torch.float32)`; Python floats collate to float64."
)
# A failure here is the root cause of the same exception in the loader probes: they report
# it as a skip then (judge.dedupe_dataset_exceptions).
REPORTS_DATASET_EXCEPTIONS = True


@dataclass(frozen=True)
class SampleContractFacts(ProbeFacts):
    """What fetching and collating the samples showed; which fields exist depends on the path
    (a stream, a dataset without len, a map-style dataset)."""

    style: str | None = None  # "map" | "iterable"
    length: int | None = None
    len_error: str | None = absent()  # map-style without __len__
    indices_checked: list[int] = absent([])  # noqa: RUF009
    fetched: int | None = absent()
    iter_error: str | None = absent()  # a stream that raised
    exhausted: bool = absent(False)  # a stream that ended before the samples asked for
    # checked indices that raised IndexError
    index_errors: list[int] = absent([])  # noqa: RUF009
    first_index_error: int | None = absent()  # the first index (bisected) that does
    other_errors: int = absent(0)  # checked indices that raised anything else
    structures: list[dict[str, dict[str, Any]]] = field(default_factory=list)  # per sample
    keys: list[dict[str, list[str]]] = field(default_factory=list)  # dict keys, per sample
    collate_fn: str | None = None
    default_collate: bool = False
    batched: bool = False
    collate_error: str | None = None
    float64_fields: list[str] = field(default_factory=list)

    @classmethod
    def example(cls) -> SampleContractFacts:
        leaf = {"type": "tensor", "dtype": "torch.float64", "shape": [3]}
        return cls(
            style="map",
            length=100,
            indices_checked=[0, 50, 99],
            fetched=2,
            index_errors=[99],
            first_index_error=90,
            other_errors=0,
            structures=[{"['x']": leaf}, {"['x']": leaf}],
            keys=[{"sample": ["x"]}, {"sample": ["x"]}],
            collate_fn="torch.utils.data._utils.collate.default_collate",
            default_collate=True,
            batched=True,
            float64_fields=["batch['x']"],
        )


FACTS = SampleContractFacts


# ---------------------------------------------------------------- child side


def _leaf_summary(obj: Any) -> dict[str, Any]:
    """Type, dtype and shape of one leaf (what collation cares about)."""
    from dlcheck.doctor.facts import is_array

    mod = type(obj).__module__
    if is_array(obj) and (mod.startswith("torch") or mod == "numpy"):
        kind = "tensor" if mod.startswith("torch") else "ndarray"
        return {"type": kind, "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if mod.startswith("PIL") and hasattr(obj, "size"):
        return {"type": "PIL.Image", "dtype": getattr(obj, "mode", None), "shape": list(obj.size)}
    if isinstance(obj, (list, tuple)):
        return {"type": type(obj).__name__, "dtype": None, "shape": [len(obj)]}
    return {"type": type(obj).__name__, "dtype": None, "shape": None}


def structure(sample: Any) -> dict[str, dict[str, Any]]:
    from dlcheck.doctor.facts import leaves

    return {p: _leaf_summary(v) for p, v in leaves(sample)}


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


def _first_index_error(ctx: Any, ok_below: int, fails_at: int) -> int:
    """Binary search for the first index that raises IndexError (assumes a failing suffix)."""
    from dlcheck.doctor.facts import fetch_sample

    lo, hi = ok_below, fails_at  # lo fetched fine (or -1), hi raised IndexError
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            fetch_sample(ctx, mid)
            lo = mid
        except IndexError:
            hi = mid
        except Exception:  # user code raises anything: a fact
            lo = mid
    return hi


def _fetch_samples(ctx: Any, send: Any, k: int) -> tuple[list[Any], dict[str, Any]]:
    """Up to ``k`` samples, and the facts of fetching them (keyword arguments of the facts)."""
    import time

    from dlcheck.doctor.facts import fetch_sample, iter_capped, spread_indices

    facts: dict[str, Any] = {"style": "iterable" if ctx.iterable else "map", "length": ctx.length}
    samples: list[Any] = []
    if ctx.iterable:
        deadline = time.monotonic() + ctx.timeout * 0.5
        items, complete, err = iter_capped(iter(ctx.dataset), k, deadline)
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
            samples.append(fetch_sample(ctx, i))
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


def _float64_paths(batch: Any) -> Iterator[str]:
    import torch

    from dlcheck.doctor.facts import leaves

    for p, leaf in leaves(batch, "batch"):
        if isinstance(leaf, torch.Tensor) and leaf.dtype == torch.float64:
            yield p


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: fetch spread samples, record their structure, collate one batch."""
    from torch.utils.data._utils.collate import default_collate, default_convert

    from dlcheck.doctor.facts import dotted_name, last_line

    samples, fetched = _fetch_samples(ctx, send, 32)
    # Before collating: a collate_fn may change the samples it is given.
    structures = [structure(s) for s in samples]
    keys = [dict_keys(s) for s in samples]
    loader = ctx.loader
    batched = loader is None or loader.batch_size is not None or loader.batch_sampler is not None
    collate = loader.collate_fn if loader is not None else default_collate
    is_default = collate in (default_collate, default_convert)
    collate_error = None
    float64_fields: list[str] = []
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
            if len(samples) > batch_size and is_default:
                collate(samples)
            float64_fields = list(_float64_paths(out))
        except Exception as exc:  # user code raises anything: a fact
            collate_error = last_line(exc)
    return SampleContractFacts(
        **fetched,
        structures=structures,
        keys=keys,
        collate_fn=dotted_name(collate),
        default_collate=is_default,
        batched=batched,
        collate_error=collate_error,
        float64_fields=float64_fields,
    ).to_dict()


# ---------------------------------------------------------------- judgement


def _field_shapes(structs: list[dict[str, dict[str, Any]]]) -> dict[str, list[Any]]:
    shapes: dict[str, list[Any]] = {}
    for s in structs:
        for path, leaf in s.items():
            if leaf.get("shape") is not None and leaf.get("type") in ("tensor", "ndarray"):
                shapes.setdefault(path, []).append(tuple(leaf["shape"]))
    return {p: v for p, v in shapes.items() if len(set(v)) > 1}


def _key_mismatches(keys: list[dict[str, list[str]]]) -> dict[str, list[list[str]]]:
    seen: dict[str, list[list[str]]] = {}
    for k in keys:
        for path, names in k.items():
            lst = seen.setdefault(path, [])
            if names not in lst:
                lst.append(names)
    return {p: v for p, v in seen.items() if len(v) > 1}


def _dtype_mismatches(structs: list[dict[str, dict[str, Any]]]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for s in structs:
        for path, leaf in s.items():
            if leaf["type"] == "NoneType":  # None is corrupt_samples' finding
                continue
            kind = f"{leaf.get('type')}:{leaf.get('dtype')}" if leaf.get("dtype") else leaf["type"]
            lst = seen.setdefault(path, [])
            if kind not in lst:
                lst.append(kind)
    return {p: v for p, v in seen.items() if len(v) > 1}


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Every way len, indexing and collation disagree; a pass when none does."""
    from dlcheck.doctor.judge import capped, finding
    from dlcheck.records import Status

    probe = SPEC.id
    f = SampleContractFacts.from_dict(facts)
    out: list[Finding] = []
    length = f.length
    evidence = {
        k: v for k, v in f.to_dict().items() if k not in ("structures", "keys", "indices_checked")
    }
    if f.style == "map" and length == 0:
        return [
            finding(
                probe,
                Status.FAIL,
                "The dataset is empty (len 0): the DataLoader yields no batch.",
                evidence=evidence,
                fix=FIX_EMPTY,
            )
        ]
    if f.len_error:
        out.append(finding(probe, Status.WARN, f"len() is not available: {f.len_error}."))
    first_bad = f.first_index_error
    if first_bad is not None:
        out.append(
            finding(
                probe,
                Status.FAIL,
                f"__getitem__({first_bad}) raises IndexError but __len__ is {length}: indices "
                f"{first_bad} to {length - 1 if length else '?'} cannot be read.",
                evidence=evidence,
                evidence_text=[f"IndexError at indices: {capped(f.index_errors)}"],
                fix=FIX_LEN,
            )
        )
    if f.style == "iterable" and f.fetched == 0 and not f.iter_error:
        out.append(
            finding(
                probe,
                Status.FAIL,
                "The IterableDataset yields no sample.",
                evidence=evidence,
                fix=FIX_EMPTY_STREAM,
            )
        )
    structs = f.structures
    ragged = _field_shapes(structs)
    collate_error = f.collate_error
    if collate_error:
        if ragged:
            path, shapes = next(iter(ragged.items()))
            shown = ", ".join(str(s) for s in list(dict.fromkeys(shapes))[:4])
            msg = (
                f"Samples have ragged shapes: field `{path}` has shapes {shown}; "
                f"{f.collate_fn} cannot stack them ({collate_error})."
            )
            fix = FIX_RAGGED
        else:
            msg = f"The samples cannot be collated by {f.collate_fn}: {collate_error}"
            fix = FIX_COLLATE
        out.append(
            finding(
                probe,
                Status.FAIL,
                msg,
                evidence={**evidence, "ragged": {k: v[:8] for k, v in ragged.items()}},
                fix=fix,
            )
        )
    if f.default_collate:
        keysets = _key_mismatches(f.keys)
        if keysets:
            path, sets = next(iter(keysets.items()))
            out.append(
                finding(
                    probe,
                    Status.WARN,
                    f"Dict keys differ between samples at `{path}`: "
                    + " vs ".join("{" + ", ".join(s) + "}" for s in sets[:2])
                    + ". default_collate keeps only the first sample's keys (and fails when "
                    "one is missing).",
                    evidence={**evidence, "key_sets": {k: v[:4] for k, v in keysets.items()}},
                    fix=FIX_KEYS,
                )
            )
        dtypes = _dtype_mismatches(structs)
        if dtypes:
            path, kinds = next(iter(dtypes.items()))
            out.append(
                finding(
                    probe,
                    Status.WARN,
                    f"Field `{path}` changes dtype between samples ({', '.join(kinds)}): the "
                    "batch gets the promoted dtype, or collation fails.",
                    evidence={**evidence, "dtypes": dtypes},
                    fix=FIX_DTYPE,
                )
            )
    f64 = f.float64_fields
    if f64:
        out.append(
            finding(
                probe,
                Status.WARN,
                f"Batches contain float64 tensors ({capped(f64, 4)}): twice the memory and "
                "transfer of float32, and a dtype mismatch with float32 models.",
                evidence=evidence,
                fix=FIX_FLOAT64,
            )
        )
    if not any(x.status in (Status.FAIL, Status.WARN) for x in out):
        text = []
        if ragged:
            text.append(f"ragged fields handled by {f.collate_fn}: {', '.join(ragged)}")
        out.append(
            finding(
                probe,
                Status.PASS,
                f"len, indexing and collation agree over {f.fetched or 0} samples.",
                evidence=evidence,
                evidence_text=text,
            )
        )
    return out
