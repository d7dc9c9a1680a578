//! The one error type of the domain core.
//!
//! Messages are lowercase and say what to do or where to look. Variants carry the context a
//! person needs (which file, which line, which field), never a payload with PII.

use std::path::PathBuf;

/// `Result` with the crate's [`Error`] as default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid {kind} `{value}`: {reason}")]
    InvalidId {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("unknown ISO 4217 currency `{0}`")]
    UnknownCurrency(String),
    #[error("invalid date `{value}`: {reason}")]
    InvalidDate { value: String, reason: String },
    #[error("invalid amount `{value}`: {reason}")]
    InvalidAmount { value: String, reason: String },
    #[error("invalid {field} `{value}`: expected one of {expected}")]
    InvalidEnum {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("no FX rate {base}->{quote} for {date}")]
    FxRateMissing {
        base: String,
        quote: String,
        date: String,
    },
    #[error("currency mismatch: {left} vs {right}")]
    CurrencyMismatch { left: String, right: String },
    #[error("invalid config `{name}`: {reason}")]
    InvalidConfig { name: String, reason: String },
    #[error("invalid manifest `{key}`: {reason}")]
    InvalidManifest { key: String, reason: String },
    #[error("file `{file}` cannot be read: {reason}")]
    InvalidFile { file: String, reason: String },
    #[error("column `{column}` of {table}: {reason}")]
    Schema {
        table: &'static str,
        column: String,
        reason: String,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("io on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("object `{key}` not found")]
    NotFound { key: String },
    /// A cloud service call failed after the SDK's retries.
    #[error("{service} {operation}: {message}")]
    Remote {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    #[error("{0}")]
    Invariant(String),
}

impl Error {
    /// Stable error name for Step Functions `Retry`/`Catch` (`errorType` of the Lambda
    /// response): `Retryable` for transient IO, `InputMissing` for an object that is not
    /// there, `InvalidInput` for data that cannot be used, `InvalidConfig`, `InvariantViolated`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Io { .. } | Error::Remote { .. } => "Retryable",
            Error::NotFound { .. } => "InputMissing",
            Error::InvalidConfig { .. } => "InvalidConfig",
            Error::Invariant(_) => "InvariantViolated",
            _ => "InvalidInput",
        }
    }

    /// Wraps an IO error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
