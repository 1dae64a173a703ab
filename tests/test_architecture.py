"""The house rules that keep the package readable: no import cycles, modules of modest size,
the package list in pyproject.toml complete, and `import caseflow` cheap and public."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "engine"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["caseflow", *parts])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, known: set[str]) -> set[str]:
    """Modules of caseflow this file imports at run time (also inside functions; not type-only)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("caseflow"):
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    found.add(full if full in known else child.module)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("caseflow"))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    known = set(files)
    graph = {}
    for name, path in files.items():
        deps = set()
        for dep in _imports(path, known):
            # importing caseflow.x.y also runs the package __init__ files on the way: they are kept empty
            deps.add(dep)
        graph[name] = {d for d in deps if d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = walk(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = walk(node)
            if found:
                return found
    return None


def test_no_import_cycles_between_modules():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_sub_packages_depend_one_way():
    """definition knows nothing of storage or running; store knows nothing of definitions; the CLI is on top."""
    graph = _graph()
    rules = {
        "caseflow.definition": ("caseflow.store", "caseflow.runtime", "caseflow.audit", "caseflow.views",
                                "caseflow.cli", "caseflow.sla", "caseflow.demo"),
        "caseflow.store": ("caseflow.definition", "caseflow.runtime", "caseflow.audit", "caseflow.views",
                           "caseflow.cli", "caseflow.sla", "caseflow.demo"),
        "caseflow.runtime": ("caseflow.views", "caseflow.cli", "caseflow.demo"),
        "caseflow.audit": ("caseflow.runtime", "caseflow.cli", "caseflow.demo"),
        "caseflow.views": ("caseflow.cli", "caseflow.demo"),
        "caseflow.verification": ("caseflow.cli", "caseflow.demo", "caseflow.views"),
    }
    wrong = [f"{mod} imports {dep}" for mod, deps in graph.items() for dep in deps
             for pkg, banned in rules.items() if mod.startswith(pkg + ".") and dep.startswith(banned)]
    assert wrong == []


def test_package_init_files_are_empty_except_the_top_one():
    inits = [p for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE and "migrations" not in p.parts]
    assert inits, "sub-packages exist"
    assert [str(p.relative_to(ROOT)) for p in inits if p.read_text().strip()] == []


def test_modules_stay_readable_in_size():
    big = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert big == {}


def test_pyproject_lists_every_sub_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert on_disk == listed


def test_import_caseflow_is_cheap_and_exports_the_library_api():
    code = ("import sys, caseflow; loaded = 'sqlalchemy' in sys.modules; "
            "print(loaded, caseflow.Engine.__name__, caseflow.NotFound.__name__, caseflow.Catalog.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.split() == ["False", "Engine", "NotFound", "Catalog"]


def test_an_unknown_name_is_an_attribute_error():
    import caseflow
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        caseflow.nothing  # noqa: B018  (the attribute access is the test)


def test_package_data_lists_every_data_file_inside_the_package():
    """Shipped workflows, schemas, Alembic's template: a wheel without them cannot run `caseflow demo`."""
    from fnmatch import fnmatch
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["caseflow"]
    data = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)
    assert "workflows/refund.yaml" in data and "schemas/workflow.schema.json" in data
    assert [f for f in data if not any(fnmatch(f, g) for g in globs)] == []


def test_code_finds_its_data_inside_the_package_not_beside_the_repository():
    from caseflow.catalog import SHIPPED
    from caseflow.definition.schema import SCHEMA_PATH
    assert SHIPPED == PACKAGE / "workflows" and SCHEMA_PATH.parent == PACKAGE / "schemas"
    assert (ROOT / "workflows").resolve() == SHIPPED and (ROOT / "schemas").resolve() == SCHEMA_PATH.parent
