//! Borrowed views of a partition's inputs. The engine reads ids straight out of the Arrow
//! buffers of the curated Parquet (no `String` per row) and amounts as exact decimals; the
//! owned records ([`Transaction`], [`StatementLine`]) convert to the same views for tests and
//! small callers.

use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::NaiveDate;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;

use crate::columnar::{Columnar, Columns};
use crate::error::{Error, Result};
use crate::ids::days_to_date;
use crate::money::Currency;
use crate::records::{
    MismatchType, ReconciledStatus, RecordType, StatementLine, Transaction, TxnStatus,
};

/// What the engine reads of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnRef<'a> {
    /// The ledger transaction id.
    pub transaction_id: &'a str,
    /// The merchant paid.
    pub merchant_id: &'a str,
    /// The amount as booked, in the transaction's currency.
    pub amount: Decimal,
    /// The transaction's currency.
    pub currency: Currency,
    /// The ledger status (refunds are expected negative on the statement).
    pub status: TxnStatus,
    /// Microseconds since the epoch (UTC), and its UTC date.
    pub event_micros: i64,
    /// The UTC date of `event_micros`.
    pub event_date: NaiveDate,
    /// The business date of the ledger partition the transaction came in.
    pub item_date: NaiveDate,
    /// What an earlier close left it as, when it is carried forward as an open item.
    pub prior: Option<Prior>,
}

/// The outcome an earlier close gave an open item it carried forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prior {
    /// PENDING, or UNMATCHED for an item with a break.
    pub status: ReconciledStatus,
    /// The break's kind, NONE when it had none.
    pub mismatch: MismatchType,
}

/// What the engine reads of a statement line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRef<'a> {
    /// The bank's id of the line.
    pub statement_id: &'a str,
    /// The transaction the bank says the line pays, when it says.
    pub transaction_id: Option<&'a str>,
    /// The merchant the line pays out to, when given.
    pub merchant_id: Option<&'a str>,
    /// The date the bank booked the line.
    pub posting_date: NaiveDate,
    /// The signed amount posted, in the statement currency.
    pub amount_posted: Decimal,
    /// The fee the bank charged, in the statement currency.
    pub fee_charged: Decimal,
    /// The statement currency.
    pub currency: Currency,
    /// What the line is (payment, refund, chargeback …), when the bank says.
    pub record_type: Option<RecordType>,
    /// The business date of the delivery the line came in (its close, §11).
    pub item_date: NaiveDate,
    /// What an earlier close left it as, when it is carried forward as an open item.
    pub prior: Option<Prior>,
}

impl<'a> From<&'a Transaction> for TxnRef<'a> {
    fn from(t: &'a Transaction) -> Self {
        TxnRef {
            transaction_id: t.transaction_id.as_str(),
            merchant_id: t.merchant_id.as_str(),
            amount: t.amount,
            currency: t.currency,
            status: t.status,
            event_micros: t.event_time.timestamp_micros(),
            event_date: t.event_time.date_naive(),
            item_date: t.event_time.date_naive(),
            prior: None,
        }
    }
}

impl<'a> From<&'a StatementLine> for LineRef<'a> {
    fn from(l: &'a StatementLine) -> Self {
        LineRef {
            statement_id: l.statement_id.as_str(),
            transaction_id: l.transaction_id.as_ref().map(|t| t.as_str()),
            merchant_id: l.merchant_id.as_ref().map(|m| m.as_str()),
            posting_date: l.posting_date.date(),
            amount_posted: l.amount_posted,
            fee_charged: l.fee_charged,
            currency: l.currency,
            record_type: l.record_type,
            item_date: l.posting_date.date(),
            prior: None,
        }
    }
}

/// Columns of the transactions table the engine reads.
pub const TXN_COLUMNS: &[&str] = &[
    "transaction_id",
    "merchant_id",
    "amount",
    "currency",
    "status",
    "event_time",
];

/// Columns of the statements table the engine reads.
pub const LINE_COLUMNS: &[&str] = &[
    "statement_id",
    "transaction_id",
    "posting_date",
    "amount_posted",
    "currency",
    "fee_charged",
    "merchant_id",
    "record_type",
];

/// Reads only `columns` of a Parquet file of table `T`, one batch per row group.
pub fn read_columns<T: Columnar>(bytes: Bytes, columns: &[&str]) -> Result<Vec<RecordBatch>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let arrow = builder.schema().clone();
    let roots = columns
        .iter()
        .map(|name| {
            arrow.index_of(name).map_err(|_| Error::Schema {
                table: T::TABLE,
                column: (*name).to_string(),
                reason: "missing".into(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder
        .with_projection(mask)
        .with_batch_size(crate::columnar::ROW_GROUP_SIZE)
        .build()?
        .map(|b| b.map_err(Error::from))
        .collect()
}

/// Parses the few distinct values of a code column once each.
pub(crate) struct Codes<'a, T> {
    seen: Vec<(&'a str, T)>,
}

impl<'a, T: Copy> Codes<'a, T> {
    pub(crate) fn new() -> Self {
        Self { seen: Vec::new() }
    }

    pub(crate) fn get(&mut self, s: &'a str, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        if let Some((_, v)) = self.seen.iter().find(|(k, _)| *k == s) {
            return Ok(*v);
        }
        let v = parse(s)?;
        self.seen.push((s, v));
        Ok(v)
    }
}

/// Transactions of batches read with at least [`TXN_COLUMNS`], of the ledger partition
/// `date` (or, for open items, with the [`OPEN_COLUMNS`] saying theirs). Ids were validated
/// when the curated file was written; nulls, unknown codes and out-of-range values are
/// refused here.
pub fn txn_refs(batches: &[RecordBatch], date: NaiveDate) -> Result<Vec<TxnRef<'_>>> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    let (mut currencies, mut statuses) = (Codes::new(), Codes::new());
    let mut priors = Priors::new();
    for b in batches {
        let c = Columns::new(Transaction::TABLE, b);
        let open = OpenColumns::of(&c)?;
        let (id, mer, amt) = (
            c.strings("transaction_id")?,
            c.strings("merchant_id")?,
            c.decimals("amount")?,
        );
        let (cur, st, et) = (
            c.strings("currency")?,
            c.strings("status")?,
            c.timestamps("event_time")?,
        );
        for i in 0..b.num_rows() {
            let event = c.ts_at(et, "event_time", i)?;
            out.push(TxnRef {
                transaction_id: c.str_at(id, "transaction_id", i)?,
                merchant_id: c.str_at(mer, "merchant_id", i)?,
                amount: c.dec_at(amt, "amount", i)?,
                currency: currencies
                    .get(c.str_at(cur, "currency", i)?, |s| c.parse("currency", s))?,
                status: statuses.get(c.str_at(st, "status", i)?, |s| c.parse("status", s))?,
                event_micros: event.timestamp_micros(),
                event_date: event.date_naive(),
                item_date: open.as_ref().map_or(Ok(date), |o| o.date(&c, i, date))?,
                prior: open.as_ref().map_or(Ok(None), |o| priors.get(&c, o, i))?,
            });
        }
    }
    Ok(out)
}

/// Statement lines of batches read with at least [`LINE_COLUMNS`], of the delivery of `date`
/// (or, for open items, with the [`OPEN_COLUMNS`] saying theirs).
pub fn line_refs(batches: &[RecordBatch], date: NaiveDate) -> Result<Vec<LineRef<'_>>> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    let (mut currencies, mut types, mut dates) = (Codes::new(), Codes::new(), Vec::new());
    let mut priors = Priors::new();
    for b in batches {
        let c = Columns::new(StatementLine::TABLE, b);
        let open = OpenColumns::of(&c)?;
        let (sid, tid, mer) = (
            c.strings("statement_id")?,
            c.strings("transaction_id")?,
            c.strings("merchant_id")?,
        );
        let (amt, fee, cur) = (
            c.decimals("amount_posted")?,
            c.decimals("fee_charged")?,
            c.strings("currency")?,
        );
        let (pd, rt) = (c.dates("posting_date")?, c.strings("record_type")?);
        for i in 0..b.num_rows() {
            out.push(LineRef {
                statement_id: c.str_at(sid, "statement_id", i)?,
                transaction_id: c.opt_str_at(tid, i),
                merchant_id: c.opt_str_at(mer, i),
                posting_date: posting_date(&mut dates, &c, pd, i)?,
                amount_posted: c.dec_at(amt, "amount_posted", i)?,
                fee_charged: c.dec_at(fee, "fee_charged", i)?,
                currency: currencies
                    .get(c.str_at(cur, "currency", i)?, |s| c.parse("currency", s))?,
                record_type: c
                    .opt_str_at(rt, i)
                    .map(|s| types.get(s, |s| c.parse("record_type", s)))
                    .transpose()?,
                item_date: open.as_ref().map_or(Ok(date), |o| o.date(&c, i, date))?,
                prior: open.as_ref().map_or(Ok(None), |o| priors.get(&c, o, i))?,
            });
        }
    }
    Ok(out)
}

/// The columns an open item carries beside the curated ones (`index/open/…`): its own
/// business date and the outcome the close that carried it gave it. In a batch that mixes
/// open items with the date's own (the Spark job's groups), an own item has them null.
pub const OPEN_COLUMNS: &[&str] = &["item_date", "prior_status", "prior_mismatch"];

/// The [`OPEN_COLUMNS`] of a batch of open items.
struct OpenColumns<'a> {
    item_date: &'a arrow_array::Date32Array,
    status: &'a arrow_array::StringArray,
    mismatch: &'a arrow_array::StringArray,
}

impl<'a> OpenColumns<'a> {
    /// The open-item columns of `c`, or `None` for a batch of curated rows.
    fn of(c: &Columns<'a>) -> Result<Option<Self>> {
        if !c.has(OPEN_COLUMNS[0]) {
            return Ok(None);
        }
        Ok(Some(Self {
            item_date: c.dates(OPEN_COLUMNS[0])?,
            status: c.strings(OPEN_COLUMNS[1])?,
            mismatch: c.strings(OPEN_COLUMNS[2])?,
        }))
    }

    /// The item's date: its own for an open item, `date` for one of the date's own.
    fn date(&self, c: &Columns<'_>, i: usize, date: NaiveDate) -> Result<NaiveDate> {
        Ok(c.opt_date_at(self.item_date, OPEN_COLUMNS[0], i)?
            .unwrap_or(date))
    }
}

/// Parses the few distinct prior outcomes of open items once each.
struct Priors<'a> {
    statuses: Codes<'a, ReconciledStatus>,
    mismatches: Codes<'a, MismatchType>,
}

impl<'a> Priors<'a> {
    fn new() -> Self {
        Self {
            statuses: Codes::new(),
            mismatches: Codes::new(),
        }
    }

    /// The prior outcome of row `i`; `None` for an item of the date's own (no prior status).
    fn get(&mut self, c: &Columns<'a>, o: &OpenColumns<'a>, i: usize) -> Result<Option<Prior>> {
        let (status, mismatch) = (OPEN_COLUMNS[1], OPEN_COLUMNS[2]);
        if c.opt_str_at(o.status, i).is_none() {
            return Ok(None);
        }
        Ok(Some(Prior {
            status: self
                .statuses
                .get(c.str_at(o.status, status, i)?, |s| c.parse(status, s))?,
            mismatch: self
                .mismatches
                .get(c.str_at(o.mismatch, mismatch, i)?, |s| c.parse(mismatch, s))?,
        }))
    }
}

/// A partition's lines share one or a few posting dates: convert each day number once.
fn posting_date(
    seen: &mut Vec<(i32, NaiveDate)>,
    c: &Columns<'_>,
    col: &arrow_array::Date32Array,
    i: usize,
) -> Result<NaiveDate> {
    use arrow_array::Array;
    if col.is_valid(i) {
        let days = col.value(i);
        if let Some((_, d)) = seen.iter().find(|(k, _)| *k == days) {
            return Ok(*d);
        }
        if let Some(d) = days_to_date(days) {
            seen.push((days, d));
            return Ok(d);
        }
    }
    c.date_at(col, "posting_date", i)
}
