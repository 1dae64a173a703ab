"""Start-up: a command imports only its own module (cli/main.py `LAZY`), and the table is complete."""

from __future__ import annotations

import json
import subprocess
import sys

from caseflow.catalog import SHIPPED

REGISTERED = """
import importlib, json
import click
from caseflow.cli.app import cli
from caseflow.cli.main import MODULES

def paths(group, prefix=()):
    for name, command in dict.items(group.commands):
        yield prefix + (name,)
        if isinstance(command, click.Group):
            yield from paths(command, prefix + (name,))

seen, needs = set(paths(cli)), {}
for module in MODULES:
    importlib.import_module("caseflow.cli." + module)
    for path in set(paths(cli)) - seen:
        needs.setdefault(path[0], set()).add(module)
    seen = set(paths(cli))
print(json.dumps({name: sorted(modules) for name, modules in needs.items()}))
"""


def _python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)


def test_the_lazy_table_names_every_command_and_the_modules_that_register_it_and_its_subcommands():
    from caseflow.cli.main import LAZY
    done = _python(REGISTERED)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {name: sorted(modules) for name, modules in LAZY.items()}


def test_listing_the_group_loads_every_command():
    from caseflow.cli.main import LAZY, cli
    assert set(LAZY) | {"open", "advance", "sign"} <= set(cli.commands)


def test_show_imports_neither_the_verifier_nor_the_other_commands(tmp_path):
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    script = ("import sys\nfrom caseflow.cli.main import main\n"
              "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
              "print(code, sorted(m for m in sys.modules if m.startswith(('caseflow.cli.', 'z3', 'jsonschema'))),"
              " file=sys.stderr)")
    args = ("--db", url, "--workflows", str(SHIPPED), "--as", "wang.fang", "show", "COM-00000000")
    _python(script, *args)            # the first call creates the database and caches the compiled workflows
    done = _python(script, *args)
    assert "not found" in done.stderr
    code, modules = done.stderr.strip().splitlines()[-1].split(" ", 1)
    assert code == "4"
    assert modules == "['caseflow.cli.app', 'caseflow.cli.main', 'caseflow.cli.opening', 'caseflow.cli.read']"
