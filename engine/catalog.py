"""The set of workflows an Engine knows: a directory of YAML files plus old versions.

Current definitions come from the workflows directory; a case opened under an
older version is run under the text stored with it in the database, rebuilt
here on demand and cached by sha256 (one compile and one Machine per version).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from caseflow.definition import cache, kinds, lint
from caseflow.definition.model import Definition, Org, sha256_of
from caseflow.errors import DefinitionError, DefinitionErrors, NotFound
from caseflow.files import read_workflow_text as read_text
from caseflow.records import field, record
from caseflow.sla.calendar import BusinessCalendar

SHIPPED = Path(__file__).resolve().parent / "workflows"      # package data: travels inside the wheel
SPECIAL = {"org.yaml", "calendars.yaml"}
_SHIPPED_KINDS = kinds.generation()     # the action kinds caseflow ships; the disk cache holds only these


def default_dir() -> Path:
    """--workflows default: ./workflows if present, else the shipped ones."""
    local = Path("workflows")
    return local if local.is_dir() and (local / "org.yaml").exists() else SHIPPED


_COMPILED: dict[tuple[str, str, str, int], Definition] = {}   # per process: text, org, calendars, action kinds


class LazyDefinitions(Mapping[str, Definition]):
    """Workflow id → current Definition, compiled on first use.

    A CLI call usually needs one workflow; compiling all of them on every call
    would cost most of its start-up. The file name is the workflow id.
    """

    def __init__(self, catalog: Catalog, paths: dict[str, Path]) -> None:
        self._catalog, self._paths = catalog, paths
        self._loaded: dict[str, Definition] = {}

    def __getitem__(self, workflow: str) -> Definition:
        if workflow not in self._loaded:
            if workflow not in self._paths:
                raise KeyError(workflow)
            self._loaded[workflow] = self._catalog.compile_file(self._paths[workflow])
        return self._loaded[workflow]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._paths))

    def __len__(self) -> int:
        return len(self._paths)

    def sha_of(self, workflow: str) -> str | None:
        path = self._paths.get(workflow)
        return sha256_of(read_text(path, _display(path))) if path else None


@record
class Catalog:
    directory: Path
    org: Org
    calendars: dict[str, BusinessCalendar]
    org_sha: str = ""
    org_text: str = ""
    calendars_text: str = ""
    current: LazyDefinitions = field(init=False)
    _by_sha: dict[str, Definition] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | Path | None = None, only: list[str] | None = None) -> Catalog:
        """Load org and calendars now; workflows lazily (see `check_all` for everything at once)."""
        d = Path(directory) if directory else default_dir()
        if not (d / "org.yaml").exists():
            raise DefinitionError("no org.yaml in the workflows directory", file=str(d / "org.yaml"), line=1,
                                  col=1, hint="set --workflows or CASEFLOW_WORKFLOWS")
        cal_path = d / "calendars.yaml"
        org_text = read_text(d / "org.yaml", _display(d / "org.yaml"))
        cal_text = read_text(cal_path, _display(cal_path)) if os.path.lexists(cal_path) else ""
        catalog = cls.from_texts(d, org_text, cal_text, display=_display(d / "org.yaml"))
        catalog.current = LazyDefinitions(catalog, workflow_files(d, only))
        return catalog

    @classmethod
    def from_texts(cls, directory: Path, org_text: str, calendars_text: str,
                   display: str = "org.yaml") -> Catalog:
        version = org_version(org_text, calendars_text)
        entry = cache.key(version, "", "org+calendars")
        loaded = cache.load(entry, tuple)           # parsed and checked before: no YAML, no JSON Schema
        if loaded is None:
            from caseflow.definition.compile import org_from_text
            from caseflow.sla.calendar import calendars_from_text
            org = org_from_text(org_text, display)
            calendars = calendars_from_text(calendars_text, display.replace("org.yaml", "calendars.yaml")) \
                if calendars_text else {}
            loaded = (org, calendars)
            cache.save(entry, loaded)
        org, calendars = loaded
        return cls(directory, org, calendars, version, org_text, calendars_text)

    def in_force(self, org_text: str, calendars_text: str) -> Catalog:
        """The same workflows under the org chart and calendars stored in the database."""
        if org_version(org_text, calendars_text) == self.org_sha:
            return self
        catalog = Catalog.from_texts(self.directory, org_text, calendars_text, display="org.yaml@database")
        catalog.current = LazyDefinitions(catalog, dict(self.current._paths))
        return catalog

    def compile_file(self, path: Path) -> Definition:
        text = read_text(path, _display(path))
        key = (sha256_of(text), self.org_sha, "file", kinds.generation())
        if key not in _COMPILED:
            entry = cache.key(key[0], key[1], f"file:{_display(path)}")
            definition = cache.load(entry, Definition) if kinds.generation() == _SHIPPED_KINDS else None
            if definition is None:
                from caseflow.definition.compile import load_definition
                definition = load_definition(path, self.org, self.calendars, display=_display(path))
                if definition.workflow != path.stem:
                    raise DefinitionError(f"workflow id {definition.workflow!r} must match the file name",
                                          file=_display(path), line=_line_of(definition.text, "workflow:"),
                                          col=1, hint=f"rename the file to {definition.workflow}.yaml")
                if kinds.generation() == _SHIPPED_KINDS:    # not with test-only action kinds registered
                    cache.save(entry, definition)
            _COMPILED[key] = definition
        definition = _COMPILED[key]
        self._by_sha[definition.sha256] = definition
        return definition

    def check_all(self) -> None:
        """Compile every workflow and check cross-file links; raise all errors at once."""
        errors: list[DefinitionError] = []
        for workflow in self.current:
            try:
                self.current[workflow]
            except DefinitionErrors as exc:
                errors.extend(exc.errors)
            except DefinitionError as exc:
                errors.append(exc)
        if not errors:
            errors.extend(self._check_links())
        if errors:
            raise DefinitionErrors(errors)

    def _check_links(self) -> list[DefinitionError]:
        """Spawned workflows must exist (a cross-file reference lint cannot see)."""
        errors = []
        for definition in self.current.values():
            for action in _all_actions(definition):
                if action.kind == "spawn" and action.value not in self.current:
                    errors.append(DefinitionError(
                        f"spawns unknown workflow {action.value!r}", file=definition.path,
                        line=_line_of(definition.text, f"workflow: {action.value}"), col=1,
                        hint=lint.did_you_mean(action.value, self.current)))
        return errors

    def get(self, workflow: str) -> Definition:
        try:
            return self.current[workflow]
        except KeyError:
            raise NotFound("workflow", workflow, lint.closest(workflow, self.current)) from None

    def version(self, sha: str, text_loader) -> Definition:  # noqa: ANN001
        """The definition a case pinned: the current file if unchanged, else its stored text."""
        found = self._by_sha.get(sha)
        if found is None:
            text, path = text_loader(sha)
            workflow = Path(path).stem
            if workflow in self.current and self.current.sha_of(workflow) == sha:
                return self.current[workflow]
            key = (sha, self.org_sha, "stored", kinds.generation())
            if key not in _COMPILED:
                entry = cache.key(sha, self.org_sha, "stored")
                shipped = kinds.generation() == _SHIPPED_KINDS
                stored = cache.load(entry, Definition) if shipped else None
                if stored is None:
                    from caseflow.definition.compile import definition_from_text
                    stored = definition_from_text(text, self.org, self.calendars, f"{path}@{sha[:12]}")
                    if shipped:
                        cache.save(entry, stored)
                _COMPILED[key] = stored
            found = self._by_sha[sha] = _COMPILED[key]
        return found

    def calendar_for(self, definition: Definition) -> BusinessCalendar | None:
        return self.calendars.get(definition.calendar) if definition.calendar else None


_DECLARED = re.compile(r"^workflow:[ \t]*[\"']?([^\"'#\s]+)", re.MULTILINE)


def workflow_files(directory: Path, only: list[str] | None = None) -> dict[str, Path]:
    """Workflow id → file, the same checks for every command: regular files only (a directory named
    x.yaml, a FIFO, a symlink to a device is refused, never read), each read bounded (source.py), and
    two files declaring the same workflow id refused naming both."""
    paths: dict[str, Path] = {}
    declared: dict[str, Path] = {}
    for p in sorted(directory.glob("*.yaml")):
        if p.name in SPECIAL:
            continue
        found = _DECLARED.search(read_text(p, _display(p)))     # refuses anything but a regular file
        wid = found.group(1) if found else p.stem
        if wid in declared:
            raise DefinitionError(f"workflow id {wid!r} is also declared by {_display(declared[wid])}",
                                  file=_display(p), line=1, col=1,
                                  hint="each workflow lives in one file named after its id; remove or rename one")
        declared[wid] = p
        if only is None or p.stem in only:
            paths[p.stem] = p
    return paths


def org_version(org_text: str, calendars_text: str) -> str:
    """The sha256 naming one org chart + calendars version (what audit rows record)."""
    return sha256_of(org_text + calendars_text)


def _all_actions(definition: Definition):  # noqa: ANN202
    for s in definition.states.values():
        yield from s.on_enter
    for t in definition.transitions:
        yield from t.actions
    for c in definition.clocks:
        yield from c.actions


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return 1


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
