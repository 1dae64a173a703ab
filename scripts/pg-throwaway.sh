#!/usr/bin/env bash
# Throwaway PostgreSQL 15 server for tests.
#
#   scripts/pg-throwaway.sh start DIR   # prints the SQLAlchemy URL (one line on stdout)
#   scripts/pg-throwaway.sh stop  DIR   # stops the server and removes DIR
#
# The server keeps everything inside DIR: data directory (DIR/pgdata), server log
# (DIR/postgres.log), initdb/pg_ctl output (DIR/pg_ctl.log) and the chosen port
# (DIR/port). It listens on 127.0.0.1 only, on a free port, with trust auth,
# fsync=off and max_connections=200, and has a database named caseflow_test.
#
# PostgreSQL refuses to run as root; when invoked as root the data directory is
# owned by the `postgres` user and the server binaries run as that user.
#
# Environment overrides: PG_BINDIR (default /usr/lib/postgresql/15/bin),
# PG_START_TIMEOUT (seconds, default 60).
set -euo pipefail

PROG=${0##*/}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PG_START_TIMEOUT=${PG_START_TIMEOUT:-60}
PG_USER=postgres
DB_NAME=caseflow_test
MARKER=.pg-throwaway          # proves DIR was set up by this script (guards rm -rf)
MAX_PORT_ATTEMPTS=5

die() { echo "$PROG: error: $*" >&2; exit 1; }
warn() { echo "$PROG: warning: $*" >&2; }
usage() {
    echo "usage: $PROG start DIR | $PROG stop DIR" >&2
    exit 2
}

# Quote arguments for /bin/sh (used only for the `su -c` fallback).
sh_quote() {
    local out="" a
    for a in "$@"; do
        out+="'${a//\'/\'\\\'\'}' "
    done
    printf '%s' "$out"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the server user (postgres when we are root, else ourselves).
as_pg() {
    if is_root; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u "$PG_USER" -- "$@"
        else
            su "$PG_USER" -s /bin/sh -c "$(sh_quote "$@")"
        fi
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Print the tail of the log files to stderr (for diagnosing failures).
show_logs() {
    local f
    for f in "$DIR/pg_ctl.log" "$DIR/postgres.log"; do
        if [ -s "$f" ]; then
            echo "---- last lines of $f ----" >&2
            tail -n 30 "$f" >&2 || true
        fi
    done
}

resolve_dir() {
    [ -n "${1:-}" ] || usage
    DIR=$1
}

cmd_start() {
    local pgbin
    for pgbin in initdb pg_ctl pg_isready createdb postgres; do
        [ -x "$PG_BINDIR/$pgbin" ] ||
            die "$PG_BINDIR/$pgbin not found (is PostgreSQL 15 installed? set PG_BINDIR to override)"
    done
    command -v python3 >/dev/null 2>&1 || die "python3 is required to pick a free port"
    if is_root; then
        id "$PG_USER" >/dev/null 2>&1 ||
            die "running as root but there is no '$PG_USER' user to run the server as"
    fi

    mkdir -p -- "$DIR" || die "cannot create $DIR"
    DIR=$(cd -- "$DIR" && pwd -P)
    [ ! -e "$DIR/pgdata" ] ||
        die "$DIR/pgdata already exists (server already started? run: $PROG stop $DIR)"

    : >"$DIR/$MARKER"
    : >"$DIR/pg_ctl.log"
    : >"$DIR/postgres.log"
    mkdir -m 700 -- "$DIR/pgdata"

    if is_root; then
        chown "$PG_USER": "$DIR/pgdata" "$DIR/pg_ctl.log" "$DIR/postgres.log"
        # The postgres user must be able to reach DIR (mktemp -d makes it 0700).
        if ! as_pg test -x "$DIR"; then
            chmod a+x -- "$DIR"
        fi
        as_pg test -w "$DIR/pgdata" ||
            die "user '$PG_USER' cannot access $DIR/pgdata (check permissions of $DIR and its parents)"
    fi

    # Child processes run with cwd=/ so they never trip over an unreadable cwd.
    cd /

    if ! as_pg "$PG_BINDIR/initdb" -D "$DIR/pgdata" -U postgres --auth=trust \
        --no-locale --encoding=UTF8 --no-sync >>"$DIR/pg_ctl.log" 2>&1; then
        show_logs
        die "initdb failed (log: $DIR/pg_ctl.log)"
    fi

    # Local loopback only, trust auth.
    # shellcheck disable=SC2016  # $1 is expanded by the inner sh
    as_pg sh -c 'cat >"$1"' sh "$DIR/pgdata/pg_hba.conf" <<'EOF'
# pg-throwaway: trust on loopback only
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
EOF
    # shellcheck disable=SC2016
    as_pg sh -c 'cat >>"$1"' sh "$DIR/pgdata/postgresql.conf" <<'EOF'

# ---- pg-throwaway settings (port is passed on the command line) ----
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
EOF

    local attempt port="" started="" log_offset
    for attempt in $(seq 1 "$MAX_PORT_ATTEMPTS"); do
        port=$(free_port) || die "could not find a free port"
        log_offset=$(($(wc -c <"$DIR/postgres.log") + 1))
        echo "== start attempt $attempt on port $port" >>"$DIR/pg_ctl.log"
        if as_pg "$PG_BINDIR/pg_ctl" start -D "$DIR/pgdata" -l "$DIR/postgres.log" \
            -w -t "$PG_START_TIMEOUT" -o "-p $port" >>"$DIR/pg_ctl.log" 2>&1; then
            started=1
            break
        fi
        # Somebody grabbed the port between our probe and the bind: retry.
        if tail -c +"$log_offset" "$DIR/postgres.log" |
            grep -qE 'could not bind|Address already in use|could not create any TCP/IP sockets'; then
            warn "port $port was taken, retrying with another port"
            continue
        fi
        break
    done
    if [ -z "$started" ]; then
        show_logs
        as_pg "$PG_BINDIR/pg_ctl" stop -D "$DIR/pgdata" -m immediate >/dev/null 2>&1 || true
        die "PostgreSQL failed to start (logs in $DIR)"
    fi
    echo "$port" >"$DIR/port"

    local waited=0
    until "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
        if [ "$waited" -ge "$PG_START_TIMEOUT" ]; then
            show_logs
            die "PostgreSQL on 127.0.0.1:$port not ready after ${PG_START_TIMEOUT}s (logs in $DIR)"
        fi
        sleep 1
        waited=$((waited + 1))
    done

    if ! "$PG_BINDIR/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB_NAME" \
        >>"$DIR/pg_ctl.log" 2>&1; then
        show_logs
        die "createdb $DB_NAME failed (logs in $DIR; stop with: $PROG stop $DIR)"
    fi

    echo "postgresql+psycopg://postgres@127.0.0.1:$port/$DB_NAME"
}

cmd_stop() {
    if [ ! -d "$DIR" ]; then
        warn "$DIR does not exist; nothing to stop"
        return 0
    fi
    DIR=$(cd -- "$DIR" && pwd -P)
    [ -e "$DIR/$MARKER" ] ||
        die "$DIR was not created by '$PROG start'; refusing to touch it"
    cd /

    local rc=0
    if [ -f "$DIR/pgdata/postmaster.pid" ]; then
        if ! as_pg "$PG_BINDIR/pg_ctl" stop -D "$DIR/pgdata" -m fast -w -t 60 \
            >>"$DIR/pg_ctl.log" 2>&1; then
            warn "fast shutdown failed, trying immediate shutdown"
            if ! as_pg "$PG_BINDIR/pg_ctl" stop -D "$DIR/pgdata" -m immediate -w -t 30 \
                >>"$DIR/pg_ctl.log" 2>&1; then
                show_logs
                echo "$PROG: error: could not stop PostgreSQL in $DIR/pgdata; leaving $DIR in place" >&2
                return 1
            fi
        fi
    fi

    rm -rf -- "$DIR/pgdata" || rc=1
    rm -f -- "$DIR/pg_ctl.log" "$DIR/postgres.log" "$DIR/port" "$DIR/$MARKER" || rc=1
    if ! rmdir -- "$DIR" 2>/dev/null; then
        warn "$DIR contains other files; removed only the PostgreSQL files"
    fi
    return "$rc"
}

[ $# -eq 2 ] || usage
resolve_dir "$2"
case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    *) usage ;;
esac
