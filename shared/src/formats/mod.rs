//! Readers of the statement formats that carry their own layout: SWIFT MT940 ([`mt940`]) and
//! ISO 20022 camt.053 ([`camt053`]).
//!
//! Both plug into the row machinery of [`crate::source`]: they check the file as a whole
//! (structure, currency, opening balance + movements = closing balance; a failure is an
//! [`Error::InvalidFile`] for parsing and counting alike) and then hand every entry to the sink
//! as canonical fields, already normalized — ISO dates, signed amounts in major units with a
//! `.`, the account currency — so the usual converters turn them into statement lines or
//! rejects with a reason. The layouts are described in `docs/deviations.md`.

pub mod camt053;
pub mod mt940;

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::money::Currency;
use crate::source::{OnRecord, ParseContext, RejectReason, ferr};

/// The value a bank sends when the payer gave no end-to-end reference.
pub const NOT_PROVIDED: &str = "NOTPROVIDED";

/// Canonical values of one statement entry as its reader found them (`None`: absent).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) statement_id: Option<String>,
    pub(crate) transaction_id: Option<String>,
    /// `YYYY-MM-DD`, or an RFC 3339 timestamp whose local date counts.
    pub(crate) posting_date: Option<String>,
    /// Signed (credits to the account positive), major units, `.` as decimal separator.
    pub(crate) amount_posted: Option<String>,
    pub(crate) currency: Option<String>,
    /// Major units, `.` as decimal separator.
    pub(crate) fee_charged: Option<String>,
    pub(crate) merchant_id: Option<String>,
    pub(crate) reference: Option<String>,
    pub(crate) record_type: Option<String>,
}

impl Entry {
    /// Hands the entry to `sink` as record `n`, with `raw` kept for a reject. With no field
    /// names the sink only counts.
    pub(crate) fn emit(
        mut self,
        n: u64,
        raw: &[u8],
        names: &'static [&'static str],
        sink: &mut impl OnRecord,
    ) {
        if names.is_empty() {
            sink.record(
                n,
                raw,
                Err(ferr(RejectReason::MalformedRow, "counted only")),
            );
            return;
        }
        let values = names
            .iter()
            .map(|name| {
                match *name {
                    "statement_id" => self.statement_id.take(),
                    "transaction_id" => self.transaction_id.take(),
                    "posting_date" => self.posting_date.take(),
                    "amount_posted" => self.amount_posted.take(),
                    "currency" => self.currency.take(),
                    "fee_charged" => self.fee_charged.take(),
                    "merchant_id" => self.merchant_id.take(),
                    "reference" => self.reference.take(),
                    "record_type" => self.record_type.take(),
                    _ => None,
                }
                .map(Cow::Owned)
            })
            .collect();
        sink.record(
            n,
            raw,
            Ok(crate::source::Fields {
                values,
                names,
                whole: crate::source::Whole::Entry,
            }),
        );
    }
}

/// A transaction reference as sent: `None` when empty or [`NOT_PROVIDED`].
pub(crate) fn reference_id(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case(NOT_PROVIDED)).then(|| v.to_string())
}

/// The account currency the file's balances and amounts must be in.
pub(crate) fn account_currency(ctx: &ParseContext<'_>) -> Result<Currency> {
    let m = ctx.mapping;
    m.settlement_currency.ok_or_else(|| Error::InvalidConfig {
        name: crate::keys::source_config_key(m.source_id.as_str()),
        reason: format!(
            "{} sources need `settlement_currency`, the account currency their balances are checked against",
            m.format.as_str()
        ),
    })
}

/// A file-level failure of the file being read.
pub(crate) fn file_error(ctx: &ParseContext<'_>, reason: String) -> Error {
    Error::InvalidFile {
        file: ctx.file.to_string(),
        reason,
    }
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
        SourceMapping::from_json(
            format!(
                r#"{{"source_id": "bank_x", "kind": "statement", "format": "{format}",
                    "bank_id": "bank_x", "settlement_currency": "{currency}",
                    "timezone": "Europe/Berlin", "columns": {{}}}}"#
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
    fn mappings_of_fixed_layouts_need_no_columns_but_an_account_currency() -> Result<()> {
        let m = mapping("mt940", "EUR")?;
        assert_eq!(m.format.as_str(), "mt940");
        assert!(m.columns.is_empty());
        assert_eq!(mapping("camt053", "JPY")?.format.as_str(), "camt053");
        let json = serde_json::to_string(&m)?;
        assert!(json.contains(r#""format":"mt940""#), "{json}");
        for bad in [
            r#"{"source_id": "b", "kind": "transactions", "format": "mt940", "bank_id": "b",
                "settlement_currency": "EUR", "columns": {}}"#,
            r#"{"source_id": "b", "kind": "statement", "format": "camt053", "bank_id": "b",
                "settlement_currency": "EUR", "columns": {"statement_id": "Id"}}"#,
            r#"{"source_id": "b", "kind": "statement", "format": "mt940",
                "settlement_currency": "EUR", "columns": {}}"#,
            r#"{"source_id": "b", "kind": "statement", "format": "camt053", "bank_id": "b",
                "columns": {}}"#,
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
