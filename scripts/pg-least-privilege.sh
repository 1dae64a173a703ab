#!/usr/bin/env bash
# The README's PostgreSQL least-privilege set-up, run for real against a server, with the
# attacks it must stop. .ci/run runs it against its throwaway server before the tests.
#
#   scripts/pg-least-privilege.sh ADMIN_URL     # e.g. the URL scripts/pg-throwaway.sh prints
#
# It creates an owner role, a runtime group role and personal logins, a fresh database owned
# by the owner, runs `caseflow db init --grant` as the owner, then as the person wang.fang:
# opens a complaint (allowed), and tries what the trust model (docs/security.md) forbids —
# disabling the log's triggers, UPDATE/DELETE on the log, acting as somebody else. Each must
# be refused. The auditor jiang.wen then verifies the log, and again after a case row is
# edited by hand (the runtime may update case rows, so verify must name that). Exit 0 only if every check holds.
set -euo pipefail
export PGOPTIONS='-c client_min_messages=warning'

[ $# -eq 1 ] || { echo "usage: ${0##*/} ADMIN_URL" >&2; exit 2; }
ADMIN=${1/postgresql+psycopg:/postgresql:}
HOSTPART=${ADMIN#postgresql://*@}            # 127.0.0.1:PORT/db
SERVER=${HOSTPART%%/*}
DB=caseflow_least_privilege
PSQL=${PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql
command -v "$PSQL" >/dev/null 2>&1 || PSQL=psql
CASEFLOW=${CASEFLOW:-.venv/bin/caseflow}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/caseflow-lp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd_work() { cd "$WORK"; }     # run caseflow outside the repository: the shipped workflows come from the package
CASEFLOW=$(cd "$(dirname "$CASEFLOW")" && pwd)/$(basename "$CASEFLOW")

fail() { echo "least privilege: FAILED: $*" >&2; exit 1; }
ok() { echo "least privilege: ok: $*" >&2; }
admin() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$ADMIN" "$@"; }
as_login() { local who=$1; shift; "$PSQL" -X -q -v ON_ERROR_STOP=1 "postgresql://$who@$SERVER/$DB" "$@"; }
url_of() { echo "postgresql+psycopg://$1@$SERVER/$DB"; }

admin -c "DROP DATABASE IF EXISTS $DB" >/dev/null
for role in '"wang.fang"' '"jiang.wen"' caseflow_app caseflow_owner; do
    admin -c "DROP ROLE IF EXISTS $role" >/dev/null
done
admin -c "CREATE ROLE caseflow_owner LOGIN" -c "CREATE ROLE caseflow_app NOLOGIN" \
      -c "CREATE DATABASE $DB OWNER caseflow_owner"
admin -c 'CREATE ROLE "wang.fang" LOGIN IN ROLE caseflow_app' \
      -c 'CREATE ROLE "jiang.wen" LOGIN IN ROLE caseflow_app'

cd_work
"$CASEFLOW" --db "$(url_of caseflow_owner)" db init --grant caseflow_app >/dev/null || fail "db init as the owner"
ok "the owner ran the migrations and granted caseflow_app"

CASEFLOW_DB=$(url_of wang.fang) "$CASEFLOW" open complaint --set form_no=LP-1 --set customer_name=张三 \
    --set phone=13900000000 --set channel=phone --set category=quality --set description=漏水 \
    --set severity=normal --set received_at="$(date -u +%Y-%m-%dT%H:%M)" >/dev/null || fail "wang.fang could not open a complaint as herself"
ok "wang.fang opened a complaint as herself (no --as)"

set +e
CASEFLOW_DB=$(url_of wang.fang) "$CASEFLOW" --as zhou.jie list >/dev/null 2>"$WORK/as.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "wang.fang acted as zhou.jie with --as"
ok "--as zhou.jie under wang.fang's login refused (exit $rc: $(head -c 200 "$WORK/as.err"))"

for attack in "ALTER TABLE audit DISABLE TRIGGER USER" "UPDATE audit SET note = 'x'" "DELETE FROM audit" \
              "DROP TABLE audit"; do
    if as_login wang.fang -c "$attack" >/dev/null 2>&1; then
        fail "the runtime login could run: $attack"
    fi
    ok "refused to the runtime login: $attack"
done

CASEFLOW_DB=$(url_of jiang.wen) "$CASEFLOW" audit verify >/dev/null || fail "audit verify by the auditor"
ok "the auditor's audit verify: intact"

# the runtime role must update case rows, so it can edit one by hand; verify then names it
as_login wang.fang -c "UPDATE cases SET state = 'closed'" >/dev/null || fail "UPDATE cases as the runtime login"
set +e
CASEFLOW_DB=$(url_of jiang.wen) "$CASEFLOW" audit verify >"$WORK/verify.out" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "audit verify missed a case row edited by hand"
ok "a case row edited by hand is named by audit verify (exit $rc)"

admin -c "DROP DATABASE $DB" >/dev/null
