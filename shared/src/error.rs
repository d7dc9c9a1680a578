//! The one error type of the domain core.
//!
//! Messages are lowercase and say what to do or where to look. Variants carry the context a
//! person needs (which file, which line, which field), never a payload with PII.

use std::path::PathBuf;

/// `Result` with the crate's [`Error`] as default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure of the domain core and its adapters; [`Error::error_type`] gives the stable
/// name the state machine retries or catches on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value is not a valid id of its kind (see [`crate::ids`]).
    #[error("invalid {kind} `{value}`: {reason}")]
    InvalidId {
        /// The kind of id (`transaction_id`, `bank_id`, `cursor` …).
        kind: &'static str,
        /// The value, cut to the longest id accepted.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A currency code that is not in ISO 4217.
    #[error("unknown ISO 4217 currency `{0}`")]
    UnknownCurrency(String),
    /// A date that is not `YYYY-MM-DD`, not a calendar date, or out of range.
    #[error("invalid date `{value}`: {reason}")]
    InvalidDate {
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An amount, rate or score that cannot be used (not a number, too many decimals or
    /// digits, out of range).
    #[error("invalid amount `{value}`: {reason}")]
    InvalidAmount {
        /// The text or value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A coded field holds a value outside its set.
    #[error("invalid {field} `{value}`: expected one of {expected}")]
    InvalidEnum {
        /// The field.
        field: &'static str,
        /// The value given, cut short.
        value: String,
        /// The accepted codes, space-separated.
        expected: &'static str,
    },
    /// The day's FX table has no rate for a conversion that is needed.
    #[error("no FX rate {base}->{quote} for {date}")]
    FxRateMissing {
        /// The currency converted from.
        base: String,
        /// The currency converted into.
        quote: String,
        /// The business date of the FX table.
        date: String,
    },
    /// Two amounts of different currencies were combined.
    #[error("currency mismatch: {left} vs {right}")]
    CurrencyMismatch {
        /// The first amount's currency.
        left: String,
        /// The second amount's currency.
        right: String,
    },
    /// A setting, configuration file or mapping cannot be used.
    #[error("invalid config `{name}`: {reason}")]
    InvalidConfig {
        /// The environment key or the configuration file's key.
        name: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A delivery manifest cannot be used.
    #[error("invalid manifest `{key}`: {reason}")]
    InvalidManifest {
        /// The manifest's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A delivered file fails as a whole (structure, balances, encoding).
    #[error("file `{file}` cannot be read: {reason}")]
    InvalidFile {
        /// The file's name.
        file: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// A Parquet/Arrow table does not have the expected column or cell.
    #[error("column `{column}` of {table}: {reason}")]
    Schema {
        /// The table.
        table: &'static str,
        /// The column.
        column: String,
        /// What is wrong (missing, wrong type, null at a row).
        reason: String,
    },
    /// An Arrow error.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A Parquet read or write error.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A JSON encoding or decoding error.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A CSV reading error.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// A local file system operation failed.
    #[error("io on {path}: {source}")]
    Io {
        /// The path operated on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No object at the key.
    #[error("object `{key}` not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The local bucket holds something at this key that is not a regular file inside it (a
    /// symbolic link, a FIFO, a device, a socket, a directory): it is never followed or opened.
    #[error(
        "object `{key}` is {what}, not a regular file: the local bucket reads only regular files inside its directory (replace it with the file itself)"
    )]
    NotRegularFile {
        /// The key asked for.
        key: String,
        /// What is there instead (`a symbolic link`, `a directory` …).
        what: &'static str,
    },
    /// Another process holds the lock of a local store that takes one writer.
    #[error(
        "{what} is in use by another process{}: another `recon` run (or stream feed, or serve) is writing this data directory; wait for it to finish, then run again (lock file {})",
        .holder.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        .path.display()
    )]
    Locked {
        /// The store that is locked.
        what: &'static str,
        /// The lock file.
        path: PathBuf,
        /// The process id of the holder, when the lock file names it.
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
        /// The AWS service (`S3`, `DynamoDB` …).
        service: &'static str,
        /// The API operation called.
        operation: &'static str,
        /// The bucket, key or table the call was about.
        resource: String,
        /// The service's message.
        message: String,
    },
    /// A cloud service call failed after the SDK's retries, for a reason that may pass
    /// (throttling, a 5xx, a timeout, a failed connection).
    #[error("{service} {operation}: {message}")]
    Remote {
        /// The AWS service.
        service: &'static str,
        /// The API operation called.
        operation: &'static str,
        /// The last failure's message.
        message: String,
    },
    /// A cloud service refused a call for a reason no retry can change: see [`Refusal`].
    #[error(
        "{service} {operation} refused the call ({code}): {message}; {}",
        .refusal.what_to_do()
    )]
    Refused {
        /// The kind of refusal, which decides the error type.
        refusal: Refusal,
        /// The AWS service.
        service: &'static str,
        /// The API operation called.
        operation: &'static str,
        /// The service's error code (`-` when it gave none).
        code: String,
        /// The service's message.
        message: String,
    },
    /// A rule the code relies on does not hold (counts that do not add up, a store out of
    /// step): a bug or corrupted state, not bad input.
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
