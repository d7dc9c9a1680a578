//! Arrow schemas of the canonical records and Parquet read/write of batches of them.
//!
//! Money is `Decimal128(18, 4)`: four places hold every ISO 4217 minor unit, so amounts are
//! stored exactly and read back at their currency's scale. FX rates are `Decimal128(38, 10)`.

use std::sync::Arc;

use arrow_array::builder::{NullBufferBuilder, StringBuilder};
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, PrimitiveArray, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::ids::{BusinessDate, date_to_days, days_to_date};
use crate::money::{Currency, FX_RATE_SCALE, MAX_MINOR_UNIT};
use crate::records::{FeeRule, FraudSignal, Merchant, Policy, StatementLine, Transaction};

mod config_tables;

/// Precision and scale of money columns.
pub const MONEY_PRECISION: u8 = 18;
/// Decimal places of money columns: the largest minor unit of any currency (4), so every
/// amount is stored exactly.
pub const MONEY_SCALE: i8 = MAX_MINOR_UNIT as i8;
/// Precision and scale of ratios (percentages, scores).
pub const RATIO_PRECISION: u8 = 18;
/// Decimal places of ratio columns (percentages, scores).
pub const RATIO_SCALE: i8 = 6;
/// Rows per Parquet row group.
pub const ROW_GROUP_SIZE: usize = 1 << 20;
/// Rows per Arrow batch handed to the Parquet writer (which still cuts row groups at
/// [`ROW_GROUP_SIZE`]): a batch this small stays in cache and its memory is reused by the
/// next, where a row group's worth of columns is hundreds of megabytes of fresh pages.
pub const WRITE_BATCH_ROWS: usize = 1 << 16;

/// A record type with an Arrow schema and lossless conversion to and from record batches.
pub trait Columnar: Sized {
    /// Table name used in errors and in the catalog.
    const TABLE: &'static str;
    /// Columns of a few distinct values (codes, constant ids), dictionary-encoded on write.
    const CODED: &'static [&'static str] = &[];
    /// Columns that keep min/max statistics, when not all (the ones queries filter on):
    /// statistics cost a comparison per value on write.
    const FILTERED: Option<&'static [&'static str]> = None;
    /// The table's Arrow schema, the same for every file written.
    fn schema() -> SchemaRef;
    /// The rows as one record batch of [`Self::schema`].
    fn to_batch(rows: &[Self]) -> Result<RecordBatch>;
    /// The rows of a batch read back; a missing column, wrong type or bad cell fails naming
    /// the table, column and row.
    fn from_batch(batch: &RecordBatch) -> Result<Vec<Self>>;
}

/// Arrow type of money columns: `Decimal128(18, 4)`, exact for every currency.
pub fn money_type() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

/// Arrow type of ratio columns: `Decimal128(18, 6)`.
pub fn ratio_type() -> DataType {
    DataType::Decimal128(RATIO_PRECISION, RATIO_SCALE)
}

/// Arrow type of FX rate columns: `Decimal128(38, 10)`, as exact as an accepted rate.
pub fn fx_type() -> DataType {
    DataType::Decimal128(38, FX_RATE_SCALE as i8)
}

/// Arrow type of timestamp columns: microseconds, zone `UTC`.
pub fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn field(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

/// The exact mantissa of `value` at `scale`; fails rather than round, or overflow `precision`.
pub fn decimal_to_i128(value: Decimal, scale: i8, precision: u8) -> Result<i128> {
    let target = u32::try_from(scale).map_err(|_| Error::Invariant("negative scale".into()))?;
    let limit = 10i128.pow(u32::from(precision));
    let overflow = || Error::InvalidAmount {
        value: value.to_string(),
        reason: format!("exceeds Decimal128({precision}, {scale})"),
    };
    // Fast path (the common case): already at or below the target scale.
    let m = if value.scale() <= target {
        value
            .mantissa()
            .checked_mul(10i128.pow(target - value.scale()))
            .ok_or_else(overflow)?
    } else {
        let normalized = value.normalize();
        if normalized.scale() > target {
            return Err(Error::InvalidAmount {
                value: value.to_string(),
                reason: format!("more than {target} decimal places cannot be stored"),
            });
        }
        normalized.mantissa() * 10i128.pow(target - normalized.scale())
    };
    if m.abs() >= limit {
        return Err(overflow());
    }
    Ok(m)
}

fn decimal_from_i128(m: i128, scale: i8) -> Result<Decimal> {
    let s = u32::try_from(scale).map_err(|_| Error::Invariant("negative scale".into()))?;
    Decimal::try_from_i128_with_scale(m, s).map_err(|e| Error::InvalidAmount {
        value: m.to_string(),
        reason: e.to_string(),
    })
}

/// A primitive column filled in one pass over `values`, with nulls for `None`, or the first
/// error of `values`. (Arrow's `FromIterator` goes through a builder value by value, which
/// costs several times more on a million-row column.)
pub fn try_primitive_array<T: ArrowPrimitiveType>(
    values: impl ExactSizeIterator<Item = Result<Option<T::Native>>>,
) -> Result<PrimitiveArray<T>> {
    let n = values.len();
    let (mut v, mut nulls) = (Vec::with_capacity(n), NullBufferBuilder::new(n));
    for x in values {
        match x? {
            Some(x) => {
                v.push(x);
                nulls.append_non_null();
            }
            None => {
                v.push(T::Native::default());
                nulls.append_null();
            }
        }
    }
    Ok(PrimitiveArray::new(v.into(), nulls.finish()))
}

/// Builds a decimal column from exact values.
pub fn decimal_array(
    values: impl IntoIterator<Item = Option<Decimal>>,
    precision: u8,
    scale: i8,
) -> Result<ArrayRef> {
    let v = values
        .into_iter()
        .map(|d| d.map(|d| decimal_to_i128(d, scale, precision)).transpose())
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(
        Decimal128Array::from(v).with_precision_and_scale(precision, scale)?,
    ))
}

/// A money column (`Decimal128(18, 4)`); fails for an amount that does not fit.
pub fn money_array(values: impl IntoIterator<Item = Decimal>) -> Result<ArrayRef> {
    decimal_array(values.into_iter().map(Some), MONEY_PRECISION, MONEY_SCALE)
}

/// A string column without nulls.
pub fn string_array<'a, I>(values: I) -> ArrayRef
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: Clone,
{
    opt_string_array(values.into_iter().map(Some))
}

/// The values are walked twice: once to size the buffers exactly (growing a large value
/// buffer copies it each time), once to fill them.
pub fn opt_string_array<'a, I>(values: I) -> ArrayRef
where
    I: IntoIterator<Item = Option<&'a str>>,
    I::IntoIter: Clone,
{
    let values = values.into_iter();
    let (n, bytes) = values
        .clone()
        .fold((0, 0), |(n, b), v| (n + 1, b + v.map_or(0, str::len)));
    let mut b = StringBuilder::with_capacity(n, bytes);
    b.extend(values);
    Arc::new(b.finish())
}

/// A `Date32` column (days since 1970-01-01); `None` is null.
pub fn date_array(values: impl IntoIterator<Item = Option<NaiveDate>>) -> ArrayRef {
    Arc::new(
        values
            .into_iter()
            .map(|d| d.map(date_to_days))
            .collect::<Date32Array>(),
    )
}

/// A UTC microsecond timestamp column without nulls.
pub fn timestamp_array(values: impl IntoIterator<Item = DateTime<Utc>>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from_iter_values(
            values.into_iter().map(|t| t.timestamp_micros()),
        )
        .with_timezone("UTC"),
    )
}

/// Typed access to the columns of a batch, with errors naming table, column and row.
pub struct Columns<'a> {
    table: &'static str,
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    /// Access to the columns of `batch`, errors naming `table`.
    pub fn new(table: &'static str, batch: &'a RecordBatch) -> Self {
        Self { table, batch }
    }

    fn err(&self, column: &str, reason: impl Into<String>) -> Error {
        Error::Schema {
            table: self.table,
            column: column.to_string(),
            reason: reason.into(),
        }
    }

    fn get<T: Array + 'static>(&self, name: &str) -> Result<&'a T> {
        let col = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| self.err(name, "missing"))?;
        col.as_any()
            .downcast_ref::<T>()
            .ok_or_else(|| self.err(name, format!("unexpected type {}", col.data_type())))
    }

    /// Whether the batch has a column `name`.
    pub fn has(&self, name: &str) -> bool {
        self.batch.column_by_name(name).is_some()
    }

    /// Column `name` as a string array; fails when it is missing or of another type.
    pub fn strings(&self, name: &str) -> Result<&'a StringArray> {
        self.get(name)
    }

    /// Column `name` as a decimal array; fails when it is missing or of another type.
    pub fn decimals(&self, name: &str) -> Result<&'a Decimal128Array> {
        self.get(name)
    }

    /// Column `name` as a date array; fails when it is missing or of another type.
    pub fn dates(&self, name: &str) -> Result<&'a Date32Array> {
        self.get(name)
    }

    /// Column `name` as a timestamp array; fails when it is missing or of another type.
    pub fn timestamps(&self, name: &str) -> Result<&'a TimestampMicrosecondArray> {
        self.get(name)
    }

    /// Column `name` as a boolean array; fails when it is missing or of another type.
    pub fn bools(&self, name: &str) -> Result<&'a BooleanArray> {
        self.get(name)
    }

    /// A required string cell.
    pub fn str_at(&self, col: &'a StringArray, name: &str, row: usize) -> Result<&'a str> {
        self.opt_str_at(col, row)
            .ok_or_else(|| self.err(name, format!("null at row {row}")))
    }

    /// An optional string cell (`None` for null).
    pub fn opt_str_at(&self, col: &'a StringArray, row: usize) -> Option<&'a str> {
        col.is_valid(row).then(|| col.value(row))
    }

    /// An optional decimal cell, at the column's scale (`None` for null).
    pub fn opt_dec_at(&self, col: &Decimal128Array, row: usize) -> Result<Option<Decimal>> {
        if col.is_null(row) {
            return Ok(None);
        }
        decimal_from_i128(col.value(row), col.scale()).map(Some)
    }

    /// A required decimal cell; null fails naming the column and row.
    pub fn dec_at(&self, col: &Decimal128Array, name: &str, row: usize) -> Result<Decimal> {
        self.opt_dec_at(col, row)?
            .ok_or_else(|| self.err(name, format!("null at row {row}")))
    }

    /// An optional date cell; a day count outside chrono's range fails.
    pub fn opt_date_at(
        &self,
        col: &Date32Array,
        name: &str,
        row: usize,
    ) -> Result<Option<NaiveDate>> {
        if col.is_null(row) {
            return Ok(None);
        }
        days_to_date(col.value(row))
            .map(Some)
            .ok_or_else(|| self.err(name, format!("date out of range at row {row}")))
    }

    /// A required date cell.
    pub fn date_at(&self, col: &Date32Array, name: &str, row: usize) -> Result<NaiveDate> {
        self.opt_date_at(col, name, row)?
            .ok_or_else(|| self.err(name, format!("null at row {row}")))
    }

    /// A required UTC timestamp cell.
    pub fn ts_at(
        &self,
        col: &TimestampMicrosecondArray,
        name: &str,
        row: usize,
    ) -> Result<DateTime<Utc>> {
        if col.is_null(row) {
            return Err(self.err(name, format!("null at row {row}")));
        }
        DateTime::from_timestamp_micros(col.value(row))
            .ok_or_else(|| self.err(name, format!("timestamp out of range at row {row}")))
    }

    /// Parses a cell into a domain type, naming the column on failure.
    pub fn parse<T: std::str::FromStr<Err = Error>>(&self, name: &str, value: &str) -> Result<T> {
        value
            .parse()
            .map_err(|e: Error| self.err(name, e.to_string()))
    }
}

/// `batch` with the validity buffer of every column without nulls dropped, as the
/// builders make them: the Parquet writer's pages differ with one, so the same rows taken
/// from other arrays (sliced, interleaved, read back) would not give the same bytes.
pub fn canonical(batch: RecordBatch) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| {
            if c.nulls().is_some_and(|n| n.null_count() == 0) {
                Ok(arrow_array::make_array(
                    c.to_data().into_builder().nulls(None).build()?,
                ))
            } else {
                Ok(c.clone())
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Writes rows as one deterministic, Snappy-compressed Parquet file.
pub fn write_parquet<T: Columnar>(rows: &[T]) -> Result<Vec<u8>> {
    // Small Arrow batches, so a large table is never held twice.
    let mut writer = ParquetWriter::new::<T>()?;
    for chunk in rows.chunks(WRITE_BATCH_ROWS) {
        writer.write(&T::to_batch(chunk)?)?;
    }
    if rows.is_empty() {
        writer.write(&T::to_batch(rows)?)?;
    }
    writer.finish()
}

/// A Parquet file being written batch by batch, with the product's writer properties.
pub struct ParquetWriter {
    writer: ArrowWriter<Vec<u8>>,
}

impl ParquetWriter {
    /// A writer of table `T`'s schema.
    pub fn new<T: Columnar>() -> Result<Self> {
        Ok(Self {
            writer: ArrowWriter::try_new(
                Vec::new(),
                T::schema(),
                Some(writer_properties(T::CODED, T::FILTERED)),
            )?,
        })
    }

    /// A writer of a schema that is no table's (the close's open items), without
    /// dictionaries or filter statistics.
    pub fn with_schema(schema: SchemaRef) -> Result<Self> {
        Ok(Self {
            writer: ArrowWriter::try_new(Vec::new(), schema, Some(writer_properties(&[], None)))?,
        })
    }

    /// Appends a batch of the table's schema; row groups are cut at [`ROW_GROUP_SIZE`] rows.
    /// The same rows give the same bytes whatever arrays hold them ([`canonical`]).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        Ok(self.writer.write(&canonical(batch.clone())?)?)
    }

    /// Closes the file and returns its bytes.
    pub fn finish(self) -> Result<Vec<u8>> {
        Ok(self.writer.into_inner()?)
    }
}

fn writer_properties(coded: &[&str], filtered: Option<&[&str]>) -> WriterProperties {
    // Dictionaries only for code columns: most columns are ids or amounts, unique per row,
    // where building a dictionary only costs time; Snappy compresses the rest.
    let mut b = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_compression(Compression::SNAPPY)
        .set_created_by("recon".to_string())
        .set_max_row_group_row_count(Some(ROW_GROUP_SIZE))
        .set_write_batch_size(8192);
    for c in coded {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*c), true);
    }
    if let Some(filtered) = filtered {
        b = b.set_statistics_enabled(EnabledStatistics::None);
        for c in filtered {
            b = b.set_column_statistics_enabled(ColumnPath::from(*c), EnabledStatistics::Page);
        }
    }
    b.build()
}

/// Reads every batch of a Parquet file.
pub fn read_batches(bytes: Bytes) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(64 * 1024)
        .build()?;
    reader
        .map(|b| b.map_err(Error::from))
        .collect::<Result<Vec<_>>>()
}

/// Reads a Parquet file of `T` rows.
pub fn read_parquet<T: Columnar>(bytes: Bytes) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for batch in read_batches(bytes)? {
        out.extend(T::from_batch(&batch)?);
    }
    Ok(out)
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(schema, columns)?)
}

impl Columnar for Transaction {
    const TABLE: &'static str = "transactions";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("transaction_id", DataType::Utf8, false),
            field("merchant_id", DataType::Utf8, false),
            field("user_id", DataType::Utf8, false),
            field("amount", money_type(), false),
            field("currency", DataType::Utf8, false),
            field("status", DataType::Utf8, false),
            field("event_time", utc_micros(), false),
            field("payment_method", DataType::Utf8, false),
            field("original_transaction_id", DataType::Utf8, true),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        batch(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.transaction_id.as_str())),
                string_array(rows.iter().map(|r| r.merchant_id.as_str())),
                string_array(rows.iter().map(|r| r.user_id.as_str())),
                money_array(rows.iter().map(|r| r.amount))?,
                string_array(rows.iter().map(|r| r.currency.code())),
                string_array(rows.iter().map(|r| r.status.as_str())),
                timestamp_array(rows.iter().map(|r| r.event_time)),
                string_array(rows.iter().map(|r| r.payment_method.as_str())),
                opt_string_array(
                    rows.iter()
                        .map(|r| r.original_transaction_id.as_ref().map(|t| t.as_str())),
                ),
            ],
        )
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let (id, mer, usr) = (
            c.strings("transaction_id")?,
            c.strings("merchant_id")?,
            c.strings("user_id")?,
        );
        let (amt, cur, st) = (
            c.decimals("amount")?,
            c.strings("currency")?,
            c.strings("status")?,
        );
        let (et, pm, orig) = (
            c.timestamps("event_time")?,
            c.strings("payment_method")?,
            c.strings("original_transaction_id")?,
        );
        (0..b.num_rows())
            .map(|i| {
                let currency: Currency = c.parse("currency", c.str_at(cur, "currency", i)?)?;
                Ok(Transaction {
                    transaction_id: c
                        .parse("transaction_id", c.str_at(id, "transaction_id", i)?)?,
                    merchant_id: c.parse("merchant_id", c.str_at(mer, "merchant_id", i)?)?,
                    user_id: c.parse("user_id", c.str_at(usr, "user_id", i)?)?,
                    amount: currency.exact(c.dec_at(amt, "amount", i)?)?,
                    currency,
                    status: c.parse("status", c.str_at(st, "status", i)?)?,
                    event_time: c.ts_at(et, "event_time", i)?,
                    payment_method: c
                        .parse("payment_method", c.str_at(pm, "payment_method", i)?)?,
                    original_transaction_id: c
                        .opt_str_at(orig, i)
                        .map(|s| c.parse("original_transaction_id", s))
                        .transpose()?,
                })
            })
            .collect()
    }
}

impl Columnar for StatementLine {
    const TABLE: &'static str = "statements";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("statement_id", DataType::Utf8, false),
            field("transaction_id", DataType::Utf8, true),
            field("bank_id", DataType::Utf8, false),
            field("posting_date", DataType::Date32, false),
            field("amount_posted", money_type(), false),
            field("currency", DataType::Utf8, false),
            field("fee_charged", money_type(), false),
            field("merchant_id", DataType::Utf8, true),
            field("reference", DataType::Utf8, false),
            field("record_type", DataType::Utf8, true),
            field("original_amount", money_type(), true),
            field("original_currency", DataType::Utf8, true),
            field("fx_rate", fx_type(), true),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        batch(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.statement_id.as_str())),
                opt_string_array(
                    rows.iter()
                        .map(|r| r.transaction_id.as_ref().map(|t| t.as_str())),
                ),
                string_array(rows.iter().map(|r| r.bank_id.as_str())),
                date_array(rows.iter().map(|r| Some(r.posting_date.date()))),
                money_array(rows.iter().map(|r| r.amount_posted))?,
                string_array(rows.iter().map(|r| r.currency.code())),
                money_array(rows.iter().map(|r| r.fee_charged))?,
                opt_string_array(
                    rows.iter()
                        .map(|r| r.merchant_id.as_ref().map(|m| m.as_str())),
                ),
                string_array(rows.iter().map(|r| r.reference.as_str())),
                opt_string_array(rows.iter().map(|r| r.record_type.map(|t| t.as_str()))),
                decimal_array(
                    rows.iter().map(|r| r.original_amount),
                    MONEY_PRECISION,
                    MONEY_SCALE,
                )?,
                opt_string_array(
                    rows.iter()
                        .map(|r| r.original_currency.as_ref().map(|c| c.code())),
                ),
                decimal_array(rows.iter().map(|r| r.fx_rate), 38, FX_RATE_SCALE as i8)?,
            ],
        )
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let (sid, tid, bank) = (
            c.strings("statement_id")?,
            c.strings("transaction_id")?,
            c.strings("bank_id")?,
        );
        let (pd, amt, cur) = (
            c.dates("posting_date")?,
            c.decimals("amount_posted")?,
            c.strings("currency")?,
        );
        let (fee, mer, rf) = (
            c.decimals("fee_charged")?,
            c.strings("merchant_id")?,
            c.strings("reference")?,
        );
        let (rt, oa, oc) = (
            c.strings("record_type")?,
            c.decimals("original_amount")?,
            c.strings("original_currency")?,
        );
        let fx = c.decimals("fx_rate")?;
        (0..b.num_rows())
            .map(|i| {
                let currency: Currency = c.parse("currency", c.str_at(cur, "currency", i)?)?;
                let original_currency: Option<Currency> = c
                    .opt_str_at(oc, i)
                    .map(|s| c.parse("original_currency", s))
                    .transpose()?;
                let original_amount = match (c.opt_dec_at(oa, i)?, original_currency) {
                    (Some(a), Some(oc)) => Some(oc.exact(a)?),
                    (a, _) => a,
                };
                Ok(StatementLine {
                    statement_id: c.parse("statement_id", c.str_at(sid, "statement_id", i)?)?,
                    transaction_id: c
                        .opt_str_at(tid, i)
                        .map(|s| c.parse("transaction_id", s))
                        .transpose()?,
                    bank_id: c.parse("bank_id", c.str_at(bank, "bank_id", i)?)?,
                    posting_date: BusinessDate::from_date(c.date_at(pd, "posting_date", i)?)?,
                    amount_posted: currency.exact(c.dec_at(amt, "amount_posted", i)?)?,
                    currency,
                    fee_charged: currency.exact(c.dec_at(fee, "fee_charged", i)?)?,
                    merchant_id: c
                        .opt_str_at(mer, i)
                        .map(|s| c.parse("merchant_id", s))
                        .transpose()?,
                    reference: c.str_at(rf, "reference", i)?.to_string(),
                    record_type: c
                        .opt_str_at(rt, i)
                        .map(|s| c.parse("record_type", s))
                        .transpose()?,
                    original_amount,
                    original_currency,
                    fx_rate: c.opt_dec_at(fx, i)?.map(|d| d.normalize()),
                })
            })
            .collect()
    }
}

impl Columnar for crate::source::Reject {
    const TABLE: &'static str = "rejects";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("source_id", DataType::Utf8, false),
            field("file", DataType::Utf8, false),
            field("record", DataType::UInt64, false),
            field("reason", DataType::Utf8, false),
            field("detail", DataType::Utf8, false),
            field("raw", DataType::Utf8, false),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        batch(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.source_id.as_str())),
                string_array(rows.iter().map(|r| r.file.as_str())),
                Arc::new(arrow_array::UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.record),
                )),
                string_array(rows.iter().map(|r| r.reason.as_str())),
                string_array(rows.iter().map(|r| r.detail.as_str())),
                string_array(rows.iter().map(|r| r.raw.as_str())),
            ],
        )
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let (src, file, det, raw, reason) = (
            c.strings("source_id")?,
            c.strings("file")?,
            c.strings("detail")?,
            c.strings("raw")?,
            c.strings("reason")?,
        );
        let rec = c.get::<arrow_array::UInt64Array>("record")?;
        (0..b.num_rows())
            .map(|i| {
                let reason: String = c.str_at(reason, "reason", i)?.to_string();
                Ok(crate::source::Reject {
                    source_id: c.parse("source_id", c.str_at(src, "source_id", i)?)?,
                    file: c.str_at(file, "file", i)?.to_string(),
                    record: rec.value(i),
                    reason: serde_json::from_value(serde_json::Value::String(reason))?,
                    detail: c.str_at(det, "detail", i)?.to_string(),
                    raw: c.str_at(raw, "raw", i)?.to_string(),
                })
            })
            .collect()
    }
}
