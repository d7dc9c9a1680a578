#!/usr/bin/env bash
# EMR bootstrap action of the reconcile cluster (docs/deploy.md, "The Spark job"): puts the
# recon kernel on every node and the job's pinned Python packages beside the cluster's PySpark.
#   Bootstrap action: s3://<artifacts>/emr/bootstrap.sh s3://<artifacts>/emr
# The cluster needs Spark >= 4.0 (the job's cogrouped applyInArrow) and its instance role the
# stack's SparkJobPolicy.
set -euo pipefail
artifacts="${1:?usage: bootstrap.sh s3://<artifacts>/emr}"
sudo aws s3 cp "$artifacts/recon" /usr/local/bin/recon
sudo chmod 0755 /usr/local/bin/recon
sudo python3 -m pip install --quiet --disable-pip-version-check -r /dev/stdin <<'REQ'
pyarrow==26.0.1
pandas==2.3.3
REQ
/usr/local/bin/recon --version
