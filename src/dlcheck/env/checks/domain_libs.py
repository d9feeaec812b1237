"""Domain libraries: torchvision, torchaudio, Lightning, ...: installed, importable, paired
with this torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlcheck.env import tables
from dlcheck.env.checks.base import CheckFn, V, Verdict, check, group, major_minor, skip
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status

GROUP = group("libs", "Domain libraries")


@dataclass(frozen=True)
class Library:
    check_id: str
    title: str
    dists: tuple[str, ...]
    modules: tuple[str, ...]
    tied: bool  # releases are built against one torch release
    needs_torch: bool = True  # importing it imports torch


LIBRARIES: tuple[Library, ...] = (
    Library("libs.torchvision", "torchvision", ("torchvision",), ("torchvision",), True),
    Library("libs.torchaudio", "torchaudio", ("torchaudio",), ("torchaudio",), True),
    Library("libs.torchtext", "torchtext", ("torchtext",), ("torchtext",), True),
    Library(
        "libs.lightning",
        "Lightning",
        ("lightning", "pytorch-lightning"),
        ("lightning", "pytorch_lightning"),
        False,
    ),
    Library("libs.hydra", "hydra-core", ("hydra-core",), ("hydra",), False, False),
    Library(
        "libs.tensorboard",
        "TensorBoard / tensorboardX",
        ("tensorboard", "tensorboardx"),
        ("tensorboard", "tensorboardX"),
        False,
        False,
    ),
    Library("libs.timm", "timm", ("timm",), ("timm",), False),
    Library(
        "libs.transformers", "transformers", ("transformers",), ("transformers",), False, False
    ),
)


def _library_check(lib: Library) -> CheckFn:
    def fn(f: EnvFacts) -> Verdict:
        d = f.dists
        assert d is not None
        installed = [x for name in lib.dists if (x := d.get(name)) is not None]
        if not installed:
            return skip(f"{lib.title}: not installed")
        versions = ", ".join(f"{x.name} {x.version}" for x in installed)
        facts: dict[str, Any] = {"installed": {x.name: x.version for x in installed}}
        t = f.torch
        if t is None or not t.ran:
            return V(Status.INFO, versions, **facts)
        if not t.ok and lib.needs_torch:
            return skip(f"{versions}: not imported (torch does not import)", **facts)
        for dist_name, mod_name in zip(lib.dists, lib.modules, strict=True):
            m = t.module(mod_name)
            if m is None or d.get(dist_name) is None:
                continue  # not that library's distribution, or the child never got to it
            if not m.found:
                return V(
                    Status.FAIL,
                    f"{versions} is installed but `import {mod_name}` finds no module",
                    f"Reinstall it: `python -m pip install --force-reinstall {dist_name}`.",
                    **facts,
                )
            if not m.ok and m.how == "extension":
                pairing = tables.expected_pairing(installed[0].name, t.version or "")
                pkg = installed[0].name
                fix = (
                    f"Reinstall {pkg} built for this torch: `python -m pip install "
                    f"--force-reinstall {pkg}` from the same index URL as torch."
                )
                if pairing and pairing.expected:
                    fix = (
                        f"Install the {pkg} release built for torch {major_minor(t.version)}: "
                        f"`python -m pip install '{pkg}=={pairing.expected}.*'` "
                        "(from the same index URL as torch)."
                    )
                return V(
                    Status.FAIL,
                    f"{versions}: its C++ extension does not load with torch {t.version} "
                    f"(`import {mod_name}` fails or its ops are missing): {m.error}",
                    fix,
                    detail=m.traceback,
                    error=m.error,
                    extension=m.file,
                    **facts,
                )
            if not m.ok:
                pairing = tables.expected_pairing(installed[0].name, t.version or "")
                pkg = installed[0].name
                fix = (
                    f"Reinstall {pkg} for this environment: "
                    f"`python -m pip install --force-reinstall {pkg}`."
                )
                if pairing and pairing.expected:
                    fix = (
                        f"Install the {pkg} release built for torch {major_minor(t.version)}: "
                        f"`python -m pip install '{pkg}=={pairing.expected}.*'` "
                        "(from the same index URL as torch)."
                    )
                return V(
                    Status.FAIL,
                    f"import {mod_name} failed: {m.error}",
                    fix,
                    detail=m.traceback,
                    error=m.error,
                    **facts,
                )
        if lib.tied and t.version:
            x = installed[0]
            pairing = tables.expected_pairing(x.name, t.version)
            if pairing is not None:
                facts.update(expected=pairing.expected, source=pairing.source, note=pairing.note)
                if not pairing.expected:
                    return V(
                        Status.WARN,
                        f"{x.name} {x.version} with torch {t.version}: {pairing.note}; "
                        "torchtext is no longer developed",
                        f"Uninstall it (`python -m pip uninstall {x.name}`) or use torch 2.3 with "
                        f"{x.name} 0.18.",
                        **facts,
                    )
                if not tables.library_matches(x.version, pairing.expected):
                    return V(
                        Status.FAIL,
                        f"{x.name} {x.version} does not pair with torch {t.version} (torch "
                        f"{major_minor(t.version)} needs {x.name} {pairing.expected}.x)",
                        f"`python -m pip install '{x.name}=={pairing.expected}.*'` from the same "
                        "index URL as torch (or install both in one command).",
                        **facts,
                    )
                return V(
                    Status.PASS,
                    f"{versions} (pairs with torch {major_minor(t.version)})",
                    **facts,
                )
        return V(Status.PASS, versions, **facts)

    return fn


# One check per library, all alike: registered in a loop rather than written out.
for _lib in LIBRARIES:
    check(_lib.check_id, _lib.title, "dists", "torch")(_library_check(_lib))
