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
    /// The service refused the call for want of permission (S3 `AccessDenied`, DynamoDB
    /// `AccessDeniedException`, HTTP 403): neither an absent object nor worth a retry; the
    /// role's policy must change. `resource` may be empty (the message names it).
    #[error(
        "{service} {operation}{}: access denied ({message}); the role lacks a permission: check its policy in template.yaml{}",
        on_resource(.resource),
        access_hint(.service)
    )]
    AccessDenied {
        service: &'static str,
        operation: &'static str,
        resource: String,
        message: String,
    },
    /// A cloud service call failed after the SDK's retries, for a reason that may pass
    /// (throttling, a 5xx, a timeout, a failed connection).
    #[error("{service} {operation}: {message}")]
    Remote {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    /// A cloud service refused a call for a reason no retry can change: see [`Refusal`].
    #[error(
        "{service} {operation} refused the call ({code}): {message}; {}",
        .refusal.what_to_do()
    )]
    Refused {
        refusal: Refusal,
        service: &'static str,
        operation: &'static str,
        /// The service's error code (`-` when it gave none).
        code: String,
        message: String,
    },
    #[error("{0}")]
    Invariant(String),
}

impl Error {
    /// Stable error name for Step Functions `Retry`/`Catch` (`errorType` of the Lambda
    /// response): `Retryable` for transient IO and AWS failures (the only one the state
    /// machine retries), `InputMissing` for an object that is not there, `InvalidInput` for
    /// data or a request that cannot be used, `InvalidConfig` (also a bucket or table that
    /// does not exist), `InvariantViolated`, `AccessDenied` for a permission the role lacks
    /// (only a policy change helps), `Conflict` for a conditional write another writer won.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Io { .. } | Error::Remote { .. } | Error::Locked { .. } => "Retryable",
            Error::NotFound { .. } => "InputMissing",
            Error::NotRegularFile { .. } => "InvalidInput",
            Error::AccessDenied { .. } => "AccessDenied",
            Error::InvalidConfig { .. } => "InvalidConfig",
            Error::Refused { refusal, .. } => refusal.error_type(),
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

/// Why a cloud service refused a call that no retry can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The bucket, table, function or state machine the call names does not exist: the
    /// deployment's configuration is wrong (`InvalidConfig`).
    MissingResource,
    /// The request is invalid as sent: validation, a value beyond the service's limits
    /// (`InvalidInput`).
    Invalid,
    /// A condition of a write did not hold: another writer changed the item first
    /// (`Conflict`).
    Conflict,
}

impl Refusal {
    /// The stable name of [`Error::error_type`].
    pub fn error_type(self) -> &'static str {
        match self {
            Refusal::MissingResource => "InvalidConfig",
            Refusal::Invalid => "InvalidInput",
            Refusal::Conflict => "Conflict",
        }
    }

    fn what_to_do(self) -> &'static str {
        match self {
            Refusal::MissingResource => {
                "the resource does not exist: check the names in the function's environment (RECON_BUCKET, RECON_*_TABLE, RECON_NORMALIZER_FUNCTION) against the stack's resources"
            }
            Refusal::Invalid => "the request is invalid as sent; a retry would be refused again",
            Refusal::Conflict => {
                "a condition of the write did not hold: another writer changed it first; read it again before writing"
            }
        }
    }
}

/// ` on `{resource}`` when the resource is known.
fn on_resource(resource: &str) -> String {
    if resource.is_empty() {
        String::new()
    } else {
        format!(" on `{resource}`")
    }
}

/// What S3 reads need, beside an access denied by S3.
fn access_hint(service: &str) -> &'static str {
    if service == "s3" {
        " (reads need s3:GetObject on the key, and s3:ListBucket on the bucket so that a missing object reads as absent, not as denied)"
    } else {
        ""
    }
}
