# Sourced by scripts/test and scripts/demo: a virtualenv with the project installed,
# and the local PostgreSQL and Mosquitto started if they are installed but not running.
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
VENV="${PARKCARBON_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating virtualenv $VENV" >&2
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.parkcarbon-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "== installing parkcarbon and its dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev,embedded]" >&2
    echo "$want" > "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"

port_open() {  # host port
    "$VENV/bin/python" - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

ensure_services() {
    if ! port_open 127.0.0.1 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "== starting PostgreSQL" >&2
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >&2 || true
        for _ in $(seq 1 30); do port_open 127.0.0.1 5432 && break; sleep 0.5; done
    fi
    if ! port_open 127.0.0.1 1883 && command -v mosquitto >/dev/null 2>&1; then
        echo "== starting Mosquitto" >&2
        mosquitto -d -c /etc/mosquitto/mosquitto.conf >&2 || true
        for _ in $(seq 1 20); do port_open 127.0.0.1 1883 && break; sleep 0.25; done
    fi
}
