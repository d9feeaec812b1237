"""Python and environment: the interpreter, its environment, torch's support for it, and
the requirements of the relevant packages."""

from __future__ import annotations

from typing import Any

from dlcheck.env import tables
from dlcheck.env.checks.base import (
    PYTORCH_INSTALL,
    TORCH_FAMILY,
    V,
    Verdict,
    check,
    group,
    is_relevant,
    major_minor,
    skip,
)
from dlcheck.env.records import DistFacts, EnvFacts
from dlcheck.records import Status

GROUP = group("python", "Python and environment")


@check("python.version", "Python interpreter", "python")
def _python_version(f: EnvFacts) -> Verdict:
    p = f.python
    assert p is not None
    return V(
        Status.PASS,
        f"Python {p.version} ({p.implementation}) at {p.executable}",
        version=p.version,
        executable=p.executable,
        platform=p.platform,
        machine=p.machine,
    )


@check("python.environment", "Virtual environment or conda env", "python")
def _python_env(f: EnvFacts) -> Verdict:
    p = f.python
    assert p is not None
    facts: dict[str, Any] = {
        "prefix": p.prefix,
        "base_prefix": p.base_prefix,
        "conda_env": p.conda_env,
    }
    if p.conda_env:
        return V(Status.PASS, f"conda env '{p.conda_env}' at {p.prefix}", kind="conda", **facts)
    if p.venv:
        return V(Status.PASS, f"virtual environment at {p.prefix}", kind="venv", **facts)
    return V(
        Status.INFO,
        f"no virtual environment: the system interpreter at {p.prefix}",
        "Use a virtual environment per project: `python -m venv .venv && . .venv/bin/activate`.",
        kind="system",
        **facts,
    )


@check("python.torch_support", "torch supports this Python", "python", "dists")
def _torch_python(f: EnvFacts) -> Verdict:
    p, d = f.python, f.dists
    assert p is not None and d is not None
    dist = d.get("torch")
    if dist is None:
        return skip("torch is not installed")
    py = tuple(int(x) for x in p.version.split(".")[:2])
    facts: dict[str, Any] = {
        "python": p.version,
        "torch": dist.version,
        "wheel_tags": list(dist.wheel_tags),
        "requires_python": dist.requires_python,
    }
    interp = sorted({t.split("-")[0] for t in dist.wheel_tags if t.startswith("cp")})
    if interp and p.abi_tag not in interp:
        return V(
            Status.FAIL,
            f"torch {dist.version} was built for {', '.join(interp)}, but this is {p.abi_tag} "
            f"(Python {p.version})",
            "Install torch for this Python: `python -m pip install --force-reinstall torch` "
            f"(command for your CUDA at {PYTORCH_INSTALL}).",
            **facts,
        )
    rng = tables.torch_python_range(dist.version)
    if rng is not None:
        lo, hi = rng
        facts["supported"] = f"{lo[0]}.{lo[1]}–{hi[0]}.{hi[1]}"
        facts["source"] = tables.PYTORCH_RELEASE_MATRIX
        if not lo <= py <= hi:
            return V(
                Status.WARN,
                f"torch {major_minor(dist.version)} supports Python {facts['supported']}, this is "
                f"{p.version}",
                "Use a supported Python, or a torch release that supports this one.",
                **facts,
            )
        return V(
            Status.PASS,
            f"torch {major_minor(dist.version)} supports Python {facts['supported']}",
            **facts,
        )
    if dist.requires_python:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            ok = SpecifierSet(dist.requires_python).contains(p.version)
        except InvalidSpecifier:
            ok = True
        if not ok:
            return V(
                Status.WARN,
                f"torch {dist.version} requires Python {dist.requires_python}, this is {p.version}",
                "Use a supported Python, or a torch release that supports this one.",
                **facts,
            )
        return V(
            Status.PASS,
            f"torch {dist.version} requires Python {dist.requires_python}: {p.version} is in range",
            **facts,
        )
    return V(Status.INFO, f"no support data for torch {dist.version}", **facts)


@check("python.requirements", "Requirements of the relevant packages", "dists")
def _requirements(f: EnvFacts) -> Verdict:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    d = f.dists
    assert d is not None
    first: dict[str, DistFacts] = {}
    for dist in d.dists:
        first.setdefault(dist.name, dist)
    broken: list[str] = []
    fixes: list[str] = []
    severe = False
    for name, dist in sorted(first.items()):
        if not is_relevant(name):
            continue
        for req in dist.requires:
            have = first.get(req.name)
            if have is None:
                problem = f"{dist.name} {dist.version} requires {req.text}, which is not installed"
            else:
                try:
                    ok = SpecifierSet(req.specifier).contains(have.version, prereleases=True)
                except InvalidSpecifier:
                    ok = True
                if ok:
                    continue
                problem = (
                    f"{dist.name} {dist.version} requires {req.text}, "
                    f"but {have.version} is installed"
                )
            broken.append(problem)
            fixes.append(f"python -m pip install '{req.name}{req.specifier}'")
            if (
                dist.name in TORCH_FAMILY
                or req.name in TORCH_FAMILY
                or req.name.startswith("nvidia-")
            ):
                severe = True
    if d.error:
        return V(Status.WARN, f"could not read every package's metadata: {d.error}", error=d.error)
    if not broken:
        return V(Status.PASS, "requirements of torch and the domain libraries are satisfied")
    shown = "; ".join(broken[:3]) + (f" (and {len(broken) - 3} more)" if len(broken) > 3 else "")
    return V(
        Status.FAIL if severe else Status.WARN,
        shown,
        "Install the required versions: `"
        + " && ".join(dict.fromkeys(fixes[:3]))
        + "`"
        + " (or reinstall the package that pins them).",
        broken=broken,
    )
