"""`chained` hashes the rows an action writes; `audit verify` checks each with `row_hash`. Both must give the
same hash for any row: any text (quotes, backslashes, CJK, control characters), any changes, with or without
the optional columns."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from caseflow.audit.chain import GENESIS, Entry, chained, row_hash

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)    # quotes, \\, CJK, controls
NAME = st.one_of(st.none(), TEXT)
VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), TEXT,
                               st.floats(allow_nan=False, allow_infinity=False)),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)
ENTRY = st.builds(Entry, kind=TEXT, event=TEXT, from_state=NAME, to_state=NAME, actor=TEXT,
                  roles=st.lists(TEXT, max_size=3), changes=st.dictionaries(TEXT, VALUE, max_size=4),
                  note=st.one_of(st.none(), TEXT.filter(lambda t: "\x00" not in t)))


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(ENTRY, min_size=1, max_size=3), case_id=TEXT, workflow=TEXT,
       org=NAME, os_user=NAME, version=st.one_of(st.none(), st.integers(1, 10**6)), seq=st.integers(0, 10**6))
def test_the_hash_chained_writes_is_the_hash_verify_checks(entries: list[Entry], case_id: str, workflow: str,
                                                           org: str | None, os_user: str | None,
                                                           version: int | None, seq: int) -> None:
    rows, (last_seq, last_hash) = chained(case_id=case_id, workflow=workflow, definition="d" * 64, entries=entries,
                                          effective_at="2025-03-03T02:00:00.000Z", after=(seq, GENESIS),
                                          version=version, org=org, os_user=os_user)
    prev = GENESIS
    for row in rows:
        assert row["prev_hash"] == prev and row_hash(row) == row["hash"]
        prev = row["hash"]
    assert (last_seq, last_hash) == (seq + len(entries), prev)
