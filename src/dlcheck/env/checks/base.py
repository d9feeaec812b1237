"""What every check group shares: the records, the ``@check`` registry and small helpers.

A group module declares its group once with :func:`group`, then registers each check with
``@check("group.name", "title", *probes)``. Checks are pure: facts in, :class:`Verdict` out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from dlcheck.env.records import Check, EnvFacts, GpuFacts, TorchFacts, cudnn_text

# Check and cudnn_text live with the records; the checks package re-exports them.
__all__ = ["Check", "cudnn_text"]
from dlcheck.records import Status

PYTORCH_INSTALL = "https://pytorch.org/get-started/locally/"


@dataclass(frozen=True)
class Verdict:
    """What a check function returns; the runner turns it into a :class:`Check`."""

    status: Status
    summary: str
    fix: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None


CheckFn = Callable[[EnvFacts], Verdict]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    # Probes it reads: python dists torch nvml toolkit jupyter host envvars; a trailing "?"
    # marks one the check can do without (it degrades to a weaker verdict).
    needs: tuple[str, ...]
    fn: CheckFn

    @property
    def probes(self) -> set[str]:
        """Probes to run for this check: optional ones only run when another check needs them
        (so ``--check host`` stays instant instead of waiting for ``import torch``)."""
        return set(self.required)

    @property
    def required(self) -> list[str]:
        return [n for n in self.needs if not n.endswith("?")]

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


#: What a check may name in ``needs``: one per probe, as the fields of :class:`EnvFacts`.
PROBES = frozenset(f.name for f in fields(EnvFacts))
#: Group key → title, in report order (the order the group modules are imported in).
GROUPS: dict[str, str] = {}
#: Every check, in report order.
REGISTRY: list[CheckSpec] = []
#: The same checks by id.
SPECS: dict[str, CheckSpec] = {}


def group(key: str, title: str) -> str:
    """Declare a check group (once, at the top of its module); returns ``key``."""
    if GROUPS.setdefault(key, title) != title:
        raise ValueError(f"check group {key!r} is declared twice")
    return key


def check(id: str, title: str, *needs: str) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as check ``id`` (``group.name``) reading the probes ``needs``."""

    def deco(fn: CheckFn) -> CheckFn:
        spec = CheckSpec(id, title, tuple(needs), fn)
        if spec.group not in GROUPS:
            raise ValueError(f"check {id!r}: group {spec.group!r} is not declared")
        if id in SPECS:
            raise ValueError(f"check {id!r} is registered twice")
        unknown = sorted({n.rstrip("?") for n in needs} - PROBES)
        if unknown:
            raise ValueError(f"check {id!r} needs unknown probes: {', '.join(unknown)}")
        REGISTRY.append(spec)
        SPECS[id] = spec
        return fn

    return deco


def V(
    status: Status, summary: str, fix: str | None = None, detail: str | None = None, **facts: Any
) -> Verdict:
    return Verdict(status, summary, fix, facts, detail)


def skip(summary: str, **facts: Any) -> Verdict:
    return Verdict(Status.SKIP, summary, None, facts)


# ---------------------------------------------------------------- facts every group reads


def torch_ok(f: EnvFacts) -> TorchFacts | None:
    """The torch facts when ``import torch`` worked, else None."""
    return f.torch if f.torch is not None and f.torch.ok else None


def torch_skip(f: EnvFacts) -> Verdict:
    """The skip verdict of a check that needs a working torch and has none."""
    if f.torch is None or not f.torch.ran:
        return skip("not checked: torch facts not collected")
    return skip("not checked: torch does not import (see torch.import)")


def nvml_gpus(f: EnvFacts) -> tuple[GpuFacts, ...]:
    """The GPUs NVML reports (none when NVML is not available)."""
    return f.nvml.gpus if f.nvml is not None and f.nvml.available else ()


# Distributions whose metadata, requirements and duplicates matter (plus every nvidia-*).
RELEVANT = {
    "torch",
    "torchvision",
    "torchaudio",
    "torchtext",
    "triton",
    "lightning",
    "pytorch-lightning",
    "hydra-core",
    "tensorboard",
    "tensorboardx",
    "timm",
    "transformers",
    "jupyter",
    "notebook",
    "jupyterlab",
    "ipykernel",
    "jupyter-client",
    "pyzmq",
    "numpy",
}
TORCH_FAMILY = {"torch", "torchvision", "torchaudio", "torchtext", "triton"}


def is_relevant(name: str) -> bool:
    return name in RELEVANT or name.startswith("nvidia-")


# ---------------------------------------------------------------- versions and sizes


def major_minor(version: str | None) -> str:
    """``"2.5.1+cu124"`` → ``"2.5"``."""
    return ".".join((version or "").split("+")[0].split(".")[:2])
