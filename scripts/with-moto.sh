#!/usr/bin/env bash
# Runs a command beside a moto server on 127.0.0.1, for the AWS adapter tests:
#   scripts/with-moto.sh cargo nextest run --workspace --all-features
# Installs the pinned moto (PyPI) into a venv outside the clone on first use, starts
# `moto_server` on a free port, exports RECON_TEST_MOTO_ENDPOINT (the tests' endpoint) and
# fake credentials, runs the command, and stops the server when the command ends, however it
# ends. The server answers on the loopback address only.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
VENV="${RECON_MOTO_VENV:-$HOME/.cache/recon-moto-venv}"

if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null \
   || [[ ! -x "$VENV/bin/moto_server" ]]; then
  echo "with-moto: installing moto[server]==$MOTO_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

port="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
log="$(mktemp -t recon-moto.XXXXXX)"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
stop() {
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  rm -f "$log"
}
trap stop EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Ready when its API answers (10 s at most).
if ! "$VENV/bin/python" - "$port" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
for _ in range(100):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
then
  echo "with-moto: moto_server did not start; its log:" >&2
  cat "$log" >&2
  exit 1
fi
# Step Functions executions run their definition (states without tasks), so they end
# SUCCEEDED or FAILED as on AWS instead of staying RUNNING.
"$VENV/bin/python" - "$port" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/moto-api/config",
    data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
    method="POST",
)
urllib.request.urlopen(req, timeout=5)
PY
echo "with-moto: moto $MOTO_VERSION on 127.0.0.1:$port (pid $moto_pid)" >&2

export RECON_TEST_MOTO_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=eu-central-1 AWS_DEFAULT_REGION=eu-central-1
unset AWS_PROFILE
# The moto venv's Python, for tests that drive moto from a script (runtime/tests/sfn_moto.rs).
export RECON_TEST_MOTO_PYTHON="$VENV/bin/python"
set +e
"$@"
rc=$?
set -e
exit "$rc"
