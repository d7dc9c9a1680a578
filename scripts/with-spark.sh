#!/usr/bin/env bash
# Runs a command with a local Spark for the Spark job's tests (docs/spark.md):
#   scripts/with-spark.sh cargo nextest run --workspace
# Installs the pinned PySpark, pyarrow and pandas (infra/emr/requirements.txt) into a venv
# outside the clone on first use, and Java 17 from the system packages when no java is on the
# PATH; exports RECON_SPARK_SUBMIT (the local runner's spark-submit), PYSPARK_PYTHON and
# SPARK_LOCAL_IP=127.0.0.1 (Spark binds the loopback address only), then runs the command.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${RECON_SPARK_VENV:-$HOME/.cache/recon-spark-venv}"
REQ=infra/emr/requirements.txt

if ! command -v java >/dev/null 2>&1; then
  echo "with-spark: installing Java 17 (openjdk-17-jre-headless)" >&2
  apt-get update -q >/dev/null && apt-get install -y -q openjdk-17-jre-headless >/dev/null
fi
stamp="$VENV/.requirements"
if [[ ! -x "$VENV/bin/spark-submit" ]] || ! cmp -s "$REQ" "$stamp"; then
  echo "with-spark: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$stamp"
fi

export PATH="$VENV/bin:$PATH"
export PYSPARK_PYTHON="$VENV/bin/python"
export RECON_SPARK_SUBMIT="$VENV/bin/spark-submit"
export SPARK_LOCAL_IP=127.0.0.1
exec "$@"
