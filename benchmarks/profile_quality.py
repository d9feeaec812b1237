"""`dlcheck profile`: how good is the recommendation, how faithful the figures, how long the sweep?

For each of four cost structures (benchmarks/quality_datasets.py), side by side in one run:

1. dlcheck's default search (`dlcheck profile TARGET --json`, workers auto, batch 64): its wall
   time, its recommendation and the samples/s it reports per setting;
2. an exhaustive bare-loop sweep of num_workers 0,1,2,4,...,64 at batch size 64, each in a
   fresh process, measured properly: the first batch and the W x prefetch start-up buffer are
   discarded, then at least 3 pipeline depths and 3 s are timed; the top three and dlcheck's
   pick are measured twice (best of 2).

It reports recommendation/best (bare-loop throughput of the recommended setting over the
exhaustive best), fidelity (dlcheck's samples/s over the bare loop's for the same setting:
for the recommended one, and the median over every setting dlcheck measured) and the sweep's
wall time, and rewrites the profile_quality section of benchmarks/README.md. Because the
exhaustive maximum is the best of many noisy runs, dlcheck's pick and the best are also run
side by side (alternating, 5 rounds) and the median ratio is reported.

    .venv/bin/python benchmarks/profile_quality.py            # all four, ~10-12 min on 2 cores
    .venv/bin/python benchmarks/profile_quality.py cpu io     # a subset
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
README = HERE / "README.md"
DATASETS = ["tiny", "cpu", "io", "big"]
WORKERS = [0, 1, 2, 4, 8, 16, 32, 64]
BATCH = 64
START, END = "<!-- profile_quality:start -->", "<!-- profile_quality:end -->"


def bare_loop(name: str, workers: int) -> dict[str, float]:
    """Child side: the hand-written loop a careful user would write (steady state only)."""
    sys.path.insert(0, str(HERE))
    import quality_datasets as qd
    from torch.utils.data import DataLoader

    ds = qd.FACTORIES[name]()
    dl = DataLoader(
        ds,
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
    )
    depth = 2 * workers
    it = iter(dl)
    t0 = time.perf_counter()
    next(it)
    first = time.perf_counter() - t0
    for _ in range(max(1, depth)):  # drain the start-up buffer
        next(it)
    want = max(12, 3 * depth)
    n = samples = 0
    start = time.perf_counter()
    while True:
        batch = next(it)
        samples += len(batch[1])
        n += 1
        elapsed = time.perf_counter() - start
        if (n >= want and elapsed >= 3.0) or elapsed >= 30.0:
            break
    return {"samples_per_s": samples / elapsed, "batches": n, "first_batch_s": first}


def run_bare(name: str, workers: int, env: dict[str, str]) -> float | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--bare", name, str(workers)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        stdout, stderr = "", "timed out"
    finally:
        # The loop exits without joining its workers: kill the whole group so none lingers
        # into the next measurement.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if not lines:
        sys.stderr.write(stderr[-2000:])
        return None
    return float(json.loads(lines[-1])["samples_per_s"])


def run_dlcheck(name: str, env: dict[str, str]) -> tuple[dict, float]:
    cmd = [
        sys.executable,
        "-m",
        "dlcheck",
        "profile",
        f"{HERE / 'quality_datasets.py'}:{name}",
        "--batch-size",
        str(BATCH),
        "--json",
    ]
    t = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    wall = time.monotonic() - t
    if out.returncode not in (0, 1):
        raise SystemExit(f"dlcheck failed on {name}: {out.stderr[-2000:]}")
    return json.loads(out.stdout), wall


def dlcheck_rates(doc: dict) -> dict[int, float]:
    """dlcheck's samples/s per worker count (primary settings, repeats pooled by median)."""
    per: dict[int, list[float]] = {}
    for r in doc["results"]:
        if r["ok"] and r["samples_per_s"]:
            per.setdefault(r["setting"]["num_workers"], []).append(r["samples_per_s"])
    return {w: statistics.median(v) for w, v in per.items()}


PAIRED_ROUNDS = 5


def side_by_side(name: str, rec_w: int, best_w: int, env: dict[str, str]) -> float | None:
    """Median over alternating rounds of (recommended / best) bare-loop samples/s."""
    if rec_w == best_w:
        return 1.0
    ratios = []
    for i in range(PAIRED_ROUNDS):
        order = (rec_w, best_w) if i % 2 == 0 else (best_w, rec_w)
        got = {w: run_bare(name, w, env) for w in order}
        if got[rec_w] and got[best_w]:
            ratios.append(got[rec_w] / got[best_w])
    print(f"   side by side {rec_w} vs {best_w} workers: {ratios}", file=sys.stderr, flush=True)
    return statistics.median(ratios) if ratios else None


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "n/a" if x is None else format(x, spec)


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE))
    import quality_datasets as qd

    env = dict(os.environ)
    env[qd.CPU_ITERS_ENV] = str(qd.calibrate_cpu_iters())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    rows = []
    for name in names:
        print(f"== {name}: dlcheck search", file=sys.stderr, flush=True)
        doc, wall = run_dlcheck(name, env)
        rec = doc["recommended"] or {}
        mine = dlcheck_rates(doc)
        print(
            f"   {wall:.0f} s, recommends {rec.get('num_workers')} workers; {mine}", file=sys.stderr
        )
        bare: dict[int, float | None] = {}
        for w in WORKERS:
            bare[w] = run_bare(name, w, env)
            print(
                f"   bare loop, {w:>2} workers: {fmt(bare[w])} samples/s",
                file=sys.stderr,
                flush=True,
            )
        # Noise on a shared machine only ever slows a run down: measure the contenders (the
        # top three and dlcheck's pick) once more and keep the better figure (best-of-2).
        ranked = sorted((w for w in WORKERS if bare[w]), key=lambda w: -(bare[w] or 0.0))
        again = set(ranked[:3]) | ({rec.get("num_workers")} & set(WORKERS))
        for w in sorted(again):
            v = run_bare(name, w, env)
            if v and (bare[w] is None or v > bare[w]):  # type: ignore[operator]
                bare[w] = v
            print(f"   bare loop, {w:>2} workers again: {fmt(v)} samples/s", file=sys.stderr)
        good = {w: v for w, v in bare.items() if v}
        best_w = max(good, key=lambda w: good[w])
        rec_w = rec.get("num_workers")
        ratio = good.get(rec_w, 0.0) / good[best_w] if rec_w is not None else None
        # The exhaustive maximum is the best of many noisy runs (a winner's curse), so also
        # compare dlcheck's pick with it side by side: alternating runs, median of the ratios.
        paired = side_by_side(name, rec_w, best_w, env) if rec_w in good else None
        fid_rec = mine[rec_w] / good[rec_w] if rec_w in mine and rec_w in good else None
        fids = [mine[w] / good[w] for w in mine if w in good]
        rows.append(
            {
                "dataset": name,
                "wall_s": wall,
                "measured": sorted(mine),
                "rec_w": rec_w,
                "rec_reported": rec.get("samples_per_s"),
                "best_w": best_w,
                "best": good[best_w],
                "rec_bare": good.get(rec_w),
                "ratio": ratio,
                "paired": paired,
                "fid_rec": fid_rec,
                "fid_median": statistics.median(fids) if fids else None,
                "fid_range": (min(fids), max(fids)) if fids else None,
                "bare": bare,
            }
        )
    total = time.monotonic() - started
    load = (load_before, os.getloadavg()[0])
    table = render(rows, total, load)
    print(table)
    if set(names) == set(DATASETS):
        write_readme(table)


def render(rows: list[dict], total: float, load: tuple[float, float]) -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpus} usable CPUs "
        f"({platform.processor() or platform.machine()}), batch size {BATCH}, "
        f"benchmark total {total / 60:.1f} min, load average {load[0]:.1f} at the start "
        "(the 64-worker runs raise it themselves later). "
        "Targets: recommendation/best ≥ 0.9 (aim 0.95), "
        "fidelity 0.8–1.25 (aim 0.95–1.05), sweep ≤ 90 s (aim 45 s).",
        "",
        "| dataset | dlcheck sweep | workers tried | recommended | exhaustive best | "
        "rec./best (single) | rec./best (side by side) | fidelity (rec.) | "
        "fidelity (median, range) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        fr = r["fid_range"] or (None, None)
        cells = [
            r["dataset"],
            f"{r['wall_s']:.0f} s",
            ",".join(map(str, r["measured"])),
            f"{r['rec_w']} workers: {fmt(r['rec_bare'])}/s",
            f"{r['best_w']} workers: {fmt(r['best'])}/s",
            fmt(r["ratio"], ".2f"),
            fmt(r["paired"], ".2f"),
            fmt(r["fid_rec"], ".2f"),
            f"{fmt(r['fid_median'], '.2f')} ({fmt(fr[0], '.2f')}–{fmt(fr[1], '.2f')})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "*rec./best (single)*: the bare loop's samples/s for dlcheck's pick over the exhaustive "
        "maximum (each the better of two runs for the contenders). *rec./best (side by side)*: "
        f"the median ratio over {PAIRED_ROUNDS} alternating bare-loop runs of the two settings, "
        "which removes the maximum's upward bias from noise. *fidelity*: dlcheck's reported "
        "samples/s over the bare loop's for the same setting.",
        "",
        "Bare-loop samples/s by num_workers (the exhaustive sweep):",
        "",
    ]
    lines.append("| dataset | " + " | ".join(str(w) for w in WORKERS) + " |")
    lines.append("|---|" + "---:|" * len(WORKERS))
    for r in rows:
        lines.append(f"| {r['dataset']} | " + " | ".join(fmt(r["bare"][w]) for w in WORKERS) + " |")
    return "\n".join(lines)


def write_readme(table: str) -> None:
    text = README.read_text()
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += f"\n{block}\n"
    README.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--bare":
        print(json.dumps(bare_loop(sys.argv[2], int(sys.argv[3]))), flush=True)
        os._exit(0)  # skip DataLoader teardown
    main([a for a in sys.argv[1:]] or DATASETS)
