//! Why a delivered record did not become canonical: the reject reasons, the reject record and
//! the field-level failure every reader and converter reports. A domain module below the
//! readers ([`crate::formats`]) and the source mappings ([`crate::source`]), so both use it
//! without importing each other.

use serde::{Deserialize, Serialize};

use crate::ids::SourceId;

/// Why a record was rejected. Stable codes: they are written into `curated/rejects/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    /// The row cannot be split into fields (wrong field count, bad quoting).
    MalformedRow,
    /// The record's bytes are not valid in the file's encoding.
    InvalidUtf8,
    /// A JSON Lines record is not a JSON object.
    InvalidJson,
    /// A required field is absent or empty (and the mapping gives no default).
    MissingField,
    /// An id is empty, too long or outside the id alphabet.
    InvalidId,
    /// The currency is not an ISO 4217 code.
    UnknownCurrency,
    /// The amount has more decimal places than the currency's minor unit.
    TooManyDecimals,
    /// The amount is not a number, or breaks the mapping's sign convention.
    InvalidAmount,
    /// The amount has too many digits or exceeds the largest storable amount.
    AmountOverflow,
    /// The date does not match the mapping's format or is not a calendar date.
    InvalidDate,
    /// A timestamp has no UTC offset where the mapping requires one.
    TimestampWithoutZone,
    /// The timestamp cannot be read.
    InvalidTimestamp,
    /// A coded field (status, type, direction …) holds a value outside its set.
    InvalidEnum,
    /// No FX rate of the business date converts the record into the settlement currency.
    FxRateMissing,
    /// A statement id delivered again with other content.
    DuplicateStatementId,
    /// A ledger transaction id delivered again with other content.
    DuplicateTransactionId,
    /// A JSON record names one key twice: which value the source meant is unknown.
    DuplicateKey,
}

impl RejectReason {
    /// The stable code written into `curated/rejects/` (`MISSING_FIELD`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedRow => "MALFORMED_ROW",
            Self::InvalidUtf8 => "INVALID_UTF8",
            Self::InvalidJson => "INVALID_JSON",
            Self::MissingField => "MISSING_FIELD",
            Self::InvalidId => "INVALID_ID",
            Self::UnknownCurrency => "UNKNOWN_CURRENCY",
            Self::TooManyDecimals => "TOO_MANY_DECIMALS",
            Self::InvalidAmount => "INVALID_AMOUNT",
            Self::AmountOverflow => "AMOUNT_OVERFLOW",
            Self::InvalidDate => "INVALID_DATE",
            Self::TimestampWithoutZone => "TIMESTAMP_WITHOUT_ZONE",
            Self::InvalidTimestamp => "INVALID_TIMESTAMP",
            Self::InvalidEnum => "INVALID_ENUM",
            Self::FxRateMissing => "FX_RATE_MISSING",
            Self::DuplicateStatementId => "DUPLICATE_STATEMENT_ID",
            Self::DuplicateTransactionId => "DUPLICATE_TRANSACTION_ID",
            Self::DuplicateKey => "DUPLICATE_KEY",
        }
    }
}

/// A record that could not become canonical, with where it came from and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The source that delivered the record.
    pub source_id: SourceId,
    /// The delivered file the record is in.
    pub file: String,
    /// 1-based record number within the file (header excluded).
    pub record: u64,
    /// The reason code.
    pub reason: RejectReason,
    /// Why, naming the field and the rule; never a PII field's value.
    pub detail: String,
    /// The record as delivered (lossy UTF-8), with PII fields masked (see `masked_raw`).
    pub raw: String,
}

/// One field-level failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The reject reason the failure gives its record.
    pub reason: RejectReason,
    /// What is wrong, naming the field and the rule; never a PII value.
    pub detail: String,
}

/// A field-level failure with its reason code.
pub fn ferr(reason: RejectReason, detail: impl Into<String>) -> FieldError {
    FieldError {
        reason,
        detail: detail.into(),
    }
}
