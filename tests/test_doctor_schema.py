"""`dlcheck.doctor/1` documents validate against src/dlcheck/doctor/schema.json: hand-built
ones (every status, dlcheck's own error, a launcher's ranks) and real runs of the probes
(a planted corrupt dataset, a planted dlcheck bug, a simulated shard audit)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import dlcheck
import dlcheck.doctor
from dlcheck.doctor.records import DoctorReport, Finding
from dlcheck.records import Status

sys.path.insert(0, str(Path(__file__).parent))

SCHEMA = json.loads(Path(dlcheck.doctor.__file__).with_name("schema.json").read_text())


def validate(doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_golden_report_validates() -> None:
    from test_doctor_shapes import golden_report

    validate(golden_report().to_dict())


def test_a_launchers_document_validates() -> None:
    report = DoctorReport(
        target="train.py:loader",
        target_info=None,
        findings=[Finding("duplicates", Status.PASS, "Samples delivered once", "ok")],
        options={"workers": 2},
        duration_s=1.5,
        launcher="torchrun",
        world_size=2,
        ranks=[
            {"rank": 0, "host": "a", "local_rank": 0, "status": "ok", "samples": 50,
             "complete": True, "error": None, "duration_s": 0.4},
            {"rank": 1, "host": "a", "status": "lost", "error": "did not reach 'shards'"},
        ],
    )  # fmt: skip
    validate(report.to_dict())


def test_the_schema_refuses_what_the_docs_rule_out() -> None:
    from test_doctor_shapes import golden_report

    doc = golden_report().to_dict()
    bad = json.loads(json.dumps(doc))
    bad["findings"][0]["status"] = "ok"  # not a status
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(doc))
    bad["findings"][0]["error"] = {"kind": "internal"}  # an error on a pass
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(doc))
    del bad["counts"]
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


@pytest.mark.parametrize(
    ("target", "kw", "status"),
    [
        ("planted_corrupt.dataset", {"probes": ["corrupt_samples"]}, Status.FAIL),
        ("planted_duplicates.rank_gap", {"probes": ["duplicates"], "world_size": 2}, None),
    ],
)
def test_real_runs_validate(target: str, kw: dict[str, Any], status: Status | None) -> None:
    import importlib

    module, attr = target.split(".")
    obj = getattr(importlib.import_module(f"doctor_data.{module}"), attr)
    report = dlcheck.doctor(obj, timeout=60, **kw)
    assert isinstance(report, DoctorReport)
    if status is not None:
        assert status in report.statuses
    validate(report.to_dict())


def test_a_planted_dlcheck_bug_validates_as_internal() -> None:
    """Through the CLI: the planted bug is imported in doctor's child, with the TARGET."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "dlcheck", "doctor", "doctor_data.planted_internal:dataloader",
         "-p", "determinism", "--json", "--timeout", "60"],
        capture_output=True, text=True, cwd=Path(__file__).parent, timeout=600,
    )  # fmt: skip
    doc = json.loads(out.stdout)
    validate(doc)
    assert doc["internal_errors"] == 1
    assert doc["findings"][0]["error"]["kind"] == "internal"
