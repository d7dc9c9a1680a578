//! The rows the final aggregation writes: `index/final` ([`FinalRow`]) and `index/kpis`
//! ([`KpiRow`]), typed, with their Arrow/Parquet form (design.md §6).

use std::sync::Arc;

use arrow_array::{Array, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::columnar::{
    Columnar, Columns, MONEY_PRECISION, MONEY_SCALE, RATIO_PRECISION, RATIO_SCALE, date_array,
    decimal_array, money_type, opt_string_array, ratio_type, string_array, timestamp_array,
    utc_micros,
};
use crate::error::{Error, Result};
use crate::ids::{BankId, MerchantId, TransactionId};
use crate::index_item::{PolicyFlag, RiskLabel, SettlementDetail};
use crate::money::Currency;
use crate::records::{MismatchType, ReconciledStatus, SettlementStatus, TxnStatus};

/// One row of `index/final` (design.md §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRow {
    /// The ledger transaction.
    pub transaction_id: TransactionId,
    /// The merchant paid.
    pub merchant_id: MerchantId,
    /// The acquiring bank whose partition reconciled the transaction.
    pub bank_id: BankId,
    /// `PiiKey::tokenize` of the user id.
    pub user_token: String,
    /// The transaction amount in its own currency, exact.
    pub amount: Decimal,
    /// The transaction's currency.
    pub currency: Currency,
    /// The status by the derive-status rule: chargeback when disputed, else the stream's
    /// newest, else the ledger's.
    pub status: TxnStatus,
    /// Whether and how the bank settled the transaction.
    pub settlement_status: SettlementStatus,
    /// The stream's fraud score in [0, 1]; `None` without a signal.
    pub fraud_score: Option<Decimal>,
    /// The stream's risk label; `None` when the transaction is not in the live index.
    pub risk_label: Option<RiskLabel>,
    /// Sorted, without repeats; written `|`-joined (null when there is none).
    #[serde(with = "crate::index_item::joined_flags")]
    pub policy_flags: Vec<PolicyFlag>,
    /// In the statement currency.
    pub discrepancy: Option<Decimal>,
    /// The currency of the bank statement the transaction settles in.
    pub statement_currency: Currency,
    /// The outcome of the reconciliation (MATCHED, UNMATCHED, PENDING …).
    pub reconciled_status: ReconciledStatus,
    /// The kind of break, `NONE` when there is none.
    pub mismatch_type: MismatchType,
    /// When the close that decided the row ran (UTC).
    pub reconciliation_timestamp: DateTime<Utc>,
    /// How it was settled and the break it has or had (§11).
    #[serde(default)]
    pub detail: SettlementDetail,
}

/// Merchant daily KPIs, per settlement currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiRow {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The settlement (statement) currency every amount of the row is in.
    pub currency: Currency,
    /// Transactions reconciled for the merchant on the day, refunds included.
    pub transactions: i64,
    /// Sum of the expected amounts of the non-refund transactions.
    pub volume: Decimal,
    /// Refunded transactions.
    pub refunds: i64,
    /// Sum of the refunded amounts, positive.
    pub refund_amount: Decimal,
    /// Transactions whose settlement is disputed.
    pub chargebacks: i64,
    /// Fees the bank charged on the merchant's statement lines.
    pub fees: Decimal,
    /// Transactions with a mismatch (any type but NONE).
    pub mismatched: i64,
    /// `mismatched / transactions`, rounded to 4 decimals (0 without transactions).
    pub mismatch_rate: Decimal,
    /// Sum of the discrepancies (posted minus expected), each counted once.
    pub net_discrepancy: Decimal,
    /// Transactions whose break is open after the close.
    pub breaks_open: i64,
    /// Transactions whose break a person resolved, and the resolution holds (§12).
    pub breaks_resolved_by_people: i64,
    /// Transactions whose break the engine resolved (its items matched at last).
    pub breaks_resolved_by_engine: i64,
}

impl KpiRow {
    /// A merchant and currency with nothing counted yet.
    pub fn empty(merchant_id: MerchantId, currency: Currency) -> Self {
        Self {
            merchant_id,
            currency,
            transactions: 0,
            volume: Decimal::ZERO,
            refunds: 0,
            refund_amount: Decimal::ZERO,
            chargebacks: 0,
            fees: Decimal::ZERO,
            mismatched: 0,
            breaks_open: 0,
            breaks_resolved_by_people: 0,
            breaks_resolved_by_engine: 0,
            mismatch_rate: Decimal::ZERO,
            net_discrepancy: Decimal::ZERO,
        }
    }
}

impl Columnar for FinalRow {
    const TABLE: &'static str = "final_index";

    fn schema() -> SchemaRef {
        let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
        Arc::new(Schema::new(vec![
            f("transaction_id", DataType::Utf8, false),
            f("merchant_id", DataType::Utf8, false),
            f("bank_id", DataType::Utf8, false),
            f("user_token", DataType::Utf8, false),
            f("amount", money_type(), false),
            f("currency", DataType::Utf8, false),
            f("status", DataType::Utf8, false),
            f("settlement_status", DataType::Utf8, false),
            f("fraud_score", ratio_type(), true),
            f("risk_label", DataType::Utf8, true),
            f("policy_flags", DataType::Utf8, true),
            f("discrepancy", money_type(), true),
            f("statement_currency", DataType::Utf8, false),
            f("reconciled_status", DataType::Utf8, false),
            f("mismatch_type", DataType::Utf8, false),
            f("reconciliation_timestamp", utc_micros(), false),
            f("settled_on", DataType::Date32, true),
            f("statement_ids", DataType::Utf8, true),
            f("match_rule", DataType::Utf8, true),
            f("confidence", ratio_type(), true),
            f("break_id", DataType::Utf8, true),
            f("first_seen", DataType::Date32, true),
            f("age_days", DataType::Int32, true),
            f("resolved_on", DataType::Date32, true),
            f("break_status", DataType::Utf8, true),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        let flags: Vec<Option<String>> = rows
            .iter()
            .map(|r| crate::index_item::joined_flags::text(&r.policy_flags))
            .collect();
        let ids: Vec<Option<String>> = rows
            .iter()
            .map(|r| (!r.detail.statement_ids.is_empty()).then(|| r.detail.statement_ids.join("|")))
            .collect();
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.transaction_id.as_str())),
                string_array(rows.iter().map(|r| r.merchant_id.as_str())),
                string_array(rows.iter().map(|r| r.bank_id.as_str())),
                string_array(rows.iter().map(|r| r.user_token.as_str())),
                decimal_array(
                    rows.iter().map(|r| Some(r.amount)),
                    MONEY_PRECISION,
                    MONEY_SCALE,
                )?,
                string_array(rows.iter().map(|r| r.currency.code())),
                string_array(rows.iter().map(|r| r.status.as_str())),
                string_array(rows.iter().map(|r| r.settlement_status.as_str())),
                decimal_array(
                    rows.iter().map(|r| r.fraud_score),
                    RATIO_PRECISION,
                    RATIO_SCALE,
                )?,
                opt_string_array(rows.iter().map(|r| r.risk_label.map(RiskLabel::as_str))),
                opt_string_array(flags.iter().map(Option::as_deref)),
                decimal_array(
                    rows.iter().map(|r| r.discrepancy),
                    MONEY_PRECISION,
                    MONEY_SCALE,
                )?,
                string_array(rows.iter().map(|r| r.statement_currency.code())),
                string_array(rows.iter().map(|r| r.reconciled_status.as_str())),
                string_array(rows.iter().map(|r| r.mismatch_type.as_str())),
                timestamp_array(rows.iter().map(|r| r.reconciliation_timestamp)),
                date_array(rows.iter().map(|r| r.detail.settled_on)),
                opt_string_array(ids.iter().map(Option::as_deref)),
                opt_string_array(rows.iter().map(|r| r.detail.match_rule.map(|m| m.as_str()))),
                decimal_array(
                    rows.iter().map(|r| r.detail.confidence),
                    RATIO_PRECISION,
                    RATIO_SCALE,
                )?,
                opt_string_array(rows.iter().map(|r| r.detail.break_id.as_deref())),
                date_array(rows.iter().map(|r| r.detail.first_seen)),
                Arc::new(
                    rows.iter()
                        .map(|r| r.detail.age_days)
                        .collect::<Int32Array>(),
                ),
                date_array(rows.iter().map(|r| r.detail.resolved_on)),
                opt_string_array(
                    rows.iter()
                        .map(|r| r.detail.break_status.map(|s| s.as_str())),
                ),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let s = |n| c.strings(n);
        let (id, mer, bank, tok, cur, st, ss) = (
            s("transaction_id")?,
            s("merchant_id")?,
            s("bank_id")?,
            s("user_token")?,
            s("currency")?,
            s("status")?,
            s("settlement_status")?,
        );
        let (risk, flags, scur, rs, mm) = (
            s("risk_label")?,
            s("policy_flags")?,
            s("statement_currency")?,
            s("reconciled_status")?,
            s("mismatch_type")?,
        );
        let (amt, score, disc) = (
            c.decimals("amount")?,
            c.decimals("fraud_score")?,
            c.decimals("discrepancy")?,
        );
        let ts = c.timestamps("reconciliation_timestamp")?;
        let (settled, sids, rule, conf, brk) = (
            c.dates("settled_on")?,
            s("statement_ids")?,
            s("match_rule")?,
            c.decimals("confidence")?,
            s("break_id")?,
        );
        let (first, resolved) = (c.dates("first_seen")?, c.dates("resolved_on")?);
        let bstat = s("break_status")?;
        let age = b
            .column_by_name("age_days")
            .and_then(|a| a.as_any().downcast_ref::<Int32Array>())
            .ok_or_else(|| Error::Schema {
                table: Self::TABLE,
                column: "age_days".into(),
                reason: "missing or not Int32".into(),
            })?;
        (0..b.num_rows())
            .map(|i| {
                let currency: Currency = c.parse("currency", c.str_at(cur, "currency", i)?)?;
                let statement_currency: Currency = c.parse(
                    "statement_currency",
                    c.str_at(scur, "statement_currency", i)?,
                )?;
                Ok(FinalRow {
                    transaction_id: c
                        .parse("transaction_id", c.str_at(id, "transaction_id", i)?)?,
                    merchant_id: c.parse("merchant_id", c.str_at(mer, "merchant_id", i)?)?,
                    bank_id: c.parse("bank_id", c.str_at(bank, "bank_id", i)?)?,
                    user_token: c.str_at(tok, "user_token", i)?.to_string(),
                    amount: currency.exact(c.dec_at(amt, "amount", i)?)?,
                    currency,
                    status: c.parse("status", c.str_at(st, "status", i)?)?,
                    settlement_status: c
                        .parse("settlement_status", c.str_at(ss, "settlement_status", i)?)?,
                    fraud_score: c.opt_dec_at(score, i)?.map(|d| d.normalize()),
                    risk_label: c
                        .opt_str_at(risk, i)
                        .map(|v| c.parse("risk_label", v))
                        .transpose()?,
                    policy_flags: match c.opt_str_at(flags, i) {
                        Some(v) => v
                            .split('|')
                            .map(|f| c.parse("policy_flags", f))
                            .collect::<Result<_>>()?,
                        None => Vec::new(),
                    },
                    discrepancy: c
                        .opt_dec_at(disc, i)?
                        .map(|d| statement_currency.exact(d))
                        .transpose()?,
                    statement_currency,
                    reconciled_status: c
                        .parse("reconciled_status", c.str_at(rs, "reconciled_status", i)?)?,
                    mismatch_type: c.parse("mismatch_type", c.str_at(mm, "mismatch_type", i)?)?,
                    reconciliation_timestamp: c.ts_at(ts, "reconciliation_timestamp", i)?,
                    detail: SettlementDetail {
                        settled_on: c.opt_date_at(settled, "settled_on", i)?,
                        statement_ids: c
                            .opt_str_at(sids, i)
                            .map(|v| v.split('|').map(str::to_string).collect())
                            .unwrap_or_default(),
                        match_rule: c
                            .opt_str_at(rule, i)
                            .map(|v| c.parse("match_rule", v))
                            .transpose()?,
                        confidence: c.opt_dec_at(conf, i)?.map(|d| d.normalize()),
                        break_id: c.opt_str_at(brk, i).map(str::to_string),
                        first_seen: c.opt_date_at(first, "first_seen", i)?,
                        age_days: age.is_valid(i).then(|| age.value(i)),
                        resolved_on: c.opt_date_at(resolved, "resolved_on", i)?,
                        break_status: c
                            .opt_str_at(bstat, i)
                            .map(|v| c.parse("break_status", v))
                            .transpose()?,
                    },
                })
            })
            .collect()
    }
}

impl Columnar for KpiRow {
    const TABLE: &'static str = "merchant_kpis";

    fn schema() -> SchemaRef {
        let f = |n: &str, t: DataType| Field::new(n, t, false);
        let wide = DataType::Decimal128(38, MONEY_SCALE);
        Arc::new(Schema::new(vec![
            f("merchant_id", DataType::Utf8),
            f("currency", DataType::Utf8),
            f("transactions", DataType::Int64),
            f("volume", wide.clone()),
            f("refunds", DataType::Int64),
            f("refund_amount", wide.clone()),
            f("chargebacks", DataType::Int64),
            f("fees", wide.clone()),
            f("mismatched", DataType::Int64),
            f("mismatch_rate", ratio_type()),
            f("net_discrepancy", wide),
            f("breaks_open", DataType::Int64),
            f("breaks_resolved_by_people", DataType::Int64),
            f("breaks_resolved_by_engine", DataType::Int64),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        let wide = |g: fn(&KpiRow) -> Decimal| {
            decimal_array(rows.iter().map(|r| Some(g(r))), 38, MONEY_SCALE)
        };
        let int = |g: fn(&KpiRow) -> i64| {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(g))) as arrow_array::ArrayRef
        };
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.merchant_id.as_str())),
                string_array(rows.iter().map(|r| r.currency.code())),
                int(|r| r.transactions),
                wide(|r| r.volume)?,
                int(|r| r.refunds),
                wide(|r| r.refund_amount)?,
                int(|r| r.chargebacks),
                wide(|r| r.fees)?,
                int(|r| r.mismatched),
                decimal_array(
                    rows.iter().map(|r| Some(r.mismatch_rate)),
                    RATIO_PRECISION,
                    RATIO_SCALE,
                )?,
                wide(|r| r.net_discrepancy)?,
                int(|r| r.breaks_open),
                int(|r| r.breaks_resolved_by_people),
                int(|r| r.breaks_resolved_by_engine),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let int = |n: &str| {
            b.column_by_name(n)
                .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| Error::Schema {
                    table: Self::TABLE,
                    column: n.into(),
                    reason: "missing".into(),
                })
        };
        let (m, cur) = (c.strings("merchant_id")?, c.strings("currency")?);
        let (n, rf, cb, mm) = (
            int("transactions")?,
            int("refunds")?,
            int("chargebacks")?,
            int("mismatched")?,
        );
        let (bo, bp, be) = (
            int("breaks_open")?,
            int("breaks_resolved_by_people")?,
            int("breaks_resolved_by_engine")?,
        );
        let (vol, ra, fees, rate, nd) = (
            c.decimals("volume")?,
            c.decimals("refund_amount")?,
            c.decimals("fees")?,
            c.decimals("mismatch_rate")?,
            c.decimals("net_discrepancy")?,
        );
        (0..b.num_rows())
            .map(|i| {
                let currency: Currency = c.parse("currency", c.str_at(cur, "currency", i)?)?;
                Ok(KpiRow {
                    merchant_id: c.parse("merchant_id", c.str_at(m, "merchant_id", i)?)?,
                    currency,
                    transactions: n.value(i),
                    volume: currency.exact(c.dec_at(vol, "volume", i)?)?,
                    refunds: rf.value(i),
                    refund_amount: currency.exact(c.dec_at(ra, "refund_amount", i)?)?,
                    chargebacks: cb.value(i),
                    fees: currency.exact(c.dec_at(fees, "fees", i)?)?,
                    mismatched: mm.value(i),
                    mismatch_rate: c.dec_at(rate, "mismatch_rate", i)?.normalize(),
                    net_discrepancy: currency.exact(c.dec_at(nd, "net_discrepancy", i)?)?,
                    breaks_open: bo.value(i),
                    breaks_resolved_by_people: bp.value(i),
                    breaks_resolved_by_engine: be.value(i),
                })
            })
            .collect()
    }
}
