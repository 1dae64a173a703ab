"""Verification records are kept by what a definition says, not how it is written.

A copy that differs only in comments, blank lines or layout (what `caseflow init` writes) reuses the
record of the original without a search; anything that changes the meaning searches again. Each test
counts the searches by wrapping the verifier's entry point (session.verify).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from caseflow.catalog import SHIPPED, Catalog
from caseflow.cli.main import cli
from caseflow.definition.model import meaning_of
from caseflow.definition.source import parse_source
from caseflow.verification import record, session

NOTE = "# a designer's note\n"


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The workflows searched (z3) in this test, with a cache of its own."""
    monkeypatch.setenv("CASEFLOW_CACHE_DIR", str(tmp_path / "cache"))
    done: list[str] = []
    real = session.verify

    def counted(d, *args, **kwargs):  # noqa: ANN001, ANN202
        done.append(d.workflow)
        return real(d, *args, **kwargs)
    monkeypatch.setattr(session, "verify", counted)
    return done


def workflows(where: Path, followup: str | None = None) -> Path:
    """A copy of the shipped workflows; followup_visit.yaml's label changed, so no packaged record serves it."""
    shutil.copytree(SHIPPED, where)
    path = where / "followup_visit.yaml"
    text = path.read_text(encoding="utf-8").replace("label_zh: 投诉回访与满意度调查", "label_zh: 投诉回访", 1)
    path.write_text(followup if followup is not None else text, encoding="utf-8")
    return where


def validate(where: Path, *files: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["--workflows", str(where), "validate", *files], catch_exceptions=False)
    return r.exit_code, r.stdout + r.stderr


def verify(where: Path, name: str) -> str:
    r = CliRunner().invoke(cli, ["--workflows", str(where), "verify", "--bound", "6", str(where / name)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stdout + r.stderr
    return r.stdout


LAYOUTS = {
    "comments and blank lines": lambda t: NOTE + t.replace("\nstates:\n", f"\n\n{NOTE}\nstates:\n", 1)
                                              .replace("from: scheduled\n", "from: scheduled   # the start\n"),
    "another modeline": lambda t: t.replace("$schema=../schemas/", "$schema=schemas/", 1),
    "flow style and quotes": lambda t: t.replace("  scheduled: {label_zh: 待回访, initial: true}\n",
                                                 "  scheduled:\n    label_zh: '待回访'\n    initial: true\n", 1)
                                        .replace("    to: unreachable\n", '    to: "unreachable"\n', 1),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_copy_that_differs_only_in_layout_reuses_the_record(layout: str, searches: list[str],
                                                              tmp_path: Path) -> None:
    first = workflows(tmp_path / "a")
    assert validate(first, str(first / "followup_visit.yaml"))[0] == 0
    assert searches == ["followup_visit"]
    original = (first / "followup_visit.yaml").read_text(encoding="utf-8")
    second = workflows(tmp_path / "b", LAYOUTS[layout](original))
    assert (second / "followup_visit.yaml").read_text(encoding="utf-8") != original
    assert validate(second, str(second / "followup_visit.yaml")) == (0, "ok: 1 workflow file(s) valid\n")
    assert searches == ["followup_visit"]                        # no second search
    out = verify(second, "followup_visit.yaml")
    made = Catalog.load(first).get("followup_visit").sha256
    assert "(verified 20" in out and f" for definition {made[:12]}, the same content; --fresh searches again)" in out
    assert searches == ["followup_visit"]
    assert len(list((tmp_path / "cache" / "verified").glob("*.json"))) == 1


MEANINGS = {
    "a state": lambda t: t.replace("  unreachable: {label_zh: 多次联系未果, final: true}\n",
                                   "  unreachable: {label_zh: 多次联系未果, final: true}\n"
                                   "  parked: {label_zh: 暂缓, final: true}\n", 1)
                          .replace("\nslas:\n", "  - {event: park, label_zh: 暂缓, from: scheduled, to: parked, "
                                                  "roles: [cs_supervisor]}\n\nslas:\n", 1),
    "a guard's text": lambda t: t.replace(">= max_contact_attempts", "> max_contact_attempts", 1),
    "a label": lambda t: t.replace("label_zh: 未能联系上顾客", "label_zh: 未联系上顾客", 1),
    "a role": lambda t: t.replace("roles: [cs_supervisor]", "roles: [cs_manager]", 1),
    "the order of two keys": lambda t: t.replace("    from: scheduled\n    to: unreachable\n",
                                                 "    to: unreachable\n    from: scheduled\n", 1),
}


@pytest.mark.parametrize("change", sorted(MEANINGS))
def test_a_change_of_meaning_searches_again(change: str, searches: list[str], tmp_path: Path) -> None:
    first = workflows(tmp_path / "a")
    assert validate(first, str(first / "followup_visit.yaml"))[0] == 0
    original = (first / "followup_visit.yaml").read_text(encoding="utf-8")
    changed = MEANINGS[change](original)
    assert changed != original
    second = workflows(tmp_path / "b", changed)
    code, out = validate(second, str(second / "followup_visit.yaml"))
    assert code == 0, out
    assert searches == ["followup_visit", "followup_visit"]
    assert len(list((tmp_path / "cache" / "verified").glob("*.json"))) == 2


def test_meaning_keeps_types_and_order_and_ignores_layout() -> None:
    def meaning(text: str) -> str:
        return meaning_of(parse_source(text.encode("utf-8"), "x.yaml").data)
    block = "a: 1\nb:\n  - x\n  - 'y'\n"
    assert meaning(block) == meaning("# c\n\na: 1   # one\nb: [x, \"y\"]\n") == meaning("{a: 1, b: [x, y]}\n")
    assert meaning("a: &v [x]\nb: *v\n") == meaning("a: [x]\nb: [x]\n")
    assert len({meaning(t) for t in ("a: 1\n", "a: '1'\n", "a: 1.0\n", "a: true\n", "a: null\n", "a: [1]\n",
                                     "a: {'1': 1}\n", "a: 2025-01-01\n", "'a': 1\nb: 2\n", "b: 2\na: 1\n")}) == 10


def test_a_record_made_before_content_keys_is_a_miss_and_breaks_nothing(searches: list[str],
                                                                         tmp_path: Path) -> None:
    where = workflows(tmp_path / "a")
    catalog = Catalog.load(where)
    d = catalog.get("followup_visit")
    old = tmp_path / "cache" / "verified" / f"{d.sha256[:32]}-{record.org_digest(catalog.org)}.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"workflow": "followup_visit", "bound": 12, "ok": True, "seconds": 0.1,
                               "properties": {"no_traps": "holds"}, "lints": [],
                               "verifier": record.verifier_digest(), "verified_at": "2026-01-01T00:00:00+00:00"}),
                   encoding="utf-8")
    listing = CliRunner().invoke(cli, ["--workflows", str(where), "workflows"], catch_exceptions=False)
    row = next(x for x in listing.stdout.splitlines() if x.startswith("followup_visit"))
    assert "not verified (run: caseflow verify)" in row
    assert validate(where, str(where / "followup_visit.yaml"))[0] == 0
    assert searches == ["followup_visit"]


def test_a_reused_records_warnings_point_at_the_copy(searches: list[str], tmp_path: Path) -> None:
    always = ("    roles: [cs_supervisor]\n    accepts: [attempt_note]\n    when:\n"
              "      - expr: \"max_contact_attempts > 0\"\n")
    first = workflows(tmp_path / "a")
    path = first / "followup_visit.yaml"
    text = path.read_text(encoding="utf-8").replace("    roles: [cs_supervisor]\n    accepts: [attempt_note]\n"
                                                    "    when:\n", always, 1)
    path.write_text(text, encoding="utf-8")
    code, out = validate(first, str(path))
    assert code == 0 and "is always true" in out, out
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "max_contact_attempts > 0" in t)
    assert f"{path}:{line}:" in out
    second = workflows(tmp_path / "b", NOTE * 3 + text)
    code, again = validate(second, str(second / "followup_visit.yaml"))
    assert searches == ["followup_visit"]                       # reused: same content
    assert code == 0 and f"{second / 'followup_visit.yaml'}:{line + 3}:" in again, again


def test_records_are_bounded_and_only_caseflows_are_removed(searches: list[str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time
    monkeypatch.setattr(record, "MAX_RECORDS", 3)
    where = tmp_path / "cache" / "verified"
    where.mkdir(parents=True, mode=0o700)

    def made(name: str, age_s: float, **entry: object) -> Path:
        path = where / name
        path.write_text(json.dumps({"properties": {}, "ok": True, "bound": 6, **entry}), encoding="utf-8")
        os.utime(path, (time.time() - age_s, time.time() - age_s))
        return path
    current = [made(f"{i:032x}-{'0' * 16}.json", 1000 - i, verifier=record.verifier_digest(), meaning="m")
               for i in range(4)]
    other = made(f"{'e' * 32}-{'0' * 16}.json", 2 * 86400, verifier="another0verifier", meaning="m")
    young = made(f"{'d' * 32}-{'0' * 16}.json", 60, verifier="another0verifier", meaning="m")
    old_layout = made(f"{'c' * 32}-{'0' * 16}.json", 2 * 86400, verifier=record.verifier_digest())
    foreign = [made(f"{'b' * 32}-{'0' * 16}.json", 10**6, note="someone else's JSON"),
               made("notes.json", 10**6, verifier="x", meaning="m")]
    (where / f"{'a' * 32}-{'0' * 16}.json").write_text("not JSON", encoding="utf-8")
    w = workflows(tmp_path / "a")
    assert validate(w, str(w / "followup_visit.yaml"))[0] == 0       # a search, so a save, so a prune
    assert searches == ["followup_visit"]
    assert not other.exists() and not old_layout.exists()
    # kept, newest first: the one just written, then 2 of the rest (the young other-verifier one is newest)
    assert young.exists() and current[3].exists() and not any(p.exists() for p in current[:3])
    assert all(p.exists() for p in foreign) and (where / f"{'a' * 32}-{'0' * 16}.json").exists()


def test_with_the_cache_off_nothing_is_recorded_anywhere(searches: list[str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEFLOW_CACHE_DIR", "off")
    monkeypatch.chdir(tmp_path)
    w = workflows(tmp_path / "a")
    for _ in range(2):
        assert validate(w, str(w / "followup_visit.yaml"))[0] == 0
    assert searches == ["followup_visit", "followup_visit"]     # nothing kept, so nothing reused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]   # (not a directory named "off")
    assert validate(SHIPPED, str(SHIPPED / "refund.yaml"))[0] == 0
    assert searches == ["followup_visit", "followup_visit"]     # the packaged record still serves


def test_workflows_names_the_definition_a_reused_record_was_made_for(searches: list[str], tmp_path: Path) -> None:
    first = workflows(tmp_path / "a")
    assert validate(first, str(first / "followup_visit.yaml"))[0] == 0
    second = workflows(tmp_path / "b", NOTE + (first / "followup_visit.yaml").read_text(encoding="utf-8"))
    made = Catalog.load(first).get("followup_visit").sha256
    listing = CliRunner().invoke(cli, ["--workflows", str(second), "workflows"], catch_exceptions=False).stdout
    row = next(x for x in listing.splitlines() if x.startswith("followup_visit"))
    assert "verified 1/1 within bound 6 at 20" in row and ": no_traps; for def" in row, row     # cut at 80 columns
    rows = json.loads(CliRunner().invoke(cli, ["--workflows", str(second), "--json", "workflows"],
                                         catch_exceptions=False).stdout)
    mine = next(r for r in rows if r["workflow"] == "followup_visit")
    assert mine["verified"]["definition"] == made != mine["definition"] and not mine["verified"]["packaged"]
    assert searches == ["followup_visit"]


def test_a_clean_search_to_a_lower_bound_keeps_the_higher_proof(searches: list[str], tmp_path: Path) -> None:
    w = workflows(tmp_path / "a")

    def run(*args: str) -> str:
        r = CliRunner().invoke(cli, ["--workflows", str(w), "verify", *args, str(w / "followup_visit.yaml")],
                               catch_exceptions=False)
        assert r.exit_code == 0, r.stdout + r.stderr
        return r.stdout
    run("--bound", "8")
    run("--fresh", "--bound", "4")
    assert searches == ["followup_visit", "followup_visit"]
    assert "properties hold within bound 8 (verified 20" in run("--bound", "8")      # reused, not searched
    assert searches == ["followup_visit", "followup_visit"]
    [kept] = (tmp_path / "cache" / "verified").glob("*.json")
    assert json.loads(kept.read_text(encoding="utf-8"))["bound"] == 8
