"""The compiled-definition cache: a CLI call does not recompile an unchanged workflow, and never trusts
a cache someone else could have written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from caseflow import catalog as catalog_module
from caseflow.catalog import SHIPPED, Catalog
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from tests.helpers import COMPLAINT


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("CASEFLOW_CACHE_DIR", str(where))
    monkeypatch.setattr(catalog_module, "_COMPILED", {})    # as a new process starts
    return where


def _fresh(directory: Path) -> Catalog:
    catalog_module._COMPILED.clear()
    return Catalog.load(directory)


def test_a_cached_definition_runs_cases_as_a_compiled_one(cache_dir: Path, tmp_path: Path) -> None:
    _fresh(SHIPPED).get("complaint")
    assert len(list(cache_dir.glob("*.pickle"))) == 2          # org + calendars, and the workflow
    assert oct(cache_dir.stat().st_mode & 0o777) == "0o700"
    catalog = _fresh(SHIPPED)
    cached = catalog.get("complaint")
    accept = next(t for t in cached.transitions if t.event == "accept")
    assert accept.actions[0].when is not None and accept.actions[0].when.program is None   # compiled on use
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    store.migrate()
    engine = Engine(store, catalog)
    cid = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})   # CEL `when`s run
    assert engine.read_case(cid).state == "investigating"


def test_a_changed_file_is_compiled_again(cache_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "workflows"
    shutil.copytree(SHIPPED, work)
    before = _fresh(work).get("refund")
    path = work / "refund.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("label_zh: 退单\n", "label_zh: 退单申请\n", 1),
                    encoding="utf-8")
    after = _fresh(work).get("refund")
    assert after.sha256 != before.sha256 and after.label_zh == "退单申请"


def test_a_cache_others_can_write_is_not_used(cache_dir: Path) -> None:
    _fresh(SHIPPED).get("complaint")
    os.chmod(cache_dir, 0o777)
    for entry in cache_dir.glob("*.pickle"):
        entry.write_bytes(b"not a pickle anyone should load")
    assert _fresh(SHIPPED).get("complaint").workflow == "complaint"      # compiled again, cache ignored


def test_show_imports_neither_jsonschema_nor_yaml_nor_alembic(cache_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = Store(url)
    store.migrate()
    cid = Engine(store, Catalog.load(SHIPPED)).open("complaint", "wang.fang", COMPLAINT)["id"]
    script = ("import sys\nfrom caseflow.cli.main import cli\n"
              f"try:\n    cli.main(['--db', {url!r}, '--workflows', {str(SHIPPED)!r}, '--as', 'wang.fang', 'show', "
              f"{cid!r}])\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('jsonschema', 'yaml', 'alembic') if m in sys.modules))")
    env = {**os.environ, "CASEFLOW_CACHE_DIR": str(cache_dir)}
    for _ in range(2):                          # the first call fills the cache
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert cid in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
