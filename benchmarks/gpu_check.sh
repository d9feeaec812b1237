#!/usr/bin/env bash
# The GPU paths that CI cannot run, in one short script for a lent CUDA machine:
#   bash benchmarks/gpu_check.sh   (writes its outputs under $OUT, default ./gpu-out)
# Uses the machine's own python3/torch with dlcheck from this checkout (no install).
set -u
OUT="${OUT:-./gpu-out}"; mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=python3
step() { echo "== $*"; }
{
  step "machine"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  step "doctor: dataset holding a CUDA tensor (expect cuda_in_worker fail, exit 1)"
  timeout 120 $PY -m dlcheck doctor benchmarks/gpu_data.py:cuda_dataset --json >"$OUT/doctor_cuda.json" 2>"$OUT/doctor_cuda.err"; echo "rc=$?"
  $PY - "$OUT/doctor_cuda.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for f in d["findings"]:
    print(f"  {f['probe']:<16} {f['status']:<5} {f['message'][:110]}")
PYEOF
  step "torchrun 2 ranks: env --json (expect 2 ranks, exit 0)"
  timeout 120 $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m dlcheck env --json >"$OUT/env_dist.json" 2>"$OUT/env_dist.err"; echo "rc=$?"
  $PY - "$OUT/env_dist.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("  world_size", d.get("world_size"), "ranks", [r.get("rank") for r in d.get("ranks", [])])
for c in d.get("cluster_checks", []):
    if c["status"] != "pass" or c["id"] in ("cluster.nccl.version", "cluster.nvidia.driver"):
        print(f"  {c['id']:<28} {c['status']:<5} {c['summary'][:100]}")
PYEOF
  step "torchrun 2 ranks: profile --workers 0,2 with GPU copies"
  timeout 150 $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m dlcheck profile benchmarks/gpu_data.py:cpu_images --workers 0,2 --duration 2 --json >"$OUT/profile_dist.json" 2>"$OUT/profile_dist.err"; echo "rc=$?"
  $PY - "$OUT/profile_dist.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d.get("results", []):
    g = r.get("gpu") or {}
    s = r["setting"]
    print(f"  rank {r.get('rank')} workers {s['num_workers']} pin {s['pin_memory']} "
          f"{(r.get('samples_per_s') or 0):,.0f}/s H2D {g.get('h2d_gb_per_s')} GB/s "
          f"{g.get('pct_of_peak')}% of peak {r.get('error') or ''}")
print("  keys:", sorted(d))
PYEOF
} 2>&1 | tee "$OUT/summary.txt"
