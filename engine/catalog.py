"""The set of workflows an Engine knows: a directory of YAML files plus old versions.

Current definitions come from the workflows directory; a case opened under an
older version is run under the text stored with it in the database, rebuilt
here on demand and cached by sha256 (one compile and one Machine per version).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .calendar import BusinessCalendar, load_calendars
from .definition import definition_from_text, load_definition, load_org
from .errors import DefinitionError, DefinitionErrors, NotFound
from .lint import did_you_mean
from .model import Definition, Org

SHIPPED = Path(__file__).resolve().parent.parent / "workflows"
SPECIAL = {"org.yaml", "calendars.yaml"}


def default_dir() -> Path:
    """--workflows default: ./workflows if present, else the shipped ones."""
    local = Path("workflows")
    return local if local.is_dir() and (local / "org.yaml").exists() else SHIPPED


@dataclass
class Catalog:
    directory: Path
    org: Org
    calendars: dict[str, BusinessCalendar]
    current: dict[str, Definition]
    _by_sha: dict[str, Definition] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | Path | None = None, only: list[str] | None = None) -> "Catalog":
        """Load org, calendars and every workflow file; raise all definition errors at once."""
        d = Path(directory) if directory else default_dir()
        if not (d / "org.yaml").exists():
            raise DefinitionError("no org.yaml in the workflows directory", file=str(d / "org.yaml"), line=1,
                                  col=1, hint="set --workflows or CASEFLOW_WORKFLOWS")
        org = load_org(d / "org.yaml")
        calendars = load_calendars(d / "calendars.yaml") if (d / "calendars.yaml").exists() else {}
        errors: list[DefinitionError] = []
        current: dict[str, Definition] = {}
        for path in sorted(d.glob("*.yaml")):
            if path.name in SPECIAL or (only is not None and path.stem not in only):
                continue
            try:
                definition = load_definition(path, org, calendars, display=_display(path))
            except DefinitionErrors as exc:
                errors.extend(exc.errors)
                continue
            except DefinitionError as exc:
                errors.append(exc)
                continue
            current[definition.workflow] = definition
        catalog = cls(d, org, calendars, current)
        errors.extend(catalog._check_links())
        if errors:
            raise DefinitionErrors(errors)
        catalog._by_sha = {x.sha256: x for x in current.values()}
        return catalog

    def _check_links(self) -> list[DefinitionError]:
        """Spawned workflows must exist (a cross-file reference lint cannot see)."""
        errors = []
        for definition in self.current.values():
            for action in _all_actions(definition):
                if action.kind == "spawn" and action.value not in self.current:
                    errors.append(DefinitionError(
                        f"spawns unknown workflow {action.value!r}", file=definition.path,
                        line=_line_of(definition.text, f"workflow: {action.value}"), col=1,
                        hint=did_you_mean(action.value, self.current)))
        return errors

    def get(self, workflow: str) -> Definition:
        try:
            return self.current[workflow]
        except KeyError:
            hint = did_you_mean(workflow, self.current)
            raise NotFound("workflow", workflow + (f" ({hint})" if hint else "")) from None

    def version(self, sha: str, text_loader) -> Definition:  # noqa: ANN001
        """The definition a case pinned; rebuilt from its stored text when not current."""
        found = self._by_sha.get(sha)
        if found is None:
            text, path = text_loader(sha)
            found = definition_from_text(text, self.org, self.calendars, f"{path}@{sha[:12]}")
            self._by_sha[sha] = found
        return found

    def calendar_for(self, definition: Definition) -> BusinessCalendar | None:
        return self.calendars.get(definition.calendar) if definition.calendar else None


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
