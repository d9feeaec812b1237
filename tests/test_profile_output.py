"""`dlcheck profile` output contracts (issue 8): the user's own output is seen, JSON is small
unless --raw, dlcheck's own files fail cleanly, and the table fits 80 columns."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from profile_helpers import leftovers, run_cli

MAX_JSON_BYTES = 64 * 1024
SCHEMA_FILE = Path(__file__).parent.parent / "src" / "dlcheck" / "profile" / "schema.json"


def validate(doc: dict) -> None:
    import jsonschema

    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))


def test_user_output_reaches_stderr_deduplicated_and_beside_the_error() -> None:
    run = run_cli(["failing.py:chatty_factory", "--workers", "0", "--duration", "1"])
    assert run.returncode == 1, run.stderr[-3000:]
    # The factory's print, the dataset's prints and its warning reach stderr...
    assert "building the index: 200 files" in run.stderr
    assert "chatty dataset: a user warning" in run.stderr
    # ...each distinct line once, although every sample prints it.
    assert run.stderr.count("decoding with the slow path") == 1, run.stderr[-3000:]
    # The failed setting shows its last output beside the error.
    out = run.stdout
    assert "sample 37 is broken" in out
    assert "its last output:" in out and "about to fail on sample 37" in out
    assert "Traceback" not in out + run.stderr
    assert leftovers(run.marker) == []


def test_json_is_small_by_default_and_raw_brings_the_times_back() -> None:
    args = ["seed_examples.py:tensor_loader", "--workers", "0,1,2,4", "--duration", "1", "--json"]
    plain = run_cli(args)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert len(plain.stdout.encode()) < MAX_JSON_BYTES, len(plain.stdout)
    doc = json.loads(plain.stdout)
    validate(doc)
    assert len(doc["results"]) >= 4
    assert all("raw" not in r for r in doc["results"])
    raw = run_cli([*args, "--raw"])
    assert raw.returncode == 0, raw.stderr[-3000:]
    rdoc = json.loads(raw.stdout)
    validate(rdoc)
    assert all(r["raw"]["epochs"][0]["times_s"] for r in rdoc["results"] if r["ok"])


def _not_dlcheck_json(tmp: Path) -> str:
    p = tmp / "other.json"
    p.write_text('{"hello": 1}')
    return str(p)


def _garbage(tmp: Path) -> str:
    p = tmp / "garbage.json"
    p.write_text("not json at all")
    return str(p)


CASES = {
    "output_in_proc": (["--output", "/proc/x.json"], "/proc/x.json"),
    "output_missing_dir": (["--output", "/nonexistent-dlcheck-dir/x.json"], "does not exist"),
    "output_is_a_directory": (["--output", "{tmp}"], "is a directory"),
    "plot_in_proc": (["--plot", "/proc/x.png"], "/proc/x.png"),
    "baseline_missing": (["--baseline", "missing.json"], "missing.json"),
    "baseline_not_json": (["--baseline", "{garbage}"], "is not JSON"),
    "baseline_not_dlcheck": (["--baseline", "{other}"], "is not a dlcheck.profile/1 document"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_unusable_files_fail_cleanly(name: str, tmp_path: Path) -> None:
    args, expected = CASES[name]
    if name == "output_is_a_directory":
        (tmp_path / "x.json").mkdir()
    subs = {
        "tmp": str(tmp_path / "x.json"),
        "garbage": _garbage(tmp_path),
        "other": _not_dlcheck_json(tmp_path),
    }
    args = [a.format(**subs) for a in args]
    run = run_cli(["seed_examples.py:tensor_loader", "--workers", "0", *args])
    assert run.returncode == 2, (run.stdout[-2000:], run.stderr[-2000:])
    assert "Traceback" not in run.stderr
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], run.stderr
    assert run.stdout == ""


# ---------------------------------------------------------------- rendering (golden)


def _render(width: int, *, wide: bool = False, gpu: bool = False) -> str:
    from dlcheck.output import console
    from dlcheck.profile.records import GpuFigures
    from dlcheck.profile.render import report_renderable
    from test_profile_units import make_report

    rep = make_report()
    if gpu:
        for r in rep.results:
            if r.ok:
                r.gpu = GpuFigures(True, device="Fake GPU", h2d_ms_p50=0.84, h2d_gb_per_s=43.2,
                                   pct_of_peak=95.0)  # fmt: skip
    buf = io.StringIO()
    console(file=buf, width=width).print(report_renderable(rep, wide=wide))
    return buf.getvalue()


@pytest.mark.parametrize("gpu", [False, True])
def test_default_table_fits_80_columns(gpu: bool) -> None:
    text = _render(80, gpu=gpu)
    assert "…" not in text
    assert max(len(ln) for ln in text.splitlines()) <= 80
    head = next(ln for ln in text.splitlines() if "workers" in ln and "samples/s" in ln)
    for column in ("workers", "samples/s", "1st batch", "p95 ms", "PSS MB"):
        assert column in head
    assert ("H2D" in head) is gpu
    assert "batches/s" not in head  # behind --wide


def test_wide_adds_every_column() -> None:
    text = _render(200, wide=True)
    head = next(ln for ln in text.splitlines() if "workers" in ln and "samples/s" in ln)
    for column in ("batches/s", "p50/p95/p99 ms", "stalls", "USS/PSS MB", "shm MB", "restart"):
        assert column in head


GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "profile_80.txt"


def test_golden_output_at_80_columns() -> None:
    """The whole human report of a hand-built run, byte for byte (trailing blanks aside)."""
    text = "\n".join(ln.rstrip() for ln in _render(80, gpu=True).splitlines()) + "\n"
    assert text == GOLDEN.read_text(), text


def test_hand_built_report_and_failures_match_the_schema() -> None:
    from test_profile_units import make_report

    validate(json.loads(json.dumps(make_report().to_dict(raw=True))))  # type: ignore[attr-defined]


def test_a_setting_the_budget_skipped_reads_over_budget_not_failed() -> None:
    """A limit the user set (--max-memory) is not shown as a failure in the table."""
    from dlcheck.output import console
    from dlcheck.profile.records import Setting, SettingResult
    from dlcheck.profile.render import report_renderable
    from test_profile_units import make_report

    rep: Any = make_report()
    rep.results.append(
        SettingResult(
            Setting(16, 64, prefetch_factor=2).normalised(),
            ok=False,
            error="skipped: predicted to hold 2.3 GB, over the memory budget of 2.0 GB",
            error_kind="over_budget",
        )
    )
    buf = io.StringIO()
    console(file=buf, width=80).print(report_renderable(rep))
    row = next(ln for ln in buf.getvalue().splitlines() if ln.strip().startswith("16 "))
    assert "over budget" in row and "failed" not in row
