"""Start-up: a command imports only its own module (cli/main.py `LAZY`), and the table is complete;
`show` reads a case without importing the write side (runtime/actions.py and what only writes need)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from caseflow.catalog import SHIPPED, Catalog
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from tests.helpers import open_complaint, refund_to_signing

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


# What only a write needs, what only compiling a workflow or calendar needs (the cache has them
# compiled), what only a did-you-mean needs, and the state machine (only a guard to check needs it):
# `show` must not pay for them at start-up (issue #18)
WRITE_SIDE = ("caseflow.runtime.actions", "caseflow.runtime.assignment", "caseflow.runtime.queue",
              "caseflow.sla.clocks", "caseflow.audit.unmask",
              "caseflow.definition.compile", "chinese_calendar", "difflib", "caseflow.runtime.machine", "transitions")
# The classes `show` loads are `caseflow.records` records, whose methods are not compiled at import;
# these two are still dataclasses (runtime/machine.py and audit/chain.py are the lead's files)
DATACLASSES_LEFT = {"caseflow.audit.chain.Entry", "caseflow.runtime.machine._Context"}
# The tables only writes and other commands use, built on first use (store/tables.py `_later`)
LATER_TABLES = {"case_queue", "outbox", "case_keys", "decision_counts", "checkpoints", "migration_runs"}
# Each Core statement compiles once per process on first use: `show`'s reads are driver SQL (store/reads.py)
LOADED = ("import sys\nfrom sqlalchemy.sql.elements import ClauseElement\n"
          "compiled, first_use = [], ClauseElement._compile_w_cache\n"
          "def counted(self, *a, **k):\n    compiled.append(str(self)[:60])\n    return first_use(self, *a, **k)\n"
          "ClauseElement._compile_w_cache = counted\n"
          "from caseflow.cli.main import main\n"
          "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
          "print(len(compiled), compiled, file=sys.stderr)\n"
          "made = sorted(f'{m}.{k}' for m, mod in list(sys.modules.items()) if m.startswith('caseflow')\n"
          "              for k, v in vars(mod).items() if isinstance(v, type) and v.__module__ == m\n"
          "              and '__dataclass_fields__' in vars(v))\n"
          "print(' '.join(made), file=sys.stderr)\n"
          "tables = sys.modules.get('caseflow.store.tables')\n"
          "print(' '.join(sorted(vars(tables)['_metadata'].tables)) if tables else '', file=sys.stderr)\n"
          f"print(code, [m for m in {WRITE_SIDE!r} if m in sys.modules], file=sys.stderr)")


def _loaded_by(url: str, *args: str, warm: bool = True) -> tuple[str, str, str, int]:
    """Exit code, the WRITE_SIDE modules loaded, stdout, how many Core statements were compiled; with
    `warm` (the workflows are cached, nothing compiles), also that no dataclass but DATACLASSES_LEFT was made
    and none of LATER_TABLES built."""
    done = _python(LOADED, "--db", url, "--workflows", str(SHIPPED), *args)
    *_, core, made, built, last = done.stderr.strip().splitlines()
    if warm:
        assert set(made.split()) <= DATACLASSES_LEFT, done.stderr    # no import-time code generation came back
        assert not set(built.split()) & LATER_TABLES, built           # nor a table the command does not use
    code, modules = last.split(" ", 1)
    return code, modules, done.stdout, int(core.split(" ", 1)[0])


def test_show_of_cases_with_clocks_and_a_pending_sign_off_imports_nothing_of_the_write_side(tmp_path):
    assert all(importlib.util.find_spec(m) for m in WRITE_SIDE)      # the names are modules that exist
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    store = Store(url)
    store.migrate()
    engine = Engine(store, Catalog.load(SHIPPED))
    complaint, refund = open_complaint(engine), refund_to_signing(engine)
    store.dispose()
    for user, case in (("wang.fang", complaint), ("lin.xiao", refund)):   # a fresh process caches the compiled
        _loaded_by(url, "--as", user, "show", case, warm=False)   # workflows (in-process, a test's own kind turns the cache off)
    code, modules, out, core = _loaded_by(url, "--as", "wang.fang", "show", complaint)
    assert (code, modules, core) == ("0", "[]", 0)
    assert complaint in out and "(forward_2wh): " in out          # its clocks, read from the timers
    code, modules, out, core = _loaded_by(url, "--as", "lin.xiao", "show", refund)
    assert (code, modules, core) == ("0", "[]", 0)
    assert refund in out and "sign-off" in out
    code, modules, _, _ = _loaded_by(url, "--as", "wang.fang", "history", complaint)
    assert (code, modules) == ("0", "[]")
    code, modules, _, _ = _loaded_by(url, "--as", "lin.xiao", "advance", refund, "nothing")
    assert code == "1" and "caseflow.runtime.actions" not in modules  # refused before planning a write


def test_a_table_left_for_later_is_built_on_first_use_and_metadata_has_every_table():
    script = ("import json\nfrom caseflow.store import tables\n"
              "before = sorted(vars(tables)['_metadata'].tables)\n"
              "from caseflow.store.tables import outbox\n"
              "after = sorted(vars(tables)['_metadata'].tables)\n"
              "everything = sorted(tables.metadata.tables)\n"
              "print(json.dumps([before, after, everything, outbox is tables.outbox, len(outbox.c)]))")
    done = _python(script)
    assert done.returncode == 0, done.stderr
    before, after, everything, same, columns = json.loads(done.stdout)
    assert not set(before) & LATER_TABLES and set(after) - set(before) == {"outbox"}
    assert set(everything) == set(before) | LATER_TABLES and len(everything) == 14
    assert same and columns == 6
    done = _python("from caseflow.store import tables\ntables.nothing")
    assert "module 'caseflow.store.tables' has no attribute 'nothing'" in done.stderr


def test_a_step_whose_fields_caseflow_checks_itself_does_not_import_jsonschema(tmp_path):
    """The data schema's fields of plain keywords and caseflow's own formats (values.FORMATS) are checked
    without jsonschema (~85 ms to import); a value the quick check does not accept still goes to
    jsonschema (tests/test_quick_schema.py)."""
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    store = Store(url)
    store.migrate()
    case = open_complaint(Engine(store, Catalog.load(SHIPPED)))
    store.dispose()
    script = ("import sys\nfrom caseflow.cli.main import main\n"
              "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
              "print(code, 'jsonschema' in sys.modules, file=sys.stderr)")
    base = ("--db", url, "--workflows", str(SHIPPED), "--as", "wang.fang")
    _python(script, *base, "show", case)              # (caches the compiled workflows)
    done = _python(script, *base, "advance", case, "assess")
    assert "assessing" in done.stdout and done.stderr.strip().splitlines()[-1] == "0 False", done.stderr
    done = _python(script, *base, "advance", case, "accept", "--set", "responsible_dept=engineering",
                   "--set", "assessment_note=防水施工问题")
    assert "investigating" in done.stdout and done.stderr.strip().splitlines()[-1] == "0 False", done.stderr
