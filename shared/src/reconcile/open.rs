//! Open items: what a close leaves unmatched for the bank's next close to match (design.md
//! §11, docs/daily-close.md "Open items").
//!
//! A transaction stays open while PENDING, and as MISSING_AT_BANK until its window plus the
//! grace period has passed; a line nobody booked stays open for the grace period after its
//! delivery. They are written with the curated columns the engine reads and the
//! [`OPEN_COLUMNS`] (their own date, and the outcome this close gave them).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use super::engine::{PartitionInput, PartitionResult, expected_at_bank};
use super::frame::{LINE_COLUMNS, OPEN_COLUMNS, TXN_COLUMNS};
use crate::columnar::{
    ParquetWriter, WRITE_BATCH_ROWS, date_array, money_array, money_type, opt_string_array,
    string_array, timestamp_array, utc_micros,
};
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate};
use crate::records::{MismatchType, ReconciledStatus};

/// What a close carries forward: positions into the engine's sorted transactions and lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carry {
    /// Transactions still open.
    pub transactions: Vec<u32>,
    /// Lines still open.
    pub lines: Vec<u32>,
}

/// The items of `result` the bank's next close must see again.
pub fn carry_forward(input: &PartitionInput<'_>, result: &PartitionResult<'_>) -> Carry {
    let today = input.business_date.date();
    let grace = input.tolerances.carry_grace_days;
    let cal = input.calendar;
    let transactions = (0..result.transactions.len())
        .filter(|i| {
            let (t, o) = (result.transactions[*i], &result.txn_outcomes[*i]);
            expected_at_bank(t.status)
                && match (o.status, o.mismatch) {
                    (ReconciledStatus::Pending, _) => true,
                    (ReconciledStatus::Unmatched, MismatchType::MissingAtBank) => {
                        today < cal.add_business_days(input.expected_by(t), grace)
                    }
                    _ => false,
                }
        })
        .map(|i| i as u32)
        .collect();
    let lines = (0..result.lines.len())
        .filter(|i| {
            let (l, o) = (result.lines[*i], &result.line_outcomes[*i]);
            o.status == ReconciledStatus::Unmatched
                && o.mismatch == MismatchType::MissingInternal
                && today < cal.add_business_days(l.item_date, grace)
        })
        .map(|i| i as u32)
        .collect();
    Carry {
        transactions,
        lines,
    }
}

/// What the close of a bank and date left open, written after its items: the next close
/// reads its items only when this names the fingerprint it expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenState {
    /// The close's date.
    pub business_date: BusinessDate,
    /// The bank.
    pub bank_id: BankId,
    /// Fingerprint of the close that wrote the open items (its inputs and its chain).
    pub fingerprint: String,
    /// Transactions left open.
    pub transactions: u64,
    /// Lines left open.
    pub lines: u64,
}

fn open_fields(item: &[(&str, DataType, bool)]) -> Arc<Schema> {
    let mut fields: Vec<Field> = item
        .iter()
        .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
        .collect();
    fields.push(Field::new(OPEN_COLUMNS[0], DataType::Date32, false));
    fields.push(Field::new(OPEN_COLUMNS[1], DataType::Utf8, false));
    fields.push(Field::new(OPEN_COLUMNS[2], DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// The columns as Parquet, [`WRITE_BATCH_ROWS`] rows at a time as every table is written (so
/// the Spark job's merge of the same rows writes the same bytes).
fn write(schema: Arc<Schema>, columns: Vec<ArrayRef>) -> Result<Vec<u8>> {
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let mut w = ParquetWriter::with_schema(schema)?;
    let mut at = 0;
    loop {
        let n = WRITE_BATCH_ROWS.min(batch.num_rows() - at);
        w.write(&batch.slice(at, n))?;
        at += n;
        if at == batch.num_rows() {
            break;
        }
    }
    w.finish()
}

/// The open transactions `at` of `result` as Parquet: [`TXN_COLUMNS`] and [`OPEN_COLUMNS`].
pub fn transactions_parquet(result: &PartitionResult<'_>, at: &[u32]) -> Result<Vec<u8>> {
    let t = |i: &u32| result.transactions[*i as usize];
    let o = |i: &u32| &result.txn_outcomes[*i as usize];
    let schema = open_fields(&[
        (TXN_COLUMNS[0], DataType::Utf8, false),
        (TXN_COLUMNS[1], DataType::Utf8, false),
        (TXN_COLUMNS[2], money_type(), false),
        (TXN_COLUMNS[3], DataType::Utf8, false),
        (TXN_COLUMNS[4], DataType::Utf8, false),
        (TXN_COLUMNS[5], utc_micros(), false),
    ]);
    let times = at
        .iter()
        .map(|i| {
            chrono::DateTime::from_timestamp_micros(t(i).event_micros).ok_or_else(|| {
                Error::Invariant(format!(
                    "event time of {} out of range",
                    t(i).transaction_id
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    write(
        schema,
        vec![
            string_array(at.iter().map(|i| t(i).transaction_id)),
            string_array(at.iter().map(|i| t(i).merchant_id)),
            money_array(at.iter().map(|i| t(i).amount))?,
            string_array(at.iter().map(|i| t(i).currency.code())),
            string_array(at.iter().map(|i| t(i).status.as_str())),
            timestamp_array(times),
            date_array(at.iter().map(|i| Some(t(i).item_date))),
            string_array(at.iter().map(|i| o(i).status.as_str())),
            string_array(at.iter().map(|i| o(i).mismatch.as_str())),
        ],
    )
}

/// The open lines `at` of `result` as Parquet: [`LINE_COLUMNS`] and [`OPEN_COLUMNS`].
pub fn lines_parquet(result: &PartitionResult<'_>, at: &[u32]) -> Result<Vec<u8>> {
    let l = |i: &u32| result.lines[*i as usize];
    let o = |i: &u32| &result.line_outcomes[*i as usize];
    let schema = open_fields(&[
        (LINE_COLUMNS[0], DataType::Utf8, false),
        (LINE_COLUMNS[1], DataType::Utf8, true),
        (LINE_COLUMNS[2], DataType::Date32, false),
        (LINE_COLUMNS[3], money_type(), false),
        (LINE_COLUMNS[4], DataType::Utf8, false),
        (LINE_COLUMNS[5], money_type(), false),
        (LINE_COLUMNS[6], DataType::Utf8, true),
        (LINE_COLUMNS[7], DataType::Utf8, true),
    ]);
    write(
        schema,
        vec![
            string_array(at.iter().map(|i| l(i).statement_id)),
            opt_string_array(at.iter().map(|i| l(i).transaction_id)),
            date_array(at.iter().map(|i| Some(l(i).posting_date))),
            money_array(at.iter().map(|i| l(i).amount_posted))?,
            string_array(at.iter().map(|i| l(i).currency.code())),
            money_array(at.iter().map(|i| l(i).fee_charged))?,
            opt_string_array(at.iter().map(|i| l(i).merchant_id)),
            opt_string_array(at.iter().map(|i| l(i).record_type.map(|r| r.as_str()))),
            date_array(at.iter().map(|i| Some(l(i).item_date))),
            string_array(at.iter().map(|i| o(i).status.as_str())),
            string_array(at.iter().map(|i| o(i).mismatch.as_str())),
        ],
    )
}
