"""The explorer's values: a symbolic field, one step of a path, a search node, a step's fresh variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from caseflow.definition.model import Transition


@dataclass(frozen=True)
class Field:
    kind: str
    term: Any
    set: Any             # z3 Bool


@dataclass(frozen=True)
class Step:
    kind: str                                   # open | advance | sign | reject | system
    event: str
    transition: Transition | None
    source: str | None
    dest: str
    actor: Any                                  # z3 Int: a person's code (None for system)
    role: str | None
    now: Any
    sets: Mapping[str, tuple[Any, Any, str]]    # field → (given?, value, kind)
    inputs: Mapping[str, tuple[Any, Any, str]]  # input → (given?, value, kind)
    round: tuple[tuple[str, Any], ...] | None = None   # the sign-off round this step completed


@dataclass(frozen=True)
class Node:
    state: str
    data: Mapping[str, Field]
    signoffs: tuple[tuple[str, Any], ...]
    pc: tuple[Any, ...]
    trace: tuple[Step, ...]
    visits: Mapping[tuple[str, int], int]
    now: Any

    @property
    def depth(self) -> int:
        return len(self.trace) - 1


@dataclass
class StepVars:
    """The fresh variables of one step: actor, time, accepted field values, event inputs."""

    actor: Any
    now: Any
    sets: dict[str, tuple[Any, Any, str]] = field(default_factory=dict)
    inputs: dict[str, tuple[Any, Any, str]] = field(default_factory=dict)
    domain: list[Any] = field(default_factory=list)


@dataclass
class Stats:
    nodes: int = 0
    solver_calls: int = 0
    unknown: int = 0
    truncated: bool = False
