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
    /// The local bucket holds something at this key that is not a regular file inside it (a
    /// symbolic link, a FIFO, a device, a socket, a directory): it is never followed or opened.
    #[error(
        "object `{key}` is {what}, not a regular file: the local bucket reads only regular files inside its directory (replace it with the file itself)"
    )]
    NotRegularFile { key: String, what: &'static str },
    /// Another process holds the lock of a local store that takes one writer.
    #[error(
        "{what} is in use by another process{}: another `recon` run (or stream feed, or serve) is writing this data directory; wait for it to finish, then run again (lock file {})",
        .holder.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        .path.display()
    )]
    Locked {
        what: &'static str,
        path: PathBuf,
        holder: Option<u32>,
    },
    /// The service refused the call for want of permission (S3 `AccessDenied`, HTTP 403):
    /// neither an absent object nor worth a retry; the role's policy must change.
    #[error(
        "{service} {operation} on `{resource}`: access denied ({message}); the role lacks a permission: check its policy in template.yaml (reads need s3:GetObject on the key, and s3:ListBucket on the bucket so that a missing object reads as absent, not as denied)"
    )]
    AccessDenied {
        service: &'static str,
        operation: &'static str,
        resource: String,
        message: String,
    },
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
    /// there, `InvalidInput` for data that cannot be used, `InvalidConfig`, `InvariantViolated`,
    /// `AccessDenied` for a permission the role lacks (not retried: only a policy change helps).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Io { .. } | Error::Remote { .. } | Error::Locked { .. } => "Retryable",
            Error::NotFound { .. } => "InputMissing",
            Error::NotRegularFile { .. } => "InvalidInput",
            Error::AccessDenied { .. } => "AccessDenied",
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
