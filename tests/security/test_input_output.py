"""Control characters in what people read: a note cannot forge lines or drive the terminal (issue #14, Input).

A newline in a note used to print two forged rows in `history`, and ESC
sequences reached the terminal. Every human-readable output now writes control
and format characters as escapes (terminal.py); `--json` keeps them as JSON
escapes, so a program reads back exactly what was stored.
"""

from __future__ import annotations

import json

import pytest

from caseflow.terminal import escape

from .hostile import handled

FORGED = "ok\n  2 2025-03-03 10:00  zhang.wei    批准\x1b[31m\x1b]0;pwned\x07\u202e"
SHOWN = "ok\\n  2 2025-03-03 10:00  zhang.wei    批准\\x1b[31m\\x1b]0;pwned\\x07\\u202e"


def _refund(run, order_no: str = "D1", note: str = FORGED) -> str:  # noqa: ANN001
    r = run("--as", "wang.fang", "--json", "open", "refund", "--set", f"order_no={order_no}", "--set",
            "customer_name=王", "--set", "contract_amount=1", "--set", "amount_paid=1", "--set", "work_started=false",
            "--note", note)
    assert r.exit_code == 0, r.stderr
    return r.json()["id"]


def _clean(text: str) -> bool:
    """No control or format character but the line breaks of the output itself."""
    return all(c == "\n" or escape(c) == c for c in text)


def test_history_shows_a_forged_note_on_one_line_escaped(run):
    cid = _refund(run)
    out = run("--as", "wang.fang", "history", cid).stdout
    assert handled(_clean(out) and SHOWN in out and len(out.splitlines()) == 1), out


def test_show_list_and_inbox_escape_field_values(run):
    cid = _refund(run, order_no="D1\n\x1b[2JREF-FAKE  已批准")
    for args in (("show", cid), ("list",), ("inbox",)):
        out = run("--as", "wang.fang", *args).stdout
        assert handled(_clean(out) and "D1\\n\\x1b[2JREF-FAKE" in out), (args, out)


@pytest.mark.parametrize("attempts", [False, True])
def test_the_audit_table_escapes_notes_and_reasons(run, attempts):
    _refund(run)
    run("--as", "wang.fang", "open", "refund", "--set", "order_no=\x1b[2J\nforged", "--set", "bogus=1")
    out = run("--as", "jiang.wen", "audit", *(("--attempts",) if attempts else ())).stdout
    assert handled(_clean(out)), out


def test_error_lines_escape_what_was_typed(run):
    r = run("--as", "wang.fang", "open", "refund", "--set", "order_no=D1", "--set", "customer_name=王", "--set",
            "contract_amount=1\x1b[2J", "--set", "amount_paid=1", "--set", "work_started=false")
    assert r.exit_code == 2
    assert handled(_clean(r.stderr) and r.stderr.count("\n") == 1 and "\\x1b[2J" in r.stderr), r.stderr


def test_json_output_keeps_the_stored_text_as_json_escapes(run):
    cid = _refund(run)
    r = run("--as", "wang.fang", "--json", "history", cid)
    assert "\\n" in r.stdout and "\\u001b" in r.stdout and "\x1b" not in r.stdout
    assert handled(json.loads(r.stdout)[0]["note"] == FORGED)


def test_escape_keeps_chinese_full_width_spaces_and_emoji():
    assert escape("王建国　先生 😀 [x]") == "王建国　先生 😀 [x]"
    assert escape("a\tb\rc\u2028d\x00") == "a\\tb\\rc\\u2028d\\x00"
