# Sourced by scripts/test: TimescaleDB from ../shared/timescaledb on private PostgreSQL
# clusters in a temporary directory. The machine's main cluster is never touched; the
# install script only copies the extension's files into PostgreSQL 15's directories.
# shellcheck shell=bash

TIMESCALE_DIR="${PARKCARBON_TIMESCALE_DIR:-../shared/timescaledb}"
PG_BIN="${PARKCARBON_PG_BIN:-/usr/lib/postgresql/15/bin}"
TS_ROOT=""       # temporary directory holding the private clusters
TS_CLUSTERS=()   # data directories started by ts_start_cluster
TS_SKIP_REASON=""

# ts_version: the TimescaleDB version PostgreSQL 15 now offers (its control file).
ts_version() {
    sed -n "s/^default_version = '\(.*\)'/\1/p" \
        "$("$PG_BIN/pg_config" --sharedir)/extension/timescaledb.control" 2>/dev/null || true
}

# ts_prepare: install TimescaleDB if the shared build is here and applies.
# Returns 0 when a timescale pass can run, 1 otherwise (TS_SKIP_REASON says why).
ts_prepare() {
    if [ ! -f "$TIMESCALE_DIR/install" ]; then
        TS_SKIP_REASON="$TIMESCALE_DIR not found"
        return 1
    fi
    if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
        TS_SKIP_REASON="no PostgreSQL 15 server binaries in $PG_BIN"
        return 1
    fi
    local rc=0 out
    out=$(bash "$TIMESCALE_DIR/install" 2>&1) || rc=$?
    case $rc in
        0) echo "== ${out##*$'\n'}" >&2 ;;
        2) TS_SKIP_REASON="$TIMESCALE_DIR/install does not apply here (${out##*$'\n'})"; return 1 ;;
        *)
            echo "$out" >&2
            if [ "$(id -u)" != 0 ]; then  # a developer's machine: it needs write access
                TS_SKIP_REASON="$TIMESCALE_DIR/install failed (exit $rc; run it once as root)"
                return 1
            fi
            echo "== $TIMESCALE_DIR/install failed (exit $rc)" >&2
            return 2
            ;;
    esac
    if [ "$(id -u)" = 0 ]; then
        if ! id postgres >/dev/null 2>&1; then
            TS_SKIP_REASON="running as root and there is no postgres user to own a cluster"
            return 1
        fi
    fi
    TS_ROOT=$(mktemp -d /tmp/parkcarbon-timescale.XXXXXX)
    chmod 0755 "$TS_ROOT"
    return 0
}

_ts_as_owner() {  # run a command as the cluster owner (postgres when we are root)
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_ts_free_port() {
    python - <<'PY'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
PY
}

# ts_start_cluster NAME PRELOAD(yes|no): initdb + start a cluster; sets TS_PORT.
TS_PORT=""
ts_start_cluster() {
    local name=$1 preload=$2 data="$TS_ROOT/$1" port attempt
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres: "$data"
    _ts_as_owner "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 --no-sync >"$TS_ROOT/$name-initdb.log" 2>&1 || {
        cat "$TS_ROOT/$name-initdb.log" >&2
        return 1
    }
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$data'"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "max_connections = 200"
        echo "shared_buffers = 128MB"
        if [ "$preload" = yes ]; then
            echo "shared_preload_libraries = 'timescaledb'"
            echo "timescaledb.telemetry_level = off"
        fi
    } >>"$data/postgresql.conf"
    TS_CLUSTERS+=("$data")
    for attempt in 1 2 3; do
        port=$(_ts_free_port)
        if _ts_as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
            -o "-p $port" start >/dev/null 2>&1; then
            TS_PORT=$port
            return 0
        fi
        echo "== private cluster $name did not start on port $port (attempt $attempt)" >&2
    done
    tail -n 20 "$data/server.log" >&2 || true
    return 1
}

# ts_cleanup: stop every private cluster and remove the temporary directory.
ts_cleanup() {
    local data
    for data in "${TS_CLUSTERS[@]}"; do
        if [ -f "$data/postmaster.pid" ]; then
            _ts_as_owner "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 stop \
                >/dev/null 2>&1 || true
        fi
    done
    TS_CLUSTERS=()
    if [ -n "$TS_ROOT" ]; then
        rm -rf "$TS_ROOT"
        TS_ROOT=""
    fi
}
