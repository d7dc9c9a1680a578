//! Source mappings (design.md §4): how one source's files map onto canonical fields.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::formats::text::Encoding;
use crate::ids::{BankId, SourceId};
use crate::money::Currency;
use crate::records::RecordType;

/// What a source delivers: the bank side or the ledger side of the reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Bank, network or aggregator statement lines.
    Statement,
    /// Internal system-of-record transactions extract.
    Transactions,
}

/// The file format of a source's deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Delimited text, one record a row; columns named by the mapping.
    Csv,
    /// JSON Lines, one object a record; keys named by the mapping.
    Jsonl,
    /// SWIFT MT940 customer statements (layout in `docs/deviations.md`).
    Mt940,
    /// ISO 20022 camt.053 bank-to-customer statements (layout in `docs/deviations.md`).
    Camt053,
}

impl SourceFormat {
    /// The name used in mappings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Mt940 => "mt940",
            Self::Camt053 => "camt053",
        }
    }

    /// Statement formats that carry their own field layout: a mapping names no columns, and
    /// their readers hand over values already normalized.
    pub fn has_fixed_layout(self) -> bool {
        matches!(self, Self::Mt940 | Self::Camt053)
    }
}

/// The unit a source's amounts are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountUnit {
    /// Decimal amounts in the currency's major unit (`12.34` EUR); the default.
    #[default]
    Major,
    /// Integers in the currency's minor unit (cents).
    Minor,
}

/// How a source's amounts say credit or debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignConvention {
    /// Amounts carry their sign: credits to the merchant positive.
    #[default]
    Signed,
    /// The source reports from its own side: the sign is flipped.
    Inverted,
    /// Unsigned amounts with a `direction` column: `C`/`CRDT` credit, `D`/`DBIT` debit.
    DebitCreditColumn,
}

/// How one source's files map onto canonical fields (`config/sources/{source_id}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceMapping {
    /// The source the mapping is for; must match the file name `{source_id}.json`.
    pub source_id: SourceId,
    /// Statements (bank side) or transactions (ledger side).
    pub kind: SourceKind,
    /// The format of the delivered files.
    pub format: SourceFormat,
    /// Field separator of CSV files (default `,`).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether CSV files start with a header row (default true).
    #[serde(default = "default_true")]
    pub header: bool,
    /// Decimal separator of amounts (default `.`; `,` for many European banks).
    #[serde(default = "default_decimal_separator")]
    pub decimal_separator: char,
    /// Major or minor units (default major).
    #[serde(default)]
    pub amount_unit: AmountUnit,
    /// How the sign of an amount is given (default signed).
    #[serde(default)]
    pub sign_convention: SignConvention,
    /// IANA zone of the source's local dates and zone-less timestamps.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// chrono format of the source's dates (default `%Y-%m-%d`).
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// `None`: RFC 3339 with an offset is required.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// Currency of records whose `currency` field is empty; without one such records are rejected.
    #[serde(default)]
    pub default_currency: Option<Currency>,
    /// The bank whose statements the source delivers; required for statement sources.
    #[serde(default)]
    pub bank_id: Option<BankId>,
    /// Currency the bank settles in; lines in another currency are converted with the FX table.
    #[serde(default)]
    pub settlement_currency: Option<Currency>,
    /// Canonical field -> source column (header name, JSON key, or 0-based index without header).
    pub columns: BTreeMap<String, String>,
    /// Character encoding of the files: `utf-8` (the default), `latin-1`, `windows-1252`.
    #[serde(default, skip_serializing_if = "Encoding::is_default")]
    pub encoding: Encoding,
    /// A bank's own transaction codes (camt.053 `BkTxCd/Prtry/Cd`, MT940 `/TYPE/`, a
    /// `record_type` column) -> record type, `null` for none; `"*"` maps every code not
    /// listed that is no record type. Codes that are record types need no entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub transaction_codes: BTreeMap<String, Option<RecordType>>,
}

fn default_delimiter() -> char {
    ','
}
fn default_true() -> bool {
    true
}
fn default_decimal_separator() -> char {
    '.'
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_date_format() -> String {
    "%Y-%m-%d".into()
}

/// Canonical fields of a statement line a mapping may name.
pub const STATEMENT_FIELDS: &[&str] = &[
    "statement_id",
    "transaction_id",
    "posting_date",
    "amount_posted",
    "currency",
    "fee_charged",
    "merchant_id",
    "reference",
    "record_type",
    "direction",
];
const STATEMENT_REQUIRED: &[&str] = &["statement_id", "posting_date", "amount_posted"];

/// Canonical fields of an internal transaction a mapping may name.
pub const TRANSACTION_FIELDS: &[&str] = &[
    "transaction_id",
    "merchant_id",
    "user_id",
    "amount",
    "currency",
    "status",
    "event_time",
    "payment_method",
    "original_transaction_id",
    "direction",
];
const TRANSACTION_REQUIRED: &[&str] = &[
    "transaction_id",
    "merchant_id",
    "user_id",
    "amount",
    "status",
    "event_time",
    "payment_method",
];

impl SourceMapping {
    /// Parses and validates a mapping document.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let m: SourceMapping = serde_json::from_slice(bytes).map_err(|e| Error::InvalidConfig {
            name: "source mapping".into(),
            reason: e.to_string(),
        })?;
        m.validate()?;
        Ok(m)
    }

    /// Parses and validates the mapping stored at `key` (`config/sources/{source_id}.json`):
    /// every problem names that file and what to do, and a mapping whose `source_id` is not
    /// its file name is refused (deliveries find their mapping by the name).
    pub fn from_file(key: &str, bytes: &[u8]) -> Result<Self> {
        const FIX: &str = "correct the mapping file; the source's deliveries and partitions fail until it is fixed, the other sources go on";
        let bad = |reason: String| Error::InvalidConfig {
            name: key.into(),
            reason: format!("{reason}; {FIX}"),
        };
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let m: SourceMapping = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let stem = key
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".json"))
            .unwrap_or(key);
        if m.source_id.as_str() != stem {
            return Err(bad(format!(
                "`source_id` is `{}`, the file is named for `{stem}`",
                m.source_id
            )));
        }
        m.validate().map_err(|e| match e {
            Error::InvalidConfig { reason, .. } => bad(reason),
            e => bad(e.to_string()),
        })?;
        Ok(m)
    }

    pub(crate) fn bad(&self, reason: impl Into<String>) -> Error {
        Error::InvalidConfig {
            name: crate::keys::source_config_key(self.source_id.as_str()),
            reason: reason.into(),
        }
    }

    /// Checks the mapping on its own (known and required fields, separators, zone, formats);
    /// the error names `config/sources/{source_id}.json`.
    pub fn validate(&self) -> Result<()> {
        if self.format.has_fixed_layout() {
            return self.validate_fixed_layout();
        }
        let (known, required) = self.fields();
        for k in self.columns.keys() {
            if !known.contains(&k.as_str()) {
                return Err(self.bad(format!("unknown canonical field `{k}`")));
            }
        }
        for r in required {
            if !self.columns.contains_key(*r) {
                return Err(self.bad(format!("required field `{r}` is not mapped")));
            }
        }
        if !self.columns.contains_key("currency") && self.default_currency.is_none() {
            return Err(self.bad("map `currency` or set `default_currency`"));
        }
        if self.kind == SourceKind::Statement && self.bank_id.is_none() {
            return Err(self.bad("statement sources need `bank_id`"));
        }
        if self.sign_convention == SignConvention::DebitCreditColumn
            && !self.columns.contains_key("direction")
        {
            return Err(self.bad("sign_convention debit_credit_column needs a `direction` column"));
        }
        if self.decimal_separator == self.delimiter && self.format == SourceFormat::Csv {
            return Err(self.bad("decimal_separator equals the delimiter"));
        }
        if !self.delimiter.is_ascii() {
            return Err(self.bad("delimiter must be one ASCII character"));
        }
        self.tz()?;
        if !self.header && self.format == SourceFormat::Csv {
            for (k, v) in &self.columns {
                if v.parse::<usize>().is_err() {
                    return Err(self.bad(format!(
                        "without a header, column of `{k}` must be a 0-based index"
                    )));
                }
            }
        }
        Ok(())
    }

    /// MT940 and camt.053: statements only, no columns, and an account currency to check the
    /// balances against.
    fn validate_fixed_layout(&self) -> Result<()> {
        let format = self.format.as_str();
        if self.kind != SourceKind::Statement {
            return Err(self.bad(format!(
                "{format} files hold statements: `kind` must be `statement`"
            )));
        }
        if !self.columns.is_empty() {
            return Err(self.bad(format!(
                "{format} files have a fixed layout: leave `columns` empty"
            )));
        }
        if self.bank_id.is_none() {
            return Err(self.bad("statement sources need `bank_id`"));
        }
        if self.settlement_currency.is_none() {
            return Err(self.bad(format!(
                "{format} sources need `settlement_currency`, the account currency their balances are checked against"
            )));
        }
        self.tz()?;
        Ok(())
    }

    pub(crate) fn fields(&self) -> (&'static [&'static str], &'static [&'static str]) {
        match self.kind {
            SourceKind::Statement => (STATEMENT_FIELDS, STATEMENT_REQUIRED),
            SourceKind::Transactions => (TRANSACTION_FIELDS, TRANSACTION_REQUIRED),
        }
    }

    /// The mapping's time zone, parsed; refused when not an IANA zone name.
    pub fn tz(&self) -> Result<Tz> {
        self.timezone
            .parse::<Tz>()
            .map_err(|_| self.bad(format!("unknown IANA time zone `{}`", self.timezone)))
    }
}
