"""End-to-end `dlcheck profile` runs as real subprocesses: the seed examples, every failure of
issue 3 item 10, Ctrl-C, CI thresholds and the Python API. Runs are started concurrently (a
few at a time) to keep the suite's wall time down; each test then checks its own run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from interrupt import sigint_default
from profile_helpers import HERE, Run, env_for, leaked_shm, leftovers, run_cli, shm_entries

QUICK = ["--workers", "0,2", "--duration", "1", "--stall-timeout", "15", "--json"]

SEEDS = {
    "image_folder": "seed_examples.py:custom_image_loader",
    "tensor_dataset": "seed_examples.py:tensor_loader",
    "realtime_logs": "seed_examples.py:logs_loader",
    "worker_sharded_iterable": "seed_examples.py:sharded_loader",
    "custom_sampler": "seed_examples.py:sampler_loader",
    "custom_batch_sampler": "seed_examples.py:batch_sampler_loader",
    "batch_size_none": "seed_examples.py:no_batch_loader",
    "custom_collate_fn": "seed_examples.py:collate_loader",
}

FAILURES: dict[str, tuple[list[str], int, str]] = {
    # name: (args, exit code, text expected in the error)
    "sample_raises": (
        ["failing.py:bad_sample", *QUICK],
        1,
        "sample 37: ValueError: cannot decode sample 37: truncated file",
    ),
    "hang": (
        ["failing.py:hang", "--workers", "2", "--duration", "1", "--stall-timeout", "2", "--json"],
        1,
        "stalled: no batch for 2 s",
    ),
    "worker_killed": (["failing.py:killed_worker", *QUICK], 1, "killed by signal SIGKILL"),
    "worker_exits": (
        ["failing.py:exiting_worker", "--workers", "2", "--duration", "1", "--json"],
        1,
        "exited unexpectedly with exit code 3",
    ),
    "collate": (
        ["failing.py:bad_collate", "--workers", "0", "--duration", "1", "--json"],
        1,
        "cannot collate field 0: Tensor[3, 32, 32] torch.float32 (samples 0, 1, 2…) vs "
        "Tensor[3, 30, 32] torch.float32 (sample 5)",
    ),
    "lmdb_before_fork": (
        ["failing.py:lmdb_before_fork", "--workers", "2", "--duration", "1", "--json"],
        1,
        "MDB_READERS_FULL",
    ),
    "empty_stream": (
        ["failing.py:empty_stream", "--workers", "0", "--duration", "1", "--json"],
        1,
        "the dataset yielded no samples",
    ),
    "empty_dataset": (["failing.py:empty", *QUICK], 1, "The dataset is empty: len(Empty) == 0"),
    "factory_raises": (
        ["failing.py:broken_factory", *QUICK],
        1,
        "broken_factory() raised RuntimeError: cannot find the data directory /data/imagenet",
    ),
    "import_error": (
        ["import_error.py:dataset", *QUICK],
        1,
        "No module named 'not_a_real_module_dlcheck'",
    ),
    "no_such_attribute": (["failing.py:nope", *QUICK], 2, "has no attribute 'nope'"),
    "not_a_dataset": (["failing.py:not_a_dataset", *QUICK], 2, "not a Dataset"),
    "factory_needs_args": (["failing.py:needs_args", *QUICK], 2, "needs arguments (root)"),
    "no_such_module": (["no_such_module_xyz:data", *QUICK], 2, "No module named"),
    "bad_target_shape": (["just_a_name", *QUICK], 2, "is not of the form module:attr"),
}


def _write_images(root: Path, n: int = 48) -> None:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"img_{i:03d}.jpg"
        Image.new("RGB", (32, 32), (i * 5 % 256, 80, 160)).save(root / name, quality=85)
        rows.append(f"{name},{i % 10}")
    (root / "annotations.csv").write_text("\n".join(rows) + "\n")


def _errors(doc: dict) -> list[str]:
    return [r["error"] for r in doc["results"] if r["error"]]


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    images = tmp_path_factory.mktemp("images")
    _write_images(images)
    extra = {"DLCHECK_TEST_IMAGES": str(images)}
    with ThreadPoolExecutor(3) as pool:
        futures = {
            name: pool.submit(run_cli, [target, *QUICK, "--raw"], extra_env=extra)
            for name, target in SEEDS.items()
        }
        return {name: f.result() for name, f in futures.items()}


@pytest.fixture(scope="module")
def failure_runs() -> dict[str, Run]:
    with ThreadPoolExecutor(3) as pool:
        futures = {name: pool.submit(run_cli, case[0]) for name, case in FAILURES.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", list(SEEDS))
def test_seed_example_profiles(seed_runs: dict[str, Run], name: str) -> None:
    run = seed_runs[name]
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    assert doc["schema"] == "dlcheck.profile/1"
    measured = {r["setting"]["num_workers"] for r in doc["results"] if r["ok"]}
    assert {0, 2} <= measured
    rec = doc["recommended"]
    assert rec["num_workers"] in measured and rec["samples_per_s"] > 0
    assert rec["reason"]
    for r in doc["results"]:
        assert r["raw"]["epochs"][0]["times_s"], "raw per-batch times are kept"
        assert r["first_batch_s"] is not None and r["first_batch_s"] >= 0
    assert leftovers(run.marker) == []
    assert run.shm_new == set()


def test_seed_details(seed_runs: dict[str, Run]) -> None:
    docs = {name: json.loads(run.stdout) for name, run in seed_runs.items()}
    # The user's own settings are measured as the baseline row (sharded loader: 4 workers).
    base = [r for r in docs["worker_sharded_iterable"]["results"] if r["baseline"]]
    assert base and base[0]["setting"]["num_workers"] == 4
    # Own batching is kept: batch_size=None yields one sample per "batch".
    nb = docs["batch_size_none"]
    assert nb["dataset"]["own_batching"] == "none"
    assert all(n == 1 for r in nb["results"] for e in r["raw"]["epochs"] for n in e["samples"])
    bs = docs["custom_batch_sampler"]
    assert bs["dataset"]["own_batching"] == "batch_sampler"
    assert "CustomBatchSampler" in bs["dataset"]["batch_sampler"]
    assert docs["custom_sampler"]["dataset"]["sampler"].endswith("CustomSampler")
    assert docs["custom_collate_fn"]["dataset"]["collate_fn"].endswith("collate_fn")
    # The never-ending stream is measured by time: one epoch, never complete.
    logs = docs["realtime_logs"]
    assert logs["dataset"]["kind"] == "iterable"
    assert all(not e["complete"] for r in logs["results"] for e in r["raw"]["epochs"])
    # Short finite datasets are re-iterated: several epochs, restart cost measured.
    tensor = docs["tensor_dataset"]
    two = next(r for r in tensor["results"] if r["setting"]["num_workers"] == 2)
    assert len(two["raw"]["epochs"]) > 1 and two["epoch_restart_s"] is not None
    # The cost model read the workers', the main process's and everyone else's CPU time.
    cost = two["cost"]
    assert cost["worker_cpu_ms_per_sample"] > 0 and cost["main_cpu_ms_per_batch"] > 0
    assert cost["others_busy"] is not None and cost["others_busy"] >= 0
    # Without CUDA the GPU columns say so.
    assert two["gpu"] == {"available": False, "reason": "no CUDA"} or not two["gpu"]["available"]


@pytest.mark.parametrize("name", list(FAILURES))
def test_failure_end_to_end(failure_runs: dict[str, Run], name: str) -> None:
    run = failure_runs[name]
    _, code, text = FAILURES[name]
    assert run.returncode == code, (run.stdout[-2000:], run.stderr[-3000:])
    if run.stdout.strip():
        doc = json.loads(run.stdout)
        assert any(text in e for e in _errors(doc)), _errors(doc)
    else:
        flat = " ".join(run.stderr.split())
        assert text in flat, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
    assert leftovers(run.marker) == []
    assert run.shm_new == set()


def test_failures_keep_measuring_the_rest(failure_runs: dict[str, Run]) -> None:
    doc = json.loads(failure_runs["worker_killed"].stdout)
    ok = [r for r in doc["results"] if r["ok"]]
    assert [r["setting"]["num_workers"] for r in ok] == [0]
    assert doc["recommended"]["num_workers"] == 0
    bad = next(r for r in doc["results"] if not r["ok"])
    assert bad["error_kind"] == "worker_killed" and "memory" in bad["hint"]
    lmdb = json.loads(failure_runs["lmdb_before_fork"].stdout)
    assert "open it lazily" in lmdb["results"][0]["hint"]


def test_json_stays_clean_when_the_dataset_prints() -> None:
    run = run_cli(["failing.py:noisy", "--workers", "0", "--duration", "0.5", "--json"])
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(run.stdout)  # one document, nothing else
    assert doc["schema"] == "dlcheck.profile/1"


def test_human_output_csv_plot_and_min_throughput(tmp_path: Path) -> None:
    csv_path, png = tmp_path / "r.csv", tmp_path / "r.png"
    run = run_cli(
        [
            "seed_examples.py:sampler_loader",
            *QUICK[:-1],
            "--output",
            str(csv_path),
            "--plot",
            str(png),
            "--min-throughput",
            "1e12",
        ]
    )
    assert run.returncode == 1, run.stderr[-2000:]
    out = run.stdout
    assert "samples/s by num_workers" in out  # the terminal chart
    assert "recommended: num_workers=" in out
    assert "DataLoader(dataset, ..., batch_size=10, num_workers=" in out  # keep the rest
    assert "below --min-throughput" in out
    head = csv_path.read_text().splitlines()
    assert head[0].startswith("num_workers,batch_size,pin_memory") and len(head) == 3
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_ctrl_c_exits_130_quickly_and_keeps_partial_results(tmp_path: Path) -> None:
    import uuid

    out = tmp_path / "partial.json"
    marker = uuid.uuid4().hex
    before = shm_entries()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlcheck",
            "profile",
            "slow.py:dataset",
            "--workers",
            "0,4",
            "--duration",
            "3",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(marker),
        cwd=HERE,
        preexec_fn=sigint_default,
    )
    try:
        deadline = time.monotonic() + 90
        while not out.exists() and time.monotonic() < deadline:  # first setting finished
            time.sleep(0.1)
        assert out.exists(), "no partial output was written"
        time.sleep(1.5)  # inside the second setting (starting or running its workers)
        t = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        elapsed = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    # Quick on a quiet machine (under 2 s); the bound is generous for a loaded CI machine.
    assert elapsed < 15.0, elapsed
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True
    assert doc["results"] and doc["results"][0]["ok"]
    assert leftovers(marker) == []
    assert leaked_shm(before) == set()


def test_python_api_profiles_an_in_memory_dataset() -> None:
    import torch
    from torch.utils.data import TensorDataset

    import dlcheck

    ds = TensorDataset(torch.arange(512).float().unsqueeze(1))
    report = dlcheck.profile(ds, workers=[0], batch_size=[32], duration=0.3, stall_timeout=10)
    assert report.exit_code == 0
    assert report.recommended is not None and report.recommended.num_workers == 0
    doc = report.to_dict()
    assert doc["schema"] == "dlcheck.profile/1"
    assert doc["dataset"]["length"] == 512
    assert "recommended" in report._repr_html_()


def test_fake_cuda_fills_the_gpu_columns() -> None:
    run = run_cli(
        ["seed_examples.py:tensor_loader", "--workers", "0", "--duration", "0.5", "--json"],
        extra_env={"DLCHECK_FAKE_CUDA": "10"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(run.stdout)
    # With "CUDA" present the default sweeps pin_memory off and on.
    pins = sorted(r["setting"]["pin_memory"] for r in doc["results"])
    assert pins == [False, True]
    gpu = doc["results"][0]["gpu"]
    assert gpu["available"] and gpu["device"] == "Fake GPU"
    assert gpu["h2d_ms_p50"] > 0 and gpu["pct_of_peak"] > 0
    assert gpu["end_to_end_samples_per_s"] == doc["results"][0]["samples_per_s"]


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom dlcheck.cli import app\n"
        "try:\n    app(['profile', '--help'], prog_name='dlcheck')\nexcept SystemExit:\n    pass\n"
        "assert not any(m.split('.')[0] in {'torch', 'numpy', 'pynvml'} for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=os.environ)


def test_strict_turns_a_warning_check_into_exit_1() -> None:
    args = ["failing.py:noisy", "--workers", "0", "--duration", "0.5", "--need", "1e12", "--json"]
    warned = run_cli(args)
    assert warned.returncode == 0, warned.stderr[-2000:]
    doc = json.loads(warned.stdout)
    assert [(c["id"], c["status"]) for c in doc["checks"]] == [("need", "warn")]
    strict = run_cli([*args, "--strict"])
    assert strict.returncode == 1, strict.stderr[-2000:]
    assert json.loads(strict.stdout)["exit_code"] == 1
