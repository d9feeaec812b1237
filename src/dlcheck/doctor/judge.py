"""Pure judgement: probe facts (plain dicts from the children) → findings.

Nothing here imports torch or touches user code; every function is unit-tested from fake facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from dlcheck.doctor.records import INTERNAL, PROBES_BY_ID, Finding
from dlcheck.records import Status

SCREEN_CAP = 10  # bad indices listed on screen; JSON has all of them

Facts = dict[str, Any]


def _mb(n: float | None) -> str:
    if n is None:
        return "?"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{int(n)} B"


def _finding(probe: str, status: Status, message: str, **kw: Any) -> Finding:
    return Finding(
        probe=probe, status=status, title=PROBES_BY_ID[probe].title, message=message, **kw
    )


def _capped(items: Sequence[Any], cap: int = SCREEN_CAP) -> str:
    shown = ", ".join(str(x) for x in items[:cap])
    # "and N more", not "…": an ellipsis on screen reads as text cut off by the terminal.
    return shown + (f" and {len(items) - cap} more" if len(items) > cap else "")


# ---------------------------------------------------------------- failures of the probe itself


def judge_failure(probe: str, failure: Facts, timeout: float) -> Finding:
    """A probe child that hung, was killed or crashed."""
    step = failure.get("last_step")
    where = f" (last step: {step})" if step else ""
    evidence = {k: v for k, v in failure.items() if k not in ("detail", "stderr_tail")}
    text = [f"last step: {step}"] if step else []
    if failure.get("timed_out"):
        return _finding(
            probe,
            Status.FAIL,
            f"The dataset did not finish within {timeout:g} s{where}: a sample fetch or a "
            "worker hangs (or is far too slow).",
            evidence=evidence,
            evidence_text=text,
            fix="Find where it blocks with `py-spy dump --pid <pid>` while iterating the loader "
            "(locks, network reads, a queue that is never filled); raise --timeout if the "
            "dataset is just slow.",
        )
    if failure.get("signal") or (failure.get("returncode") not in (None, 0, 3)):
        cause = failure.get("signal") or f"exit code {failure.get('returncode')}"
        return _finding(
            probe,
            Status.FAIL,
            f"The process running the dataset died ({cause}){where}: the dataset crashes "
            "the interpreter (segfault, os._exit, out of memory).",
            evidence=evidence,
            evidence_text=text,
            fix="Fetch the failing index in a plain Python shell under `python -X faulthandler` "
            "to see where it dies; check `dmesg` for the OOM killer.",
        )
    message = str(failure.get("message") or "")
    if "DataLoader worker" in message and (
        "exited unexpectedly" in message or "killed by signal" in message
    ):
        return _loader_error_finding(probe, message, "the probe ran")
    if failure.get("origin") == "user":
        # The dataset's own exception, raised where the probe did not expect one.
        raised_in = failure.get("where")
        return _finding(
            probe,
            Status.FAIL,
            f"The dataset raised while the probe ran: {message}",
            evidence={
                **evidence,
                "loader_error": message,
                "cause": "dataset_exception",
                "traceback": failure.get("detail"),  # shown with -v
            },
            evidence_text=[f"raised in {raised_in}"] if raised_in else [],
            fix="Fix the exception (-v shows the traceback; `corrupt_samples` lists the "
            "indices that fail).",
        )
    return internal_error(
        probe,
        message or "the probe process failed without a message",
        where=failure.get("where"),
        traceback=failure.get("detail"),
        evidence=evidence,
    )


INTERNAL_FIX = (
    "This is a dlcheck bug: please report it (https://github.com/dlcheck/dlcheck/issues); "
    "run with -v for the traceback."
)


def internal_error(
    probe: str,
    exception: str,
    *,
    where: str | None = None,
    traceback: str | None = None,
    evidence: Facts | None = None,
) -> Finding:
    """A probe that crashed inside dlcheck: status error, labelled as dlcheck's own bug."""
    return _finding(
        probe,
        Status.ERROR,
        f"dlcheck's own error, not a finding about your data: {exception}",
        evidence=dict(evidence or {}),
        evidence_text=[f"raised in {where}"] if where else [],
        fix=INTERNAL_FIX,
        error={"kind": INTERNAL, "exception": exception, "where": where, "traceback": traceback},
    )


def skipped_after_hang(probe: str, hung_in: str) -> Finding:
    return _finding(
        probe,
        Status.SKIP,
        f"Not run: the dataset already hung in `{hung_in}`.",
        evidence={"hung_in": hung_in},
    )


def _loader_error_finding(probe: str, error: str, what: str) -> Finding:
    died = "exited unexpectedly" in error or "killed by signal" in error
    timed_out = "timed out after" in error
    if "pickle" in error.lower():
        msg = f"The workers could not start while {what}: {error}"
        fix = "See `spawn_safety`: everything the workers receive must pickle under spawn."
    elif died:
        msg = f"A DataLoader worker died while {what}: {error}"
        fix = (
            "A worker was killed (segfault, os._exit or the OOM killer): fetch samples with "
            "num_workers=0 to see the real error; check `dmesg` and /dev/shm size."
        )
    elif timed_out:
        msg = f"A DataLoader worker hung while {what}: {error}"
        fix = "Find where the worker blocks with `py-spy dump`; raise --timeout if it is just slow."
    else:
        msg = f"The dataset raised while {what}: {error}"
        fix = "Fix the exception (see `corrupt_samples` for the failing indices)."
        # The service downgrades this to a skip when corrupt_samples/sample_contract already
        # report the same root cause.
        return _finding(
            probe,
            Status.FAIL,
            msg,
            evidence={"loader_error": error, "cause": "dataset_exception"},
            fix=fix,
        )
    return _finding(probe, Status.FAIL, msg, evidence={"loader_error": error}, fix=fix)


def dedupe_dataset_exceptions(findings: list[Finding]) -> list[Finding]:
    """One failure per root cause: a loader probe that stopped on the dataset's own exception
    becomes a skip when corrupt_samples or sample_contract already failed."""
    root = any(
        f.status is Status.FAIL and f.probe in ("corrupt_samples", "sample_contract")
        for f in findings
    )
    if not root:
        return findings
    for f in findings:
        if f.status is Status.FAIL and f.evidence.get("cause") == "dataset_exception":
            f.status = Status.SKIP
            f.message = "Not checked: " + f.message[0].lower() + f.message[1:]
            f.fix = None
    return findings


# ---------------------------------------------------------------- duplicates


def judge_duplicates(f: Facts) -> list[Finding]:
    if f.get("style") == "map":
        return [_judge_duplicates_map(f)]
    if f.get("zero_error") and not f.get("zero"):
        return [_loader_error_finding("duplicates", f["zero_error"], "iterating with 0 workers")]
    zero: list[str] = f.get("zero", [])
    many: list[list[Any]] = f.get("many", [])
    workers = f.get("workers", 2)
    c0 = Counter(zero)
    cn: Counter[str] = Counter()
    by_worker: dict[str, set[int]] = {}
    per_worker: Counter[int] = Counter()
    for w, fp in many:
        cn[fp] += 1
        by_worker.setdefault(fp, set()).add(int(w))
        per_worker[int(w)] += 1
    # A sample repeated inside the single-process stream is repeated data, not sharding.
    dup = [fp for fp, ws in by_worker.items() if len(ws) > 1 and c0.get(fp, 0) <= 1]
    extra = sum(cn[fp] - 1 for fp in dup)
    evidence: Facts = {
        "workers": workers,
        "samples_0_workers": len(zero),
        "samples_n_workers": len(many),
        "per_worker": {str(k): v for k, v in sorted(per_worker.items())},
        "duplicated_samples": len(dup),
        "extra_deliveries": extra,
        "complete": bool(f.get("zero_complete") and f.get("many_complete")),
    }
    text = [
        f"0 workers: {len(zero)} samples; {workers} workers: {len(many)} samples "
        f"(per worker: {', '.join(f'#{k}: {v}' for k, v in sorted(per_worker.items()))})"
    ]
    if not (f.get("zero_complete") and f.get("many_complete")):
        text.append(f"stopped after {len(zero)} / {len(many)} samples (cap or time budget)")
    if f.get("loader_error") and not many:
        return [
            _loader_error_finding(
                "duplicates", f["loader_error"], f"iterating with {workers} workers"
            )
        ]
    if dup:
        share = len(dup) / max(1, len(set(cn)))
        text.append(
            f"{len(dup)} distinct samples were delivered by more than one worker "
            f"({extra} extra deliveries, {share:.0%} of what the workers delivered)"
        )
        return [
            _finding(
                "duplicates",
                Status.FAIL,
                f"{len(dup)} samples were delivered by more than one worker: every worker "
                "iterates the whole IterableDataset, so each epoch repeats the data "
                f"{workers}×.",
                evidence=evidence,
                evidence_text=text,
                fix="Shard the stream in __iter__: `info = torch.utils.data.get_worker_info()`; "
                "when it is not None, yield only items `i` with `i % info.num_workers == "
                "info.id` (or split the file list by `info.id`).",
            )
        ]
    if f.get("zero_complete") and f.get("many_complete") and zero and f.get("world_size", 1) <= 1:
        overlap = sum((c0 & cn).values()) / max(1, len(zero))
        evidence["overlap"] = round(overlap, 3)
        missing = sum((c0 - cn).values())
        evidence["missing"] = missing
        if missing and overlap >= 0.5:
            text.append(f"{missing} samples of the single-process stream never arrived")
            return [
                _finding(
                    "duplicates",
                    Status.WARN,
                    f"{missing} of {len(zero)} samples are missing with {workers} workers: the "
                    "worker shards do not cover the stream.",
                    evidence=evidence,
                    evidence_text=text,
                    fix="Make the per-worker shards cover everything: e.g. "
                    "`per_worker = math.ceil(n / info.num_workers)` and clamp the last "
                    "shard's end to n.",
                )
            ]
        if overlap < 0.5:
            text.append("samples differ between runs (random data): coverage not compared")
    return [
        _finding(
            "duplicates",
            Status.PASS,
            f"Each sample came from one worker ({len(many)} samples with {workers} workers).",
            evidence=evidence,
            evidence_text=text,
        )
    ]


def _judge_duplicates_map(f: Facts) -> Finding:
    evidence = {k: v for k, v in f.items() if k != "style"}
    if f.get("sampler_error"):
        return _loader_error_finding("duplicates", f["sampler_error"], "iterating the sampler")
    repeated = f.get("repeated", 0)
    if repeated and not f.get("replacement"):
        return _finding(
            "duplicates",
            Status.WARN,
            f"The sampler yields {repeated} repeated indices in one epoch "
            f"({f.get('distinct')} distinct of {f.get('sampled')}).",
            evidence=evidence,
            evidence_text=[f"sampler: {f.get('sampler')}"],
            fix="Check the custom sampler's __iter__: each index once per epoch, unless you "
            "mean to sample with replacement.",
        )
    return _finding(
        "duplicates",
        Status.PASS,
        "Map-style: the main process hands each index to exactly one worker.",
        evidence=evidence,
        evidence_text=[f"sampler: {f.get('sampler')}"] if f.get("sampler") else [],
    )


# ---------------------------------------------------------------- shard audit (ranks)


def audit_rank_shards(
    per_rank: Mapping[int, Sequence[Hashable]],
    *,
    dataset_len: int | None = None,
    padding: int = 0,
    style: str = "iterable",
    source: str | None = None,
    simulated: bool = True,
    expected: Sequence[Hashable] | None = None,
    stream: Sequence[Hashable] | None = None,
) -> list[Finding]:
    """Judge what each rank read in one epoch (indices or sample fingerprints).

    Pure: ``per_rank`` maps rank → what it delivered. Reports samples read by more than one
    rank (fail, beyond ``padding`` that a DistributedSampler adds on purpose), coverage of
    ``dataset_len`` indices (map-style) or of ``expected`` (an iterable's whole stream as one
    process reads it), and uneven per-rank lengths (which hang DDP collectives). ``stream``:
    what one process read of that stream, even if not to its end (``expected`` when None).
    """
    ranks = sorted(per_rank)
    world = len(ranks)
    owners: dict[Hashable, set[int]] = {}
    repeated_within: set[Hashable] = set()
    # A sample that repeats within one rank's stream is data (equal samples), not a sharding
    # bug, and tells nothing about overlap: unless the stream read by one process has it only
    # once, when the repeats come from workers that each replay the stream.
    one_process = Counter(stream if stream is not None else (expected or []))
    for r in ranks:
        counts = Counter(per_rank[r])
        for item, c in counts.items():
            owners.setdefault(item, set()).add(r)
            once_in_data = one_process.get(item) == 1
            if c > 1 and style == "iterable" and not once_in_data:
                repeated_within.add(item)
    shared = [x for x, rs in owners.items() if len(rs) > 1 and x not in repeated_within]
    unjudged = sum(1 for x, rs in owners.items() if len(rs) > 1 and x in repeated_within)
    lengths = {str(r): len(per_rank[r]) for r in ranks}
    how = "simulated" if simulated else "real"
    evidence: Facts = {
        "world_size": world,
        "simulated": simulated,
        "per_rank_samples": lengths,
        "shared_samples": len(shared),
        "distinct_samples": len(owners),
        "style": style,
    }
    if source:
        evidence["sampler"] = source
    text = [f"{how} ranks: " + ", ".join(f"rank {r}: {lengths[str(r)]}" for r in ranks)]
    if source:
        text.append(f"sampler: {source}")
    findings: list[Finding] = []
    title = f"Shards across {world} ranks"

    def add(status: Status, message: str, fix: str | None = None) -> None:
        findings.append(
            Finding(
                probe="duplicates",
                status=status,
                title=title,
                message=message,
                evidence=evidence,
                evidence_text=text,
                fix=fix,
            )
        )

    if world < 2:
        add(Status.SKIP, "Shard audit needs at least 2 ranks.")
        return findings
    if shared:
        pairs = Counter(tuple(sorted(owners[x])) for x in shared)
        evidence["shared_by_ranks"] = {",".join(map(str, k)): v for k, v in sorted(pairs.items())}
        text.append(
            "shared: "
            + "; ".join(
                f"ranks {', '.join(map(str, k))}: {v}" for k, v in sorted(pairs.items())[:6]
            )
        )
        if len(shared) <= padding:
            add(
                Status.INFO,
                f"{len(shared)} samples appear on two ranks: DistributedSampler pads the last "
                "batch so that every rank gets the same count (eval metrics count them twice).",
                "For exact evaluation, drop the duplicated tail or gather predictions by index.",
            )
        else:
            every = all(len(owners[x]) == world for x in shared)
            share = len(shared) / max(1, len(owners))
            if style == "map":
                fix = (
                    "Use `DistributedSampler(dataset)` (and call `sampler.set_epoch(epoch)`) "
                    "so that each rank reads its own 1/world_size of the indices."
                )
            else:
                fix = (
                    "Shard by rank and worker in __iter__: with `rank = "
                    "torch.distributed.get_rank()`, `world = torch.distributed.get_world_size()`"
                    " and `info = torch.utils.data.get_worker_info()`, keep item `i` when "
                    "`i % (world * info.num_workers) == rank * info.num_workers + info.id`."
                )
            add(
                Status.FAIL,
                f"{len(shared)} samples ({share:.0%}) were delivered to more than one rank"
                + (" — every rank reads the same data" if every else "")
                + f": with {world} ranks each epoch trains on duplicates.",
                fix,
            )
    if style == "map" and dataset_len:
        covered = {x for x in owners}
        missing = max(0, dataset_len - len(covered))
        evidence["coverage"] = round(len(covered) / dataset_len, 4)
        evidence["missing_indices"] = missing
        if missing:
            text.append(f"coverage: {len(covered)} of {dataset_len} indices")
            status = Status.INFO if missing < world else Status.WARN
            add(
                status,
                f"{missing} of {dataset_len} indices are read by no rank"
                + (" (drop_last drops the uneven tail)" if missing < world else "")
                + ".",
                None
                if missing < world
                else "Make the rank shards cover the dataset (DistributedSampler does).",
            )
    if style != "map" and expected:
        want = set(expected)
        got = want & set(owners)
        missing = len(want) - len(got)
        evidence["coverage"] = round(len(got) / len(want), 4)
        evidence["missing_samples"] = missing
        # Random streams share nothing with a separate pass: coverage cannot be judged.
        if missing and len(got) >= len(want) / 2:
            text.append(f"coverage: {len(got)} of {len(want)} samples of the whole stream")
            add(
                Status.WARN,
                f"{missing} of {len(want)} samples of the whole stream are read by no rank.",
                "Make the rank × worker shards cover the stream: keep item `i` when `i % "
                "(world * num_workers) == rank * num_workers + worker_id`.",
            )
    if len(set(lengths.values())) > 1:
        lo, hi = min(lengths.values()), max(lengths.values())
        add(
            Status.WARN,
            f"Ranks deliver different numbers of samples ({lo} to {hi}): the rank that runs out "
            "first stops calling collectives and DDP hangs at the end of the epoch.",
            "Give every rank the same number of samples (DistributedSampler pads; for "
            "iterables, truncate each rank to the minimum or use `Join`).",
        )
    if not findings and unjudged:
        add(
            Status.INFO,
            f"{unjudged} samples reached several ranks but also repeat within one rank's "
            "stream (equal samples), so whether the ranks share them is not judged.",
        )
    if not findings:
        add(
            Status.PASS,
            f"Each sample went to exactly one of {world} {how} ranks, with equal counts.",
        )
    return findings


def judge_ranks(
    ranks: Mapping[int, Facts | None],
    failures: Mapping[int, Facts],
    *,
    simulated: bool = True,
    baseline: Facts | None = None,
) -> list[Finding]:
    """Shard-audit findings from per-rank facts (``facts.rank_samples`` of each rank), or one
    fail per rank that could not read its shard (then the overlap audit is not judged: it would
    compare incomplete shards)."""
    found = [_rank_failure(r, fail) for r, fail in sorted(failures.items())]
    facts = {r: f for r, f in ranks.items() if f is not None and r not in failures}
    for r, f in sorted(facts.items()):
        fetch = f.get("fetch_error")
        # A simulated rank that raised after some samples keeps its partial stream (the audit
        # still tells something); a real rank that raised is a rank that fails in training.
        if f.get("error") and (not f.get("samples") or not simulated):
            where = "" if not f.get("samples") else f" after {len(f['samples'])} samples"
            found.append(
                Finding(
                    probe="duplicates",
                    status=Status.FAIL,
                    title="Shards across ranks",
                    message=f"Rank {r} raised while reading its shard{where}: {f['error']}",
                    evidence={"rank": r, "error": f["error"]},
                    fix="Check how the dataset reads the rank (torch.distributed / RANK env).",
                )
            )
        elif fetch:
            found.append(
                Finding(
                    probe="duplicates",
                    status=Status.FAIL,
                    title="Shards across ranks",
                    message=f"Rank {r} raised fetching index {fetch['index']} of its shard: "
                    f"{fetch['error']}",
                    evidence={"rank": r, **fetch},
                    fix=f"Fetch that index with RANK={r} set (as that rank does) to see the "
                    "error; check how the dataset uses the rank (torch.distributed / RANK env).",
                )
            )
    if found:
        return found
    first = next(iter(facts.values()), {})
    iterable_baseline = (baseline or {}).get("style") == "iterable"
    return audit_rank_shards(
        {r: f.get("samples", []) for r, f in facts.items()},
        dataset_len=first.get("dataset_len"),
        padding=int(first.get("padding") or 0),
        style=first.get("style", "iterable"),
        source=first.get("sampler_source"),
        simulated=simulated,
        expected=_complete_stream(baseline, facts),
        stream=(baseline or {}).get("samples") if iterable_baseline else None,
    )


def _rank_failure(rank: int, fail: Facts) -> Finding:
    """A rank whose shard collection (or whole run) failed, hung or died."""
    if fail.get("lost"):  # the rank itself (not its shard's child) failed, died or vanished
        what = str(fail.get("message") or "was lost")
    elif fail.get("timed_out"):
        what = "did not finish reading its shard in time (a fetch or a worker hangs)"
    elif fail.get("signal"):
        what = f"died while reading its shard ({fail['signal']})"
    else:
        what = f"could not read its shard: {str(fail.get('message') or 'failed').rstrip('.')}"
    return Finding(
        probe="duplicates",
        status=Status.FAIL,
        title="Shards across ranks",
        message=f"Rank {rank} {what}.",
        evidence={"rank": rank, **{k: v for k, v in fail.items() if k != "detail"}},
        fix="Run the target as that rank (RANK/WORLD_SIZE set) to see the error.",
    )


def _complete_stream(baseline: Facts | None, ranks: Mapping[int, Facts]) -> list[str] | None:
    """The baseline stream, when it and every rank's stream were read to the end."""
    if not baseline or not baseline.get("complete") or baseline.get("style") != "iterable":
        return None
    if not all(f.get("complete") for f in ranks.values()):
        return None
    return list(baseline.get("samples") or []) or None


# ---------------------------------------------------------------- shared_rng


def judge_shared_rng(f: Facts) -> list[Finding]:
    attrs = f.get("rng_attributes", [])
    names = ", ".join(f"{a['path']} ({a['type']})" for a in attrs)
    evidence = dict(f)
    text = [f"RNG held by the dataset: {names}"] if attrs else []
    if f.get("random") is None:
        return [_finding("shared_rng", Status.SKIP, f"Not checked: {f.get('reason')}.")]
    if not f.get("random"):
        return [
            _finding(
                "shared_rng",
                Status.PASS,
                f"Samples are deterministic ({f.get('what')} fetched twice is identical): no "
                "random draws to repeat.",
                evidence=evidence,
                evidence_text=text,
            )
        ]
    if f.get("loader_error"):
        return [_loader_error_finding("shared_rng", f["loader_error"], "fetching in workers")]
    epochs: list[dict[str, str]] = f.get("epochs", [])
    repeats: list[str] = []
    if epochs:
        first = epochs[0]
        if len(set(first.values())) < len(first) and len(first) > 1:
            repeats.append(f"workers {', '.join(sorted(first))} drew the same sample")
            text.append(f"epoch 1: {len(first)} workers, {len(set(first.values()))} distinct draws")
        if len(epochs) > 1 and not f.get("persistent_workers"):
            same = [w for w in first if epochs[1].get(w) == first[w]]
            if same:
                repeats.append(f"worker {same[0]} repeated its draw in the next epoch")
                text.append("epoch 2 repeated epoch 1's draws")
    if repeats and f.get("iterable") and not attrs:
        # Every worker (and epoch) restarts the same stream from the same state: a stream
        # that continues where it stopped (a queue, a cursor) looks random in one process,
        # yet holds no RNG. That is an unsharded stream, which `duplicates` judges.
        return [
            _finding(
                "shared_rng",
                Status.INFO,
                f"Workers restart the same stream ({'; '.join(repeats)}), and the dataset holds "
                "no RNG object: the stream is not sharded rather than its RNG shared (see "
                "`duplicates`).",
                evidence=evidence,
                evidence_text=text,
                fix="Shard the stream per worker with torch.utils.data.get_worker_info() (see "
                "`duplicates`).",
            )
        ]
    if repeats:
        culprit = f" The RNG is held by the dataset: {names}." if attrs else ""
        return [
            _finding(
                "shared_rng",
                Status.FAIL,
                f"Random augmentations repeat: {'; '.join(repeats)}. Each worker inherits the "
                f"same RNG state when it starts.{culprit}",
                evidence=evidence,
                evidence_text=text,
                fix="Don't keep an RNG created in __init__: draw from torch's global RNG (the "
                "DataLoader seeds it per worker and epoch), or re-seed yours in "
                "worker_init_fn: `info = torch.utils.data.get_worker_info(); "
                "info.dataset.rng = numpy.random.default_rng(info.seed)`.",
            )
        ]
    return [
        _finding(
            "shared_rng",
            Status.PASS,
            "Random samples differ across workers and epochs.",
            evidence=evidence,
            evidence_text=text,
        )
    ]


# ---------------------------------------------------------------- spawn / fork / cuda


def judge_spawn_safety(f: Facts) -> list[Finding]:
    method = f.get("start_method") or "fork"
    culprits = f.get("culprits", [])
    sizes = f.get("pickled_bytes", {})
    text = [f"{name}: pickles to {_mb(n)}" for name, n in sizes.items()]
    if not culprits:
        big = {k: v for k, v in sizes.items() if v > (512 << 20)}
        if big:
            return [
                _finding(
                    "spawn_safety",
                    Status.WARN,
                    "Picklable, but spawn/forkserver sends "
                    + ", ".join(f"{k} ({_mb(v)})" for k, v in big.items())
                    + " to every worker at start-up.",
                    evidence=f,
                    evidence_text=text,
                    fix="Keep the data on disk or in shared memory (numpy.memmap, Arrow, "
                    "tensor.share_memory_()) and store only paths in the dataset.",
                )
            ]
        return [
            _finding(
                "spawn_safety",
                Status.PASS,
                "Everything the workers receive pickles (works under spawn and forkserver).",
                evidence=f,
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
    return [
        _finding(
            "spawn_safety",
            status,
            lead,
            evidence=f,
            evidence_text=text,
            fix="Replace lambdas and local functions with module-level functions (or "
            "functools.partial of one); open files/handles lazily in the worker instead of "
            "holding them in the dataset; or implement __getstate__ to drop them.",
        )
    ]


_HANDLE_FIX = (
    "Open the handle lazily in each worker: set `self.f = None` in __init__ and "
    "`if self.f is None: self.f = h5py.File(self.path, 'r')` in __getitem__ (or in "
    "worker_init_fn); read only metadata in __init__ and close it again."
)
_THREAD_FIX = (
    "Start threads (and take locks) lazily in each worker, e.g. in worker_init_fn or on first "
    "use in __getitem__, never in __init__."
)


def _handle_problem(h: Facts) -> tuple[str, str]:
    """(why it breaks, fix) for one fork-unsafe handle."""
    kind = h["kind"]
    if kind == "running thread":
        return (
            "a running thread when the workers fork: fork copies only the calling thread, so "
            "it does not exist in the workers, and a lock it holds stays locked there forever",
            _THREAD_FIX,
        )
    if kind.startswith("lock"):
        return (
            "a lock held when the workers fork: it stays locked forever in every worker (deadlock)",
            _THREAD_FIX,
        )
    if kind == "CUDA tensor":
        return (
            "a CUDA tensor: forked workers cannot use CUDA (see cuda_in_worker)",
            "Keep the dataset on the CPU; move batches to the GPU in the training loop.",
        )
    return (
        f"an open {kind} when the workers fork: workers share one handle (one file position, "
        "one set of locks), which corrupts reads, crashes or deadlocks (h5py, LMDB and sqlite3 "
        "are not fork-safe)",
        _HANDLE_FIX,
    )


def judge_fork_safety(f: Facts) -> list[Finding]:
    handles = f.get("handles", [])
    threads = f.get("live_threads", []) if f.get("start_method", "fork") == "fork" else []
    text = [f"{h['path']}: {h['description']}" for h in handles]
    if threads:
        text.append(f"threads running when workers fork: {', '.join(threads[:5])}")
    if not handles and not threads:
        return [
            _finding(
                "fork_safety",
                Status.PASS,
                "The dataset holds no open handles, threads or held locks when workers fork.",
                evidence=f,
            )
        ]
    if handles:
        first = handles[0]
        why, fix = _handle_problem(first)
        more = f" (and {len(handles) - 1} more)" if len(handles) > 1 else ""
        msg = f"`{first['path']}` is {why}{more}."
    else:
        msg = (
            f"{len(threads)} thread(s) run when the workers fork ({', '.join(threads[:3])}): a "
            "lock held by one of them at that moment stays locked forever in the worker."
        )
        fix = _THREAD_FIX
    return [_finding("fork_safety", Status.WARN, msg, evidence=f, evidence_text=text, fix=fix)]


def judge_cuda_in_worker(f: Facts) -> list[Finding]:
    tensors = f.get("cuda_tensors", [])
    forks = f.get("start_method", "fork") == "fork" and (f.get("num_workers") or 0) > 0
    problems = []
    if tensors:
        problems.append(
            f"the dataset holds CUDA tensors ({_capped(tensors, 5)}): workers cannot "
            "use CUDA tensors they inherit"
        )
    if f.get("initialized") and forks:
        problems.append(
            "CUDA is initialised before the workers fork: a worker that touches CUDA fails "
            "with 'Cannot re-initialize CUDA in forked subprocess'"
        )
    if not problems:
        return [
            _finding(
                "cuda_in_worker",
                Status.PASS,
                "No CUDA tensors in the dataset; CUDA is not initialised before workers fork.",
                evidence=f,
            )
        ]
    return [
        _finding(
            "cuda_in_worker",
            Status.FAIL,
            "; ".join(problems)[0].upper() + "; ".join(problems)[1:] + ".",
            evidence=f,
            evidence_text=[f"CUDA tensor: {p}" for p in tensors],
            fix="Keep samples on the CPU in the dataset and move batches in the training loop "
            "(`batch.to('cuda', non_blocking=True)` with pin_memory=True); don't touch CUDA "
            "before building the DataLoader, or use multiprocessing_context='spawn'.",
        )
    ]


def judge_sampler_epoch(f: Facts) -> list[Finding]:
    if not f.get("loader"):
        return [
            _finding(
                "sampler_epoch",
                Status.SKIP,
                "TARGET is a dataset: no sampler to check.",
                evidence=f,
            )
        ]
    if not f.get("distributed"):
        return [
            _finding(
                "sampler_epoch",
                Status.SKIP,
                f"The loader's sampler is {f.get('sampler')}, not a DistributedSampler.",
                evidence=f,
            )
        ]
    out: list[Finding] = []
    if f.get("shuffle") and f.get("same_order_without_set_epoch"):
        if f.get("set_epoch_in_source"):
            out.append(
                _finding(
                    "sampler_epoch",
                    Status.PASS,
                    "DistributedSampler shuffles, and the target's source calls set_epoch.",
                    evidence=f,
                )
            )
        else:
            out.append(
                _finding(
                    "sampler_epoch",
                    Status.WARN,
                    "DistributedSampler gives the same order every epoch unless "
                    "`sampler.set_epoch(epoch)` is called, and the target's source never "
                    "calls it.",
                    evidence=f,
                    evidence_text=["two passes without set_epoch gave the same order"],
                    fix="Call `loader.sampler.set_epoch(epoch)` at the start of every epoch, "
                    "before iterating the loader.",
                )
            )
    else:
        out.append(
            _finding(
                "sampler_epoch",
                Status.PASS,
                "DistributedSampler does not shuffle (evaluation order is fixed on purpose).",
                evidence=f,
            )
        )
    if f.get("padding"):
        out.append(
            _finding(
                "sampler_epoch",
                Status.INFO,
                f"DistributedSampler pads {f['padding']} duplicated samples so every rank gets "
                f"the same count ({f.get('dataset_len')} samples over {f.get('num_replicas')} "
                "ranks): evaluation metrics count them twice.",
                evidence=f,
                fix="For exact evaluation, drop_last=True or drop the padded tail when "
                "gathering predictions.",
            )
        )
    return out


# ---------------------------------------------------------------- samples


def judge_corrupt_samples(f: Facts) -> list[Finding]:
    bad = f.get("bad", [])
    checked = f.get("checked", 0)
    word = "stream position" if f.get("stream") else "index"
    bad_indices = [b["index"] for b in bad]
    evidence = {
        "checked": checked,
        "scan": f.get("scan"),
        "bad_indices": bad_indices,
        "bad": bad,
    }
    text = []
    for b in bad[:SCREEN_CAP]:
        if "error" in b:
            text.append(f"{word} {b['index']}: {b['error']}")
        else:
            text.append(f"{word} {b['index']}: {'; '.join(b['problems'][:3])}")
    if len(bad) > SCREEN_CAP:
        text.append(f"and {len(bad) - SCREEN_CAP} more (all of them in --json)")
    if f.get("loader_error"):
        stopped = f.get("stopped_at")
        evidence["loader_error"] = f["loader_error"]
        text.append(f"scan stopped at index {stopped}: {f['loader_error']}")
        return [
            _finding(
                "corrupt_samples",
                Status.FAIL,
                f"The scan stopped after {checked} samples: {f['loader_error']}",
                evidence=evidence,
                evidence_text=text,
                fix="Fetch that index with num_workers=0 to see why the worker died or hung.",
            )
        ]
    scope = "every sample" if f.get("scan") else f"{checked} samples spread over the dataset"
    if not bad:
        if not checked:
            return [_finding("corrupt_samples", Status.SKIP, "The dataset is empty.")]
        hint = "" if f.get("scan") else "; run with --scan to check every sample"
        return [
            _finding(
                "corrupt_samples",
                Status.PASS,
                f"No exception, NaN/Inf or None in {scope}{hint}.",
                evidence=evidence,
            )
        ]
    kinds = Counter("exception" if "error" in b else "bad value" for b in bad)
    return [
        _finding(
            "corrupt_samples",
            Status.FAIL,
            f"{len(bad)} of {checked} checked samples are bad ("
            + ", ".join(f"{v} {k}{'s' if v != 1 else ''}" for k, v in kinds.items())
            + f"): {'stream positions' if f.get('stream') else 'indices'} {_capped(bad_indices)}.",
            evidence=evidence,
            evidence_text=text,
            fix="Fix or filter these samples (e.g. drop them from the index list); "
            "`dlcheck doctor --scan --json` lists every bad index.",
        )
    ]


def _field_shapes(structs: list[dict[str, dict[str, Any]]]) -> dict[str, list[Any]]:
    shapes: dict[str, list[Any]] = {}
    for s in structs:
        for path, leaf in s.items():
            if leaf.get("shape") is not None and leaf.get("type") in ("tensor", "ndarray"):
                shapes.setdefault(path, []).append(tuple(leaf["shape"]))
    return {p: v for p, v in shapes.items() if len(set(v)) > 1}


def judge_sample_contract(f: Facts) -> list[Finding]:
    probe = "sample_contract"
    out: list[Finding] = []
    length = f.get("length")
    evidence = {k: v for k, v in f.items() if k not in ("structures", "keys", "indices_checked")}
    if f.get("style") == "map" and length == 0:
        return [
            _finding(
                probe,
                Status.FAIL,
                "The dataset is empty (len 0): the DataLoader yields no batch.",
                evidence=evidence,
                fix="Check the path/glob that lists the samples and the filtering in __init__.",
            )
        ]
    if f.get("len_error"):
        out.append(_finding(probe, Status.WARN, f"len() is not available: {f['len_error']}."))
    first_bad = f.get("first_index_error")
    if first_bad is not None:
        out.append(
            _finding(
                probe,
                Status.FAIL,
                f"__getitem__({first_bad}) raises IndexError but __len__ is {length}: indices "
                f"{first_bad} to {length - 1 if length else '?'} cannot be read.",
                evidence=evidence,
                evidence_text=[f"IndexError at indices: {_capped(f.get('index_errors', []))}"],
                fix="Make __len__ return the number of readable samples (e.g. len of the same "
                "list __getitem__ indexes).",
            )
        )
    if f.get("style") == "iterable" and f.get("fetched") == 0 and not f.get("iter_error"):
        out.append(
            _finding(
                probe,
                Status.FAIL,
                "The IterableDataset yields no sample.",
                evidence=evidence,
                fix="Check what __iter__ reads (paths, filters, worker sharding).",
            )
        )
    structs: list[dict[str, dict[str, Any]]] = f.get("structures", [])
    ragged = _field_shapes(structs)
    collate_error = f.get("collate_error")
    if collate_error:
        if ragged:
            field, shapes = next(iter(ragged.items()))
            shown = ", ".join(str(s) for s in list(dict.fromkeys(shapes))[:4])
            msg = (
                f"Samples have ragged shapes: field `{field}` has shapes {shown}; "
                f"{f.get('collate_fn')} cannot stack them ({collate_error})."
            )
            fix = (
                "Resize/crop to one shape in the transform, or pass a padding collate_fn "
                "(e.g. `torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)` per field)."
            )
        else:
            msg = f"The samples cannot be collated by {f.get('collate_fn')}: {collate_error}"
            fix = (
                "Return tensors, numpy arrays, numbers, strings or dicts/lists of them, or "
                "write a collate_fn for your sample type."
            )
        out.append(
            _finding(
                probe,
                Status.FAIL,
                msg,
                evidence={**evidence, "ragged": {k: v[:8] for k, v in ragged.items()}},
                fix=fix,
            )
        )
    if f.get("default_collate"):
        keysets = _key_mismatches(f.get("keys", []))
        if keysets:
            path, sets = next(iter(keysets.items()))
            out.append(
                _finding(
                    probe,
                    Status.WARN,
                    f"Dict keys differ between samples at `{path}`: "
                    + " vs ".join("{" + ", ".join(s) + "}" for s in sets[:2])
                    + ". default_collate keeps only the first sample's keys (and fails when "
                    "one is missing).",
                    evidence={**evidence, "key_sets": {k: v[:4] for k, v in keysets.items()}},
                    fix="Return the same keys for every sample (fill missing ones with a "
                    "default), or write a collate_fn that merges them.",
                )
            )
        dtypes = _dtype_mismatches(structs)
        if dtypes:
            path, kinds = next(iter(dtypes.items()))
            out.append(
                _finding(
                    probe,
                    Status.WARN,
                    f"Field `{path}` changes dtype between samples ({', '.join(kinds)}): the "
                    "batch gets the promoted dtype, or collation fails.",
                    evidence={**evidence, "dtypes": dtypes},
                    fix="Cast each field to one dtype in __getitem__.",
                )
            )
    f64 = f.get("float64_fields", [])
    if f64:
        out.append(
            _finding(
                probe,
                Status.WARN,
                f"Batches contain float64 tensors ({_capped(f64, 4)}): twice the memory and "
                "transfer of float32, and a dtype mismatch with float32 models.",
                evidence=evidence,
                fix="Convert in the dataset: `np.asarray(x, dtype=np.float32)` / "
                "`torch.as_tensor(x, dtype=torch.float32)`; Python floats collate to float64.",
            )
        )
    if not any(x.status in (Status.FAIL, Status.WARN) for x in out):
        text = []
        if ragged:
            text.append(f"ragged fields handled by {f.get('collate_fn')}: {', '.join(ragged)}")
        out.append(
            _finding(
                probe,
                Status.PASS,
                f"len, indexing and collation agree over {f.get('fetched', 0)} samples.",
                evidence=evidence,
                evidence_text=text,
            )
        )
    return out


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


# ---------------------------------------------------------------- memory, resources, threads

GROWTH_WARN_BYTES = 64 << 20  # projected private memory across all workers
GROWTH_NOISE_BYTES = 1 << 20  # below this, the measured growth is allocator noise


def judge_memory_growth(f: Facts) -> list[Finding]:
    containers = f.get("containers", [])
    if not containers:
        return [
            _finding(
                "memory_growth",
                Status.PASS,
                "The dataset holds no large Python container (data is in arrays, tensors, "
                "Arrow or on disk), so workers share it without copying.",
                evidence=f,
            )
        ]
    biggest = max(containers, key=lambda c: c["approx_bytes"])
    text = [
        f"{c['path']}: {c['type']} of {c['items']:,} objects (~{_mb(c['approx_bytes'])})"
        for c in containers[:5]
    ]
    workers = max(1, int(f.get("num_workers") or 1))
    projected = None
    if f.get("measured") and f.get("touched"):
        growth = f["uss_growth_bytes"] if f["uss_growth_bytes"] >= GROWTH_NOISE_BYTES else 0
        per_sample = growth / f["touched"]
        per_worker = min(
            per_sample * (f.get("length") or 0), sum(c["approx_bytes"] for c in containers) * 1.5
        )
        projected = per_worker * workers
        text.append(
            f"a forked worker's private memory grew {_mb(f['uss_growth_bytes'])} after "
            f"touching {f['touched']} samples ({_mb(per_sample)}/sample)"
        )
        text.append(
            f"projected: ~{_mb(per_worker)} per worker × {workers} workers = {_mb(projected)} "
            "per epoch"
        )
    evidence = {**f, "projected_bytes": projected}
    fix = (
        "Store the data in numpy arrays / tensors / Arrow (one object, no per-item refcounts), "
        "e.g. `np.array(paths, dtype=np.bytes_)` instead of a list of str, or keep it on disk; "
        "see pytorch/pytorch#13246."
    )
    if projected is not None and projected >= GROWTH_WARN_BYTES:
        return [
            _finding(
                "memory_growth",
                Status.WARN,
                f"Copy-on-read: `{biggest['path']}` ({biggest['items']:,} Python objects) is "
                f"copied into each worker as it is read: ~{_mb(projected)} extra memory over an "
                f"epoch with {workers} workers.",
                evidence=evidence,
                evidence_text=text,
                fix=fix,
            )
        ]
    if projected is None:
        return [
            _finding(
                "memory_growth",
                Status.INFO,
                f"`{biggest['path']}` holds {biggest['items']:,} Python objects; workers may copy "
                "it as they read it (not measured).",
                evidence=evidence,
                evidence_text=text,
                fix=fix,
            )
        ]
    return [
        _finding(
            "memory_growth",
            Status.PASS,
            f"`{biggest['path']}` holds {biggest['items']:,} Python objects but the projected "
            f"copy-on-read growth is small ({_mb(projected)}).",
            evidence=evidence,
            evidence_text=text,
        )
    ]


def judge_resources(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    workers = int(f.get("num_workers") or 0)
    prefetch = int(f.get("prefetch_factor") or 2)
    text = []
    if f.get("batch_error"):
        out.append(
            _finding(
                "resources",
                Status.FAIL,
                f"Could not build one batch: {f['batch_error']}",
                evidence=f,
                fix="See `corrupt_samples` and `sample_contract` for the cause.",
            )
        )
        return out
    batch = f.get("batch_bytes") or 0
    unit = "sample" if f.get("per_sample") else "batch"
    # Under a launch, the ranks on one host share its /dev/shm and CPUs: each rank starts its
    # own num_workers workers.
    local = max(1, int(f.get("ranks_on_host") or 1))
    per_host = f" × {local} ranks on this host" if local > 1 else ""
    in_flight = batch * workers * prefetch * local
    free = f.get("shm_free_bytes")
    text.append(
        f"one {unit}: {_mb(batch)} in {f.get('tensors_per_batch')} tensors; in flight: "
        f"{workers} workers × prefetch {prefetch}{per_host} = {_mb(in_flight)}; /dev/shm free: "
        f"{_mb(free)}"
    )
    if workers > 0 and free is not None and in_flight > free:
        out.append(
            _finding(
                "resources",
                Status.FAIL,
                f"Batches in flight need {_mb(in_flight)} of shared memory but /dev/shm has "
                f"{_mb(free)} free: workers die with 'bus error' or 'No space left on device'.",
                evidence=f,
                evidence_text=text,
                fix="Give the container more shared memory (`docker run --shm-size=8g`, or "
                "`--ipc=host`), or lower num_workers / prefetch_factor / batch size.",
            )
        )
    elif workers > 0 and free is not None and in_flight > free / 2:
        out.append(
            _finding(
                "resources",
                Status.WARN,
                f"Batches in flight use {_mb(in_flight)}, over half of the {_mb(free)} free in "
                "/dev/shm: a larger batch or a second job will exhaust it.",
                evidence=f,
                evidence_text=text,
                fix="Raise --shm-size (or --ipc=host), or lower num_workers / prefetch_factor.",
            )
        )
    nofile = f.get("nofile_soft")
    tensors = int(f.get("tensors_per_batch") or 0)
    fds = tensors * workers * prefetch
    if f.get("sharing_strategy") == "file_descriptor" and nofile and workers:
        text.append(f"file descriptors in flight: {fds} of the open-files limit {nofile}")
        if fds > nofile / 2:
            out.append(
                _finding(
                    "resources",
                    Status.FAIL if fds > nofile else Status.WARN,
                    f"About {fds} tensors are in flight, each holding a file descriptor, against "
                    f"an open-files limit of {nofile}: 'Too many open files'.",
                    evidence=f,
                    evidence_text=text,
                    fix="`ulimit -n 65536`, or "
                    "`torch.multiprocessing.set_sharing_strategy('file_system')`, or collate "
                    "into fewer, larger tensors.",
                )
            )
    cpus = f.get("usable_cpus")
    if cpus and local > 1 and workers * local > cpus:
        out.append(
            _finding(
                "resources",
                Status.WARN,
                f"{local} ranks on this host each start num_workers={workers}: "
                f"{workers * local} workers share {cpus} usable CPUs, so they compete with each "
                "other and with the training processes.",
                evidence=f,
                evidence_text=text,
                fix=f"Use num_workers ≤ {max(1, cpus // local - 1)} per rank ({cpus} CPUs / "
                f"{local} ranks, one left for each training process), or measure with "
                "`torchrun ... -m dlcheck profile`.",
            )
        )
    elif cpus and workers > cpus:
        limited = f.get("cpu_limited_by")
        by = (
            f" (limited by {limited}; the machine has {f.get('os_cpu_count')})"
            if limited and limited != "none"
            else ""
        )
        out.append(
            _finding(
                "resources",
                Status.WARN,
                f"num_workers={workers} but only {cpus} CPUs are usable{by}: workers compete "
                "with each other and the training process.",
                evidence=f,
                evidence_text=text,
                fix=f"Use num_workers ≤ {max(1, cpus - 1)} (or measure with `dlcheck profile`).",
            )
        )
    if not out:
        out.append(
            _finding(
                "resources",
                Status.PASS,
                f"{workers} workers{' per rank' if local > 1 else ''} fit the usable CPUs "
                f"({cpus}), /dev/shm and the open-files limit.",
                evidence=f,
                evidence_text=text,
            )
        )
    return out


def judge_threads(f: Facts) -> list[Finding]:
    per_worker = f.get("per_worker", [])
    if f.get("loader_error") and not per_worker:
        return [_loader_error_finding("threads", f["loader_error"], "starting workers")]
    workers = int(f.get("num_workers") or 0)
    cpus = int(f.get("usable_cpus") or 1)
    peak: dict[str, int] = {}
    for rep in per_worker:
        for p in rep.get("pools", []):
            key = f"{p['library']} ({p['api']})"
            peak[key] = max(peak.get(key, 0), int(p.get("num_threads") or 1))
    text = [f"per worker: {k} {v} threads" for k, v in sorted(peak.items())]
    worst = max(peak.items(), key=lambda kv: kv[1], default=("none", 1))
    total = worst[1] * max(1, workers)
    busy = [r.get("busy_threads") for r in per_worker if r.get("busy_threads") is not None]
    busiest = max(busy, default=None)
    evidence = {
        "pools": peak,
        "num_workers": workers,
        "usable_cpus": cpus,
        "total": total,
        "busy_threads_per_worker": busiest,
    }
    if busiest is not None:
        text.append(f"threads that used CPU in the busiest worker while fetching: {busiest}")
    # A pool that exists but never ran (e.g. BLAS loaded with numpy, unused) costs nothing.
    ran_parallel = busiest is None or busiest > 1
    if workers and worst[1] > 1 and total > cpus and not ran_parallel:
        return [
            _finding(
                "threads",
                Status.PASS,
                f"Thread pools allow {worst[1]} threads per worker ({worst[0]}), but fetching "
                "samples used one thread per worker.",
                evidence=evidence,
                evidence_text=text,
            )
        ]
    if workers and worst[1] > 1 and total > cpus:
        text.append(f"{workers} workers × {worst[1]} threads = {total} > {cpus} usable CPUs")
        return [
            _finding(
                "threads",
                Status.WARN,
                f"Each worker runs {worst[0]} with {worst[1]} threads: {workers} workers × "
                f"{worst[1]} = {total} threads on {cpus} usable CPUs (oversubscription slows "
                "every worker).",
                evidence=evidence,
                evidence_text=text,
                fix="Limit threads per worker in worker_init_fn: "
                "`threadpoolctl.threadpool_limits(1)` and `cv2.setNumThreads(1)`, or set "
                "OMP_NUM_THREADS=1 for the workers.",
            )
        ]
    return [
        _finding(
            "threads",
            Status.PASS,
            f"Threads per worker × {workers} workers fit the {cpus} usable CPUs.",
            evidence=evidence,
            evidence_text=text,
        )
    ]


def judge_determinism(f: Facts, other: Facts | None) -> list[Finding]:
    run = f.get("run", {})
    if run.get("error") and not run.get("batches"):
        return [_loader_error_finding("determinism", run["error"], "iterating the loader")]
    a = run.get("batches", [])
    out: list[Finding] = []
    evidence: Facts = {"seed": f.get("seed"), "batches_compared": len(a)}
    text = []
    if other is None or (other.get("error") and not other.get("batches")):
        evidence["second_run"] = None if other is None else other.get("error")
        out.append(
            _finding(
                "determinism",
                Status.SKIP,
                "The second seeded run did not complete"
                + (f" ({evidence['second_run']})" if evidence.get("second_run") else "")
                + "; reproducibility not compared.",
                evidence=evidence,
            )
        )
    else:
        b = other.get("batches", [])
        diff = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        if diff is None and len(a) != len(b):
            diff = min(len(a), len(b))
        if diff is not None:
            evidence["first_difference"] = diff
            text.append(f"batch {diff} differs between two processes seeded with {f.get('seed')}")
            out.append(
                _finding(
                    "determinism",
                    Status.WARN,
                    f"Two runs seeded alike deliver different batches (first difference: batch "
                    f"{diff}): results cannot be reproduced.",
                    evidence=evidence,
                    evidence_text=text,
                    fix="Seed every RNG the dataset uses from torch's (worker_init_fn with "
                    "`get_worker_info().seed`); avoid time/os.urandom seeds and iteration over "
                    "sets of strings (hash randomisation); pass a seeded `generator=` to the "
                    "DataLoader.",
                )
            )
        else:
            out.append(
                _finding(
                    "determinism",
                    Status.PASS,
                    f"Two processes seeded alike deliver the same first {len(a)} batches.",
                    evidence=evidence,
                )
            )
    zero = f.get("zero_workers")
    if zero and zero.get("batches") and a and zero["batches"][: len(a)] != a:
        if f.get("style") == "iterable":
            why = "each worker yields its own shard, so the stream is interleaved differently"
        else:
            why = "random transforms draw from per-worker seeds"
        out.append(
            _finding(
                "determinism",
                Status.INFO,
                f"Batches depend on num_workers (0 vs {run.get('num_workers')}): {why}.",
                evidence={**evidence, "num_workers_compared": [0, run.get("num_workers")]},
                fix="Expected with per-worker seeding; keep num_workers fixed when comparing runs.",
            )
        )
    return out


# ---------------------------------------------------------------- dispatch


def _without_second_run(
    judge_one: Callable[[Facts], list[Finding]],
) -> Callable[[Facts, Facts | None], list[Finding]]:
    """Adapts a judge of one run to the (facts, second run) signature all judges share."""
    return lambda facts, _extra: judge_one(facts)


# Every registered probe has exactly one judge here (tests/test_doctor_registry.py checks).
JUDGES: dict[str, Callable[[Facts, Facts | None], list[Finding]]] = {
    "duplicates": _without_second_run(judge_duplicates),
    "shared_rng": _without_second_run(judge_shared_rng),
    "spawn_safety": _without_second_run(judge_spawn_safety),
    "fork_safety": _without_second_run(judge_fork_safety),
    "corrupt_samples": _without_second_run(judge_corrupt_samples),
    "sample_contract": _without_second_run(judge_sample_contract),
    "memory_growth": _without_second_run(judge_memory_growth),
    "resources": _without_second_run(judge_resources),
    "threads": _without_second_run(judge_threads),
    "determinism": judge_determinism,
    "sampler_epoch": _without_second_run(judge_sampler_epoch),
    "cuda_in_worker": _without_second_run(judge_cuda_in_worker),
}


def _add_module_judges() -> None:
    from dlcheck.doctor.probes import probe_modules

    JUDGES.update({m.SPEC.id: m.judge for m in probe_modules()})


_add_module_judges()


def judge(probe: str, facts: Facts, extra: Facts | None = None) -> list[Finding]:
    """Findings of one probe from its facts (``extra``: the determinism probe's second run)."""
    return JUDGES[probe](facts, extra)
