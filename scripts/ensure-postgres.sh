#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 (trust auth, user postgres), starting the
# local cluster if it is not running. Used by `make test` before the storage contract suite.
set -euo pipefail
HOST=127.0.0.1 PORT=5432
ready() { pg_isready -q -h "$HOST" -p "$PORT"; }
ready && exit 0
SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
fi
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "PostgreSQL is not reachable on $HOST:$PORT" >&2
exit 1
