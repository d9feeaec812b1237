"""determinism: the same seed gives the same batches.

The first 4 batches, fingerprinted, from the target as the runner loaded it (seeded), from a
second, independent process seeded alike (``extra``: :func:`dlcheck.doctor.collect.
determinism_entry` runs it, the runner compares), and with 0 workers: batches that differ
between the processes cannot be reproduced; batches that depend on num_workers are expected
with per-worker seeding, and reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlcheck.doctor.probe_facts import ProbeFacts
from dlcheck.doctor.spec import ProbeSpec

if TYPE_CHECKING:
    from dlcheck.doctor.records import Finding

SPEC = ProbeSpec(
    id="determinism",
    title="Same seed, same batches",
    detects="a seeded run that differs between processes, or depends on num_workers",
    cost="first 4 batches in 2 fresh processes and with 0 workers",
    touches_samples=True,
    run_order=120,
    list_order=100,
)

FIX = (
    "Seed every RNG the dataset uses from torch's (worker_init_fn with "
    "`get_worker_info().seed`); avoid time/os.urandom seeds and iteration over "
    "sets of strings (hash randomisation); pass a seeded `generator=` to the "
    "DataLoader."
)
FIX_WORKERS = "Expected with per-worker seeding; keep num_workers fixed when comparing runs."
FIX_WORKERS_STREAM = (
    "Expected: the batch order follows the workers' turns; keep num_workers fixed when "
    "comparing runs."
)


@dataclass(frozen=True)
class DeterminismFacts(ProbeFacts):
    """Two passes of :func:`dlcheck.doctor.facts.batch_fingerprints` (``batches``, ``error``,
    ``num_workers``): with the target's workers, and with 0 (None when it has none)."""

    run: dict[str, Any] = field(default_factory=dict)
    zero_workers: dict[str, Any] | None = None
    seed: int = 0
    style: str = "map"  # "map" | "iterable"

    @classmethod
    def example(cls) -> DeterminismFacts:
        return cls(
            run={"batches": ["a", "b"], "error": None, "num_workers": 2},
            zero_workers={"batches": ["c", "d"], "error": None, "num_workers": 0},
        )


FACTS = DeterminismFacts


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


def collect(ctx: Any, send: Any) -> dict[str, Any]:
    """Child side: the first batches with the target's workers, then with 0."""
    from dlcheck.doctor.facts import batch_fingerprints

    workers = ctx.target_workers if ctx.target_workers > 0 else ctx.workers
    # Both passes start from the generator states the user's code left, like the second
    # process does: otherwise the 0-worker pass would continue the first pass's shuffle.
    generators = _generators(ctx.loader)
    states = [g.get_state() for g in generators]
    run = batch_fingerprints(ctx, workers)
    for g, state in zip(generators, states, strict=True):
        g.set_state(state)
    zero = batch_fingerprints(ctx, 0) if workers > 0 else None
    return DeterminismFacts(
        run=run,
        zero_workers=zero,
        seed=ctx.seed,
        style="iterable" if ctx.iterable else "map",
    ).to_dict()


def judge(facts: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Finding]:
    """Compare with the second process (``extra``; None when it did not run) and with 0
    workers."""
    from dlcheck.doctor.judge import finding, loader_error_finding
    from dlcheck.records import Status

    f = DeterminismFacts.from_dict(facts)
    other = extra
    run = f.run
    if run.get("error") and not run.get("batches"):
        return [loader_error_finding(SPEC.id, run["error"], "iterating the loader")]
    a = run.get("batches", [])
    out: list[Finding] = []
    evidence: dict[str, Any] = {"seed": f.seed, "batches_compared": len(a)}
    text = []
    if other is None or (other.get("error") and not other.get("batches")):
        evidence["second_run"] = None if other is None else other.get("error")
        out.append(
            finding(
                SPEC.id,
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
            text.append(f"batch {diff} differs between two processes seeded with {f.seed}")
            out.append(
                finding(
                    SPEC.id,
                    Status.WARN,
                    f"Two runs seeded alike deliver different batches (first difference: batch "
                    f"{diff}): results cannot be reproduced.",
                    evidence=evidence,
                    evidence_text=text,
                    fix=FIX,
                )
            )
        else:
            out.append(
                finding(
                    SPEC.id,
                    Status.PASS,
                    f"Two processes seeded alike deliver the same first {len(a)} batches.",
                    evidence=evidence,
                )
            )
    zero = f.zero_workers
    if zero and zero.get("batches") and a and zero["batches"][: len(a)] != a:
        if f.style == "iterable":
            # Whether the workers split the stream or each repeat it is the duplicates probe's
            # call; either way the loader takes one batch from each worker in turn.
            why = "the loader takes batches from each worker's own iterator in turn"
            fix = FIX_WORKERS_STREAM
        else:
            why = "random transforms draw from per-worker seeds"
            fix = FIX_WORKERS
        out.append(
            finding(
                SPEC.id,
                Status.INFO,
                f"Batches depend on num_workers (0 vs {run.get('num_workers')}): {why}.",
                evidence={**evidence, "num_workers_compared": [0, run.get("num_workers")]},
                fix=fix,
            )
        )
    return out
