"""`dlcheck doctor` on every loader shape of the study note (seed), dlcheck's own errors
labelled as such, and output that fits 80 columns.

The shapes are real subprocess runs (``python -m dlcheck doctor doctor_data.shape_*``); the
renderer is checked against a golden text from a hand-built report.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from torch.utils.data import IterableDataset

from dlcheck.doctor.records import DoctorReport, Finding, TargetInfo
from dlcheck.records import Status

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

# shape fixture → what training with it would deliver is right (exit 0)
SHAPES = {
    "map_style": True,
    "iterable": True,
    "sharded_iterable": True,
    "infinite_stream": False,  # not sharded: every worker replays the same logs
    "sampler": True,
    "batch_sampler": True,
    "no_batching": True,
    "collate_fn": True,
    "worker_init": True,
    "subclass": True,  # a DataLoader subclass (torch_geometric's, say): named in the report
}


def run(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "dlcheck", "doctor", *args],
        cwd=TESTS,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,  # a bound for a wedged run only: a busy machine must never reach it
    )


def assert_fits(text: str, width: int = 80) -> None:
    from rich.cells import cell_len

    assert "…" not in text, text
    long = [line for line in text.splitlines() if cell_len(line) > width]
    assert not long, long
    assert not [line for line in text.splitlines() if line != line.rstrip()], "trailing blanks"


# ---------------------------------------------------------------- every loader shape


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_loader_shape_runs_every_probe(shape: str) -> None:
    # The infinite stream costs most of its timeout in the duplicates probe (it never ends):
    # 20 s leaves a busy machine ample time to start the workers.
    out = run(f"doctor_data.shape_{shape}:dataloader", "--json", "--timeout", "20")
    doc = json.loads(out.stdout)
    errors = [(f["probe"], f["message"]) for f in doc["findings"] if f["status"] == "error"]
    assert not errors, errors
    assert doc["internal_errors"] == 0
    assert {f["probe"] for f in doc["findings"]} == set(doc["options"]["probes"])
    subclass = "doctor_data.shape_subclass.PairLoader" if shape == "subclass" else None
    assert doc["target_info"]["loader_class"] == subclass
    if SHAPES[shape]:
        fails = [(f["probe"], f["message"]) for f in doc["findings"] if f["status"] == "fail"]
        assert not fails, fails
        assert out.returncode == 0 and doc["exit_code"] == 0, out.stderr
        return
    # The seed's log stream: each worker replays the same logs, and duplicates says so.
    assert out.returncode == 1
    dup = [f for f in doc["findings"] if f["probe"] == "duplicates"]
    assert dup[0]["status"] == "fail", dup
    assert "delivered by more than one worker" in dup[0]["message"]
    rng = [f for f in doc["findings"] if f["probe"] == "shared_rng"]
    assert rng[0]["status"] != "fail", rng  # no RNG is held: not blamed on one
    assert [f["probe"] for f in doc["findings"] if f["status"] == "fail"] == ["duplicates"]


def test_batch_sampler_loader_at_80_columns() -> None:
    out = run("doctor_data.shape_batch_sampler:dataloader", columns=80)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Same seed, same batches (determinism)" in out.stdout
    assert "mutually exclusive" not in out.stdout
    assert_fits(out.stdout)


def test_rebuilt_loaders_keep_every_user_setting() -> None:
    """The one helper that rebuilds a DataLoader, on each shape, as the probes call it."""
    import importlib

    import torch

    from dlcheck.doctor.facts import DieWithParent, build_loader, make_context

    for shape in SHAPES:
        if shape == "infinite_stream":
            continue  # iterating it would wait for logs forever
        mod = importlib.import_module(f"doctor_data.shape_{shape}")
        user = mod.dataloader
        ctx = make_context(user, {"workers": 2}, None)
        for workers in (0, 2):
            dl = build_loader(ctx, num_workers=workers)
            assert dl.dataset is user.dataset
            assert dl.collate_fn is user.collate_fn
            assert dl.generator is user.generator
            assert dl.batch_size == user.batch_size
            if user.batch_size is None and user.batch_sampler is not None:
                assert dl.batch_sampler is user.batch_sampler
            elif not ctx.iterable:
                assert dl.sampler is user.sampler
            if workers:
                assert isinstance(dl.worker_init_fn, DieWithParent)
                assert dl.worker_init_fn.user_fn is user.worker_init_fn
            torch.manual_seed(0)
            first = next(iter(dl))
            torch.manual_seed(0)
            if user.generator is not None:
                user.generator.manual_seed(0)
                dl.generator.manual_seed(0)
            if workers == 0:
                again = next(iter(user)) if user.num_workers == 0 else None
                if again is not None and shape != "sampler" and shape != "batch_sampler":
                    assert _same(first, again)


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return bool(torch.equal(a, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# ---------------------------------------------------------------- dlcheck's own errors


def test_crash_origin_tells_our_bug_from_the_users_code() -> None:
    from torch.utils.data import DataLoader

    from dlcheck.doctor.collect import crash_origin
    from dlcheck.doctor.facts import build_loader, fetch_sample, make_context

    sampler_loader = DataLoader(list(range(8)), batch_sampler=[[0, 1], [2, 3]])
    ctx = make_context(sampler_loader, {"workers": 2}, None)
    try:
        build_loader(ctx, num_workers=0, batch_size=4)  # batch_size next to a batch_sampler
    except ValueError as exc:
        ours = crash_origin(exc)
    assert ours["origin"] == "internal"
    assert ours["where"].startswith("dlcheck/doctor/facts.py:")

    # The user's __getitem__ (this file is user code to dlcheck), called by dlcheck.
    class Broken:
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> Any:
            return {}["label"]

    try:
        fetch_sample(make_context(Broken(), {"workers": 2}, None), 0)
    except KeyError as exc:
        theirs = crash_origin(exc)
    assert theirs["origin"] == "user" and "test_doctor_shapes.py" in theirs["where"]


def test_internal_probe_error_is_labelled_in_text_and_json() -> None:
    out = run("doctor_data.planted_internal:dataloader", "-p", "resources", "--json")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    (f,) = doc["findings"]
    assert f["status"] == "error" and doc["internal_errors"] == 1
    assert f["error"]["kind"] == "internal"
    assert "mutually exclusive" in f["error"]["exception"]
    assert f["error"]["where"].startswith("dlcheck/doctor/facts.py:")
    assert "Traceback" in f["error"]["traceback"]
    assert f["message"].startswith("dlcheck's own error, not a finding about your data")
    assert "dlcheck bug" in f["fix"]

    text = run("doctor_data.planted_internal:dataloader", "-p", "resources", columns=80)
    assert text.returncode == 1
    assert "(resources) dlcheck error" in text.stdout
    assert "please report" in text.stdout and "run with -v for the traceback" in text.stdout
    assert "Traceback" not in text.stdout + text.stderr
    assert_fits(text.stdout)

    verbose = run("doctor_data.planted_internal:dataloader", "-p", "resources", "-v", columns=80)
    assert verbose.returncode == 1
    # The traceback comes raw: its lines are not wrapped to the terminal.
    assert "Traceback (most recent call last):" in verbose.stdout
    assert any(
        line.startswith("ValueError: batch_sampler option is mutually exclusive with batch_size")
        and len(line) > 80
        for line in verbose.stdout.splitlines()
    )


def test_user_exception_escaping_a_probe_is_a_finding_not_our_error() -> None:
    from dlcheck.doctor import judge as J

    failure = {
        "message": "KeyError: 'label'",
        "origin": "user",
        "where": "data.py:12 (__iter__)",
        "detail": "Traceback ...",
    }
    f = J.judge_failure("shared_rng", failure, 30)
    assert f.status is Status.FAIL and not f.internal and f.error is None
    assert f.evidence["cause"] == "dataset_exception"
    ours = J.judge_failure("shared_rng", {**failure, "origin": "internal"}, 30)
    assert ours.status is Status.ERROR and ours.internal


# ---------------------------------------------------------------- golden output


def golden_report() -> DoctorReport:
    from dlcheck.doctor import judge as J

    def finding(probe: str, status: Status, message: str, **kw: Any) -> Finding:
        return Finding(probe, status, J.PROBES_BY_ID[probe].title, message, **kw)

    return DoctorReport(
        target="doctor_data.shape_batch_sampler:dataloader",
        target_info=TargetInfo(
            raw="doctor_data.shape_batch_sampler:dataloader",
            kind="loader",
            dataset_class="doctor_data._seed.ExampleDataset",
            style="map",
            length=100,
        ),
        findings=[
            finding("fork_safety", Status.PASS, "No handle is open when the workers fork."),
            finding(
                "sampler_epoch",
                Status.SKIP,
                "The loader's sampler is torch.utils.data.dataloader._InfiniteConstantSampler, "
                "not a DistributedSampler.",
            ),
            finding(
                "resources",
                Status.WARN,
                "num_workers=4 but only 2 CPUs are usable: workers compete with each other and "
                "the training process.",
                evidence_text=[
                    "one batch: 80 B in 1 tensors; in flight: 4 workers × prefetch 2 = 640 B; "
                    "/dev/shm free: 23.5 GiB"
                ],
                fix="Use num_workers ≤ 1 (or measure with `dlcheck profile`).",
            ),
            finding(
                "corrupt_samples",
                Status.FAIL,
                "1 of 64 checked samples is bad: index 7.",
                evidence_text=[
                    "index 7: FileNotFoundError: /data/a/very/long/path/that/does/not/fit/on/"
                    "one/line/of/eighty/columns/image-000007.jpg"
                ],
                fix="Repair or filter the listed samples.",
            ),
            J.internal_error(
                "determinism",
                "ValueError: batch_sampler option is mutually exclusive with batch_size, "
                "shuffle, sampler, and drop_last",
                where="dlcheck/doctor/facts.py:412 (build_loader)",
                traceback='Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
                "ValueError: batch_sampler option is mutually exclusive with batch_size, "
                "shuffle, sampler, and drop_last\n",
            ),
        ],
        options={},
        duration_s=4.2,
    )


GOLDEN = """\
dlcheck doctor doctor_data.shape_batch_sampler:dataloader
  loader: doctor_data._seed.ExampleDataset (map-style, 100 samples)
✓ No handles shared across fork (fork_safety)
- DistributedSampler reshuffles each epoch (sampler_epoch)
    The loader's sampler is
    torch.utils.data.dataloader._InfiniteConstantSampler, not a
    DistributedSampler.
! Batch fits /dev/shm, open files and CPUs (resources)
    num_workers=4 but only 2 CPUs are usable: workers compete with each other
    and the training process.
    • one batch: 80 B in 1 tensors; in flight: 4 workers × prefetch 2 = 640 B;
      /dev/shm free: 23.5 GiB
    fix: Use num_workers ≤ 1 (or measure with `dlcheck profile`).
✗ Samples load cleanly (corrupt_samples)
    1 of 64 checked samples is bad: index 7.
    • index 7: FileNotFoundError:
      /data/a/very/long/path/that/does/not/fit/on/one/line/of/eighty/columns/ima
      ge-000007.jpg
    fix: Repair or filter the listed samples.
✗ Same seed, same batches (determinism) dlcheck error
    dlcheck's own error, not a finding about your data: ValueError:
    batch_sampler option is mutually exclusive with batch_size, shuffle,
    sampler, and drop_last
    • raised in dlcheck/doctor/facts.py:412 (build_loader)
    fix: This is a dlcheck bug: please report it
         (https://github.com/dlcheck/dlcheck/issues); run with -v for the
         traceback.

1 failure, 1 error, 1 warning (5 findings, 4.2 s)
1 error is dlcheck's own (a dlcheck bug, not a finding about your data): please
report it; run with -v for the traceback.
"""


def render(report: DoctorReport, *, verbose: bool = False) -> str:
    from rich.console import Console

    from dlcheck.doctor.render import render_report

    buf = io.StringIO()
    render_report(report, Console(file=buf, width=80, color_system=None), verbose=verbose)
    return buf.getvalue()


def test_golden_report_at_80_columns() -> None:
    text = render(golden_report())
    assert text == GOLDEN
    assert_fits(text)


def test_a_subclass_loader_is_named_within_80_columns() -> None:
    report = golden_report()
    assert report.target_info is not None
    report.target_info.loader_class = "doctor_data.shape_subclass.PairLoader"
    text = render(report)
    assert (
        "  doctor_data.shape_subclass.PairLoader is a DataLoader subclass: the probes\n"
        "  rebuild plain DataLoaders from its dataset and settings, so what it adds is\n"
        "  not checked.\n"
    ) in text
    assert_fits(text)


def test_verbose_prints_the_traceback_raw() -> None:
    text = render(golden_report(), verbose=True)
    lines = text.splitlines()
    assert "Traceback (most recent call last):" in lines
    # One line, as Python wrote it, although it is longer than the console.
    assert (
        "ValueError: batch_sampler option is mutually exclusive with batch_size, shuffle, "
        "sampler, and drop_last" in lines
    )
    assert "…" not in text


class _StreamThatRaises(IterableDataset):  # type: ignore[type-arg]
    """User code (this file is not dlcheck): its stream raises on the first sample."""

    def __iter__(self) -> Iterator[int]:
        raise KeyError("label")
        yield 0


class _EmptyStream(IterableDataset):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[int]:
        return iter(())


def test_user_code_raising_inside_a_probe_end_to_end() -> None:
    import dlcheck

    report = dlcheck.doctor(_StreamThatRaises(), probes=["shared_rng"], timeout=60)
    (f,) = report.findings
    assert f.status is Status.FAIL and not f.internal, f
    assert "KeyError: 'label'" in f.message and "test_doctor_shapes.py" in f.evidence_text[0]
    empty = dlcheck.doctor(_EmptyStream(), probes=["shared_rng"], timeout=60)
    assert [g.status for g in empty.findings] == [Status.SKIP], empty.findings


def test_probe_list_table_at_80_columns() -> None:
    from rich.console import Console

    from dlcheck.doctor.render import render_probe_list

    buf = io.StringIO()
    render_probe_list(Console(file=buf, width=80, color_system=None))
    text = buf.getvalue()
    assert "sampler_epoch" in text and "cuda_in_worker" in text  # ids are never wrapped
    assert "…" not in text
    from rich.cells import cell_len

    assert max(cell_len(line) for line in text.splitlines()) <= 80
