"""`dlcheck profile --max-memory`: the issue's case, at full size (the unit test is scaled down).

A wait-bound dataset of 4 MB samples (sleep 4 ms, then a fresh 4 MB float32 tensor), batch 64,
the default worker search, ``--max-memory 2GB``. A sampler outside dlcheck reads, 10 times a
second, the PSS of every process of the run (found by an environment marker) plus what the run
added to /dev/shm, and keeps the peak. Reported: the peak against the budget, and the settings
the output names as skipped or stopped.

    .venv/bin/python benchmarks/memory_budget.py            # ~2-4 min
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARKER = "DLCHECK_BENCH_BUDGET_MARKER"
BUDGET = "2GB"
BUDGET_BYTES = 2 * 10**9

DATASET = """
import time

import torch
from torch.utils.data import Dataset


class FourMB(Dataset):
    def __len__(self):
        return 4096

    def __getitem__(self, idx):
        time.sleep(0.004)
        return torch.ones(1024 * 1024)  # 4 MB of float32


def four_mb():
    return FourMB()
"""


def shm_used() -> int:
    st = os.statvfs("/dev/shm")
    return (st.f_blocks - st.f_bavail) * st.f_frsize


def sample_peak(marker: str, stop: threading.Event, out: dict[str, int]) -> None:
    base = shm_used()
    while not stop.is_set():
        total = 0
        for p in psutil.process_iter():
            try:
                if p.environ().get(MARKER) == marker:
                    total += p.memory_full_info().pss
            except (psutil.Error, OSError):
                continue
        total += max(0, shm_used() - base)
        out["peak"] = max(out.get("peak", 0), total)
        out["samples"] = out.get("samples", 0) + 1
        time.sleep(0.1)


def main() -> None:
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"dlcheck-budget-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "four_mb.py").write_text(DATASET)
    marker = uuid.uuid4().hex
    env = {**os.environ, MARKER: marker}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "dlcheck", "profile", f"{work / 'four_mb.py'}:four_mb"]
    cmd += ["--batch-size", "64", "--max-memory", BUDGET, "--json"]
    stop, peak = threading.Event(), {}
    sampler = threading.Thread(target=sample_peak, args=(marker, stop, peak), daemon=True)
    sampler.start()
    t = time.monotonic()
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    finally:
        stop.set()
        sampler.join()
    wall = time.monotonic() - t
    doc = json.loads(run.stdout)
    rows = []
    for r in doc["results"]:
        s = r["setting"]
        rows.append(
            f"| {s['num_workers']} | {r.get('error_kind') or ('ok' if r['ok'] else 'failed')} | "
            + (f"{r['samples_per_s']:,.0f}" if r.get("samples_per_s") else "—")
            + " |"
        )
    notes = [n for n in (doc.get("options") or {}).get("notes") or [] if "budget" in n]
    rec = doc.get("recommended") or {}
    print(
        f"exit {run.returncode}; {wall:.0f} s; peak PSS of the tree + /dev/shm "
        f"{peak.get('peak', 0) / 1e9:.2f} GB of the {BUDGET} budget "
        f"({peak.get('samples', 0)} samples at 10/s); recommended num_workers="
        f"{rec.get('num_workers')}"
    )
    print("| workers | result | samples/s |\n|---:|---|---:|")
    print("\n".join(rows))
    for n in notes:
        print(f"- {n}")
    if run.returncode not in (0, 1):
        print(run.stderr[-2000:], file=sys.stderr)


if __name__ == "__main__":
    main()
