//! Readers of the statement formats that carry their own layout: SWIFT MT940 ([`mt940`]) and
//! ISO 20022 camt.053 ([`camt053`]), and the text decoding every format shares ([`text`]).
//!
//! A layer below [`crate::source`]: the readers know nothing of source mappings. They check the
//! file as a whole (structure, currency, opening balance + movements = closing balance; a
//! failure is the file's reason, for parsing and counting alike) and stream every entry, in one
//! pass, to an [`EntrySink`] as typed canonical values ([`Entry`]: a signed [`Decimal`] in the
//! account currency, a [`NaiveDate`], ids as the file gives them) or as a reject with its
//! reason. A problem in one entry rejects that entry only. The layouts and the tolerance rules
//! are described in `docs/deviations.md`.

pub mod camt053;
pub mod mt940;
pub mod text;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::ids::{BusinessDate, MAX_ID_LEN};
use crate::money::{self, Currency, parse_decimal};
use crate::reject::{FieldError, RejectReason, ferr};

/// The value a bank sends when the payer gave no end-to-end reference.
pub const NOT_PROVIDED: &str = "NOTPROVIDED";

/// A file-level failure: why the file cannot be read (its balances cannot be checked).
pub type FileResult<T> = std::result::Result<T, String>;

/// What a reader needs besides the text.
#[derive(Debug, Clone, Copy)]
pub struct FormatContext {
    /// The account currency every balance and amount must be in.
    pub account: Currency,
    /// Zone whose local date a timestamp (camt.053 `DtTm`) falls on.
    pub tz: Tz,
}

/// One statement entry as typed canonical values. Fields that can fail on their own carry
/// their failure, so the entry is rejected for the first one in the converter's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// From what the file has, in the id alphabet (see [`statement_id`]).
    pub statement_id: String,
    /// `None`: absent or [`NOT_PROVIDED`].
    pub transaction_id: Option<String>,
    /// The date the bank booked the entry (camt.053 booking date, else value date; MT940
    /// `:61:` entry date), or why it cannot be read.
    pub posting_date: std::result::Result<NaiveDate, FieldError>,
    /// Signed (credits to the account positive), in the account currency.
    pub amount: Decimal,
    /// Charges in the account currency (`None`: none given).
    pub fee: std::result::Result<Option<Decimal>, FieldError>,
    /// The merchant (creditor) the entry pays out to, as the file names it; `None`: not given.
    pub merchant_id: Option<String>,
    /// The remittance text, trimmed (empty when none); free text, not an id.
    pub reference: String,
    /// The bank's transaction code as sent (mapped to a record type by the source mapping).
    pub record_type: Option<String>,
}

/// An entry's text as delivered, for a reject's `raw`.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    /// Kept byte for byte (a camt.053 `<Ntry>` element).
    Verbatim(&'a [u8]),
    /// MT940 fields: line ends become `\n`.
    Lines(&'a str),
}

impl Raw<'_> {
    /// The text a reject shows (trailing line ends dropped).
    pub fn text(&self) -> String {
        let text = match self {
            Raw::Verbatim(b) => String::from_utf8_lossy(b).into_owned(),
            Raw::Lines(s) => s.replace("\r\n", "\n"),
        };
        text.trim_end_matches(['\r', '\n']).to_string()
    }
}

/// Receives every entry of a file, in file order, numbered from 1.
pub trait EntrySink {
    /// Entry number `n` (1-based), its text as delivered, and its values or the reason it
    /// is rejected.
    fn entry(&mut self, n: u64, raw: Raw<'_>, entry: std::result::Result<Entry, FieldError>);
}

/// A transaction reference as sent: `None` when empty or [`NOT_PROVIDED`].
pub fn reference_id(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case(NOT_PROVIDED)).then(|| v.to_string())
}

/// A bank reference that identifies nothing: empty, `NONREF` or [`NOT_PROVIDED`].
pub(crate) fn no_reference(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v.eq_ignore_ascii_case("NONREF") || v.eq_ignore_ascii_case(NOT_PROVIDED)
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
}

/// A statement id from the parts a file gives, joined with `-`. Kept as is when it fits the id
/// alphabet (ASCII letters, digits, `- _ . :`, at most 64 bytes, no leading dot); otherwise
/// every other character becomes `_`, the text is cut to 47 bytes and `.` and 16 hex digits
/// of the SHA-256 of the original text are added, so different texts keep different ids and
/// the same text always gives the same one (`/`, spaces, `Ü` are what banks send).
pub fn statement_id(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let fits = !joined.is_empty()
        && joined.len() <= MAX_ID_LEN
        && !joined.starts_with('.')
        && joined.bytes().all(id_byte);
    if fits {
        return joined;
    }
    let mut slug: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii() && id_byte(c as u8) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_ID_LEN - 17)
        .collect();
    if slug.starts_with('.') {
        slug.replace_range(..1, "_");
    }
    let digest = Sha256::digest(joined.as_bytes());
    format!("{slug}.{}", &hex::encode(digest)[..16])
}

/// A major-unit amount of `cur` as sent (`decimal_separator` between units and decimals),
/// exact at the currency's minor unit and within the storable range.
pub fn amount(
    raw: &str,
    decimal_separator: char,
    cur: Currency,
) -> std::result::Result<Decimal, FieldError> {
    let d = number(raw, decimal_separator)?;
    let value = cur
        .exact(d)
        .map_err(|e| ferr(RejectReason::TooManyDecimals, e.to_string()))?;
    limited(value)
}

/// `value` if it is within the storable range.
pub fn limited(value: Decimal) -> std::result::Result<Decimal, FieldError> {
    if !money::within_amount_limit(value) {
        return Err(ferr(
            RejectReason::AmountOverflow,
            format!("{value} exceeds the largest storable amount"),
        ));
    }
    Ok(value)
}

/// The reject reason of a number that could not be read.
fn amount_error(e: crate::error::Error) -> FieldError {
    let reason = match &e {
        crate::error::Error::InvalidAmount { reason, .. } if reason == money::TOO_MANY_DIGITS => {
            RejectReason::AmountOverflow
        }
        crate::error::Error::InvalidAmount { reason, .. }
            if reason == money::TOO_MANY_DECIMAL_PLACES =>
        {
            RejectReason::TooManyDecimals
        }
        _ => RejectReason::InvalidAmount,
    };
    ferr(reason, e.to_string())
}

/// A decimal number as sent, not yet checked against a currency.
pub(crate) fn number(raw: &str, separator: char) -> std::result::Result<Decimal, FieldError> {
    parse_decimal(raw, separator).map_err(amount_error)
}

/// An MT940 charge (`,` or `.` as decimal separator), not yet checked against the currency.
pub(crate) fn fee(raw: &str) -> std::result::Result<Decimal, FieldError> {
    number(&raw.replace(',', "."), '.')
}

/// An ISO date (`YYYY-MM-DD`), or an RFC 3339 timestamp whose local date in `tz` counts.
pub(crate) fn iso_date(raw: &str, tz: Tz) -> std::result::Result<NaiveDate, FieldError> {
    let t = raw.trim();
    let bad = |detail: String| ferr(RejectReason::InvalidDate, detail);
    if t.len() == 10 {
        return BusinessDate::parse(t)
            .map(BusinessDate::date)
            .map_err(|e| bad(e.to_string()));
    }
    if t.len() > 10 {
        return match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(d) => Ok(d.with_timezone(&tz).date_naive()),
            Err(_) if chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").is_ok() => {
                Err(bad(format!("`{t}` has no UTC offset")))
            }
            Err(_) => Err(bad(format!("`{t}` is not an RFC 3339 timestamp"))),
        };
    }
    Err(bad(format!("`{t}` is not a date in format %Y-%m-%d")))
}

#[cfg(test)]
pub(crate) mod tests {

    use crate::error::{Error, Result};
    use crate::ids::BusinessDate;
    use crate::money::FxTable;
    use crate::records::StatementLine;
    use crate::source::{ParseContext, Parsed, SourceMapping, count_records, parse_statements};

    /// A statement mapping of the given format for `bank_x` settling in `currency`.
    pub(crate) fn mapping(format: &str, currency: &str) -> Result<SourceMapping> {
        mapping_with(format, currency, "")
    }

    /// [`mapping`] with more members (`, "encoding": "latin-1"`).
    pub(crate) fn mapping_with(format: &str, currency: &str, more: &str) -> Result<SourceMapping> {
        SourceMapping::from_json(
            format!(
                r#"{{"source_id": "bank_x", "kind": "statement", "format": "{format}",
                    "bank_id": "bank_x", "settlement_currency": "{currency}",
                    "timezone": "Europe/Berlin", "columns": {{}}{more}}}"#
            )
            .as_bytes(),
        )
    }

    /// Parses `bytes` and checks that counting agrees with parsing.
    pub(crate) fn parse(m: &SourceMapping, bytes: &[u8]) -> Result<Parsed<StatementLine>> {
        let ctx = ParseContext {
            mapping: m,
            fx: &FxTable::default(),
            business_date: BusinessDate::parse("2026-11-20")?,
            file: "statement",
        };
        let parsed = parse_statements(&ctx, bytes)?;
        assert_eq!(count_records(m, "statement", bytes)?, parsed.records_in);
        assert_eq!(
            parsed.records_in,
            (parsed.records.len() + parsed.rejects.len()) as u64
        );
        Ok(parsed)
    }

    /// The reason of a file-level failure, for parsing and for counting (which must agree).
    pub(crate) fn file_failure(m: &SourceMapping, bytes: &[u8]) -> Result<String> {
        let counted = count_records(m, "statement", bytes);
        match parse(m, bytes) {
            Err(Error::InvalidFile { reason, .. }) => {
                assert!(
                    matches!(counted, Err(Error::InvalidFile { .. })),
                    "counting must fail like parsing: {counted:?}"
                );
                Ok(reason)
            }
            other => Err(Error::Invariant(format!(
                "expected a file-level failure, got {other:?}"
            ))),
        }
    }

    #[test]
    fn statement_ids_keep_what_fits_and_encode_the_rest_deterministically() {
        use super::statement_id;
        assert_eq!(
            statement_id(&["bank_x-20261120", "00000001"]),
            "bank_x-20261120-00000001"
        );
        let a = statement_id(&["STMT 2026/11", "Ü1"]);
        assert!(a.starts_with("STMT_2026_11-_1."), "{a}");
        assert_eq!(a, statement_id(&["STMT 2026/11", "Ü1"]));
        assert_ne!(a, statement_id(&["STMT 2026/11", "Ö1"]));
        let long = statement_id(&[&"R".repeat(80)]);
        assert!(long.len() <= crate::ids::MAX_ID_LEN, "{long}");
        for id in [a, long, statement_id(&[".x"])] {
            assert!(crate::ids::StatementId::new(id.clone()).is_ok(), "{id}");
        }
    }

    #[test]
    fn mappings_of_fixed_layouts_need_no_columns_but_an_account_currency() -> Result<()> {
        let m = mapping("mt940", "EUR")?;
        assert_eq!(m.format.as_str(), "mt940");
        assert!(m.columns.is_empty());
        assert_eq!(mapping("camt053", "JPY")?.format.as_str(), "camt053");
        let json = serde_json::to_string(&m)?;
        assert!(json.contains(r#""format":"mt940""#), "{json}");
        // Optional members at their defaults are not written (mapping files stay as they were).
        assert!(
            !json.contains("encoding") && !json.contains("transaction_codes"),
            "{json}"
        );
        for bad in [
            r#"{"source_id": "b", "kind": "transactions", "format": "mt940", "bank_id": "b",
                "settlement_currency": "EUR", "columns": {}}"#,
            r#"{"source_id": "b", "kind": "statement", "format": "camt053", "bank_id": "b",
                "settlement_currency": "EUR", "columns": {"statement_id": "Id"}}"#,
            r#"{"source_id": "b", "kind": "statement", "format": "mt940",
                "settlement_currency": "EUR", "columns": {}}"#,
            r#"{"source_id": "b", "kind": "statement", "format": "camt053", "bank_id": "b",
                "columns": {}}"#,
            r#"{"source_id": "b", "kind": "statement", "format": "mt940", "bank_id": "b",
                "settlement_currency": "EUR", "columns": {}, "encoding": "ebcdic"}"#,
            r#"{"source_id": "b", "kind": "statement", "format": "camt053", "bank_id": "b",
                "settlement_currency": "EUR", "columns": {}, "transaction_codes": {"X": "PAID"}}"#,
        ] {
            assert!(
                matches!(
                    SourceMapping::from_json(bad.as_bytes()),
                    Err(Error::InvalidConfig { .. })
                ),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_mapping_file_names_itself_in_every_problem() -> Result<()> {
        let key = "config/sources/bank_x.json";
        let good = r#"{"source_id": "bank_x", "kind": "statement", "format": "mt940",
            "bank_id": "bank_x", "settlement_currency": "EUR", "columns": {}}"#;
        assert_eq!(
            SourceMapping::from_file(key, good.as_bytes())?
                .source_id
                .as_str(),
            "bank_x"
        );
        let err = |text: &str| {
            SourceMapping::from_file(key, text.as_bytes())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        // Before, a JSON error was reported for "source mapping", no file.
        for (text, what) in [
            ("{\"source_id\": ", "EOF"),
            (
                &good.replace("\"bank_x\", \"kind\"", "\"bank_y\", \"kind\""),
                "named for `bank_x`",
            ),
            (&good.replace("\"mt940\"", "\"csv\""), "is not mapped"),
        ] {
            let e = err(text);
            assert!(
                e.contains(key) && e.contains(what) && e.contains("correct the mapping file"),
                "{text}: {e}"
            );
        }
        Ok(())
    }
}
