#!/usr/bin/env bash
# Runs a command with a headless Chromium for the report's browser checks (cli/src/browser.rs):
#   scripts/with-chromium.sh cargo nextest run -p recon-cli
# Installs Debian's chromium package when /usr/bin/chromium is missing, exports
# RECON_CHROMIUM (the browser the checks launch; an already set value is kept), prints that
# browser's version to stderr, then runs the command.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${RECON_CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  echo "with-chromium: installing chromium (Debian package)" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi

export RECON_CHROMIUM="${RECON_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$RECON_CHROMIUM" ]]; then
  echo "with-chromium: RECON_CHROMIUM=$RECON_CHROMIUM is not an executable" >&2
  exit 1
fi
# Debian's launcher script warns on stderr when findmnt lists /dev/shm twice; keep only the
# version line.
echo "with-chromium: $("$RECON_CHROMIUM" --version 2>/dev/null | head -n 1)" >&2
exec "$@"
