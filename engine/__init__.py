"""caseflow: a YAML-configured workflow engine for customer-service casework.

The library API, and nothing else::

    import caseflow
    engine = caseflow.Engine(caseflow.Store("sqlite:///cases.db"), caseflow.Catalog.load("workflows"))
    case = engine.open("refund", "wang.fang", {...})

Everything below these names (sub-packages definition/, runtime/, store/, audit/, sla/, views/,
cli/) is described in docs/architecture.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caseflow.catalog import Catalog
    from caseflow.errors import (
        CalendarError,
        CaseflowError,
        ConcurrentChange,
        DefinitionError,
        DefinitionErrors,
        GuardFailed,
        InvalidData,
        MissingFields,
        NotFound,
        NotPermitted,
        RoleNotAllowed,
        SignoffRefused,
        StaleCase,
        StorageError,
        TransitionRefused,
        UnknownUser,
        UsageError,
        WrongState,
    )
    from caseflow.runtime.engine import Engine
    from caseflow.store.database import Store

# Loaded on first use, so `caseflow --help` and `caseflow validate` do not pay for SQLAlchemy.
_HOMES = {"Catalog": "caseflow.catalog", "Engine": "caseflow.runtime.engine", "Store": "caseflow.store.database"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    if name in __all__:
        return getattr(import_module("caseflow.errors"), name)
    raise AttributeError(f"module 'caseflow' has no attribute {name!r}")


__all__ = [
    "Catalog", "Engine", "Store",
    "CaseflowError", "UsageError", "DefinitionError", "DefinitionErrors", "CalendarError", "NotFound",
    "UnknownUser", "TransitionRefused", "WrongState", "RoleNotAllowed", "GuardFailed", "MissingFields",
    "InvalidData", "SignoffRefused", "StaleCase", "ConcurrentChange", "StorageError", "NotPermitted",
]
