"""Verify a definition once per version: lints + properties, reusing a clean recorded result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caseflow.definition.model import Definition, Org
from caseflow.errors import DefinitionError
from caseflow.verification import lints, packaged, record
from caseflow.verification.check import Report, verify
from caseflow.verification.explorer import DEFAULT_BOUND
from caseflow.verification.report import record_entry


@dataclass
class Outcome:
    definition: Definition
    report: Report | None                      # None when a recorded clean result was reused
    lints: list[DefinitionError] = field(default_factory=list)
    recorded: dict[str, Any] | None = None

    @property
    def errors(self) -> list[DefinitionError]:
        """What makes the file fail: lint errors, bad property references, violations (as errors)."""
        out = [e for e in self.lints if not isinstance(e, lints.Warning_)]
        if self.report is not None:
            out += self.report.errors
            for f in self.report.findings:
                if f.status == "violated":
                    from caseflow.verification.report import verdict_line
                    out.append(_Violation(verdict_line(self.report, f), file=f.prop.file, line=f.prop.line,
                                          col=f.prop.col))
        return out

    @property
    def warnings(self) -> list[DefinitionError]:
        return [e for e in self.lints if isinstance(e, lints.Warning_)]


class _Violation(DefinitionError):
    def __str__(self) -> str:
        return self.message


def verify_one(d: Definition, org: Org, catalog: Any, bound: int = DEFAULT_BOUND, *, reuse: bool = True,
               save: bool = True) -> Outcome:
    org_key = record.org_digest(org)
    if reuse:
        entry = packaged.reusable(d, org_key, bound)
        if entry is not None:
            return Outcome(d, None, _lints_of(d, org, entry), entry)
    found = lints.check(d, org)
    report = verify(d, org, catalog, bound)
    outcome = Outcome(d, report, found)
    if save:
        record.save(d, org_key, record_entry(report, found))
        outcome.recorded = record.load(d, org_key)
    return outcome


def _lints_of(d: Definition, org: Org, entry: dict[str, Any]) -> list[DefinitionError]:
    """A reused record's lints, in this file: as recorded for the same text, found again for another layout."""
    recorded = entry.get("lints", [])
    if recorded and entry.get("definition") != d.sha256:
        return lints.check(d, org)              # the same content, so the same lints, but on other lines
    return [_lint_from({**x, "file": d.path}) for x in recorded]


def _lint_from(x: dict[str, Any]) -> DefinitionError:
    cls = lints.Warning_ if x.get("warning") else DefinitionError
    return cls(x["message"], file=x["file"], line=x["line"], col=x["col"], hint=x.get("hint"))


VALIDATE_BOUND = 6      # validate runs on every save: a shorter search; `verify` defaults to DEFAULT_BOUND (12)


def verification_problems(definitions: list[Definition], org: Org, directory: Any,
                          bound: int = VALIDATE_BOUND) -> tuple[list[DefinitionError], list[DefinitionError]]:
    """For `validate`: (errors, warnings) from the lints and properties of each definition."""
    from caseflow.catalog import Catalog
    catalog = Catalog.load(directory)
    errors: list[DefinitionError] = []
    warnings: list[DefinitionError] = []
    for d in definitions:
        outcome = verify_one(d, org, catalog, bound)
        errors += outcome.errors
        warnings += outcome.warnings
    return errors, warnings
