"""Jupyter: kernelspecs that point at live interpreters, one for this environment, pyzmq."""

from __future__ import annotations

import os
from typing import Any

from dlcheck.env.checks.base import V, Verdict, check, group, skip
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status

GROUP = group("jupyter", "Jupyter")


@check("jupyter.kernels", "Jupyter kernels point at existing interpreters", "jupyter")
def _kernels(f: EnvFacts) -> Verdict:
    j = f.jupyter
    assert j is not None
    if not j.kernels:
        return skip("no kernelspecs on the Jupyter path", search_path=list(j.search_path))
    dead = [k for k in j.kernels if k.argv0 and not k.exists]
    broken = [k for k in j.kernels if k.error]
    facts: dict[str, Any] = {
        "kernels": [
            {"name": k.name, "path": k.path, "argv0": k.argv0, "exists": k.exists}
            for k in j.kernels
        ]
    }
    problems = [
        f"kernel '{k.name}' ({k.path}) runs {k.argv0}, which no longer exists" for k in dead
    ] + [f"kernel '{k.name}' ({k.path}) is unreadable: {k.error}" for k in broken]
    if problems:
        names = " ".join(k.name for k in dead + broken)
        return V(
            Status.WARN,
            "; ".join(problems),
            f"Remove dead kernels: `jupyter kernelspec remove {names}` (or delete their "
            "directories).",
            **facts,
        )
    return V(Status.PASS, f"{len(j.kernels)} kernel(s), all interpreters exist", **facts)


@check("jupyter.this_env", "A Jupyter kernel runs this environment", "jupyter", "dists", "python")
def _this_env(f: EnvFacts) -> Verdict:
    j, d, p = f.jupyter, f.dists, f.python
    assert j is not None and d is not None and p is not None
    mine = [k for k in j.kernels if k.runs_this_env]
    if mine:
        return V(
            Status.PASS,
            "kernel " + ", ".join(f"'{k.name}'" for k in mine) + " runs this environment",
            kernels=[k.name for k in mine],
        )
    if d.get("ipykernel") is None:
        return skip("ipykernel is not installed in this environment")
    name = p.conda_env or os.path.basename(p.prefix.rstrip("/")) or "myenv"
    return V(
        Status.INFO,
        "ipykernel is installed but no kernelspec runs this environment",
        f"Register it: `python -m ipykernel install --user --name {name} --display-name "
        f"'Python ({name})'`.",
    )


@check("jupyter.zmq", "pyzmq imports (ipykernel needs it)", "dists", "torch")
def _zmq(f: EnvFacts) -> Verdict:
    d = f.dists
    assert d is not None
    if d.get("ipykernel") is None:
        return skip("ipykernel is not installed")
    t = f.torch
    m = t.module("zmq") if t is not None else None
    if m is None:
        return skip("zmq import not checked")
    if not m.found or not m.ok:
        return V(
            Status.FAIL,
            f"ipykernel is installed but `import zmq` fails: {m.error or 'pyzmq is not installed'}",
            "Reinstall pyzmq: `python -m pip uninstall -y pyzmq && python -m pip install pyzmq`.",
            detail=m.traceback,
            error=m.error,
        )
    return V(Status.PASS, f"pyzmq {m.version or ''} imports".replace("  ", " "), version=m.version)
