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
