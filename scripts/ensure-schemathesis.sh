#!/usr/bin/env bash
# Installs the API contract checker (schemathesis, with every dependency pinned in
# e2e/contract/requirements.txt) into a Python venv outside the clone:
# ${MIMOTO_VENV:-$HOME/.cache/mimoto-venv}. Reinstalls when the pins change; quiet otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MIMOTO_VENV:-$HOME/.cache/mimoto-venv}"
req=e2e/contract/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/schemathesis" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "installing: python3-venv"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv
fi
echo "installing schemathesis into $venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req"
echo "$want" > "$stamp"
