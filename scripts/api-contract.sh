#!/usr/bin/env bash
# Checks the query API against its contract, docs/openapi.yaml, with schemathesis:
#   scripts/api-contract.sh            # RECON_BIN, or ${CARGO_TARGET_DIR:-target}/debug/recon
# Installs the pinned schemathesis (PyPI) into a venv outside the clone on first use, generates a
# small world into a temporary directory and closes its days, serves it with `recon serve` on a
# free port of 127.0.0.1, and runs every check of schemathesis on every route of the document
# (fixed seed, bounded examples: a few minutes on 2 cores). Stops the server and removes the
# world when it ends, however it ends; exits non-zero when schemathesis found anything.
#   RECON_CONTRACT_SEED       the seed of the generated tests (default 1)
#   RECON_CONTRACT_EXAMPLES   test cases per operation and phase (default 800)
#   RECON_CONTRACT_WORKERS    concurrent schemathesis workers (default 2)
#   RECON_CONTRACT_REPORT     directory to keep the JUnit and JSON reports in (default: none)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV="${RECON_SCHEMATHESIS_VENV:-$HOME/.cache/recon-schemathesis-venv}"
RECON="${RECON_BIN:-${CARGO_TARGET_DIR:-target}/debug/recon}"
SEED="${RECON_CONTRACT_SEED:-1}"
EXAMPLES="${RECON_CONTRACT_EXAMPLES:-800}"
WORKERS="${RECON_CONTRACT_WORKERS:-2}"
SPEC=docs/openapi.yaml
DATE=2026-11-16
THROUGH=2026-11-18

if [[ ! -x "$RECON" ]]; then
  echo "api-contract: no recon binary at $RECON (build it, or set RECON_BIN)" >&2
  exit 2
fi

if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null \
   || [[ ! -x "$VENV/bin/schemathesis" ]]; then
  echo "api-contract: installing schemathesis==$SCHEMATHESIS_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work="$(mktemp -d -t recon-contract.XXXXXX)"
server_pid=""
stop() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# A small world of three business days, closed (3: finished, some parts need attention).
data="$work/data"
"$RECON" generate --out "$data" --date "$DATE" --days 3 --transactions 2000 --seed 7 >"$work/generate.log" 2>&1 || {
  echo "api-contract: recon generate failed; its log:" >&2
  cat "$work/generate.log" >&2
  exit 1
}
set +e
"$RECON" run --data "$data" --date "$DATE" --through "$THROUGH" >"$work/run.log" 2>&1
rc=$?
set -e
if [[ $rc -ne 0 && $rc -ne 3 ]]; then
  echo "api-contract: recon run failed ($rc); its log:" >&2
  cat "$work/run.log" >&2
  exit 1
fi

port="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$RECON" serve --data "$data" --port "$port" --actor contract-test >"$work/serve.log" 2>&1 &
server_pid=$!

# Ready when it answers (any status; 10 s at most).
if ! "$VENV/bin/python" - "$port" "$server_pid" <<'PY'
import os, sys, time, urllib.error, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/runs/2026-11-16"
for _ in range(100):
    try:
        os.kill(int(sys.argv[2]), 0)
    except OSError:
        sys.exit(1)
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
then
  echo "api-contract: recon serve did not start; its log:" >&2
  cat "$work/serve.log" >&2
  exit 1
fi
echo "api-contract: recon serve on 127.0.0.1:$port (pid $server_pid), schemathesis $SCHEMATHESIS_VERSION, seed $SEED, $EXAMPLES examples" >&2

# A cursor (`next`) is valid only as a page of the same query gave it: no schema can say which
# strings those are, and a made-up one is answered 400 `invalid_cursor`, as the document says.
# That answer is the contract, not a schema-valid request wrongly rejected; every other failure
# counts (an empty `next` must still be refused, a made-up one still answered with the error body).
cat >"$work/hooks.py" <<'PY'
import json

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return True
    if not (case.query or {}).get("next"):
        return True
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return True
    return code != "invalid_cursor"
PY

reports="$work/reports"
spec="$PWD/$SPEC"
start=$SECONDS
set +e
# From the temporary directory: schemathesis keeps a cache of past failures (`.schemathesis/`)
# in its working directory and replays it first; every run starts clean instead.
(cd "$work" && SCHEMATHESIS_HOOKS="$work/hooks.py" "$VENV/bin/schemathesis" run "$spec" \
  --url "http://127.0.0.1:$port" \
  --checks all \
  --continue-on-failure \
  --seed "$SEED" \
  --max-examples "$EXAMPLES" \
  --workers "$WORKERS" \
  --generation-database none \
  --request-timeout 10 \
  --no-color \
  --report junit,json --report-dir "$reports")
st_rc=$?
set -e
elapsed=$((SECONDS - start))

# A panic of a request's task closes its connection without an answer (a network error above).
if grep -q "panicked at" "$work/serve.log"; then
  echo "api-contract: recon serve panicked ($(grep -c "panicked at" "$work/serve.log") times); the first:" >&2
  grep -m1 -A1 "panicked at" "$work/serve.log" >&2
fi

if [[ -n "${RECON_CONTRACT_REPORT:-}" ]]; then
  mkdir -p "$RECON_CONTRACT_REPORT"
  cp -r "$reports/." "$RECON_CONTRACT_REPORT/" 2>/dev/null || true
fi

# One line: operations, test cases, failures, errors, time.
"$VENV/bin/python" - "$reports" "$st_rc" "$elapsed" "$SEED" "$EXAMPLES" <<'PY' || true
import json, pathlib, sys
reports, rc, elapsed, seed, examples = sys.argv[1:]
verdict = "PASS" if rc == "0" else f"FAIL (schemathesis exit {rc})"
try:
    r = json.loads(next(pathlib.Path(reports).glob("*.json")).read_text())
    ops, cases = r["operations"], r["test_cases"]
    failures = sum(f["count"] for f in r["failures"])
    detail = (
        f"{ops['tested']}/{ops['total']} operations, {cases['generated']} test cases, "
        f"{failures} failures, {len(r['errors'])} errors, {r.get('filtered', 0)} invalid_cursor answers accepted"
    )
except (StopIteration, OSError, ValueError, KeyError, TypeError):
    detail = "no report"
print(f"api-contract: {verdict}: {detail}; seed {seed}, {examples} examples, {elapsed} s")
PY
exit "$st_rc"
