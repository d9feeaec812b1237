"""Pure judgement: probe facts (plain dicts from the children) → findings.

Each probe judges its own facts (``judge`` in its module under :mod:`dlcheck.doctor.probes`);
this module holds what they share (findings, sizes, loader errors), the findings of a probe
that hung or crashed, and the shard audit across ranks. Nothing here imports torch or touches
user code; every function is unit-tested from fake facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from dlcheck.doctor.records import INTERNAL, PROBES_BY_ID, Finding
from dlcheck.records import Status

SCREEN_CAP = 10  # bad indices listed on screen; JSON has all of them

Facts = dict[str, Any]


def mb(n: float | None) -> str:
    if n is None:
        return "?"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{int(n)} B"


def finding(probe: str, status: Status, message: str, **kw: Any) -> Finding:
    return Finding(
        probe=probe, status=status, title=PROBES_BY_ID[probe].title, message=message, **kw
    )


def capped(items: Sequence[Any], cap: int = SCREEN_CAP) -> str:
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
        return finding(
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
        return finding(
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
        return loader_error_finding(probe, message, "the probe ran")
    if failure.get("origin") == "user":
        # The dataset's own exception, raised where the probe did not expect one.
        raised_in = failure.get("where")
        return finding(
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
    return finding(
        probe,
        Status.ERROR,
        f"dlcheck's own error, not a finding about your data: {exception}",
        evidence=dict(evidence or {}),
        evidence_text=[f"raised in {where}"] if where else [],
        fix=INTERNAL_FIX,
        error={"kind": INTERNAL, "exception": exception, "where": where, "traceback": traceback},
    )


def skipped_after_hang(probe: str, hung_in: str) -> Finding:
    return finding(
        probe,
        Status.SKIP,
        f"Not run: the dataset already hung in `{hung_in}`.",
        evidence={"hung_in": hung_in},
    )


def loader_error_finding(probe: str, error: str, what: str) -> Finding:
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
        return finding(
            probe,
            Status.FAIL,
            msg,
            evidence={"loader_error": error, "cause": "dataset_exception"},
            fix=fix,
        )
    return finding(probe, Status.FAIL, msg, evidence={"loader_error": error}, fix=fix)


def _root_cause_probes() -> set[str]:
    from dlcheck.doctor.probes import probe_modules

    return {m.SPEC.id for m in probe_modules() if getattr(m, "REPORTS_DATASET_EXCEPTIONS", False)}


def dedupe_dataset_exceptions(findings: list[Finding]) -> list[Finding]:
    """One failure per root cause: a loader probe that stopped on the dataset's own exception
    becomes a skip when a probe that reports such exceptions itself (corrupt_samples,
    sample_contract: ``REPORTS_DATASET_EXCEPTIONS`` in their modules) already failed."""
    roots = _root_cause_probes()
    root = any(f.status is Status.FAIL and f.probe in roots for f in findings)
    if not root:
        return findings
    for f in findings:
        if f.status is Status.FAIL and f.evidence.get("cause") == "dataset_exception":
            f.status = Status.SKIP
            f.message = "Not checked: " + f.message[0].lower() + f.message[1:]
            f.fix = None
    return findings


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


# ---------------------------------------------------------------- dispatch


def _module_judges() -> dict[str, Callable[[Facts, Facts | None], list[Finding]]]:
    from dlcheck.doctor.probes import probe_modules

    return {m.SPEC.id: m.judge for m in probe_modules()}


# One per probe: its module's ``judge(facts, extra) -> list[Finding]`` (doctor/probes/<id>.py;
# tests/test_doctor_registry.py checks).
JUDGES: dict[str, Callable[[Facts, Facts | None], list[Finding]]] = _module_judges()


def judge(probe: str, facts: Facts, extra: Facts | None = None) -> list[Finding]:
    """Findings of one probe from its facts (``extra``: the determinism probe's second run)."""
    return JUDGES[probe](facts, extra)
