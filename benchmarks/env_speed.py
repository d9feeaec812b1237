"""How long `dlcheck env` takes next to `import torch` and `collect_env` (medians, interleaved).

Runs, alternately in each round: `python -m dlcheck env --json`, `python -c "import torch"`,
`python -m torch.utils.collect_env`, plus `python -m dlcheck --help`. Interleaving keeps the
ratios fair on a busy machine. Writes the table between the env_speed markers of
benchmarks/README.md (only that section).

    python benchmarks/env_speed.py [--rounds 9] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

README = Path(__file__).with_name("README.md")
START, END = "<!-- env_speed:start -->", "<!-- env_speed:end -->"

COMMANDS: dict[str, list[str]] = {
    "dlcheck env --json": [sys.executable, "-m", "dlcheck", "env", "--json"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "python -m torch.utils.collect_env": [sys.executable, "-m", "torch.utils.collect_env"],
    "dlcheck --help": [sys.executable, "-m", "dlcheck", "--help"],
}
BASELINE = 'python -c "import torch"'


def time_once(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # env exits 1 when a check fails; that is still a run
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    return elapsed


def load() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def measure(rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # warm the page cache once; not recorded
        time_once(cmd)
    names = list(COMMANDS)
    for r in range(rounds):
        # Rotate the order each round so no command always runs after the same one.
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            samples[name].append(time_once(COMMANDS[name]))
        print(f"round {r + 1}/{rounds}", file=sys.stderr)
    return samples


def torch_version() -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def table(samples: dict[str, list[float]], rounds: int, loads: tuple[str, str]) -> str:
    base = statistics.median(samples[BASELINE])
    cpus = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cpus
    lines = [
        f"Measured {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on "
        f"{platform.machine()} Linux, {cpus} CPUs ({usable} usable), Python "
        f"{platform.python_version()}, torch {torch_version()}; {rounds} interleaved rounds "
        "after one warm-up run each; wall time of the whole process. Load average (1/5/15 min) "
        f"{loads[0]} before, {loads[1]} after (other work on the machine inflates both "
        "numbers; the ratios are measured side by side).",
        "",
        "| command | median (s) | min (s) | max (s) | ratio to `import torch` |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in samples.items():
        med = statistics.median(values)
        lines.append(
            f"| `{name}` | {med:.3f} | {min(values):.3f} | {max(values):.3f} | {med / base:.2f}× |"
        )
    env_ratio = statistics.median(samples["dlcheck env --json"]) / base
    per_round = [
        e / t for e, t in zip(samples["dlcheck env --json"], samples[BASELINE], strict=True)
    ]
    lines += [
        "",
        f"`dlcheck env` / `import torch`: **{env_ratio:.2f}×** (ratio of medians; median of "
        f"per-round ratios {statistics.median(per_round):.2f}×). Target ≤ 1.15×, aim 1.05×.",
        "",
        "Reproduce: `.venv/bin/python benchmarks/env_speed.py` (rewrites this section).",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    readme = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise SystemExit(f"{README} has no {START} … {END} section")
    new = pattern.sub(lambda _m: f"{START}\n{text}\n{END}", readme)
    tmp = README.with_name(f".{README.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, README)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    before = load()
    samples = measure(args.rounds)
    text = table(samples, args.rounds, (before, load()))
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"\nwrote {README}", file=sys.stderr)


if __name__ == "__main__":
    main()
