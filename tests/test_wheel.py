"""The built wheel works on its own: from an empty directory, with nothing of this repository around.

Slow (it builds the wheel in an isolated build environment; a fresh virtualenv gets the wheel and the
dependencies its metadata declares), so it runs in CI (CI=true) or with CASEFLOW_TEST_WHEEL=1, and
skips with one line otherwise.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.wheel,
    pytest.mark.timeout(1500),
    pytest.mark.skipif(not (IN_CI or os.environ.get("CASEFLOW_TEST_WHEEL")),
                       reason="builds and installs a wheel (slow): runs with CI=true or CASEFLOW_TEST_WHEEL=1"),
]


def sh(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(bin directory of a fresh venv with only the wheel and its dependencies in it, a clean environment)."""
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFLOW_") and k != "PYTHONPATH"}
    built = sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(base / "dist"),
                str(ROOT)], base, env)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheels = list((base / "dist").glob("caseflow-*.whl"))
    assert len(wheels) == 1, wheels
    # a venv of its own, filled by this pip (--python): the wheel, then exactly the dependencies it declares
    made = sh([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], base, env)
    assert made.returncode == 0, made.stderr
    bin_dir = base / "venv" / "bin"
    pip = sh([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q", "--no-deps",
              str(wheels[0])], base, env)
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    link_dependencies(bin_dir / "python", base, env)
    return bin_dir, {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
                     "CASEFLOW_CACHE_DIR": str(base / "cache")}       # an empty cache, not the user's


def link_dependencies(python: Path, cwd: Path, env: dict[str, str]) -> None:
    """Give the venv the dependencies the installed wheel's metadata declares, and theirs, as this test
    run's venv has them installed (each distribution's files, linked): resolving and fetching them from
    the package index again took most of this module's time. Only what the wheel declares (markers
    as pip evaluates them, none of caseflow's own extras) gets in, each at a version its requirement allows."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    asked = sh([str(python), "-c", "import importlib.metadata as m, json, sysconfig; "
                "print(json.dumps([m.requires('caseflow') or [], sysconfig.get_paths()['purelib']]))"], cwd, env)
    assert asked.returncode == 0, asked.stderr
    wanted, site = json.loads(asked.stdout)
    todo, seen = [(Requirement(r), ("",)) for r in wanted], set()     # (requirement, the extras it is read with)
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": x}) for x in extras):
            continue
        name = canonicalize_name(req.name)
        dist = importlib.metadata.distribution(name)
        assert req.specifier.contains(dist.version, prereleases=True), (str(req), dist.version)
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        todo += [(Requirement(r), ("", *req.extras)) for r in dist.requires or []]
        for file in dist.files or []:
            if file.parts[0] == "..":                  # its scripts (bin/): caseflow runs none of them
                continue
            target = Path(site) / file
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(Path(str(file.locate())).resolve())


def test_the_wheel_carries_its_data_and_runs_from_an_empty_directory(installed, tmp_path):
    bin_dir, env = installed
    where = sh([str(bin_dir / "python"), "-c", "import caseflow, caseflow.catalog as c; "
                "print(caseflow.__file__); print(c.SHIPPED)"], tmp_path, env)
    assert where.returncode == 0, where.stderr
    module, shipped = where.stdout.split()
    assert str(bin_dir.parent) in module and not module.startswith(str(ROOT)), module
    assert (Path(shipped) / "org.yaml").is_file() and (Path(shipped).parent / "schemas" / "org.schema.json").is_file()

    def caseflow(*args: str) -> str:
        r = sh([str(bin_dir / "caseflow"), *args], tmp_path, env)
        assert r.returncode == 0, (args, r.returncode, r.stderr[-2000:], r.stdout[-2000:])
        return r.stdout

    first, second = caseflow("demo"), caseflow("demo")
    assert "done: 6 cases in sqlite:///caseflow-demo-1.db" in first
    assert "done: 6 cases in sqlite:///caseflow-demo-2.db" in second
    caseflow("init", "wf")
    caseflow("--workflows", "wf", "validate")
    # served by the verification records packaged in the wheel: no search ran, so none was recorded
    assert not (Path(env["CASEFLOW_CACHE_DIR"]) / "verified").exists()
    assert json.loads(caseflow("schema"))["$schema"].endswith("2020-12/schema")
    case_id = caseflow("--as", "wang.fang", "open", "refund", "--set", "order_no=D-1", "--set", "customer_name=王建国",
                       "--set", "contract_amount=86000", "--set", "amount_paid=20000",
                       "--set", "work_started=false").strip()
    assert re.fullmatch(r"REF-[0-9A-F]{8}", case_id)
    caseflow("advance", case_id, "start_before_work", "--as", "wang.fang")
    shown = json.loads(caseflow("show", case_id, "--json", "--as", "wang.fang"))
    assert (shown["id"], shown["state"]) == (case_id, "terminating")
    assert shown == json.loads(caseflow("--as", "wang.fang", "--json", "show", case_id))
