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

# The monthly report's PDF needs a CJK font (Typst embeds it) and its tests render page
# 1 with poppler's pdftoppm. Installed where missing and possible (root with apt-get);
# otherwise the report tests say what to install.
ensure_report_tools() {
    local want=()
    if command -v fc-list >/dev/null 2>&1; then
        [ -n "$(fc-list :lang=zh family 2>/dev/null | head -n1)" ] || want+=(fonts-noto-cjk)
    else
        want+=(fontconfig fonts-noto-cjk)
    fi
    command -v pdftoppm >/dev/null 2>&1 || want+=(poppler-utils)
    [ "${#want[@]}" -gt 0 ] || return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${want[*]} (report PDF font and rendering)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${want[@]}" >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 \
                 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${want[@]}" >/dev/null 2>&1; } \
            || echo "== could not install ${want[*]}: the report PDF tests will say so" >&2
    else
        echo "== missing ${want[*]} (not root or no apt-get): the report PDF tests will say so" >&2
    fi
}
