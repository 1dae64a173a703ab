"""Every example runs: each command's --help, the README and docs/*.md, and docs/cli.md is current.

The test walks every registered command (commands other modules add are covered when they
register), so a command without help or without an example fails here.

How examples run (write new ones so they hold):
- `--help` examples: the lines under `Example:` that start with `caseflow`, run in order, in a
  fresh directory whose ./caseflow.db already holds cases in useful states (`prepare` below:
  refunds before and after work, one waiting for its first signature, a complaint, a member
  card). A case id in an example (REF-1A2B3C4D) stands for a case of that prefix: the first
  case for which the line exits 0 is used, and the same id then means the same case in the
  lines that follow. Each line must exit 0.
- ```console blocks in README.md and docs/*.md: every `$ caseflow …` line runs, in order, one
  directory per document, on an empty ./caseflow.db. Ids printed by a command are bound to the
  ids the document shows after it. Output lines shown under a command must appear in its output
  (… stands for anything); a block that shows `error:` or `file:line:col:` expects a
  non-zero exit, otherwise 0. `export VAR=…` applies to the rest of the block (a PostgreSQL URL
  becomes the test server's); sed/cp/mkdir/rm/cat/echo/mv lines run in bash, others (pip, psql) not,
  with HOME set to the example's directory (so `> ~/.file` stays there).
  A block right after `<!-- example: not run (why) -->` is shown only (e.g. it needs a named server).
- inline `caseflow …` spans in the docs must name real commands and options.
The --help examples run at CASEFLOW_NOW=2025-03-03T11:00+08:00 on a simulation database, so nothing
depends on today's date; the docs run as a reader would, on the live database their first command makes
(nothing in them depends on the date either).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from caseflow.catalog import SHIPPED, Catalog
from caseflow.cli.main import cli
from caseflow.cli.reference import reference, walk
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store

from .conftest import IN_CI, PG_URL, Clock, require_graphviz
from .helpers import open_complaint, open_refund, refund_to_signing

ROOT = Path(__file__).resolve().parent.parent
NOW = "2025-03-03T11:00:00+08:00"
CASE_ID = re.compile(r"\b[A-Z]{3}-[0-9A-F]{8}\b")
FILE_LINE = re.compile(r"^\S+\.ya?ml:[\d…]")
NOT_RUN = {"pip", "python", "python3", "cd"}
SHELL_RUN = {"sed", "cp", "mkdir", "rm", "cat", "echo", "mv", "export"}   # other shell lines (psql, loops) are shown, not run
DOCS = sorted([ROOT / "README.md", *(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md")])


# -- where examples are --------------------------------------------------------------------------

def help_examples(command: click.Command) -> list[str]:
    """The `caseflow …` (and plain shell) lines under `Example:` in a command's help, continuation lines joined."""
    lines = (command.help or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Example:"), None)
    if start is None:
        return []
    out: list[str] = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        text = line.strip()
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1].rstrip() + " " + text
        elif text.startswith("caseflow") or text.split()[0] in SHELL_RUN:
            out.append(text)
    return out


@dataclass
class Step:
    line: str
    expected: list[str] = field(default_factory=list)
    where: str = ""


def console_blocks(path: Path) -> Iterator[list[Step]]:
    """Each ```console block of a Markdown file as its `$ ` commands and the output shown under each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        if i and lines[i - 1].startswith("<!-- example: not run"):      # says why, e.g. needs a named server
            i += 1
            continue
        steps: list[Step] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            text = lines[i]
            if text.startswith("$ "):
                command, where = text[2:], f"{path.name}:{i + 1}"
                while command.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command.rstrip()[:-1].rstrip() + " " + lines[i].strip()
                steps.append(Step(command.strip(), [], where))
            elif steps:
                steps[-1].expected.append(text.rstrip())
            i += 1
        yield steps


# -- running them ---------------------------------------------------------------------------------

def split_shell(line: str) -> tuple[str, str]:
    """`caseflow … | dot -Tsvg > x.svg` → ('caseflow …', '| dot -Tsvg > x.svg'): the first unquoted | or >."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), ""              # a comment: nothing after it runs
        elif ch in "|>":
            return line[:i].strip(), line[i:].strip()
    return line.strip(), ""


class Session:
    """One directory, one environment, one set of bound case ids."""

    def __init__(self, cwd: Path, now: str | None = None) -> None:
        self.cwd = cwd
        if not (cwd / "tests").exists():
            (cwd / "tests").symlink_to(ROOT / "tests")     # examples may name the repository's test files
        self.env: dict[str, str | None] = {"CASEFLOW_DB": None, "CASEFLOW_WORKFLOWS": None, "CASEFLOW_USER": None,
                                           "CASEFLOW_NOW": now}
        self.bound: dict[str, str] = {}
        self.schemas: list[str] = []

    def db_url(self) -> str:
        return self.env.get("CASEFLOW_DB") or f"sqlite:///{self.cwd / 'caseflow.db'}"

    def candidates(self, doc_id: str) -> list[str]:
        store = Store(self.db_url())
        try:
            with store.engine.connect() as conn:
                if not sa.inspect(conn).has_table("cases"):
                    return []
                rows = conn.execute(sa.text("SELECT id FROM cases WHERE id LIKE :p ORDER BY updated_at DESC, id"),
                                    {"p": doc_id[:4] + "%"}).scalars().all()
        finally:
            store.engine.dispose()
        return [r for r in rows if r not in self.bound.values()] + [r for r in rows if r in self.bound.values()]

    def invoke(self, args: list[str]) -> tuple[int, str, str]:
        old = os.getcwd()
        os.chdir(self.cwd)
        try:
            r = CliRunner().invoke(cli, args, env=self.env, catch_exceptions=False)
        finally:
            os.chdir(old)
        return r.exit_code, r.stdout, r.stderr

    def export(self, assignment: str) -> bool:
        """`export VAR=value`; False when the block needs a PostgreSQL this run does not have."""
        name, _, value = assignment.partition("=")
        if name == "CASEFLOW_DB" and value.startswith("postgresql"):
            if not PG_URL:
                if IN_CI:
                    pytest.fail("CI=true but CASEFLOW_TEST_PG is not set: the docs' PostgreSQL examples must run")
                return False
            schema = f"doc_{secrets.token_hex(5)}"
            admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            admin.dispose()
            self.schemas.append(schema)
            sep = "&" if "?" in PG_URL else "?"
            value = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        self.env[name] = value
        return True

    def close(self) -> None:
        if self.schemas and PG_URL:
            admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for schema in self.schemas:
                    conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()

    def step(self, step: Step) -> None:
        """Run one documented command; fail with where it is written and what it printed."""
        head, tail = split_shell(step.line)
        words = shlex.split(head, comments=True)
        if not words or words[0] in NOT_RUN:
            return
        if words[0] != "caseflow":
            if words[0] in SHELL_RUN:
                self.shell(step, head + (" " + tail if tail else ""))
            return
        failing = any(e.startswith("error:") or FILE_LINE.match(e) for e in step.expected)
        args = [m for w in words[1:] for m in self.glob(w)]
        unbound = [w for w in dict.fromkeys(CASE_ID.findall(" ".join(args))) if w not in self.bound]
        tries = [None] if not unbound else self.candidates(unbound[0])
        if not tries:       # no case of that kind exists at this point of the document: shown, not run (known gap)
            return
        result = (0, "", "")
        for candidate in tries:
            if candidate is not None:
                self.bound[unbound[0]] = candidate
            real = [CASE_ID.sub(lambda m: self.bound.get(m.group(0), m.group(0)), a) for a in args]
            result = self.invoke(real)
            if (result[0] != 0) == failing:
                break
            if candidate is not None:
                del self.bound[unbound[0]]
        code, out, err = result
        assert (code != 0) == failing, \
            f"{step.where}: `{step.line}` exited {code}{' (expected an error)' if failing else ''}:\n{err}{out[-1500:]}"
        self.bind_printed(step, out + err)
        self.check_shown(step, out + err)
        if tail:
            self.pipe(step, out, tail)

    def glob(self, word: str) -> list[str]:
        """What the shell would pass for `workflows/*.yaml`."""
        if "*" not in word:
            return [word]
        found = sorted(str(p.relative_to(self.cwd)) for p in self.cwd.glob(word))
        return found or [word]

    def bind_printed(self, step: Step, output: str) -> None:
        shown = [i for i in dict.fromkeys(CASE_ID.findall("\n".join(step.expected))) if i not in self.bound]
        printed = [i for i in dict.fromkeys(CASE_ID.findall(output)) if i not in self.bound.values()]
        self.bound.update(zip(shown, printed))

    def check_shown(self, step: Step, output: str) -> None:
        actual = [line.rstrip() for line in output.splitlines()]
        for line in step.expected:
            if not line.strip():
                continue
            real = CASE_ID.sub(lambda m: self.bound.get(m.group(0), m.group(0)), line)
            shape = re.compile(".*".join(re.escape(part) for part in real.split("…")))   # … stands for anything
            assert any(shape.fullmatch(a) for a in actual), \
                f"{step.where}: `{step.line}` no longer prints\n{real}\nbut:\n{output[-2000:]}"

    def pipe(self, step: Step, stdout: str, tail: str) -> None:
        if re.search(r"\bdot\b", tail):
            require_graphviz()
        proc = subprocess.run(["bash", "-c", "cat " + tail], input=stdout, text=True, cwd=self.cwd,
                              env={**os.environ, "HOME": str(self.cwd)}, capture_output=True, timeout=120)
        assert proc.returncode == 0, f"{step.where}: `{step.line}`: {proc.stderr}"

    def shell(self, step: Step, line: str) -> None:
        words = shlex.split(line, comments=True)
        if words[0] == "export":
            for assignment in words[1:]:
                if not self.export(assignment):
                    raise _NeedsPostgres
            return
        env = {**os.environ, **{k: v for k, v in self.env.items() if v is not None}, "HOME": str(self.cwd)}
        proc = subprocess.run(["bash", "-c", line], cwd=self.cwd, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"{step.where}: `{step.line}` exited {proc.returncode}: {proc.stderr}"


class _NeedsPostgres(Exception):
    """The rest of this block talks to PostgreSQL, which this (non-CI) run does not have."""


def prepare(directory: Path) -> None:
    """./caseflow.db with cases the --help examples act on (see the module docstring)."""
    clock = Clock()
    clock.set("2025-03-03 10:00")
    store = Store(f"sqlite:///{directory / 'caseflow.db'}")
    store.migrate(simulation=True)          # the examples run at a fixed CASEFLOW_NOW
    engine = Engine(store, Catalog.load(SHIPPED), clock)
    open_refund(engine, work_started=True)
    open_refund(engine, work_started=False)
    refund_to_signing(engine)
    open_complaint(engine)
    engine.open("member_card", "xie.na", {"name": "李娜", "phone": "13900000001"})
    store.engine.dispose()


# -- the tests ------------------------------------------------------------------------------------

COMMANDS = [(path, command) for path, command in walk()]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(("caseflow", *p)) for p, _ in COMMANDS])
def test_every_command_has_help_and_an_example(path, command):
    assert (command.help or "").strip(), f"caseflow {' '.join(path)} has no help"
    assert help_examples(command), f"caseflow {' '.join(path)} --help has no `Example:` with a caseflow line"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(("caseflow", *p)) for p, _ in COMMANDS])
def test_every_help_example_runs(path, command, tmp_path, prepared):
    import shutil
    shutil.copy(prepared / "caseflow.db", tmp_path / "caseflow.db")
    session = Session(tmp_path, now=NOW)
    for line in help_examples(command):
        session.step(Step(line, [], f"caseflow {' '.join(path)} --help"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("examples")
    prepare(directory)
    return directory


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_console_example_in_the_docs_runs(doc, tmp_path):
    session = Session(tmp_path)
    try:
        for steps in console_blocks(doc):
            saved = dict(session.env)
            try:
                for step in steps:
                    session.step(step)
            except _NeedsPostgres:
                pass
            session.env = saved
    finally:
        session.close()


def inline_commands(path: Path) -> Iterator[tuple[str, str]]:
    text = path.read_text(encoding="utf-8")
    for m in re.finditer(r"`(caseflow(?: [^`]*)?)`", text):
        yield f"{path.name}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1)


def known_options(command: click.Command) -> set[str]:
    return {opt for p in command.params for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_commands_named_in_the_docs_exist_with_those_options(doc):
    from caseflow.cli.app import prepare_tree
    prepare_tree(cli)
    for where, span in inline_commands(doc):
        words = [w for w in re.split(r"[\s\[\]…|]+", span) if w]
        command: click.Command = cli
        allowed = known_options(cli)
        for word in words[1:]:
            if isinstance(command, click.Group) and word in command.commands:
                command = command.commands[word]
                allowed |= known_options(command)
            elif word.startswith("-"):
                assert word.split("=")[0] in allowed, f"{where}: `{span}`: no option {word.split('=')[0]}"


def test_docs_cli_md_is_generated_from_the_help_and_current():
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == reference(), \
        "docs/cli.md is out of date: python -m caseflow.cli.reference > docs/cli.md"
