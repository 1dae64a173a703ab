"""The compiled-definition cache: a CLI call does not recompile an unchanged workflow, and never trusts
a cache someone else could have written.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from caseflow import catalog as catalog_module
from caseflow.catalog import SHIPPED, Catalog
from caseflow.definition import cache
from caseflow.definition.model import Duration
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


# -- bounded: pruned on save, only caseflow's own entries ------------------------------------

def _entry(where: Path, name: str, age_s: float, content: bytes | None = None) -> Path:
    path = where / name
    path.write_bytes(content if content is not None else pickle.dumps(Duration(1, "days", False)))
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _ours(i: int) -> str:
    return f"{cache.key(f'text-{i}', 'org', 'file')}.pickle"


def test_a_save_keeps_the_newest_entries_and_never_touches_foreign_files(cache_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir.mkdir(mode=0o700)
    monkeypatch.setattr(cache, "MAX_ENTRIES", 5)
    mine = [_entry(cache_dir, _ours(i), age_s=1000 - i) for i in range(8)]      # mine[7] is the newest
    foreign = [_entry(cache_dir, "notes.txt", 10**6, b"mine, not caseflow's"),
               _entry(cache_dir, "a" * 64 + ".pickle", 10**6, pickle.dumps({"someone": "else"})),
               _entry(cache_dir, "0123456789abcdef-" + "b" * 64 + ".pickle", 10**6, b"\x80\x05not a caseflow pickle"),
               _entry(cache_dir, ".tmp-x", 10**6, b"")]
    (cache_dir / ("c" * 64 + ".pickle")).mkdir()
    (cache_dir / ("d" * 64 + ".pickle")).symlink_to(foreign[0])
    _fresh(SHIPPED).get("followup_visit")          # compiles org + calendars and one workflow: two saves
    kept = sorted(p.name for p in cache_dir.glob("*.pickle") if p.name.startswith(cache.code_fingerprint()[:16]))
    assert len(kept) == 5
    assert {p.name for p in mine[-3:]} <= set(kept) and not any(p.exists() for p in mine[:-3])
    assert all(p.exists() for p in foreign) and (cache_dir / ("c" * 64 + ".pickle")).is_dir()
    assert (cache_dir / ("d" * 64 + ".pickle")).is_symlink()


def test_another_builds_entries_go_once_they_are_a_day_old(cache_dir: Path) -> None:
    cache_dir.mkdir(mode=0o700)
    other = "f" * 16 + "-" + "e" * 64 + ".pickle"
    old_other = _entry(cache_dir, other, age_s=2 * 86400)
    young_other = _entry(cache_dir, other.replace("e", "1"), age_s=3600)
    old_layout = _entry(cache_dir, "9" * 64 + ".pickle", age_s=2 * 86400)      # before the build prefix
    crashed = _entry(cache_dir, cache.TMP_PREFIX + "abc", age_s=2 * 3600, content=b"half a pickle")
    writing = _entry(cache_dir, cache.TMP_PREFIX + "def", age_s=10, content=b"half a pickle")
    _fresh(SHIPPED).get("followup_visit")
    assert not old_other.exists() and not old_layout.exists() and not crashed.exists()
    assert young_other.exists() and writing.exists()          # another install may still use it; a write in progress


def test_the_size_bound_holds_too(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir.mkdir(mode=0o700)
    big = [_entry(cache_dir, _ours(i), age_s=1000 - i, content=b"\x80" + b"x" * 100_000) for i in range(6)]
    monkeypatch.setattr(cache, "MAX_BYTES", 350_000)
    _fresh(SHIPPED).get("followup_visit")
    left = [p for p in big if p.exists()]
    assert 0 < len(left) < 4 and left == big[-len(left):]
    assert sum(p.stat().st_size for p in cache_dir.glob("*.pickle")) <= 350_000


def test_nothing_is_pruned_from_a_cache_others_can_write_or_of_files_others_own(cache_dir: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir.mkdir(mode=0o700)
    monkeypatch.setattr(cache, "MAX_ENTRIES", 1)
    theirs = _entry(cache_dir, _ours(1), age_s=1000)
    if os.geteuid() == 0:                           # (CI runs as root: a file another user owns)
        os.chown(theirs, 4242, 4242)
    else:
        os.chmod(cache_dir, 0o777)                  # (else: a directory others can write)
    mine = _entry(cache_dir, _ours(2), age_s=1000)
    written = cache_dir / _ours(3)
    cache.prune(cache_dir, cache._pickle_entry, keep=written.name)
    assert theirs.exists()
    assert mine.exists() == (os.geteuid() != 0)    # only mine, in a private directory, was removed
    os.chmod(cache_dir, 0o777)
    assert cache.prune(cache_dir, cache._pickle_entry, keep=written.name) == []


def test_a_hit_marks_an_entry_as_recently_used(cache_dir: Path) -> None:
    _fresh(SHIPPED).get("followup_visit")
    entries = list(cache_dir.glob("*.pickle"))
    for p in entries:
        os.utime(p, (time.time() - 7200, time.time() - 7200))
    _fresh(SHIPPED).get("followup_visit")
    assert all(p.stat().st_mtime > time.time() - 600 for p in entries)


def test_the_test_runs_cache_directory_is_removed_when_the_run_ends(tmp_path: Path) -> None:
    from tests.conftest import RUN_CACHE
    assert os.environ["CASEFLOW_CACHE_DIR"] == str(RUN_CACHE) and RUN_CACHE.is_dir()     # this run's, in use
    temp = tmp_path / "tmp"
    temp.mkdir()
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_jsontext.py"],
                          cwd=root, env={**os.environ, "TMPDIR": str(temp)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert list(temp.glob("caseflow-test-cache-*")) == []
