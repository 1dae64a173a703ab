"""One error hierarchy: fields for machines, one line for people.

Every failure the engine can report is a `CaseflowError` subclass that carries
its context as attributes and its CLI exit code on the class, so the CLI never
has to guess what went wrong (it prints ``error: {e}`` and exits ``e.exit_code``).
Exit codes follow the CLI contract: 1 refused, 2 usage/definition, 3 concurrent
modification (safe to retry), 4 not found.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


class CaseflowError(Exception):
    """Base class; `str(e)` is the one line an operator sees."""

    exit_code: ClassVar[int] = 1


class UsageError(CaseflowError):
    """The command line itself is wrong (malformed --set, bad --now, …)."""

    exit_code = 2


class DefinitionError(CaseflowError):
    """A workflow file is wrong; points at file:line:col with an optional hint."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | Path, line: int, col: int,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file)
        self.line = line
        self.col = col
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{where} ({self.hint})" if self.hint else where


class DefinitionErrors(CaseflowError):
    """All the errors found in one or more files; the first one is the headline."""

    exit_code = 2

    def __init__(self, errors: list[DefinitionError]) -> None:
        super().__init__(str(errors[0]))
        self.errors = errors

    def __str__(self) -> str:
        return str(self.errors[0])


class CalendarError(CaseflowError, ValueError):
    """A calendar file or a calendar computation is wrong."""

    exit_code = 2


SHOWN_MAX = 64     # an id or name echoed in an error is cut to this many characters


def shown(value: str) -> str:
    """`value` quoted for an error line; an over-long one cut, with its length (one short line either way)."""
    if len(value) <= SHOWN_MAX:
        return repr(value)
    return f"{value[:SHOWN_MAX]!r}… ({len(value):,} characters)"


class NotFound(CaseflowError):
    """`workflow 'refnd' not found (did you mean 'refund'?)`; `suggestion` is the close name, if any."""

    exit_code = 4

    def __init__(self, kind: str, name: str, suggestion: str | None = None) -> None:
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        super().__init__(f"{kind} {shown(name)} not found{hint}")
        self.kind = kind
        self.name = name
        self.suggestion = suggestion


class UnknownUser(CaseflowError):
    """No person, or one the org chart in force does not know (`reason` overrides the usual line)."""

    def __init__(self, user: str | None, reason: str | None = None) -> None:
        msg = reason or ("no user given: pass --as USER or set CASEFLOW_USER" if not user
                         else f"unknown user {shown(user)}: not in org.yaml")
        super().__init__(msg)
        self.user = user
        self.reason = reason


class IdentityMismatch(UnknownUser):
    """On a live PostgreSQL database the person comes from the login; `--as` may not differ."""

    def __init__(self, user: str, login: str, person: str) -> None:
        super().__init__(user, f"--as {user} refused: database login {login!r} is {person}; "
                               "on PostgreSQL each operator acts under their own login")
        self.login = login
        self.person = person


class SimulatedTime(CaseflowError):
    """--now (a fixed clock) on a database that was not created as a simulation."""

    exit_code = 2

    def __init__(self, url: str) -> None:
        super().__init__(f"--now is only honoured on simulation databases; {url} is live "
                         "(create one with `caseflow --simulation db init` or `caseflow demo`)")
        self.url = url


class TransitionRefused(CaseflowError):
    """The action is not allowed now; `reason` says why in operator terms."""

    def __init__(self, case_id: str, event: str, state: str, reason: str) -> None:
        super().__init__(reason)
        self.case_id = case_id
        self.event = event
        self.state = state
        self.reason = reason

    def __str__(self) -> str:
        if not self.case_id:            # refused while opening: there is no case yet
            return f"cannot {self.event}: {self.reason}"
        return f"case {self.case_id}: cannot {self.event} in state {self.state}: {self.reason}"


class WrongState(TransitionRefused):
    """The event is unknown or not possible in this state; `possible` are the events that are."""

    def __init__(self, case_id: str, event: str, state: str, reason: str, *,
                 possible: tuple[str, ...] = ()) -> None:
        super().__init__(case_id, event, state, reason)
        self.possible = possible


class RoleNotAllowed(TransitionRefused):
    """`allowed_roles`: the roles that may do it (empty where no person may, e.g. a system event)."""

    def __init__(self, case_id: str, event: str, state: str, reason: str, *,
                 allowed_roles: tuple[str, ...] = ()) -> None:
        super().__init__(case_id, event, state, reason)
        self.allowed_roles = allowed_roles


class GuardFailed(TransitionRefused):
    """`guard`: the CEL text of the guard that does not hold."""

    def __init__(self, case_id: str, event: str, state: str, reason: str, *, guard: str | None = None) -> None:
        super().__init__(case_id, event, state, reason)
        self.guard = guard


class MissingFields(TransitionRefused):
    """`missing`: the fields (and `input NAME`s) still to be given."""

    def __init__(self, case_id: str, event: str, state: str, reason: str, *,
                 missing: tuple[str, ...] = ()) -> None:
        super().__init__(case_id, event, state, reason)
        self.missing = missing


class InvalidData(TransitionRefused):
    pass


class SignoffRefused(TransitionRefused):
    pass


class ConflictOfInterest(TransitionRefused):
    """A transition's `not_by` rule: the person named in that field may not take this step."""


class TimeRefused(TransitionRefused):
    """The effective time is before the case's last action, or an operator time lies in the future."""


class EvidenceMismatch(TransitionRefused):
    """The case row disagrees with what its audit chain proves (e.g. forged sign-offs): nothing is done."""


class StaleCase(CaseflowError):
    """Someone else changed the case between our read and our write."""

    exit_code = 3

    def __init__(self, case_id: str) -> None:
        super().__init__(case_id)
        self.case_id = case_id

    def __str__(self) -> str:
        return f"case {self.case_id} was changed by someone else; retry"


class ConcurrentChange(CaseflowError):
    """A concurrent writer took a unique key we needed; nothing was written."""

    exit_code = 3

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return "a concurrent change conflicted with this one; nothing was changed; retry"


class StorageError(CaseflowError):
    """The database is unreachable or refused the write; nothing was changed."""

    exit_code = 5


class LockTimeout(StorageError):
    """Another process held the database lock longer than the lock timeout; nothing was changed (exit 6)."""

    exit_code = 6

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the database is locked by another process; gave up after {seconds:g} s, nothing was "
                         "changed (retry, or wait longer with --lock-timeout / CASEFLOW_LOCK_TIMEOUT)")
        self.seconds = seconds


class SweepCutOff(StorageError):
    """`sla run` lost its database part-way: what it committed stays committed (each timer is its own
    transaction), the rest is untouched and a rerun continues from there (exit 5)."""

    def __init__(self, committed: int, counts: dict[str, int], cause: str) -> None:
        done = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        what = f" ({done})" if done else ""
        super().__init__(f"database error after {committed} due timer(s) were handled and committed{what}; "
                         f"the others were not changed: run `caseflow sla run` again to continue ({cause})")
        self.committed = committed
        self.counts = counts
        self.cause = cause


class AlreadyExists(CaseflowError):
    """`caseflow init` would overwrite a file; nothing was written."""

    def __init__(self, path: str, count: int) -> None:
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"{path} already exists{more}; nothing was written (use --force to overwrite)")
        self.path = path
        self.count = count


class DemoNeedsEmptyDatabase(CaseflowError):
    """`caseflow demo --db URL` on a database that already has cases; nothing was changed."""

    def __init__(self, url: str, cases: int) -> None:
        super().__init__(f"the demo needs an empty database; {url} already has {cases} case(s) "
                         "(without --db or CASEFLOW_DB each run gets a fresh file)")
        self.url = url
        self.cases = cases


class NotPermitted(CaseflowError):
    """The user's roles do not allow a read, e.g. --unmask without `can_unmask` in org.yaml."""

    def __init__(self, user: str, action: str, reason: str) -> None:
        super().__init__(f"{user} may not {action}: {reason}")
        self.user = user
        self.action = action
        self.reason = reason


class ExportUnreadable(CaseflowError):
    """`caseflow export verify` was given a file that is not a caseflow export it can read."""

    exit_code = 2

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NotAssignee(TransitionRefused):
    """An `assignee_only` event fired by someone who does not hold the case; `assignee` may be None."""

    def __init__(self, case_id: str, event: str, state: str, reason: str, assignee: str | None) -> None:
        super().__init__(case_id, event, state, reason)
        self.assignee = assignee


class AssignmentRefused(TransitionRefused):
    """assign / claim / release is not allowed: wrong role, already held, not held, closed case."""


class MigrationRefused(TransitionRefused):
    """A migration plan (or a revert) is refused as a whole; nothing was migrated. `counts`: verdict → cases."""

    def __init__(self, workflow: str, reason: str, counts: dict[str, int] | None = None) -> None:
        super().__init__("", f"migrate {workflow}", "", reason)
        self.workflow = workflow
        self.counts = dict(counts or {})


class MigrationIncomplete(StaleCase):
    """Some cases were changed by someone else while the run moved them; the rest moved. Run it again."""

    def __init__(self, run: int, case_ids: list[str], verb: str = "moving") -> None:
        super().__init__(case_ids[0] if case_ids else "")
        self.run = run
        self.case_ids = list(case_ids)
        self.verb = verb

    def __str__(self) -> str:
        shown = ", ".join(self.case_ids[:5]) + (" …" if len(self.case_ids) > 5 else "")
        return (f"migration run {self.run}: {len(self.case_ids)} case(s) were changed by someone else while "
                f"{self.verb} ({shown}); they stay where they were; run it again to retry them")


class ImportStopped(CaseflowError):
    """An import stopped part-way after some of its batches were committed: those cases are kept. The exit code
    is the cause's (5 database, 6 lock wait, 130 interrupted, …); `next_line` is where to go on (--from-line)."""

    def __init__(self, workflow: str, opened: int, refused: int, next_line: int, reason: str, exit_code: int) -> None:
        kept = f"{opened:,} case(s) from the lines before it were imported and are kept" + (
            f" ({refused:,} row(s) there refused: caseflow audit --attempts)" if refused else "")
        super().__init__(f"import of {workflow} stopped at line {next_line}: {reason}; {kept}; to import the rest, "
                         f"run the same command again with --from-line {next_line}")
        self.workflow, self.opened, self.refused, self.next_line = workflow, opened, refused, next_line
        self.reason = reason
        self.exit_code = exit_code      # type: ignore[misc]  # the cause's code, for this instance
