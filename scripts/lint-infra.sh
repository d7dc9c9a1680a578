#!/usr/bin/env bash
# Lints the infrastructure as a test (`make lint-infra`, part of `make test`):
#   (a) cfn-lint on template.yaml (SAM transform included) and its nested stacks in infra/,
#       errors fail;
#   (b) asl-validator on every statemachines/*.asl.json with its placeholders replaced by dummy
#       ARNs, and on the template's inline close launcher, whose business-date expression is
#       also evaluated on a few scheduled times;
#   (c) scripts/check_infra.py: every functions/* crate is a function of the template, every
#       ${Name} of an ASL file has a DefinitionSubstitutions entry, env keys exist in the code,
#       IAM policies name no wildcard action, roles that read S3 may list the bucket (no
#       prefix condition: a missing object reads NoSuchKey), the query API routes match docs/openapi.yaml,
#       every events/ file is loaded by a test.
# Tools are installed once, pinned, outside the clone (PyPI and the npm registry only); when
# they are there already this takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT_VERSION=1.58.0
ASL_VALIDATOR_VERSION=4.0.0
VENV="${RECON_VENV:-$HOME/.cache/recon-venv}"
NODE_DIR="${RECON_NODE_DIR:-$HOME/.cache/recon-node}"

# --- tools ---------------------------------------------------------------------------------
if [[ "$("$VENV/bin/cfn-lint" --version 2>/dev/null || true)" != "cfn-lint $CFN_LINT_VERSION" ]]; then
  echo "lint-infra: installing cfn-lint $CFN_LINT_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
fi
installed_asl="$(node -p "require('$NODE_DIR/node_modules/asl-validator/package.json').version" 2>/dev/null || true)"
if [[ "$installed_asl" != "$ASL_VALIDATOR_VERSION" ]]; then
  echo "lint-infra: installing asl-validator $ASL_VALIDATOR_VERSION into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent "asl-validator@$ASL_VALIDATOR_VERSION"
fi
ASL_VALIDATOR="$NODE_DIR/node_modules/.bin/asl-validator"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
pass() { echo "lint-infra: ok   $*"; passed=$((passed + 1)); }
fail() { echo "lint-infra: FAIL $*"; failed=$((failed + 1)); }

# --- (a) cfn-lint --------------------------------------------------------------------------
# Exit status is a bit mask: 2 errors, 4 warnings, 8 informational. Errors and warnings fail.
set +e
for tpl in template.yaml infra/*.yaml; do
  "$VENV/bin/cfn-lint" --format parseable -- "$tpl" >"$tmp/cfn-lint.txt"
  rc=$?
  if (( rc & 2 )) || (( rc & 4 )) || (( rc & 1 )); then
    cat "$tmp/cfn-lint.txt"
    fail "cfn-lint $tpl (exit $rc)"
  else
    [[ -s "$tmp/cfn-lint.txt" ]] && cat "$tmp/cfn-lint.txt"
    pass "cfn-lint $CFN_LINT_VERSION $tpl"
  fi
done
set -e

# --- (b) state machines --------------------------------------------------------------------
# Dummy values for every placeholder: ARNs for *Arn, an EMR cluster id for *ClusterId.
for asl in statemachines/*.asl.json; do
  out="$tmp/$(basename "$asl")"
  "$VENV/bin/python" - "$asl" "$out" <<'PY'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src, encoding="utf-8").read()
def dummy(m):
    name = m.group(1)
    if name.endswith("FunctionArn"):
        fn = re.sub(r"(?<!^)(?=[A-Z])", "-", name[: -len("FunctionArn")]).lower()
        return f"arn:aws:lambda:eu-central-1:123456789012:function:recon-lint-{fn}"
    if name.endswith("ClusterId"):
        return "j-LINTCLUSTER01"
    if name.endswith("Arn"):
        return "arn:aws:states:eu-central-1:123456789012:stateMachine:recon-lint"
    return "recon-lint"
open(dst, "w", encoding="utf-8").write(re.sub(r"\$\{([A-Za-z0-9_]+)\}", dummy, text))
PY
  if "$ASL_VALIDATOR" --json-path "$out" >"$tmp/asl.txt" 2>&1; then
    pass "asl-validator $ASL_VALIDATOR_VERSION $asl"
  else
    cat "$tmp/asl.txt"
    fail "asl-validator $asl"
  fi
done

# The inline launcher of template.yaml (JSONata), extracted with cfn-lint's template decoder.
"$VENV/bin/python" - "$tmp/close-launcher.json" <<'PY'
import json, sys
from cfnlint.decode import decode
tpl, errors = decode("template.yaml")
if errors:
    sys.exit(f"template.yaml does not parse: {errors}")
definition = tpl["Resources"]["CloseLauncherStateMachine"]["Properties"]["Definition"]
text = json.dumps(definition).replace(
    "${DailyCloseArn}", "arn:aws:states:eu-central-1:123456789012:stateMachine:recon-lint-daily-close")
open(sys.argv[1], "w").write(text)
PY
if "$ASL_VALIDATOR" --json-path "$tmp/close-launcher.json" >"$tmp/asl.txt" 2>&1; then
  pass "asl-validator template.yaml CloseLauncherStateMachine"
else
  cat "$tmp/asl.txt"
  fail "asl-validator template.yaml CloseLauncherStateMachine"
fi
if NODE_PATH="$NODE_DIR/node_modules" node scripts/check_launcher.js "$tmp/close-launcher.json"; then
  pass "close launcher: business date and execution name"
else
  fail "close launcher: business date and execution name"
fi

# --- (c) consistency -----------------------------------------------------------------------
if "$VENV/bin/python" scripts/check_infra.py; then
  pass "functions, substitutions, env keys, IAM actions, routes, events"
else
  fail "scripts/check_infra.py"
fi

# The plain closing line CI reads.
echo "lint-infra: $passed passed, $failed failed"
(( failed == 0 ))
