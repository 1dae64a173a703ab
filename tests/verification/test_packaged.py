"""The shipped workflows' verification records travel in the package (workflows/verified.json).

They make `validate` of the shipped files and of `caseflow init`'s copies instant on a machine that
never verified them, serve nothing but the exact content, org and verifier they were made for, and
cannot go stale silently: the first two tests fail, naming the command that regenerates them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from caseflow.catalog import SHIPPED, Catalog
from caseflow.verification import packaged, record
from caseflow.verification.explorer import DEFAULT_BOUND

ROOT = Path(__file__).resolve().parent.parent.parent
STALE = f"workflows/verified.json is stale; regenerate it: .venv/bin/{packaged.COMMAND}"


def test_the_packaged_records_serve_the_shipped_workflows() -> None:
    assert packaged.problems(Catalog.load(SHIPPED)) == [], STALE
    catalog = Catalog.load(SHIPPED)
    org = record.org_digest(catalog.org)
    for workflow in catalog.current:
        d = catalog.current[workflow]
        served = packaged.lookup(d.meaning, org, DEFAULT_BOUND)
        assert served is not None and served["definition"] == d.sha256 and served["packaged"], (workflow, STALE)


@pytest.mark.timeout(1200)        # the run's one fresh search of the shipped workflows (conftest.py)
def test_the_packaged_verdicts_agree_with_a_fresh_search(shipped_verification) -> None:
    rows = shipped_verification.json()          # `verify --fresh --bound 8`: no record was read
    fresh = {row["workflow"]: {p["id"]: p["verdict"] for p in row["properties"]} for row in rows}
    packed = {r["workflow"]: r["properties"] for r in packaged.records().values()}
    assert set(packed) == set(fresh), STALE
    for workflow, verdicts in fresh.items():      # holding within bound 12 means holding within bound 8
        assert verdicts == packed[workflow] == dict.fromkeys(verdicts, "holds"), (workflow, verdicts, STALE)


def test_a_changed_workflow_org_or_verifier_is_named_and_not_served(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    edited = tmp_path / "wf"
    shutil.copytree(SHIPPED, edited)
    refund = edited / "refund.yaml"
    refund.write_text(refund.read_text(encoding="utf-8").replace("label_zh: 退单\n", "label_zh: 退单申请\n", 1),
                      encoding="utf-8")
    catalog = Catalog.load(edited)
    assert packaged.problems(catalog) == ["refund: the workflow file changed since the record was made"]
    org = record.org_digest(catalog.org)
    assert packaged.lookup(catalog.get("refund").meaning, org, 6) is None
    assert packaged.lookup(catalog.get("complaint").meaning, org, 6) is not None

    org_yaml = edited / "org.yaml"
    text = org_yaml.read_text(encoding="utf-8")
    assert "roles: [middle_manager, district_lead]" in text
    org_yaml.write_text(text.replace("roles: [middle_manager, district_lead]", "roles: [middle_manager]"),
                        encoding="utf-8")
    moved = Catalog.load(edited)
    assert "complaint: org.yaml changed since the record was made" in packaged.problems(moved)
    assert packaged.lookup(moved.get("complaint").meaning, record.org_digest(moved.org), 6) is None

    shipped = Catalog.load(SHIPPED)
    monkeypatch.setattr(record, "verifier_digest", lambda: "0123456789abcdef")
    assert "complaint: the verifier changed since the record was made" in packaged.problems(shipped)
    assert packaged.lookup(shipped.get("complaint").meaning, record.org_digest(shipped.org), 6) is None


def test_only_a_clean_record_to_the_bound_asked_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Catalog.load(SHIPPED).get("refund")
    org = record.org_digest(Catalog.load(SHIPPED).org)
    made = packaged.records()[(d.meaning, org)]
    assert packaged.lookup(d.meaning, org, DEFAULT_BOUND) is not None
    assert packaged.lookup(d.meaning, org, DEFAULT_BOUND + 1) is None
    assert packaged.lookup(d.meaning[:-1] + "0" if d.meaning[-1] != "0" else d.meaning[:-1] + "1", org, 6) is None
    monkeypatch.setitem(packaged.records(), (d.meaning, org), {**made, "ok": False})
    assert packaged.lookup(d.meaning, org, 6) is None


def test_init_copies_validate_from_the_packaged_records_in_an_installed_package(tmp_path: Path) -> None:
    """The package copied out of the repository (as a wheel installs it), an empty cache: no search runs."""
    assert packaged.problems(Catalog.load(SHIPPED)) == [], STALE        # (else every workflow is searched)
    site = tmp_path / "site"
    shutil.copytree(ROOT / "engine", site / "caseflow", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFLOW_")}
    env.update(PYTHONPATH=str(site), CASEFLOW_CACHE_DIR=str(cache))
    work = tmp_path / "work"
    work.mkdir()

    def caseflow(*args: str) -> str:
        r = subprocess.run([sys.executable, "-c", "from caseflow.cli.main import main; main()", *args], cwd=work,
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
        return r.stdout + r.stderr

    where = subprocess.run([sys.executable, "-c", "import caseflow.verification.packaged as p; print(p.PATH)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60).stdout.strip()
    assert where == str(site / "caseflow" / "workflows" / "verified.json")
    caseflow("init", "dept")
    assert caseflow("--workflows", "dept", "validate") == "ok: 5 workflow file(s) valid\n"
    out = caseflow("--workflows", "dept", "verify")          # the default bound, as packaged
    assert out.count("(record shipped with caseflow); --fresh searches again)") == 5, out
    assert not (cache / "verified").exists()                 # every search records; none ran
    listing = caseflow("--workflows", "dept", "--json", "workflows")
    assert all(row["verified"]["packaged"] and row["verified"]["definition"] != row["definition"]
               for row in json.loads(listing)), listing
