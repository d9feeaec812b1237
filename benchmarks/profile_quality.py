"""`dlcheck profile`: how good is the recommendation, how faithful the figure, how long the sweep?

For each of six cost structures (benchmarks/quality_datasets.py):

1. the exhaustive in-process loop: one process builds the dataset once and runs the bare
   training loop (whole epochs, ``persistent_workers=False``, batch 64, shuffled) at
   num_workers 0, 1, 2, 4, 8, 16, each for at least ``--truth-seconds`` and two epochs (a
   dataset whose epoch is longer is timed over 2 x that many seconds from ``iter()``, start-up
   included). Its wall time is what sweeping by hand costs; its best setting is the reference.
2. ``--rounds`` times: dlcheck's default search (`dlcheck profile TARGET --json`, workers
   auto), then its pick and the reference best run side by side in the same bare loop
   (alternating, fresh processes, ``PAIRS`` pairs): rec./best is the median ratio, fidelity
   the figure dlcheck showed over the bare loop's for its pick, timed over whole epochs (an
   epoch too long for the window is timed whole, up to ``WHOLE_S``).

It reports per dataset the worst rec./best over the rounds, the fidelity range, the median
and longest sweep, and sweep time over the exhaustive loop's; the full run rewrites the
profile_quality section of benchmarks/README.md.

    .venv/bin/python benchmarks/profile_quality.py                          # all six, 5 rounds
    .venv/bin/python benchmarks/profile_quality.py --rounds 1 --datasets tiny,cpu   # smoke
"""

from __future__ import annotations

import argparse
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
DATASETS = ["tiny", "cpu", "io", "big", "demo", "slow"]
EXHAUSTIVE = [0, 1, 2, 4, 8, 16]
BATCH = 64
ROUNDS = 5
PAIRS = 2
TRUTH_S = 8.0
# Fidelity is judged against whole epochs: where the pick's epoch does not fit the window,
# it is timed whole (start-up to drain) once per pair, cut only past this.
WHOLE_S = 120.0
START, END = "<!-- profile_quality:start -->", "<!-- profile_quality:end -->"
# Every dataset's latest full measurement (rows as the table is built from them), so a dataset
# can be re-measured alone; the README table is rewritten once all six have ROUNDS sweeps.
ROWS = HERE / "profile_quality.json"
#: Set (by --data-only) for the bare loop to skip the training-like allocator state.
DATA_ONLY_ENV = "DLCHECK_BENCH_DATA_ONLY"


# ---------------------------------------------------------------- the bare loop (child side)


def bare_epochs(
    name: str, workers: list[int], seconds: float, whole_s: float = 0.0, settle: bool = True
) -> dict:
    """The loop training runs: whole epochs, workers restarting each epoch (one build).

    An epoch longer than ``2 * seconds`` is cut there (the rate then counts start-up over that
    window only), unless ``whole_s`` is given: then epochs are cut only past ``whole_s``, so
    a long epoch is timed whole, start-up to drain, as training pays it.
    """
    sys.path.insert(0, str(HERE))
    import quality_datasets as qd
    from torch.utils.data import DataLoader

    t_all = time.perf_counter()
    ds = qd.FACTORIES[name]()
    if settle:
        # A training step frees 1-32 MB tensors every iteration, which raises glibc's mmap
        # threshold; a data-only loop does not, and then 600 KB samples (big, 0 workers) run
        # at 1,800 or 3,300/s by the luck of the heap. Start where training runs, as dlcheck
        # does (--data-only: the loop as it is).
        from dlcheck.profile.measure import settle_allocator

        settle_allocator()
    rates = {}
    for w in workers:
        dl = DataLoader(
            ds,
            batch_size=BATCH,
            shuffle=True,
            num_workers=w,
            prefetch_factor=2 if w else None,
            persistent_workers=False,
        )
        samples = epochs = 0
        start = time.perf_counter()
        done = False
        while not done:
            for batch in dl:
                samples += len(batch[1])
                if time.perf_counter() - start >= (whole_s or 2 * seconds):  # too long to finish
                    done = True
                    break
            else:
                epochs += 1
                done = epochs >= 2 and time.perf_counter() - start >= seconds
        elapsed = time.perf_counter() - start
        rates[w] = {"samples_per_s": samples / elapsed, "epochs": epochs, "wall_s": elapsed}
    return {"rates": rates, "wall_s": time.perf_counter() - t_all}


# ---------------------------------------------------------------- the parent side


def run_bare(
    name: str, workers: list[int], env: dict[str, str], seconds: float, whole_s: float = 0.0
) -> dict | None:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--bare",
        name,
        ",".join(map(str, workers)),
    ]
    cmd += ["--truth-seconds", str(seconds)]
    if whole_s:
        cmd += ["--whole-seconds", str(whole_s)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=60 + len(workers) * (4 * seconds + whole_s))
    except subprocess.TimeoutExpired:
        stdout, stderr = "", "timed out"
    finally:
        # The loop exits without joining its workers: kill the whole group so none lingers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if not lines:
        sys.stderr.write(stderr[-2000:])
        return None
    doc = json.loads(lines[-1])
    doc["epochs"] = {int(w): v["epochs"] for w, v in doc["rates"].items()}
    doc["rates"] = {int(w): v["samples_per_s"] for w, v in doc["rates"].items()}
    return doc


def run_dlcheck(name: str, env: dict[str, str]) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "dlcheck", "profile", f"{HERE / 'quality_datasets.py'}:{name}"]
    cmd += ["--batch-size", str(BATCH), "--json"]
    t = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    wall = time.monotonic() - t
    if out.returncode not in (0, 1):
        raise SystemExit(f"dlcheck failed on {name}: {out.stderr[-2000:]}")
    return json.loads(out.stdout), wall


def side_by_side(
    name: str, rec_w: int, best_w: int, env: dict[str, str], seconds: float
) -> tuple[float | None, float | None]:
    """(median rec/best ratio, median bare-loop rate of rec) over alternating fresh runs.

    The rate of rec is of whole epochs: where the window cut its epoch short, rec is timed
    again over whole epochs (``WHOLE_S``), since that is what training gets.
    """
    ratios, rec_rates, cut = [], [], False
    for i in range(PAIRS):
        order = (rec_w, best_w) if i % 2 == 0 else (best_w, rec_w)
        got = {}
        for w in dict.fromkeys(order):
            doc = run_bare(name, [w], env, seconds)
            got[w] = doc["rates"][w] if doc else None
            cut = cut or bool(doc and w == rec_w and not doc["epochs"][w])
        if got[rec_w]:
            rec_rates.append(got[rec_w])
        if got[rec_w] and got[best_w]:
            ratios.append(got[rec_w] / got[best_w])
    med = statistics.median
    if cut:
        whole = [run_bare(name, [rec_w], env, seconds, WHOLE_S) for _ in range(PAIRS)]
        rec_rates = [d["rates"][rec_w] for d in whole if d and d["epochs"][rec_w]]
    return (med(ratios) if ratios else None, med(rec_rates) if rec_rates else None)


#: Each dataset's cost structure, as the reason should name it.
STRUCTURE = {
    "tiny": "IPC costs more than the work",
    "cpu": "CPU",
    "io": "waiting",
    "big": "copying (main process)",
    "demo": "CPU (JPEG decoding)",
    "slow": "CPU",
}


def named(reason: str | None) -> str:
    """The bottleneck a recommendation's reason names, in a word (its head, else its body)."""
    text = reason or ""
    if text.startswith("loading in the main process is fastest"):
        return "main process (IPC costs more)"
    for word in ("CPU-bound", "wait-bound", "main-process/IPC-bound"):
        if word in text:
            return word
    return text.split(":")[0][:40] or "?"


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "n/a" if x is None else format(x, spec)


def main(names: list[str], rounds: int, seconds: float) -> None:
    sys.path.insert(0, str(HERE))
    import quality_datasets as qd

    env = dict(os.environ)
    env[qd.CPU_ITERS_ENV] = str(qd.calibrate_cpu_iters())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    rows = []
    for name in names:
        log = lambda msg: print(f"   {msg}", file=sys.stderr, flush=True)  # noqa: E731
        print(f"== {name}: exhaustive in-process loop", file=sys.stderr, flush=True)
        ex = run_bare(name, EXHAUSTIVE, env, seconds)
        if ex is None:
            raise SystemExit(f"the bare loop failed on {name}")
        best_w = max(ex["rates"], key=lambda w: ex["rates"][w])
        log(f"{ex['wall_s']:.0f} s; " + ", ".join(f"{w}: {fmt(r)}" for w, r in ex["rates"].items()))
        sweeps = []
        for rnd in range(rounds):
            doc, wall = run_dlcheck(name, env)
            rec = doc.get("recommended") or {}
            rec_w = rec.get("num_workers")
            ratio, truth = (None, None)
            if rec_w is not None:
                ratio, truth = side_by_side(name, rec_w, best_w, env, seconds)
            shown = rec.get("samples_per_s")
            fid = shown / truth if shown and truth else None
            tried = sorted({r["setting"]["num_workers"] for r in doc["results"]})
            log(
                f"round {rnd + 1}: {wall:.0f} s, tried {tried}, picked {rec_w} "
                f"({fmt(shown)}/s shown, {fmt(truth)}/s bare), rec./best {fmt(ratio, '.2f')}, "
                f"fidelity {fmt(fid, '.2f')}"
            )
            sweeps.append(
                {
                    "wall_s": wall,
                    "rec_w": rec_w,
                    "ratio": ratio,
                    "fidelity": fid,
                    "named": named(rec.get("reason")),
                    "reason": rec.get("reason"),
                }
            )
        rows.append(
            {
                "dataset": name,
                "exhaustive": ex,
                "best_w": best_w,
                "sweeps": sweeps,
                "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "load": os.getloadavg()[0],
                "minutes": (time.monotonic() - started) / 60,
            }
        )
    total = time.monotonic() - started
    print(render(rows, total, (load_before, os.getloadavg()[0]), rounds, seconds))
    if rounds < ROUNDS:
        return
    saved = {r["dataset"]: r for r in json.loads(ROWS.read_text())} if ROWS.exists() else {}
    for r in saved.values():  # JSON keys are strings
        r["exhaustive"]["rates"] = {int(w): v for w, v in r["exhaustive"]["rates"].items()}
    saved.update({r["dataset"]: r for r in rows})
    ROWS.write_text(json.dumps([saved[n] for n in DATASETS if n in saved], indent=1) + "\n")
    if set(saved) == set(DATASETS):
        merged = [saved[n] for n in DATASETS]
        write_readme(render(merged, total, (load_before, os.getloadavg()[0]), rounds, seconds))


def render(
    rows: list[dict], total: float, load: tuple[float, float], rounds: int, seconds: float
) -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpus} usable CPUs "
        f"({platform.processor() or platform.machine()}), batch size {BATCH}, {rounds} sweeps "
        f"per dataset, bare loop ≥ {seconds:g} s of whole epochs; this run took "
        f"{total / 60:.1f} min, load average {load[0]:.1f} at the start, {load[1]:.1f} at the "
        "end (each row says when it was measured and the load then). Targets: rec./best ≥ 0.9 "
        "on every sweep; fidelity 0.8–1.25; median sweep ≤ the "
        "exhaustive loop, none over 60 s.",
        "",
        "| dataset | exhaustive best | picks | worst rec./best | fidelity (range) | "
        "sweep (median, max) | exhaustive loop | sweep / loop | measured, load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        sw = r["sweeps"]
        ratios = [s["ratio"] for s in sw if s["ratio"] is not None]
        fids = [s["fidelity"] for s in sw if s["fidelity"] is not None]
        walls = [s["wall_s"] for s in sw]
        loop = r["exhaustive"]["wall_s"]
        med = statistics.median(walls) if walls else None
        cells = [
            r["dataset"],
            f"{r['best_w']} workers: {fmt(r['exhaustive']['rates'][r['best_w']])}/s",
            ",".join(str(s["rec_w"]) for s in sw),
            fmt(min(ratios) if ratios else None, ".2f"),
            f"{fmt(min(fids) if fids else None, '.2f')}–{fmt(max(fids) if fids else None, '.2f')}",
            f"{fmt(med, '.0f')} s, {fmt(max(walls) if walls else None, '.0f')} s",
            f"{loop:.0f} s",
            fmt(med / loop if med and loop else None, ".2f"),
            f"{r.get('measured', '?')[-9:]}, {r.get('load', 0):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "*rec./best*: the bare loop's samples/s for dlcheck's pick over the exhaustive best's, "
        f"median of {PAIRS} alternating fresh runs; the worst over the sweeps. *fidelity*: the "
        "samples/s dlcheck showed for its pick over the bare loop's, timed over whole epochs "
        f"(an epoch longer than the window is timed whole, up to {WHOLE_S:.0f} s). "
        "*exhaustive loop*: one "
        "process building the dataset once and running every worker count in turn.",
        "",
        "Exhaustive bare-loop samples/s by num_workers:",
        "",
        "| dataset | " + " | ".join(str(w) for w in EXHAUSTIVE) + " |",
        "|---|" + "---:|" * len(EXHAUSTIVE),
    ]
    for r in rows:
        rates = r["exhaustive"]["rates"]
        lines.append(
            f"| {r['dataset']} | " + " | ".join(fmt(rates.get(w)) for w in EXHAUSTIVE) + " |"
        )
    lines += [
        "",
        "The bottleneck each sweep's reason named (the head of the recommendation's reason):",
        "",
        "| dataset | cost structure | named (per sweep) |",
        "|---|---|---|",
    ]
    for r in rows:
        names = [s.get("named") for s in r["sweeps"]]
        counts = {n: names.count(n) for n in dict.fromkeys(names)}
        said = ", ".join(f"{n or 'not recorded'} ×{k}" for n, k in counts.items())
        lines.append(f"| {r['dataset']} | {STRUCTURE[r['dataset']]} | {said} |")
    return "\n".join(lines)


def write_readme(table: str) -> None:
    text = README.read_text()
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += f"\n{block}\n"
    README.write_text(text)


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    ap.add_argument("--rounds", type=int, default=ROUNDS, help="dlcheck sweeps per dataset")
    ap.add_argument("--truth-seconds", type=float, default=TRUTH_S, help="bare-loop seconds")
    ap.add_argument(
        "--data-only",
        action="store_true",
        help="bare loop without the training-like allocator state (see bare_epochs)",
    )
    ap.add_argument("--bare", nargs=2, metavar=("NAME", "WORKERS"), help=argparse.SUPPRESS)
    ap.add_argument("--whole-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


if __name__ == "__main__":
    a = _args(sys.argv[1:])
    if a.bare:
        ws = [int(w) for w in a.bare[1].split(",")]
        settle = not os.environ.get(DATA_ONLY_ENV)
        doc = bare_epochs(a.bare[0], ws, a.truth_seconds, a.whole_seconds, settle)
        print(json.dumps(doc), flush=True)
        os._exit(0)  # skip DataLoader teardown
    names = [n for n in a.datasets.split(",") if n]
    unknown = set(names) - set(DATASETS)
    if unknown:
        raise SystemExit(f"unknown datasets {sorted(unknown)}; choose from {DATASETS}")
    if a.data_only:
        os.environ[DATA_ONLY_ENV] = "1"
    main(names, a.rounds, a.truth_seconds)
