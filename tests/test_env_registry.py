"""The check registry is complete: every check has an id, a declared group, a title and known
probes; each group lives in one module; ``dlcheck env --list-checks`` shows them all."""

from __future__ import annotations

import dataclasses
import importlib
import json

import pytest
from typer.testing import CliRunner

from dlcheck.cli import app
from dlcheck.env import checks
from dlcheck.env.checks.base import PROBES, check
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status
from env_fixtures import healthy


def _group_modules():
    return [importlib.import_module(f"dlcheck.env.checks.{name}") for name in checks.GROUP_MODULES]


def test_ids_are_unique_and_name_their_group() -> None:
    ids = [s.id for s in checks.REGISTRY]
    assert len(ids) == len(set(ids)) >= 30
    assert list(checks.SPECS) == ids
    for spec in checks.REGISTRY:
        key, _, name = spec.id.partition(".")
        assert key and name, spec.id
        assert spec.group == key and key in checks.GROUPS, spec.id
        assert spec.title.strip(), spec.id
        assert callable(spec.fn), spec.id


def test_every_need_is_a_probe() -> None:
    assert {f.name for f in dataclasses.fields(EnvFacts)} == PROBES
    for spec in checks.REGISTRY:
        assert {n.rstrip("?") for n in spec.needs} <= PROBES, spec.id
        assert spec.required, f"{spec.id} needs no probe at all"


def test_each_group_module_holds_one_group_and_registers_checks() -> None:
    modules = _group_modules()
    # One module per group, declared in the order the report shows them.
    assert [m.GROUP for m in modules] == list(checks.GROUPS)
    for m in modules:
        own = [s for s in checks.REGISTRY if s.fn.__module__ == m.__name__]
        assert own, f"{m.__name__} registers no check"
        assert {s.group for s in own} == {m.GROUP}, m.__name__
        assert own == [s for s in checks.REGISTRY if s.group == m.GROUP], m.__name__


def test_registry_order_follows_the_groups() -> None:
    # The console groups checks by GROUPS order; the JSON keeps registry order: they agree.
    order = list(checks.GROUPS)
    positions = [order.index(s.group) for s in checks.REGISTRY]
    assert positions == sorted(positions)


def test_every_check_gives_a_summary() -> None:
    for facts in (healthy(), EnvFacts(), healthy(torch=None, nvml=None)):
        for c in checks.evaluate(facts):
            assert c.summary.strip(), c.id
            assert c.status is not Status.ERROR, (c.id, c.summary)


def test_registering_a_bad_check_fails_at_import_time() -> None:
    before = list(checks.REGISTRY)

    def fn(_facts):  # never registered
        raise AssertionError

    with pytest.raises(ValueError, match="registered twice"):
        check("host.shm", "again", "host")(fn)
    with pytest.raises(ValueError, match="not declared"):
        check("nogroup.x", "x", "host")(fn)
    with pytest.raises(ValueError, match="unknown probes: gpu"):
        check("host.x", "x", "host", "gpu?")(fn)
    assert before == checks.REGISTRY


def test_list_checks_lists_every_registered_check() -> None:
    r = CliRunner().invoke(app, ["env", "--list-checks"])
    assert r.exit_code == 0, r.output
    for spec in checks.REGISTRY:
        assert spec.id in r.output, spec.id
    for title in checks.GROUPS.values():
        assert title in r.output, title
    j = CliRunner().invoke(app, ["env", "--list-checks", "--json"])
    assert j.exit_code == 0, j.output
    listed = [(c["id"], c["group"], c["title"]) for c in json.loads(j.stdout)["checks"]]
    assert listed == [(s.id, checks.GROUPS[s.group], s.title) for s in checks.REGISTRY]
