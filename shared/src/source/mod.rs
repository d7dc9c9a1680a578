//! Source mappings (design.md §4) and the row-level turning of delivered files into canonical
//! records. Every input record ends up accepted or rejected with a reason code and its raw
//! text: `records_in == accepted + rejected` is checked before a result is returned.
//!
//! - [`mapping`]: the mapping document and its checks;
//! - `readers`: CSV and JSON lines records as fields named by the mapping (`fields`: what a
//!   reject shows of them); MT940 and camt.053 are read by [`crate::formats`], a layer below,
//!   which hands over typed entries;
//! - `convert`: fields and entries into [`StatementLine`]s and [`Transaction`]s.
//!
//! Counting (the validator) and parsing (the normalizer) go through the same [`read`] of the
//! file, so a count is the parser's `records_in` by construction.

mod convert;
mod fields;
pub mod mapping;
mod readers;

use chrono_tz::Tz;

use self::fields::{Fields, masked_raw, safe_detail};
pub use self::fields::{MASK, PII_FIELDS};
pub use self::mapping::{
    AmountUnit, STATEMENT_FIELDS, SignConvention, SourceFormat, SourceKind, SourceMapping,
    TRANSACTION_FIELDS,
};
use self::readers::{OnRecord, read_csv, read_jsonl};
use crate::error::{Error, Result};
use crate::formats::{self, Entry, EntrySink, FileResult, FormatContext, Raw};
use crate::ids::BusinessDate;
use crate::money::FxTable;
use crate::records::{StatementLine, Transaction};
pub use crate::reject::{FieldError, Reject, RejectReason};

/// Accepted records of one file, with their 1-based record numbers, and the rejects.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// Each accepted record with its 1-based number in the file.
    pub records: Vec<(u64, T)>,
    /// Each refused record with its reason and raw text.
    pub rejects: Vec<Reject>,
    /// Records read: `records.len() + rejects.len()`.
    pub records_in: u64,
}

/// What a parser needs besides the bytes.
pub struct ParseContext<'a> {
    /// How the source's files map onto canonical fields.
    pub mapping: &'a SourceMapping,
    /// The business date's FX rates, to convert lines into the settlement currency.
    pub fx: &'a FxTable,
    /// The delivery's business date (FX table date).
    pub business_date: BusinessDate,
    /// Name of the file being parsed, for rejects and errors.
    pub file: &'a str,
}

/// A canonical record kind: its fields and how it is made from fields or from an entry.
trait Canonical: Sized {
    const FIELDS: &'static [&'static str];
    fn from_fields(
        ctx: &ParseContext<'_>,
        tz: Tz,
        f: &Fields<'_>,
    ) -> std::result::Result<Self, FieldError>;
    fn from_entry(ctx: &ParseContext<'_>, e: Entry) -> std::result::Result<Self, FieldError>;
}

impl Canonical for StatementLine {
    const FIELDS: &'static [&'static str] = STATEMENT_FIELDS;
    fn from_fields(
        ctx: &ParseContext<'_>,
        tz: Tz,
        f: &Fields<'_>,
    ) -> std::result::Result<Self, FieldError> {
        convert::statement_line(ctx, tz, f)
    }
    fn from_entry(ctx: &ParseContext<'_>, e: Entry) -> std::result::Result<Self, FieldError> {
        convert::entry_line(ctx, e)
    }
}

impl Canonical for Transaction {
    const FIELDS: &'static [&'static str] = TRANSACTION_FIELDS;
    fn from_fields(
        ctx: &ParseContext<'_>,
        tz: Tz,
        f: &Fields<'_>,
    ) -> std::result::Result<Self, FieldError> {
        convert::transaction(ctx, tz, f)
    }
    /// Mappings refuse fixed-layout formats for transactions; an entry cannot be one.
    fn from_entry(_: &ParseContext<'_>, _: Entry) -> std::result::Result<Self, FieldError> {
        Err(crate::reject::ferr(
            RejectReason::MalformedRow,
            "a statement entry is not a transaction",
        ))
    }
}

/// Parses a statement file into canonical lines.
pub fn parse_statements(ctx: &ParseContext<'_>, bytes: &[u8]) -> Result<Parsed<StatementLine>> {
    parse_with(ctx, bytes)
}

/// Parses an internal transactions extract.
pub fn parse_transactions(ctx: &ParseContext<'_>, bytes: &[u8]) -> Result<Parsed<Transaction>> {
    parse_with(ctx, bytes)
}

struct Collect<'c, T> {
    ctx: &'c ParseContext<'c>,
    tz: Tz,
    out: Parsed<T>,
}

impl<T> Collect<'_, T> {
    fn reject(&mut self, n: u64, err: FieldError, raw: String) {
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

impl<T: Canonical> OnRecord for Collect<'_, T> {
    fn record(&mut self, n: u64, raw: &[u8], fields: std::result::Result<Fields<'_>, FieldError>) {
        self.out.records_in += 1;
        let kind = self.ctx.mapping.kind;
        let (err, raw) = match fields {
            Ok(f) => match T::from_fields(self.ctx, self.tz, &f) {
                Ok(rec) => return self.out.records.push((n, rec)),
                Err(e) => {
                    let detail = safe_detail(e.detail, Some(&f));
                    (
                        crate::reject::ferr(e.reason, detail),
                        masked_raw(kind, raw, Some(&f)),
                    )
                }
            },
            Err(e) => (e, masked_raw(kind, raw, None)),
        };
        self.reject(n, err, raw);
    }
}

impl<T: Canonical> EntrySink for Collect<'_, T> {
    fn entry(&mut self, n: u64, raw: Raw<'_>, entry: std::result::Result<Entry, FieldError>) {
        self.out.records_in += 1;
        match entry.and_then(|e| T::from_entry(self.ctx, e)) {
            Ok(rec) => self.out.records.push((n, rec)),
            Err(e) => self.reject(n, e, raw.text()),
        }
    }
}

fn parse_with<T: Canonical>(ctx: &ParseContext<'_>, bytes: &[u8]) -> Result<Parsed<T>> {
    let mut sink = Collect {
        ctx,
        tz: ctx.mapping.tz()?,
        out: Parsed {
            records: Vec::new(),
            rejects: Vec::new(),
            records_in: 0,
        },
    };
    read(ctx, bytes, T::FIELDS, &mut sink)?;
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

/// Reads a file once, handing every record to `sink`: CSV and JSON lines records as the
/// fields `names` (none: JSON lines are only counted), MT940 and camt.053 entries as typed
/// values. Parsing and counting both go through here.
fn read<S: OnRecord + EntrySink>(
    ctx: &ParseContext<'_>,
    bytes: &[u8],
    names: &'static [&'static str],
    sink: &mut S,
) -> Result<()> {
    let m = ctx.mapping;
    let text = formats::text::decode(bytes, m.encoding);
    let fixed = |read: fn(&FormatContext, &[u8], &mut S) -> FileResult<()>, sink: &mut S| {
        let fctx = FormatContext {
            account: m.settlement_currency.ok_or_else(|| {
                m.bad(format!(
                    "{} sources need `settlement_currency`, the account currency their balances are checked against",
                    m.format.as_str()
                ))
            })?,
            tz: m.tz()?,
        };
        read(&fctx, &text, sink).map_err(|reason| Error::InvalidFile {
            file: ctx.file.to_string(),
            reason,
        })
    };
    match m.format {
        SourceFormat::Csv => read_csv(ctx, &text, names, sink),
        SourceFormat::Jsonl => {
            read_jsonl(m, &text, names, sink);
            Ok(())
        }
        SourceFormat::Mt940 => fixed(formats::mt940::read, sink),
        SourceFormat::Camt053 => fixed(formats::camt053::read, sink),
    }
}

/// Counts the data records of a file the way the parser does (for manifest checks): the same
/// [`read`], with a sink that only counts. CSV looks up the mapped columns, so a wrong header
/// or delimiter fails here too; JSON lines are counted without parsing each line.
pub fn count_records(mapping: &SourceMapping, file: &str, bytes: &[u8]) -> Result<u64> {
    struct Count(u64);
    impl OnRecord for Count {
        fn record(&mut self, _: u64, _: &[u8], _: std::result::Result<Fields<'_>, FieldError>) {
            self.0 += 1;
        }
    }
    impl EntrySink for Count {
        fn entry(&mut self, _: u64, _: Raw<'_>, _: std::result::Result<Entry, FieldError>) {
            self.0 += 1;
        }
    }
    let ctx = ParseContext {
        mapping,
        fx: &FxTable::default(),
        business_date: BusinessDate::parse("1970-01-01")?,
        file,
    };
    let names = match mapping.format {
        SourceFormat::Jsonl => &[],
        _ => mapping.fields().0,
    };
    let mut c = Count(0);
    read(&ctx, bytes, names, &mut c)?;
    Ok(c.0)
}
