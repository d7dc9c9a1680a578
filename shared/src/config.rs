//! Configuration keys read by the Lambda functions. Every key is a documented constant; a
//! missing one fails start-up naming the key.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Directory that acts as the bucket and holds the local tables (`state/`). Set it to run a
/// function binary against local storage (`cargo lambda watch`, the local runner).
pub const DATA_DIR_ENV: &str = "RECON_DATA_DIR";

/// Reads a required environment variable.
pub fn required(key: &str) -> Result<String> {
    std::env::var(key).map_err(|_| Error::InvalidConfig {
        name: key.to_string(),
        reason: "required environment variable is not set".into(),
    })
}

/// The local data directory from [`DATA_DIR_ENV`].
pub fn data_dir() -> Result<PathBuf> {
    required(DATA_DIR_ENV).map(PathBuf::from)
}

/// Largest partition input (bytes) `plan-partitions` routes to Lambda; larger ones take the
/// EMR step. Optional; default [`crate::close::plan::DEFAULT_LAMBDA_MAX_INPUT_BYTES`].
pub const LAMBDA_MAX_INPUT_BYTES_ENV: &str = "RECON_LAMBDA_MAX_INPUT_BYTES";

// Keys `template.yaml` sets on every function (the AWS adapters read them; the local runner
// does not need them). `scripts/check_infra.py` fails when the template sets a `RECON_*` key
// that is not declared here or beside the code that reads it.

/// Name of the deployment (`dev`, `prod`): the `Environment` dimension of the EMF metrics.
pub const ENVIRONMENT_ENV: &str = "RECON_ENVIRONMENT";

/// The bucket of DESIGN §2 (`landing/`, `curated/`, `index/`, `runs/` …).
pub const BUCKET_ENV: &str = "RECON_BUCKET";

/// DynamoDB table names (DESIGN §7).
pub const TRANSACTION_INDEX_TABLE_ENV: &str = "RECON_TRANSACTION_INDEX_TABLE";
pub const MANIFESTS_TABLE_ENV: &str = "RECON_MANIFESTS_TABLE";
pub const RUNS_TABLE_ENV: &str = "RECON_RUNS_TABLE";
pub const RULES_TABLE_ENV: &str = "RECON_RULES_TABLE";

/// Function `manifest-validator` invokes asynchronously (`InvocationType=Event`) with each
/// `NormalizeRequest`; failures after Lambda's retries land in the normalizer's on-failure
/// queue. Set on `manifest-validator` only.
pub const NORMALIZER_FUNCTION_ENV: &str = "RECON_NORMALIZER_FUNCTION";

// AWS adapters (feature `aws`; `crate::aws`).

/// Endpoint of every AWS service the adapters call, for a local server (moto in the tests,
/// LocalStack). Optional; unset on AWS, where the SDK resolves the regional endpoints.
pub const AWS_ENDPOINT_URL_ENV: &str = "RECON_AWS_ENDPOINT_URL";

/// Attempts per AWS call in the SDK's standard retry mode (first try included), 1 to 20.
/// Optional; default [`crate::aws::DEFAULT_MAX_ATTEMPTS`] when built with the `aws` feature.
pub const AWS_MAX_ATTEMPTS_ENV: &str = "RECON_AWS_MAX_ATTEMPTS";

/// Objects larger than this many bytes are uploaded to S3 in parts. Optional; default
/// 64 MiB.
pub const S3_MULTIPART_THRESHOLD_ENV: &str = "RECON_S3_MULTIPART_THRESHOLD";

/// Size of one multipart upload part in bytes (S3 needs at least 5 MiB but for the last
/// part). Optional; default 16 MiB.
pub const S3_PART_SIZE_ENV: &str = "RECON_S3_PART_SIZE";

/// ARN of the daily close state machine, for `recon ops` (not set on the functions).
pub const DAILY_CLOSE_ARN_ENV: &str = "RECON_DAILY_CLOSE_ARN";

/// Optional value of an environment variable parsed as a number; a set but unreadable value
/// fails naming the key.
pub fn optional_u64(key: &str) -> Result<Option<u64>> {
    match std::env::var(key) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::InvalidConfig {
                name: key.to_string(),
                reason: "expected a whole number".into(),
            }),
        Err(_) => Ok(None),
    }
}
