"""The hot path's driver SQL (store/driver_run.run): named parameters on both backends, long statements too.

On PostgreSQL the statement is sent numbered (`$1, …`) on psycopg's RawCursor, because psycopg converts
`%(name)s` on every execution and caches that only for statements under 4,096 characters and 50 parameters
— a step's one write is longer. These tests hold that what is sent means what was written.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from caseflow.store.database import Store
from caseflow.store.driver_run import rendered, run
from caseflow.store.driver_text import numbered


def test_a_statement_is_numbered_once_per_name_and_its_values_come_in_that_order() -> None:
    text, values = numbered("SELECT %(b)s, %(a)s, %(b)s, 7 %% 3")
    assert text == "SELECT $1, $2, $1, 7 % 3"
    assert values({"a": "A", "b": "B", "unused": 0}) == ("B", "A")
    one, value = numbered("SELECT %(only)s")
    assert (one, value({"only": 1})) == ("SELECT $1", (1,))


def _long_select(n: int) -> str:
    """A SELECT of `n` named values (each cast to text) and the first one again: over 4,096 characters."""
    cells = ", ".join(f"CAST(:p_{i:03d}_a_rather_long_parameter_name_for_width AS VARCHAR(40))" for i in range(n))
    return f"SELECT {cells}, CAST(:p_000_a_rather_long_parameter_name_for_width AS VARCHAR(40))"


def test_a_long_statement_with_many_parameters_gives_back_what_was_sent(store: Store) -> None:
    params = {f"p_{i:03d}_a_rather_long_parameter_name_for_width": f"值{i}" for i in range(60)}
    with store.write() as conn:
        sql = rendered(conn, _long_select(60))
        assert len(sql) > 4096
        for _ in range(7):              # past psycopg's prepare threshold (5): the prepared statement too
            row = run(conn, sql, params).fetchone()
            assert list(row) == [f"值{i}" for i in range(60)] + ["值0"]


def test_many_rows_in_one_call_and_a_refusal_keeps_sqlalchemys_exception(store: Store) -> None:
    with store.write() as conn:
        conn.execute(sa.text("CREATE TEMPORARY TABLE t_driver (k VARCHAR(10) PRIMARY KEY, v VARCHAR(10))"))
        insert = rendered(conn, "INSERT INTO t_driver (k, v) VALUES (:k, :v)")
        run(conn, insert, [{"v": "一", "k": "a"}, {"v": "二", "k": "b"}], many=True)
        found = run(conn, rendered(conn, "SELECT k, v FROM t_driver ORDER BY k"), {}).fetchall()
        assert [tuple(r) for r in found] == [("a", "一"), ("b", "二")]
        with pytest.raises(sa.exc.IntegrityError):
            with conn.begin_nested():
                run(conn, insert, {"k": "a", "v": "again"})
