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
