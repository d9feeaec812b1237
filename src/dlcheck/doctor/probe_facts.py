"""The base of a probe's typed facts (stdlib only: probe modules import it at --help time).

A probe's facts are a frozen dataclass; its dict form (``to_dict``) is what the probe's child
sends and what findings quote as evidence. Some facts exist on some paths only (a map-style
dataset has no worker streams; a pass that stopped early has no counts). Such a field is
declared ``= absent(...)``: left out of the constructor, it reads as ``when_absent`` and is
left out of ``to_dict`` too, so the dict keeps exactly the keys the probe measured, in the
order the fields are declared. ``from_dict`` takes the keys it is given; an unknown key (a
renamed fact) raises.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, TypeVar, cast


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def absent(when_absent: Any = None) -> Any:
    """A field that may be missing from the facts: it reads as (a copy of) ``when_absent``
    then, and ``to_dict`` leaves it out. Ruff's RUF009 cannot tell that this builds a field,
    not a shared default: list fields say ``# noqa: RUF009``."""
    return dataclasses.field(default=_ABSENT, metadata={"when_absent": when_absent})


F = TypeVar("F", bound="ProbeFacts")


class ProbeFacts:
    """Mixin for a probe's ``@dataclass(frozen=True)`` facts."""

    _absent: frozenset[str]

    def __post_init__(self) -> None:
        missing = []
        for f in dataclasses.fields(cast(Any, self)):
            if getattr(self, f.name) is _ABSENT:
                missing.append(f.name)
                # A copy: a [] must not be shared between records.
                object.__setattr__(self, f.name, copy.copy(f.metadata["when_absent"]))
        object.__setattr__(self, "_absent", frozenset(missing))

    def to_dict(self) -> dict[str, Any]:
        # Deep copies, like dataclasses.asdict: the evidence a judge builds from this dict
        # must not alias the (frozen) facts.
        return {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in dataclasses.fields(cast(Any, self))
            if f.name not in self._absent
        }

    @classmethod
    def from_dict(cls: type[F], d: dict[str, Any]) -> F:
        return cast(F, cast(Any, cls)(**d))  # a renamed key fails here, in the judge tests too
