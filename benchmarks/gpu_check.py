"""Exercise `dlcheck profile`'s GPU paths on a CUDA machine and print the figures.

    .venv/bin/python benchmarks/gpu_check.py            # ~1-2 min

1. The CUDA interface directly: pinned vs pageable copies of a 38 MB batch (64 x 600 KB)
   timed with CUDA events, and the raw pinned-copy reference (the link's practical peak).
2. `dlcheck profile benchmarks/quality_datasets.py:big --json` with the default sweep, which
   on a CUDA machine sweeps pin_memory off and on and copies every batch to the device:
   H2D ms/batch, GB/s, % of peak, end-to-end samples/s with the copy in the loop.
Exits 1 when CUDA is not available (nothing to check).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    import torch

    from dlcheck.cuda import TorchCuda, get_cuda

    dev = get_cuda()
    if dev is None or not isinstance(dev, TorchCuda):
        print("no CUDA device (torch.cuda.is_available() is False): nothing to check")
        return 1
    print(f"device: {dev.name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    batch = [torch.rand(64, 3, 224, 224), torch.arange(64)]
    pinned = [t.pin_memory() for t in batch]
    for label, b, nb in (("pageable", batch, False), ("pinned", pinned, True)):
        times = [dev.copy(b, non_blocking=nb)[0] for _ in range(10)]
        n = sum(t.numel() * t.element_size() for t in b)
        best = min(times)
        gbps = n / 1e9 / (best / 1e3)
        print(f"{label:>9} copy of {n / 1e6:.1f} MB: {best:.2f} ms ({gbps:.1f} GB/s)")
    for p in (True, False):
        print(
            f"reference {'pinned' if p else 'pageable'}: "
            f"{dev.reference_gb_per_s(64 << 20, pinned=p):.1f} GB/s"
        )
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    cmd = [
        sys.executable,
        "-m",
        "dlcheck",
        "profile",
        f"{HERE / 'quality_datasets.py'}:big",
        "--workers",
        "0,2,4",
        "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    print(out.stderr[-1500:], file=sys.stderr)
    doc = json.loads(out.stdout)
    print(f"\n{'workers':>7} {'pin':>5} {'samples/s':>10} {'H2D ms':>8} {'GB/s':>6} {'% peak':>7}")
    for r in doc["results"]:
        g, s = r["gpu"], r["setting"]
        if not g.get("available"):
            print(f"{s['num_workers']:>7} {s['pin_memory']!s:>5}  {g.get('reason')}")
            continue
        print(
            f"{s['num_workers']:>7} {s['pin_memory']!s:>5} {r['samples_per_s'] or 0:>10,.0f} "
            f"{g['h2d_ms_p50'] or 0:>8.2f} {g['h2d_gb_per_s'] or 0:>6.1f} "
            f"{g['pct_of_peak'] or 0:>7.0f}"
        )
    print("recommended:", doc["recommended"])
    return 0 if out.returncode in (0, 1) else out.returncode


if __name__ == "__main__":
    raise SystemExit(main())
