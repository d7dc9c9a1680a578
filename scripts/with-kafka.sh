#!/usr/bin/env bash
# Runs a command beside a Kafka-protocol broker on 127.0.0.1, for `recon publish` / `recon
# stream` and their tests (docs/kafka.md):
#   scripts/with-kafka.sh cargo nextest run --workspace --all-features
# Installs the pinned tansu broker (crates.io, `--features dynostore`) outside the clone on
# first use (a build of some 20 minutes on two cores; later runs reuse it), starts it on a free
# port with in-memory storage, exports RECON_TEST_KAFKA_BROKERS (its HOST:PORT) and
# RECON_TEST_TANSU (the binary: each Kafka test starts a broker of its own, so tests running in
# parallel never share topics), runs the command, and stops the broker when the command ends,
# however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
ROOT="${RECON_TANSU_ROOT:-$HOME/.cache/recon-tansu-$TANSU_VERSION}"
TANSU="$ROOT/bin/tansu"

if [[ ! -x "$TANSU" ]]; then
  echo "with-kafka: installing tansu $TANSU_VERSION (cargo install, --features dynostore) into $ROOT" >&2
  build="$(mktemp -d -t recon-tansu-build.XXXXXX)"
  # Its own target directory: the project's (CARGO_TARGET_DIR) stays the project's.
  env -u CARGO_TARGET_DIR cargo install tansu --version "$TANSU_VERSION" --features dynostore \
    --locked --root "$ROOT" --target-dir "$build" --quiet
  rm -rf "$build"
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
log="$(mktemp -t recon-tansu.XXXXXX)"
"$TANSU" broker \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine "memory://tansu/" >"$log" 2>&1 &
broker_pid=$!
stop() {
  kill "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
  rm -f "$log"
}
trap stop EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Ready when it accepts a connection (10 s at most).
if ! python3 - "$port" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
then
  echo "with-kafka: tansu did not start; its log:" >&2
  cat "$log" >&2
  exit 1
fi
echo "with-kafka: tansu $TANSU_VERSION on 127.0.0.1:$port (pid $broker_pid)" >&2

export RECON_TEST_KAFKA_BROKERS="127.0.0.1:$port"
export RECON_TEST_TANSU="$TANSU"
# The broker's process, for a bench that counts its CPU too.
export RECON_TEST_KAFKA_PID="$broker_pid"
set +e
"$@"
rc=$?
set -e
exit "$rc"
