"""The doctor probe registry agrees with itself: specs, run order, collectors, judges, docs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlcheck.cli import app
from dlcheck.doctor.facts import COLLECTORS
from dlcheck.doctor.judge import JUDGES
from dlcheck.doctor.probe_docs import probes_markdown
from dlcheck.doctor.probes import probe_modules
from dlcheck.doctor.records import PROBE_IDS, PROBES, PROBES_BY_ID, RUN_ORDER

DOCS = Path(__file__).resolve().parents[1] / "docs" / "probes.md"


def test_every_spec_is_complete_and_unique() -> None:
    assert len(set(PROBE_IDS)) == len(PROBE_IDS)
    for p in PROBES:
        assert p.id.isidentifier(), p
        assert p.title.strip() and p.detects.strip() and p.cost.strip(), p.id
        assert isinstance(p.touches_samples, bool), p.id
    orders = [p.run_order for p in PROBES]
    assert len(set(orders)) == len(orders), "two probes share a run_order"
    listed = [p.list_order for p in PROBES]
    assert len(set(listed)) == len(listed), "two probes share a list_order"
    assert PROBES_BY_ID.keys() == set(PROBE_IDS)


def test_every_probe_runs_and_has_a_collector_and_a_judge() -> None:
    # A probe missing from any of these would never run, or crash when judged.
    assert sorted(RUN_ORDER) == sorted(PROBE_IDS)
    assert set(COLLECTORS) == set(PROBE_IDS)
    assert set(JUDGES) == set(PROBE_IDS)


def test_run_order_keeps_attribute_walks_before_sample_fetches() -> None:
    touches = [PROBES_BY_ID[p].touches_samples for p in RUN_ORDER]
    assert touches == sorted(touches), "a probe that fetches samples runs before a walk"


def test_every_probe_is_listed_by_the_cli() -> None:
    out = CliRunner().invoke(app, ["doctor", "--list-probes", "--json"])
    assert out.exit_code == 0, out.output
    assert [p["id"] for p in json.loads(out.stdout)["probes"]] == list(PROBE_IDS)


def test_docs_probes_md_is_generated_from_the_specs() -> None:
    assert DOCS.read_text() == probes_markdown(), (
        "docs/probes.md is out of date: run `python -m dlcheck.doctor.probe_docs > docs/probes.md`"
    )


@pytest.mark.parametrize("mod", probe_modules(), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_probe_module_is_complete(mod: object) -> None:
    spec = mod.SPEC  # type: ignore[attr-defined]
    assert spec.id == mod.__name__.rsplit(".", 1)[-1]  # type: ignore[attr-defined]
    assert COLLECTORS[spec.id] is mod.collect  # type: ignore[attr-defined]
    assert JUDGES[spec.id] is mod.judge  # type: ignore[attr-defined]
    facts_cls = mod.FACTS  # type: ignore[attr-defined]
    assert dataclasses.is_dataclass(facts_cls) and facts_cls.__dataclass_params__.frozen
    example = facts_cls.example()
    assert facts_cls.from_dict(json.loads(json.dumps(example.to_dict()))) == example
    # The dict is the evidence findings quote: the same keys, in the same order, both ways.
    again = facts_cls.from_dict(example.to_dict()).to_dict()
    assert list(again.items()) == list(example.to_dict().items())
    with pytest.raises(TypeError):  # a renamed fact fails loudly
        facts_cls.from_dict({**example.to_dict(), "renamed_fact": 1})


def test_facts_absent_on_a_path_stay_absent() -> None:
    from dlcheck.doctor.probes.sampler_epoch import SamplerEpochFacts

    # A dataset TARGET: no sampler facts, and no keys for them in the evidence.
    facts = SamplerEpochFacts.from_dict({"loader": False})
    assert facts.to_dict() == {"loader": False}
    assert facts.padding == 0 and facts.sampler is None
    shaped = SamplerEpochFacts(loader=True, distributed=False, sampler="S").to_dict()
    assert list(shaped) == ["loader", "distributed", "sampler"]
