"""Shape: the seed's infinite log stream (seed 2-2). It never ends (it sleeps when no log is
queued) and it is NOT sharded: every worker replays the same logs, which doctor must report."""

from __future__ import annotations

from torch.utils.data import DataLoader

from doctor_data._seed import LogSource, RealTimeLogsDataset

log_source = LogSource()
for i in range(1000):
    log_source.add_log(f"2026-01-01T00:00:{i % 60:02d} INFO request {i} served")
dataset = RealTimeLogsDataset(log_source)
dataloader = DataLoader(dataset, batch_size=32)
