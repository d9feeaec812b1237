"""The spec of one doctor probe (stdlib only: the CLI imports it at --help time)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: its JSON id, what it looks for and what it costs."""

    id: str
    title: str
    detects: str
    cost: str
    touches_samples: bool  # fetches samples (skipped once the dataset has hung)
    # Position in the run: nothing that fetches a sample runs before the attribute walks, so
    # they see the dataset exactly as the DataLoader workers would inherit it.
    run_order: int
    # Position in `--list-probes` and docs/probes.md: the order docs/doctor.md explains the
    # probes in, which is not the order they run in.
    list_order: int
