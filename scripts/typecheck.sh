#!/usr/bin/env bash
# mypy -p caseflow on the source tree: the folder engine/ is the package caseflow, so mypy
# reads it through a one-link directory (.typecheck/caseflow -> ../engine) instead of the
# editable install's import hook, which mypy cannot follow.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .typecheck
ln -sfn ../engine .typecheck/caseflow
MYPYPATH=.typecheck exec "${MYPY:-.venv/bin/mypy}" -p caseflow "$@"
