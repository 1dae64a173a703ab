"""Plans for the migration scenarios: v1 is the shipped workflow, v2 a variant in tests/migration/<variant>/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from caseflow.definition.compile import load_definition
from caseflow.migration.plan import Plan, load_plan, plan_text
from caseflow.runtime.engine import Engine
from caseflow.store.tables import cases, timers

HERE = Path(__file__).resolve().parent


def variant(engine: Engine, name: str, workflow: str) -> Any:
    return load_definition(HERE / name / f"{workflow}.yaml", engine.catalog.org, engine.catalog.calendars)


def write_plan(engine: Engine, tmp_path: Path, name: str, workflow: str, **edits: Any) -> Path:
    """The plan `migrate plan` writes for v1 → the variant, with top-level keys replaced by `edits`."""
    old, new = engine.catalog.get(workflow), variant(engine, name, workflow)
    doc = yaml.safe_load(plan_text(old, new, str(HERE / name / f"{workflow}.yaml"), {}))
    for key, value in edits.items():
        if key == "states":
            doc["states"].update(value)
        else:
            doc[key] = value
    path = tmp_path / f"plan-{name}-{workflow}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def plan(engine: Engine, tmp_path: Path, name: str, workflow: str, **edits: Any) -> Plan:
    old = engine.catalog.get(workflow)
    path = write_plan(engine, tmp_path, name, workflow, **edits)
    return load_plan(path, lambda w, sha: old if sha == old.sha256 else None,
                     lambda p: load_definition(p, engine.catalog.org, engine.catalog.calendars))


def on_version(engine: Engine, case_id: str) -> tuple[str, str]:
    with engine.store.engine.connect() as conn:
        row = conn.execute(sa.select(cases.c.definition, cases.c.state).where(cases.c.id == case_id)).one()
    return row.definition, row.state


def timer_due(engine: Engine, case_id: str, name: str) -> str | None:
    with engine.store.engine.connect() as conn:
        return conn.execute(sa.select(timers.c.due_at).where(timers.c.case_id == case_id,
                                                             timers.c.name == name)).scalar()
