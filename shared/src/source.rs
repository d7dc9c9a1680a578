//! Source mappings (DESIGN §4) and the row-level turning of delivered files into canonical
//! records. Every input record ends up accepted or rejected with a reason code and its raw
//! text: `records_in == accepted + rejected` is checked before a result is returned.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::formats;
use crate::ids::{BankId, BusinessDate, MerchantId, SourceId, StatementId, TransactionId, UserId};
use crate::money::{self, Currency, FxTable, parse_decimal};
use crate::records::{StatementLine, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Bank, network or aggregator statement lines.
    Statement,
    /// Internal system-of-record transactions extract.
    Transactions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    Csv,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountUnit {
    #[default]
    Major,
    /// Integers in the currency's minor unit (cents).
    Minor,
}

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
    pub source_id: SourceId,
    pub kind: SourceKind,
    pub format: SourceFormat,
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    #[serde(default = "default_true")]
    pub header: bool,
    #[serde(default = "default_decimal_separator")]
    pub decimal_separator: char,
    #[serde(default)]
    pub amount_unit: AmountUnit,
    #[serde(default)]
    pub sign_convention: SignConvention,
    /// IANA zone of the source's local dates and zone-less timestamps.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// `None`: RFC 3339 with an offset is required.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    #[serde(default)]
    pub default_currency: Option<Currency>,
    #[serde(default)]
    pub bank_id: Option<BankId>,
    /// Currency the bank settles in; lines in another currency are converted with the FX table.
    #[serde(default)]
    pub settlement_currency: Option<Currency>,
    /// Canonical field -> source column (header name, JSON key, or 0-based index without header).
    pub columns: BTreeMap<String, String>,
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

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::InvalidConfig {
            name: crate::keys::source_config_key(self.source_id.as_str()),
            reason: reason.into(),
        }
    }

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

    /// The settings the converters apply. MT940 and camt.053 readers hand over ISO dates and
    /// signed major-unit amounts with a `.`, whatever the mapping says about CSV-style settings.
    fn effective(&self) -> Cow<'_, SourceMapping> {
        if !self.format.has_fixed_layout() {
            return Cow::Borrowed(self);
        }
        let mut m = self.clone();
        m.decimal_separator = '.';
        m.amount_unit = AmountUnit::Major;
        m.sign_convention = SignConvention::Signed;
        m.date_format = default_date_format();
        Cow::Owned(m)
    }

    fn fields(&self) -> (&'static [&'static str], &'static [&'static str]) {
        match self.kind {
            SourceKind::Statement => (STATEMENT_FIELDS, STATEMENT_REQUIRED),
            SourceKind::Transactions => (TRANSACTION_FIELDS, TRANSACTION_REQUIRED),
        }
    }

    pub fn tz(&self) -> Result<Tz> {
        self.timezone
            .parse::<Tz>()
            .map_err(|_| self.bad(format!("unknown IANA time zone `{}`", self.timezone)))
    }
}

/// Why a record was rejected. Stable codes: they are written into `curated/rejects/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    MalformedRow,
    InvalidUtf8,
    InvalidJson,
    MissingField,
    InvalidId,
    UnknownCurrency,
    TooManyDecimals,
    InvalidAmount,
    AmountOverflow,
    InvalidDate,
    TimestampWithoutZone,
    InvalidTimestamp,
    InvalidEnum,
    FxRateMissing,
    DuplicateStatementId,
    /// A ledger transaction id delivered again with other content.
    DuplicateTransactionId,
    /// A JSON record names one key twice: which value the source meant is unknown.
    DuplicateKey,
}

impl RejectReason {
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
    pub source_id: SourceId,
    pub file: String,
    /// 1-based record number within the file (header excluded).
    pub record: u64,
    pub reason: RejectReason,
    /// Why, naming the field and the rule; never a PII field's value.
    pub detail: String,
    /// The record as delivered (lossy UTF-8), with PII fields masked (see `masked_raw`).
    pub raw: String,
}

/// One field-level failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub reason: RejectReason,
    pub detail: String,
}

pub(crate) fn ferr(reason: RejectReason, detail: impl Into<String>) -> FieldError {
    FieldError {
        reason,
        detail: detail.into(),
    }
}

/// Accepted records of one file, with their 1-based record numbers, and the rejects.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    pub records: Vec<(u64, T)>,
    pub rejects: Vec<Reject>,
    pub records_in: u64,
}

/// What a parser needs besides the bytes.
pub struct ParseContext<'a> {
    pub mapping: &'a SourceMapping,
    pub fx: &'a FxTable,
    /// The delivery's business date (FX table date).
    pub business_date: BusinessDate,
    pub file: &'a str,
}

/// One record's canonical fields, indexed like the kind's field list.
pub(crate) struct Fields<'a> {
    pub(crate) values: Vec<Option<Cow<'a, str>>>,
    pub(crate) names: &'static [&'static str],
    /// The whole record as parsed, for a reject's masked `raw`.
    pub(crate) whole: Whole<'a>,
}

/// A parsed record with every field it holds, mapped or not.
pub(crate) enum Whole<'a> {
    /// An MT940 or camt.053 entry (statements): kept as its text.
    Entry,
    /// A CSV record and the column of each canonical field.
    Csv {
        record: &'a csv::ByteRecord,
        columns: &'a [Option<usize>],
        delimiter: u8,
    },
    /// A JSON object and the mapping's column (path) of each canonical field.
    Json {
        object: &'a crate::exact_json::Object<'a>,
        columns: &'a [Option<&'a str>],
    },
}

/// Canonical fields that hold personal data: a reject masks their values in `raw` and never
/// quotes them in `detail`. Statement lines have none (banks do not see our users' ids).
pub const PII_FIELDS: &[&str] = &["user_id"];

/// What a reject's `raw` shows in place of a masked value.
pub const MASK: &str = "***";

impl<'a> Fields<'a> {
    fn opt(&self, name: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.values[i]
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    fn req(&self, name: &str) -> std::result::Result<&str, FieldError> {
        self.opt(name).ok_or_else(|| {
            ferr(
                RejectReason::MissingField,
                format!("`{name}` is empty or missing"),
            )
        })
    }
}

fn id<T: std::str::FromStr<Err = Error>>(v: &str) -> std::result::Result<T, FieldError> {
    v.parse()
        .map_err(|e: Error| ferr(RejectReason::InvalidId, e.to_string()))
}

fn currency(v: &str) -> std::result::Result<Currency, FieldError> {
    Currency::new(v).map_err(|e| ferr(RejectReason::UnknownCurrency, e.to_string()))
}

fn enum_value<T: std::str::FromStr<Err = Error>>(v: &str) -> std::result::Result<T, FieldError> {
    v.parse()
        .map_err(|e: Error| ferr(RejectReason::InvalidEnum, e.to_string()))
}

/// Parses an amount per the mapping, exact at the currency's minor unit.
fn amount(m: &SourceMapping, raw: &str, cur: Currency) -> std::result::Result<Decimal, FieldError> {
    let value = match m.amount_unit {
        AmountUnit::Minor => {
            let t = raw.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ferr(
                    RejectReason::InvalidAmount,
                    format!("`{t}` is not an integer amount in minor units"),
                ));
            }
            if digits.len() > 18 {
                return Err(ferr(
                    RejectReason::AmountOverflow,
                    format!("`{t}` has too many digits"),
                ));
            }
            let minor: i64 = t
                .parse()
                .map_err(|_| ferr(RejectReason::AmountOverflow, format!("`{t}` overflows")))?;
            cur.from_minor(minor)
        }
        AmountUnit::Major => {
            let d = parse_decimal(raw, m.decimal_separator).map_err(|e| {
                let reason = match &e {
                    Error::InvalidAmount { reason, .. } if reason == money::TOO_MANY_DIGITS => {
                        RejectReason::AmountOverflow
                    }
                    Error::InvalidAmount { reason, .. }
                        if reason == money::TOO_MANY_DECIMAL_PLACES =>
                    {
                        RejectReason::TooManyDecimals
                    }
                    _ => RejectReason::InvalidAmount,
                };
                ferr(reason, e.to_string())
            })?;
            cur.exact(d)
                .map_err(|e| ferr(RejectReason::TooManyDecimals, e.to_string()))?
        }
    };
    if !money::within_amount_limit(value) {
        return Err(ferr(
            RejectReason::AmountOverflow,
            format!("{value} exceeds the largest storable amount"),
        ));
    }
    Ok(value)
}

fn apply_sign(
    m: &SourceMapping,
    value: Decimal,
    f: &Fields<'_>,
) -> std::result::Result<Decimal, FieldError> {
    match m.sign_convention {
        SignConvention::Signed => Ok(value),
        SignConvention::Inverted => Ok(-value),
        SignConvention::DebitCreditColumn => {
            if value.is_sign_negative() && !value.is_zero() {
                return Err(ferr(
                    RejectReason::InvalidAmount,
                    "amount must be unsigned with a direction column",
                ));
            }
            match f.req("direction")?.to_ascii_uppercase().as_str() {
                "C" | "CR" | "CRDT" => Ok(value),
                "D" | "DR" | "DBIT" => Ok(-value),
                other => Err(ferr(
                    RejectReason::InvalidEnum,
                    format!("direction `{other}` is not C/CRDT or D/DBIT"),
                )),
            }
        }
    }
}

/// A date field: a calendar date in the mapping's format, or a timestamp whose local date in
/// the source's zone is taken.
fn local_date(m: &SourceMapping, tz: Tz, raw: &str) -> std::result::Result<NaiveDate, FieldError> {
    let t = raw.trim();
    if m.date_format == "%Y-%m-%d" && t.len() == 10 {
        return BusinessDate::parse(t)
            .map(BusinessDate::date)
            .map_err(|e| ferr(RejectReason::InvalidDate, e.to_string()));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, &m.date_format) {
        return BusinessDate::from_date(d)
            .map(BusinessDate::date)
            .map_err(|e| ferr(RejectReason::InvalidDate, e.to_string()));
    }
    if t.len() > 10 {
        let ts = timestamp(m, tz, t).map_err(|e| ferr(RejectReason::InvalidDate, e.detail))?;
        return Ok(ts.with_timezone(&tz).date_naive());
    }
    Err(ferr(
        RejectReason::InvalidDate,
        format!("`{t}` is not a date in format {}", m.date_format),
    ))
}

/// A timestamp field in UTC. Without `timestamp_format`, RFC 3339 with an offset is required;
/// with a zone-less format the source's time zone applies (earliest instant when ambiguous).
fn timestamp(
    m: &SourceMapping,
    tz: Tz,
    raw: &str,
) -> std::result::Result<DateTime<Utc>, FieldError> {
    let t = raw.trim();
    match &m.timestamp_format {
        None => DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                if NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
                    || NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").is_ok()
                {
                    ferr(
                        RejectReason::TimestampWithoutZone,
                        format!("`{t}` has no UTC offset"),
                    )
                } else {
                    ferr(
                        RejectReason::InvalidTimestamp,
                        format!("`{t}` is not an RFC 3339 timestamp"),
                    )
                }
            }),
        Some(fmt) if fmt.contains("%z") || fmt.contains("%:z") || fmt.contains("%#z") => {
            DateTime::parse_from_str(t, fmt)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    if NaiveDateTime::parse_from_str(
                        t,
                        &fmt.replace("%:z", "").replace("%#z", "").replace("%z", ""),
                    )
                    .is_ok()
                    {
                        ferr(
                            RejectReason::TimestampWithoutZone,
                            format!("`{t}` has no UTC offset"),
                        )
                    } else {
                        ferr(
                            RejectReason::InvalidTimestamp,
                            format!("`{t}` does not match {fmt}"),
                        )
                    }
                })
        }
        Some(fmt) => {
            let naive = NaiveDateTime::parse_from_str(t, fmt).map_err(|_| {
                ferr(
                    RejectReason::InvalidTimestamp,
                    format!("`{t}` does not match {fmt}"),
                )
            })?;
            match tz.from_local_datetime(&naive) {
                LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => Ok(d.with_timezone(&Utc)),
                LocalResult::None => Err(ferr(
                    RejectReason::InvalidTimestamp,
                    format!("`{t}` does not exist in {}", m.timezone),
                )),
            }
        }
    }
}

fn statement_line(
    ctx: &ParseContext<'_>,
    tz: Tz,
    f: &Fields<'_>,
) -> std::result::Result<StatementLine, FieldError> {
    let m = ctx.mapping;
    let bank_id = m
        .bank_id
        .clone()
        .ok_or_else(|| ferr(RejectReason::MissingField, "mapping has no bank_id"))?;
    let cur = match f.opt("currency") {
        Some(c) => currency(c)?,
        None => m.default_currency.ok_or_else(|| {
            ferr(
                RejectReason::MissingField,
                "`currency` is empty and no default",
            )
        })?,
    };
    let settle = m.settlement_currency.unwrap_or(cur);
    let raw_amount = apply_sign(m, amount(m, f.req("amount_posted")?, cur)?, f)?;
    let fee = match f.opt("fee_charged") {
        Some(v) => amount(m, v, settle)?,
        None => settle.round(Decimal::ZERO),
    };
    let (amount_posted, original_amount, original_currency, fx_rate) = if cur == settle {
        (raw_amount, None, None, None)
    } else {
        let (converted, rate) = ctx
            .fx
            .convert(raw_amount, cur, settle, ctx.business_date)
            .map_err(|e| ferr(RejectReason::FxRateMissing, e.to_string()))?;
        (
            converted,
            Some(raw_amount),
            Some(cur),
            Some(rate.normalize()),
        )
    };
    Ok(StatementLine {
        statement_id: id::<StatementId>(f.req("statement_id")?)?,
        transaction_id: f
            .opt("transaction_id")
            .map(id::<TransactionId>)
            .transpose()?,
        bank_id,
        posting_date: BusinessDate::from_date(local_date(m, tz, f.req("posting_date")?)?)
            .map_err(|e| ferr(RejectReason::InvalidDate, e.to_string()))?,
        amount_posted,
        currency: settle,
        fee_charged: fee,
        merchant_id: f.opt("merchant_id").map(id::<MerchantId>).transpose()?,
        reference: f.opt("reference").unwrap_or_default().to_string(),
        record_type: f.opt("record_type").map(enum_value).transpose()?,
        original_amount,
        original_currency,
        fx_rate,
    })
}

fn transaction(
    ctx: &ParseContext<'_>,
    tz: Tz,
    f: &Fields<'_>,
) -> std::result::Result<Transaction, FieldError> {
    let m = ctx.mapping;
    let cur = match f.opt("currency") {
        Some(c) => currency(c)?,
        None => m.default_currency.ok_or_else(|| {
            ferr(
                RejectReason::MissingField,
                "`currency` is empty and no default",
            )
        })?,
    };
    let value = apply_sign(m, amount(m, f.req("amount")?, cur)?, f)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(ferr(
            RejectReason::InvalidAmount,
            "transaction amounts must not be negative",
        ));
    }
    Ok(Transaction {
        transaction_id: id(f.req("transaction_id")?)?,
        merchant_id: id(f.req("merchant_id")?)?,
        // The reason only: the value is PII.
        user_id: f.req("user_id")?.parse::<UserId>().map_err(|e| match e {
            Error::InvalidId { kind, reason, .. } => {
                ferr(RejectReason::InvalidId, format!("invalid {kind}: {reason}"))
            }
            _ => ferr(RejectReason::InvalidId, "invalid user_id"),
        })?,
        amount: value,
        currency: cur,
        status: enum_value(f.req("status")?)?,
        event_time: timestamp(m, tz, f.req("event_time")?)?,
        payment_method: enum_value(f.req("payment_method")?)?,
        original_transaction_id: f.opt("original_transaction_id").map(id).transpose()?,
    })
}

/// A reject's `raw`: statement records as delivered; a transactions record re-serialized from
/// its parsed fields with every PII field and every field the mapping does not read masked
/// (quoting or escaping in the file cannot hide a value from this), or, when the record could
/// not be split into fields, withheld whole with its size and SHA-256 (it may hold a user id).
pub(crate) fn masked_raw(kind: SourceKind, raw: &[u8], fields: Option<&Fields<'_>>) -> String {
    let masked = match (kind, fields) {
        (SourceKind::Statement, _) => None,
        (SourceKind::Transactions, Some(f)) => f.masked(),
        (SourceKind::Transactions, None) => Some(withheld(raw)),
    };
    masked.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(raw);
        text.trim_end_matches(['\r', '\n']).to_string()
    })
}

fn withheld(raw: &[u8]) -> String {
    format!(
        "[withheld: {} bytes that may hold PII, sha256 {}]",
        raw.len(),
        crate::manifest::sha256_hex(raw)
    )
}

impl Fields<'_> {
    /// Values of the PII fields present in this record.
    fn pii_values(&self) -> Vec<&str> {
        PII_FIELDS.iter().filter_map(|n| self.opt(n)).collect()
    }

    /// Whether a value may be kept in `raw`: the field is mapped, not PII, and does not
    /// contain a PII value of the record.
    fn keeps(&self, name: Option<&str>, value: &str, pii: &[&str]) -> bool {
        name.is_some_and(|n| !PII_FIELDS.contains(&n)) && !pii.iter().any(|p| value.contains(p))
    }

    /// The record re-serialized with its PII and unmapped fields masked (`None`: a fixed-layout
    /// entry, kept as its text).
    fn masked(&self) -> Option<String> {
        let pii = self.pii_values();
        match &self.whole {
            Whole::Entry => None,
            Whole::Csv {
                record,
                columns,
                delimiter,
            } => {
                let mut w = csv::WriterBuilder::new()
                    .delimiter(*delimiter)
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(Vec::new());
                let out: Vec<Cow<'_, [u8]>> = record
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let name = columns
                            .iter()
                            .position(|c| *c == Some(i))
                            .and_then(|j| self.names.get(j).copied());
                        let text = String::from_utf8_lossy(v);
                        if self.keeps(name, &text, &pii) {
                            Cow::Borrowed(v)
                        } else {
                            Cow::Borrowed(MASK.as_bytes())
                        }
                    })
                    .collect();
                let text = w
                    .write_record(&out)
                    .ok()
                    .and_then(|()| w.into_inner().ok())
                    .map(|b| String::from_utf8_lossy(&b).trim_end().to_string());
                Some(text.unwrap_or_else(|| withheld(record.as_slice())))
            }
            Whole::Json { object, columns } => {
                let mut out = String::new();
                self.masked_json(object, "", columns, &pii, &mut out);
                Some(out)
            }
        }
    }

    fn masked_json(
        &self,
        object: &crate::exact_json::Object<'_>,
        prefix: &str,
        columns: &[Option<&str>],
        pii: &[&str],
        out: &mut String,
    ) {
        out.push('{');
        for (i, (key, member)) in object.members().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let path = format!("{prefix}{key}");
            out.push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"?\"".into()));
            out.push(':');
            let name = columns
                .iter()
                .position(|c| *c == Some(path.as_str()))
                .and_then(|j| self.names.get(j).copied());
            let inner = format!("{path}.");
            match member.object() {
                Some(o) if columns.iter().flatten().any(|c| c.starts_with(&inner)) => {
                    self.masked_json(o, &inner, columns, pii, out);
                }
                _ if self.keeps(name, &member.text().unwrap_or_default(), pii) => {
                    out.push_str(member.json());
                }
                _ => {
                    out.push('"');
                    out.push_str(MASK);
                    out.push('"');
                }
            }
        }
        out.push('}');
    }
}

/// A detail that quotes a PII value of the record has it masked (the converters name fields and
/// rules; this holds whatever an error message might quote).
fn safe_detail(detail: String, fields: Option<&Fields<'_>>) -> String {
    let Some(f) = fields else { return detail };
    f.pii_values().iter().fold(
        detail,
        |d, v| if d.contains(v) { d.replace(v, MASK) } else { d },
    )
}

/// Parses a statement file into canonical lines.
pub fn parse_statements(ctx: &ParseContext<'_>, bytes: &[u8]) -> Result<Parsed<StatementLine>> {
    parse_with(ctx, bytes, STATEMENT_FIELDS, statement_line)
}

/// Parses an internal transactions extract.
pub fn parse_transactions(ctx: &ParseContext<'_>, bytes: &[u8]) -> Result<Parsed<Transaction>> {
    parse_with(ctx, bytes, TRANSACTION_FIELDS, transaction)
}

type Convert<T> = fn(&ParseContext<'_>, Tz, &Fields<'_>) -> std::result::Result<T, FieldError>;

/// Receives every record of a file: its number, raw bytes and extracted fields.
pub(crate) trait OnRecord {
    fn record(&mut self, n: u64, raw: &[u8], fields: std::result::Result<Fields<'_>, FieldError>);
}

struct Collect<'c, T> {
    ctx: &'c ParseContext<'c>,
    tz: Tz,
    convert: Convert<T>,
    out: Parsed<T>,
}

impl<T> OnRecord for Collect<'_, T> {
    fn record(&mut self, n: u64, raw: &[u8], fields: std::result::Result<Fields<'_>, FieldError>) {
        self.out.records_in += 1;
        let kind = self.ctx.mapping.kind;
        let (err, raw) = match fields {
            Ok(f) => match (self.convert)(self.ctx, self.tz, &f) {
                Ok(rec) => return self.out.records.push((n, rec)),
                Err(e) => {
                    let detail = safe_detail(e.detail, Some(&f));
                    (ferr(e.reason, detail), masked_raw(kind, raw, Some(&f)))
                }
            },
            Err(e) => (e, masked_raw(kind, raw, None)),
        };
        self.out.rejects.push(Reject {
            source_id: self.ctx.mapping.source_id.clone(),
            file: self.ctx.file.to_string(),
            record: n,
            reason: err.reason,
            detail: err.detail,
            raw,
        });
    }
}

fn parse_with<T>(
    ctx: &ParseContext<'_>,
    bytes: &[u8],
    names: &'static [&'static str],
    convert: Convert<T>,
) -> Result<Parsed<T>> {
    let mapping = ctx.mapping.effective();
    let ctx = &ParseContext {
        mapping: &mapping,
        fx: ctx.fx,
        business_date: ctx.business_date,
        file: ctx.file,
    };
    let mut sink = Collect {
        ctx,
        tz: ctx.mapping.tz()?,
        convert,
        out: Parsed {
            records: Vec::new(),
            rejects: Vec::new(),
            records_in: 0,
        },
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match ctx.mapping.format {
        SourceFormat::Csv => read_csv(ctx, bytes, names, &mut sink)?,
        SourceFormat::Jsonl => read_jsonl(ctx.mapping, bytes, names, &mut sink),
        SourceFormat::Mt940 => formats::mt940::read(ctx, bytes, names, &mut sink)?,
        SourceFormat::Camt053 => formats::camt053::read(ctx, bytes, names, &mut sink)?,
    }
    let out = sink.out;
    let accounted = (out.records.len() + out.rejects.len()) as u64;
    if accounted != out.records_in {
        return Err(Error::Invariant(format!(
            "{}: {} records in but {accounted} accepted+rejected",
            ctx.file, out.records_in
        )));
    }
    Ok(out)
}

/// Counts the data records of a file the way the parser does (for manifest checks).
pub fn count_records(mapping: &SourceMapping, file: &str, bytes: &[u8]) -> Result<u64> {
    struct Count(u64);
    impl OnRecord for Count {
        fn record(&mut self, _: u64, _: &[u8], _: std::result::Result<Fields<'_>, FieldError>) {
            self.0 += 1;
        }
    }
    let ctx = ParseContext {
        mapping,
        fx: &FxTable::default(),
        business_date: BusinessDate::parse("1970-01-01")?,
        file,
    };
    let mut c = Count(0);
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match mapping.format {
        // The mapped columns are looked up so a wrong header or delimiter fails here too.
        SourceFormat::Csv => read_csv(&ctx, bytes, mapping.fields().0, &mut c)?,
        SourceFormat::Jsonl => read_jsonl(mapping, bytes, &[], &mut c),
        SourceFormat::Mt940 => formats::mt940::read(&ctx, bytes, &[], &mut c)?,
        SourceFormat::Camt053 => formats::camt053::read(&ctx, bytes, &[], &mut c)?,
    }
    Ok(c.0)
}

fn read_csv(
    ctx: &ParseContext<'_>,
    bytes: &[u8],
    names: &'static [&'static str],
    sink: &mut impl OnRecord,
) -> Result<()> {
    let m = ctx.mapping;
    let file_err = |reason: String| Error::InvalidFile {
        file: ctx.file.to_string(),
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(m.delimiter as u8)
        .has_headers(m.header)
        .flexible(true)
        .from_reader(bytes);
    // Column index of each canonical field (None: not mapped).
    let mut index: Vec<Option<usize>> = vec![None; names.len()];
    let width;
    if m.header {
        let header = rdr
            .byte_headers()
            .map_err(|e| file_err(format!("unreadable header: {e}")))?
            .clone();
        width = header.len();
        for (i, name) in names.iter().enumerate() {
            let Some(col) = m.columns.get(*name) else {
                continue;
            };
            let pos = header.iter().position(|h| h.trim_ascii() == col.as_bytes());
            match pos {
                Some(p) => index[i] = Some(p),
                None if header.is_empty() => {}
                None => {
                    return Err(file_err(format!(
                        "header has no column `{col}` (for `{name}`); found {} column(s) split by `{}` — wrong delimiter or layout?",
                        header.len(),
                        m.delimiter
                    )));
                }
            }
        }
    } else {
        width = 0;
        for (i, name) in names.iter().enumerate() {
            index[i] = m.columns.get(*name).and_then(|c| c.parse().ok());
        }
    }
    let mut rec = csv::ByteRecord::new();
    let mut n = 0u64;
    loop {
        let start = rdr.position().byte() as usize;
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                n += 1;
                let end = rdr.position().byte() as usize;
                let raw = bytes.get(start..end.max(start)).unwrap_or_default();
                sink.record(n, raw, Err(ferr(RejectReason::MalformedRow, e.to_string())));
                continue;
            }
        }
        n += 1;
        let end = (rdr.position().byte() as usize).min(bytes.len());
        let raw = bytes.get(start..end.max(start)).unwrap_or_default();
        let expected = if m.header {
            width
        } else {
            index.iter().flatten().max().map_or(0, |x| x + 1)
        };
        let fields = if (m.header && rec.len() != width) || (!m.header && rec.len() < expected) {
            Err(ferr(
                RejectReason::MalformedRow,
                format!("expected {expected} fields, found {}", rec.len()),
            ))
        } else {
            let mut values = Vec::with_capacity(names.len());
            let mut bad = None;
            for ix in &index {
                let v = match ix.and_then(|i| rec.get(i)) {
                    None => None,
                    Some(b) => match std::str::from_utf8(b) {
                        Ok(s) => Some(Cow::Borrowed(s)),
                        Err(_) => {
                            bad = Some(ferr(
                                RejectReason::InvalidUtf8,
                                "a field is not valid UTF-8",
                            ));
                            None
                        }
                    },
                };
                values.push(v);
            }
            match bad {
                Some(e) => Err(e),
                None => Ok(Fields {
                    values,
                    names,
                    whole: Whole::Csv {
                        record: &rec,
                        columns: &index,
                        delimiter: m.delimiter as u8,
                    },
                }),
            }
        };
        sink.record(n, raw, fields);
    }
    Ok(())
}

fn read_jsonl(
    m: &SourceMapping,
    bytes: &[u8],
    names: &'static [&'static str],
    sink: &mut impl OnRecord,
) {
    use crate::exact_json::{JsonError, Object};
    // The mapping's path of each canonical field.
    let columns: Vec<Option<&str>> = names
        .iter()
        .map(|n| m.columns.get(*n).map(String::as_str))
        .collect();
    let mut n = 0u64;
    for line in bytes.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        n += 1;
        if names.is_empty() {
            sink.record(
                n,
                line,
                Err(ferr(RejectReason::MalformedRow, "counted only")),
            );
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            sink.record(
                n,
                line,
                Err(ferr(RejectReason::InvalidUtf8, "line is not valid UTF-8")),
            );
            continue;
        };
        // Values as written: numbers keep their digits (never through f64).
        let object = match Object::parse(text) {
            Ok(o) => o,
            Err(JsonError::DuplicateKey { path }) => {
                // Named when the mapping reads it; another key could be anything.
                let read = columns.iter().flatten().any(|c| {
                    *c == path
                        || c.strip_prefix(path.as_str())
                            .is_some_and(|r| r.starts_with('.'))
                });
                let what = if read {
                    format!("key `{path}` appears twice")
                } else {
                    "a key the mapping does not read appears twice".to_string()
                };
                sink.record(
                    n,
                    line,
                    Err(ferr(
                        RejectReason::DuplicateKey,
                        format!("{what}: which value is meant is unknown; send each key once"),
                    )),
                );
                continue;
            }
            Err(e) => {
                sink.record(n, line, Err(ferr(RejectReason::InvalidJson, e.to_string())));
                continue;
            }
        };
        let values = columns
            .iter()
            .map(|path| path.and_then(|p| object.path(p)).and_then(|v| v.text()))
            .collect();
        sink.record(
            n,
            line,
            Ok(Fields {
                values,
                names,
                whole: Whole::Json {
                    object: &object,
                    columns: &columns,
                },
            }),
        );
    }
}
