"""Run the env checks: start the torch child first, collect the other facts meanwhile, judge.

This is what ``dlcheck env`` and the Python API ``dlcheck.env()`` call.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dlcheck.env.records import EnvFacts, NvmlFacts, TorchFacts
from dlcheck.errors import UsageError

if TYPE_CHECKING:
    from dlcheck.env.records import EnvReport

DEFAULT_TIMEOUT = 60.0


def _unknown_checks(unknown: list[str]) -> UsageError:
    return UsageError(
        f"unknown check id: {', '.join(unknown)}.",
        "Run `dlcheck env --list-checks` to see every id (a group name such as `host` selects "
        "the whole group).",
    )


def run_env(
    checks: list[str] | tuple[str, ...] | str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    nvml: Any = None,
    deep: bool = False,
    strict: bool = False,
) -> EnvReport:
    """Collect the facts and run the checks (all, or those named by id or group).

    ``timeout`` bounds the ``import torch`` child. By default the domain libraries tied to
    torch are checked by loading their C++ extension (milliseconds); ``deep`` imports every
    installed library instead (seconds each, finds any import error). ``nvml`` is an NVML
    backend (tests pass a FakeNvml); by default the real one, when a driver is present.
    ``strict`` makes a warning fail (the report's ``exit_code``). Returns an
    :class:`EnvReport`; never raises for a broken install (that is a verdict).
    """
    from dlcheck.env.collect_torch import start_torch_probe, take_prestarted

    t0 = time.perf_counter()
    if isinstance(checks, str):
        checks = [checks]
    if timeout is None or timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds.")
    # `import torch` is the slow part: every check but a --check selection needs it, so start
    # it before importing the checks (the CLI may have started it already).
    probe = take_prestarted(timeout, deep)
    if probe is None and not checks:
        probe = start_torch_probe(timeout, deep=deep)
    side = None
    try:
        from dlcheck.env import checks as checks_mod

        try:
            specs = checks_mod.select(list(checks) if checks else None)
        except KeyError as exc:
            raise _unknown_checks(list(exc.args[0])) from None
        needed = checks_mod.needed_probes(specs)
        if "torch" not in needed and probe is not None:
            probe.kill()
            probe = None
        elif "torch" in needed and probe is None:
            probe = start_torch_probe(timeout, deep=deep)
        nvml_box: dict[str, NvmlFacts] = {}
        nvml_thread = None
        if "nvml" in needed:
            from dlcheck.env.nvml import probe_nvml

            nvml_thread = threading.Thread(
                target=lambda: nvml_box.setdefault("facts", probe_nvml(nvml)), daemon=True
            )
            nvml_thread.start()

        from dlcheck.env import collect as probes

        python = probes.probe_python()  # cheap, and the header and comparable facts use it
        dists = probes.probe_dists(relevant=checks_mod.RELEVANT) if "dists" in needed else None
        # Libraries that do not import torch are imported in a second child, in parallel with
        # `import torch`, so they add nothing to the wall time; only when installed.
        others = _installed_other_modules(dists, deep) if probe is not None else ()
        side = start_torch_probe(timeout, others, with_torch=False) if others else None
        toolkit = probes.probe_toolkit() if "toolkit" in needed else None
        jupyter = probes.probe_jupyter() if "jupyter" in needed else None
        host = probes.probe_host()  # cheap, and comparable_facts needs it
        envvars = probes.probe_envvars() if "envvars" in needed else None
        nvml_facts: NvmlFacts | None = None
        if nvml_thread is not None:
            nvml_thread.join(timeout=30)
            nvml_facts = nvml_box.get("facts") or NvmlFacts(
                available=False, error_code="NVML_ERROR_TIMEOUT", error="NVML did not answer"
            )
        torch_start = time.perf_counter()
        torch_facts: TorchFacts | None = probe.result() if probe is not None else None
        torch_wait = time.perf_counter() - torch_start
        if side is not None and torch_facts is not None:
            extra = side.module_results()
            torch_facts = dataclasses.replace(torch_facts, modules=torch_facts.modules + extra)
    finally:
        for child in (probe, side):
            if child is not None:
                child.kill()

    facts = EnvFacts(
        python=python,
        dists=dists,
        torch=torch_facts,
        nvml=nvml_facts,
        toolkit=toolkit,
        jupyter=jupyter,
        host=host,
        envvars=envvars,
    )
    results = checks_mod.evaluate(facts, [s.id for s in specs])
    from dlcheck import __version__
    from dlcheck.env.records import EnvReport, comparable_from_facts

    return EnvReport(
        checks=tuple(results),
        facts=facts_document(facts),
        comparable=comparable_from_facts(facts),
        meta={
            "dlcheck_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - t0, 3),
            "torch_probe_s": round(torch_wait, 3),
        },
        strict=strict,
    )


# distribution -> module imported for it in the torch-free child
OTHER_DISTS = {
    "transformers": "transformers",
    "hydra-core": "hydra",
    "tensorboard": "tensorboard",
    "tensorboardx": "tensorboardX",
    "ipykernel": "ipykernel",
}


def _installed_other_modules(dists: Any, deep: bool) -> tuple[str, ...]:
    if dists is None:
        return ()
    mods = [mod for dist, mod in OTHER_DISTS.items() if deep and dists.get(dist) is not None]
    if dists.get("ipykernel") is not None:
        mods.append("zmq")  # ipykernel needs pyzmq; a broken one is a known failure
    return tuple(mods)


def facts_document(facts: EnvFacts) -> dict[str, Any]:
    """The facts as JSON-able dicts; only the relevant distributions (not all of site-packages)."""
    from dlcheck.env.checks import is_relevant
    from dlcheck.output import to_jsonable

    doc: dict[str, Any] = {}
    for f in dataclasses.fields(facts):
        value = getattr(facts, f.name)
        if value is None:
            doc[f.name] = None
        elif f.name == "dists":
            doc[f.name] = {
                "error": value.error,
                "relevant": [to_jsonable(d) for d in value.dists if is_relevant(d.name)],
                "total": len(value.dists),
            }
        else:
            doc[f.name] = to_jsonable(value)
    if facts.torch is not None:
        doc["torch"]["variant"] = facts.torch.variant
    if facts.host is not None:
        doc["host"]["cpu"]["usable"] = facts.host.cpu.usable
        doc["host"]["cpu"]["limited_by"] = facts.host.cpu.limited_by
    return doc
