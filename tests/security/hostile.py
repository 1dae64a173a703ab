"""Hostile input, counted: each attack of issue #14's Input paragraph is one input tried.

`expect` runs the check and notes it in the figures printed at the end of the
run (security: inputs_tried / inputs_handled): handled means refused with the
documented one line and exit code, or normalised as docs/format.md says.
"""

from __future__ import annotations

from typing import Any

from ..reliability.support import note


def expect(result: Any, code: int, stderr: str | None = None, *, starts: str | None = None) -> None:
    """The result of one hostile input: `code`, and stderr exactly `stderr` (or starting with `starts`)."""
    line = result.stderr
    ok = result.exit_code == code and (stderr is None or line == stderr) \
        and (starts is None or line.startswith(starts)) and line.count("\n") <= 1
    note("security", inputs_tried=1, inputs_handled=int(ok))
    if stderr is not None:
        assert (result.exit_code, line) == (code, stderr)
    else:
        assert result.exit_code == code, line
        assert starts is None or line.startswith(starts), line
        assert line.count("\n") <= 1, line


def handled(ok: bool) -> bool:
    """A hostile input checked some other way (stored value, library call)."""
    note("security", inputs_tried=1, inputs_handled=int(ok))
    return ok
