#!/usr/bin/env bash
# Installs, by Debian package name, what the project needs and the machine lacks:
# Chromium (browser tests), CJK fonts (readable screenshots, synthetic identity documents in tests), DejaVu (face eval plot labels), Node.js/npm (browser test
# runner), PostgreSQL (storage contract suite; the fault tests' own server), tesseract with its Japanese model (OCR of identity documents in
# eKYC; also what the OCR tests run). Idempotent; quiet when nothing is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || missing+=(fonts-dejavu-core)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v pg_isready >/dev/null 2>&1 || missing+=(postgresql postgresql-client)
# The fault tests run a PostgreSQL server of their own (initdb, pg_ctl): the server binaries,
# not only the client.
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
dpkg -s tesseract-ocr-jpn >/dev/null 2>&1 || missing+=(tesseract-ocr-jpn)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust toolchain) is required" >&2; exit 1; }
