"""`audit.chained` writes each row's hash from the parts its rows share encoded once; the hash must be the
one `row_hash` — what `audit verify` and `export verify` recompute — gives for the row as stored, for any
entries, any head and any of the optional columns present or not."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from caseflow.audit import chain as audit
from caseflow.audit.chain import Entry

text = st.text(max_size=12)                      # any text: quotes, backslashes, control and non-ASCII
maybe = st.none() | text
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(text, inner, max_size=3), max_leaves=10)
entries = st.builds(Entry, text, text, maybe, maybe, text, st.lists(text, max_size=2),
                    st.dictionaries(text, values, max_size=4), st.none() | st.text(min_size=1, max_size=12)
                    .filter(lambda s: "\x00" not in s and not any(0xD800 <= ord(c) <= 0xDFFF for c in s)))


@settings(max_examples=300, deadline=None)
@given(case_id=text, workflow=text, definition=text, effective_at=text, recorded_at=text,
       entries=st.lists(entries, min_size=1, max_size=3), seq=st.integers(min_value=0, max_value=10**6),
       org=maybe, os_user=maybe, version=st.none() | st.integers(min_value=1, max_value=10**6))
def test_each_row_hashes_as_row_hash_recomputes_it(case_id: str, workflow: str, definition: str,
                                                   effective_at: str, recorded_at: str, entries: list[Entry],
                                                   seq: int, org: str | None, os_user: str | None,
                                                   version: int | None) -> None:
    rows, head = audit.chained(case_id=case_id, workflow=workflow, definition=definition, entries=entries,
                               effective_at=effective_at, recorded_at=recorded_at, after=(seq, "f" * 64),
                               org=org, os_user=os_user, version=version)
    assert [r["hash"] for r in rows] == [audit.row_hash(r) for r in rows]
    assert [r["prev_hash"] for r in rows] == ["f" * 64] + [r["hash"] for r in rows[:-1]]
    assert head == (seq + len(entries), rows[-1]["hash"])


def test_a_changed_part_changes_the_hash() -> None:
    """The text is the row's: the same row with any hashed part changed hashes otherwise."""
    def one(**kw: Any) -> str:
        base: dict[str, Any] = {"case_id": "c", "workflow": "w", "definition": "d", "effective_at": "e",
                                "recorded_at": "r", "after": (0, audit.GENESIS), "org": "o", "os_user": "u",
                                "version": 1}
        entry = kw.pop("entry", Entry("open", "open", None, "new", "wang.fang", ["cs_agent"], {"a": "上海"}, None))
        rows, _ = audit.chained(entries=[entry], **{**base, **kw})
        assert rows[0]["hash"] == audit.row_hash(rows[0])
        return str(rows[0]["hash"])

    first = one()
    assert one() == first
    changed = [one(case_id="c2"), one(workflow="w2"), one(definition="d2"), one(effective_at="e2"),
               one(recorded_at="r2"), one(after=(1, audit.GENESIS)), one(org=None), one(os_user="v"),
               one(version=2), one(entry=Entry("open", "open", None, "new", "wang.fang", ["cs_agent"],
                                               {"a": "上海 "}, None)),
               one(entry=Entry("open", "open", None, "new", "wang.fang", ["cs_agent"], {"a": "上海"}, "n"))]
    assert first not in changed and len(set(changed)) == len(changed)
