"""The work queues (`case_queue`) checked against the case rows: the inbox shows a case to the
queues its state, data, sign-offs and assignee give it, and to no other.

Someone who can write the table could otherwise hide an open case from every operator's inbox
(delete its rows: its SLA runs out unseen) or put it before people it is not for. The queues a
case belongs in are the runtime's rules (`runtime/queue.queues`, which every write stores); the
caller hands them in, as it hands in the catalog, so the audit tools keep running no engine code
of their own. Only the cases whose chain verifies and whose definition is known are checked; a
queue row of a case that has no case row is named too. The deadline and age a row carries are
the database's (its triggers keep them) and only order the inbox: they are not checked here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit.replay import Definitions, Found, loads
from caseflow.store.tables import case_queue

QueuesOf = Callable[[Any, str, Mapping[str, Any], Sequence[Mapping[str, Any]], "str | None"], frozenset[str]]


def check_queues(conn: Connection, cases: dict[str, dict[str, Any]], defs: Definitions, queues_of: QueuesOf,
                 checked: set[str]) -> list[Found]:
    """Problems of the queue rows: of each case in `checked` (its row proved by its chain), of any case gone."""
    have: dict[str, set[str]] = {}
    for r in conn.execute(sa.select(case_queue.c.case_id, case_queue.c.queue)):
        have.setdefault(r.case_id, set()).add(r.queue)
    out: list[Found] = [(case_id, None, "queue", f"the work queues hold case {case_id}, which has no case row")
                        for case_id in sorted(set(have) - set(cases))]
    for case_id in sorted(checked):
        case = cases[case_id]
        d = defs.get(case["definition"])
        if d is None or case["state"] not in d.states:
            continue
        want = queues_of(d, case["state"], loads(case["data"]) or {}, loads(case["signoffs"]) or [],
                         case["assignee"])
        got = have.get(case_id, set())
        out += [(case_id, None, "queue", f"case {case_id} is missing from the work queue {q} its state gives it: "
                                         f"no inbox of that queue shows it") for q in sorted(want - got)]
        out += [(case_id, None, "queue", f"case {case_id} is in the work queue {q}, which its state, data and "
                                         f"assignee do not give it") for q in sorted(got - want)]
    return out


__all__ = ["check_queues", "QueuesOf"]
