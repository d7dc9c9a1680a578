//! Batch index rows (DESIGN §6) and the break registry that keeps a mismatch's identity and
//! age from one run to the next.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::engine::{Outcome, PartitionResult};
use crate::columnar::{
    Columnar, Columns, MONEY_PRECISION, MONEY_SCALE, RATIO_PRECISION, RATIO_SCALE, date_array,
    decimal_array, money_type, opt_string_array, ratio_type, string_array,
};
use crate::error::Result;
use crate::ids::{BankId, BusinessDate, MerchantId, TransactionId};
use crate::manifest::sha256_hex;
use crate::money::Currency;
use crate::records::{MatchRule, MismatchType, ReconciledStatus};

/// Whether a row is about an internal transaction or a statement line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RowKind {
    Transaction,
    StatementLine,
}

impl RowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Transaction => "TRANSACTION",
            RowKind::StatementLine => "STATEMENT_LINE",
        }
    }
}

/// One row of `index/batch` (and, where it carries a break, of `index/mismatches`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRow {
    pub row_kind: RowKind,
    pub transaction_id: Option<TransactionId>,
    /// The statement line itself (line rows) or the matched lines (transaction rows).
    pub statement_ids: Vec<String>,
    /// For line rows: the transactions the line pays.
    pub transaction_ids: Vec<String>,
    pub bank_id: BankId,
    pub merchant_id: Option<MerchantId>,
    /// The transaction's amount and currency as booked internally.
    pub amount: Option<Decimal>,
    pub txn_currency: Option<Currency>,
    /// The amount expected on the statement, in the statement currency (refunds negative).
    pub expected_amount: Option<Decimal>,
    pub amount_posted: Option<Decimal>,
    /// Statement (settlement) currency of the money columns below `amount`.
    pub currency: Currency,
    pub fee_charged: Option<Decimal>,
    pub expected_fee: Option<Decimal>,
    /// `amount_posted − expected_amount`.
    pub discrepancy: Option<Decimal>,
    pub fee_variance: Option<Decimal>,
    pub reconciled_status: ReconciledStatus,
    pub mismatch_type: MismatchType,
    pub match_rule: MatchRule,
    /// 1 for exact-id matches, lower for composite and group matches, 0 when unmatched.
    pub confidence: Decimal,
    pub break_id: Option<String>,
    pub first_seen: Option<NaiveDate>,
    pub age_days: Option<i32>,
    pub business_date: BusinessDate,
    pub run_id: String,
}

/// A break's identity: derived from its facts (bank, type, the id it is about), so the same
/// break keeps its id across runs whatever its amounts do.
pub fn break_id(bank: &BankId, mismatch: MismatchType, subject: &str) -> String {
    format!(
        "brk_{}",
        &sha256_hex(format!("{bank}|{mismatch}|{subject}").as_bytes())[..20]
    )
}

/// What a partition's earlier runs saw: break id -> first business date seen (as-of date).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakRegistry {
    pub open: BTreeMap<String, NaiveDate>,
}

/// New, persisting and resolved breaks of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakStats {
    pub new: u64,
    pub persisting: u64,
    pub resolved: u64,
}

/// Builds the index rows of a reconciled partition and the registry after this run.
pub fn index_rows(
    result: &PartitionResult<'_>,
    bank: &BankId,
    date: BusinessDate,
    as_of: NaiveDate,
    run_id: &str,
    previous: &BreakRegistry,
) -> Result<(Vec<IndexRow>, BreakRegistry, BreakStats)> {
    let cur = result.currency;
    let dec = |m: i64| cur.from_minor(m);
    let mut rows = Vec::with_capacity(result.transactions.len() + result.lines.len());
    let mut registry = BreakRegistry::default();
    let mut stats = BreakStats::default();
    let mut track = |subject: &str, mismatch: MismatchType| -> (String, NaiveDate, i32) {
        let id = break_id(bank, mismatch, subject);
        let first = match previous.open.get(&id) {
            Some(d) => {
                stats.persisting += 1;
                *d
            }
            None => {
                stats.new += 1;
                as_of
            }
        };
        registry.open.insert(id.clone(), first);
        let age = (as_of - first).num_days() as i32;
        (id, first, age)
    };
    let confidence = |o: &Outcome| Decimal::new(i64::from(o.confidence), 3);

    for (ti, t) in result.transactions.iter().enumerate() {
        let o = &result.txn_outcomes[ti];
        let f = &result.facts[ti];
        let matched: Vec<usize> = o.counterparts.iter().map(|i| *i as usize).collect();
        let (posted, fees) = if matched.is_empty() {
            (None, None)
        } else if o.rule == MatchRule::ManyToOne {
            // The line pays several transactions: its share is not separable; show the line.
            let (a, fee) = result.line_minor[matched[0]];
            (Some(dec(a)), Some(dec(fee)))
        } else {
            let a: i64 = matched.iter().map(|i| result.line_minor[*i].0).sum();
            let fee: i64 = matched.iter().map(|i| result.line_minor[*i].1).sum();
            (Some(dec(a)), Some(dec(fee)))
        };
        let brk = (o.mismatch != MismatchType::None)
            .then(|| track(t.transaction_id.as_str(), o.mismatch));
        rows.push(IndexRow {
            row_kind: RowKind::Transaction,
            transaction_id: Some(t.transaction_id.clone()),
            statement_ids: matched
                .iter()
                .map(|i| result.lines[*i].statement_id.to_string())
                .collect(),
            transaction_ids: Vec::new(),
            bank_id: bank.clone(),
            merchant_id: Some(t.merchant_id.clone()),
            amount: Some(t.amount),
            txn_currency: Some(t.currency),
            expected_amount: Some(dec(f.expected_minor)),
            amount_posted: posted,
            currency: cur,
            fee_charged: fees,
            expected_fee: Some(dec(f.expected_fee_minor)),
            discrepancy: o.discrepancy.map(dec),
            fee_variance: o.fee_variance.map(dec),
            reconciled_status: o.status,
            mismatch_type: o.mismatch,
            match_rule: o.rule,
            confidence: confidence(o),
            break_id: brk.as_ref().map(|b| b.0.clone()),
            first_seen: brk.as_ref().map(|b| b.1),
            age_days: brk.as_ref().map(|b| b.2),
            business_date: date,
            run_id: run_id.to_string(),
        });
    }
    for (li, l) in result.lines.iter().enumerate() {
        let o = &result.line_outcomes[li];
        // Line-level breaks: lines nobody booked, and duplicates. Others belong to their
        // transaction's break.
        let own = matches!(
            o.mismatch,
            MismatchType::MissingInternal | MismatchType::Duplicate
        );
        let brk = own.then(|| track(l.statement_id.as_str(), o.mismatch));
        let txn_break = (!own && o.mismatch != MismatchType::None)
            .then(|| {
                o.counterparts.first().map(|t| {
                    break_id(
                        bank,
                        o.mismatch,
                        result.transactions[*t as usize].transaction_id.as_str(),
                    )
                })
            })
            .flatten();
        let (a, fee) = result.line_minor[li];
        rows.push(IndexRow {
            row_kind: RowKind::StatementLine,
            transaction_id: l.transaction_id.clone(),
            statement_ids: vec![l.statement_id.to_string()],
            transaction_ids: o
                .counterparts
                .iter()
                .map(|t| result.transactions[*t as usize].transaction_id.to_string())
                .collect(),
            bank_id: bank.clone(),
            merchant_id: l.merchant_id.clone(),
            amount: None,
            txn_currency: None,
            expected_amount: None,
            amount_posted: Some(dec(a)),
            currency: cur,
            fee_charged: Some(dec(fee)),
            expected_fee: None,
            discrepancy: o.discrepancy.map(dec),
            fee_variance: o.fee_variance.map(dec),
            reconciled_status: o.status,
            mismatch_type: o.mismatch,
            match_rule: o.rule,
            confidence: confidence(o),
            break_id: brk.as_ref().map(|b| b.0.clone()).or(txn_break),
            first_seen: brk.as_ref().map(|b| b.1),
            age_days: brk.as_ref().map(|b| b.2),
            business_date: date,
            run_id: run_id.to_string(),
        });
    }
    stats.resolved = previous
        .open
        .keys()
        .filter(|k| !registry.open.contains_key(*k))
        .count() as u64;
    Ok((rows, registry, stats))
}

impl IndexRow {
    /// Rows that open or carry their own break (the `index/mismatches` table).
    pub fn owns_break(&self) -> bool {
        self.first_seen.is_some()
    }
}

fn join(v: &[String]) -> Option<String> {
    (!v.is_empty()).then(|| v.join("|"))
}

fn split(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split('|').map(str::to_string).collect())
        .unwrap_or_default()
}

impl Columnar for IndexRow {
    const TABLE: &'static str = "batch_index";

    fn schema() -> SchemaRef {
        let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
        Arc::new(Schema::new(vec![
            f("row_kind", DataType::Utf8, false),
            f("transaction_id", DataType::Utf8, true),
            f("statement_ids", DataType::Utf8, true),
            f("transaction_ids", DataType::Utf8, true),
            f("bank_id", DataType::Utf8, false),
            f("merchant_id", DataType::Utf8, true),
            f("amount", money_type(), true),
            f("txn_currency", DataType::Utf8, true),
            f("expected_amount", money_type(), true),
            f("amount_posted", money_type(), true),
            f("currency", DataType::Utf8, false),
            f("fee_charged", money_type(), true),
            f("expected_fee", money_type(), true),
            f("discrepancy", money_type(), true),
            f("fee_variance", money_type(), true),
            f("reconciled_status", DataType::Utf8, false),
            f("mismatch_type", DataType::Utf8, false),
            f("match_rule", DataType::Utf8, false),
            f("confidence", ratio_type(), false),
            f("break_id", DataType::Utf8, true),
            f("first_seen", DataType::Date32, true),
            f("age_days", DataType::Int32, true),
            f("business_date", DataType::Date32, false),
            f("run_id", DataType::Utf8, false),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        let money = |g: fn(&IndexRow) -> Option<Decimal>| {
            decimal_array(rows.iter().map(g), MONEY_PRECISION, MONEY_SCALE)
        };
        let sids: Vec<Option<String>> = rows.iter().map(|r| join(&r.statement_ids)).collect();
        let tids: Vec<Option<String>> = rows.iter().map(|r| join(&r.transaction_ids)).collect();
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.row_kind.as_str())),
                opt_string_array(
                    rows.iter()
                        .map(|r| r.transaction_id.as_ref().map(|t| t.as_str())),
                ),
                opt_string_array(sids.iter().map(|s| s.as_deref())),
                opt_string_array(tids.iter().map(|s| s.as_deref())),
                string_array(rows.iter().map(|r| r.bank_id.as_str())),
                opt_string_array(
                    rows.iter()
                        .map(|r| r.merchant_id.as_ref().map(|m| m.as_str())),
                ),
                money(|r| r.amount)?,
                opt_string_array(
                    rows.iter()
                        .map(|r| r.txn_currency.as_ref().map(|c| c.code())),
                ),
                money(|r| r.expected_amount)?,
                money(|r| r.amount_posted)?,
                string_array(rows.iter().map(|r| r.currency.code())),
                money(|r| r.fee_charged)?,
                money(|r| r.expected_fee)?,
                money(|r| r.discrepancy)?,
                money(|r| r.fee_variance)?,
                string_array(rows.iter().map(|r| r.reconciled_status.as_str())),
                string_array(rows.iter().map(|r| r.mismatch_type.as_str())),
                string_array(rows.iter().map(|r| r.match_rule.as_str())),
                decimal_array(
                    rows.iter().map(|r| Some(r.confidence)),
                    RATIO_PRECISION,
                    RATIO_SCALE,
                )?,
                opt_string_array(rows.iter().map(|r| r.break_id.as_deref())),
                date_array(rows.iter().map(|r| r.first_seen)),
                Arc::new(rows.iter().map(|r| r.age_days).collect::<Int32Array>()),
                date_array(rows.iter().map(|r| Some(r.business_date.date()))),
                string_array(rows.iter().map(|r| r.run_id.as_str())),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let s = |n| c.strings(n);
        let d = |n| c.decimals(n);
        let (kind, tid, sids, tids, bank, mer) = (
            s("row_kind")?,
            s("transaction_id")?,
            s("statement_ids")?,
            s("transaction_ids")?,
            s("bank_id")?,
            s("merchant_id")?,
        );
        let (amt, tcur, exp, posted, cur) = (
            d("amount")?,
            s("txn_currency")?,
            d("expected_amount")?,
            d("amount_posted")?,
            s("currency")?,
        );
        let (fee, efee, disc, fvar) = (
            d("fee_charged")?,
            d("expected_fee")?,
            d("discrepancy")?,
            d("fee_variance")?,
        );
        let (st, mm, rule, conf, brk) = (
            s("reconciled_status")?,
            s("mismatch_type")?,
            s("match_rule")?,
            d("confidence")?,
            s("break_id")?,
        );
        let (first, bd, run) = (
            c.dates("first_seen")?,
            c.dates("business_date")?,
            s("run_id")?,
        );
        let age = b
            .column_by_name("age_days")
            .and_then(|a| a.as_any().downcast_ref::<Int32Array>())
            .ok_or_else(|| crate::Error::Schema {
                table: Self::TABLE,
                column: "age_days".into(),
                reason: "missing".into(),
            })?;
        (0..b.num_rows())
            .map(|i| {
                let currency: Currency = c.parse("currency", c.str_at(cur, "currency", i)?)?;
                let txn_currency: Option<Currency> = c
                    .opt_str_at(tcur, i)
                    .map(|v| c.parse("txn_currency", v))
                    .transpose()?;
                let at = |col, cy: Currency| -> Result<Option<Decimal>> {
                    c.opt_dec_at(col, i)?.map(|v| cy.exact(v)).transpose()
                };
                let kind = match c.str_at(kind, "row_kind", i)? {
                    "TRANSACTION" => RowKind::Transaction,
                    _ => RowKind::StatementLine,
                };
                Ok(IndexRow {
                    row_kind: kind,
                    transaction_id: c
                        .opt_str_at(tid, i)
                        .map(|v| c.parse("transaction_id", v))
                        .transpose()?,
                    statement_ids: split(c.opt_str_at(sids, i)),
                    transaction_ids: split(c.opt_str_at(tids, i)),
                    bank_id: c.parse("bank_id", c.str_at(bank, "bank_id", i)?)?,
                    merchant_id: c
                        .opt_str_at(mer, i)
                        .map(|v| c.parse("merchant_id", v))
                        .transpose()?,
                    amount: match txn_currency {
                        Some(tc) => at(amt, tc)?,
                        None => c.opt_dec_at(amt, i)?,
                    },
                    txn_currency,
                    expected_amount: at(exp, currency)?,
                    amount_posted: at(posted, currency)?,
                    currency,
                    fee_charged: at(fee, currency)?,
                    expected_fee: at(efee, currency)?,
                    discrepancy: at(disc, currency)?,
                    fee_variance: at(fvar, currency)?,
                    reconciled_status: c
                        .parse("reconciled_status", c.str_at(st, "reconciled_status", i)?)?,
                    mismatch_type: c.parse("mismatch_type", c.str_at(mm, "mismatch_type", i)?)?,
                    match_rule: c.parse("match_rule", c.str_at(rule, "match_rule", i)?)?,
                    confidence: c.dec_at(conf, "confidence", i)?.normalize(),
                    break_id: c.opt_str_at(brk, i).map(str::to_string),
                    first_seen: c.opt_date_at(first, "first_seen", i)?,
                    age_days: age.is_valid(i).then(|| age.value(i)),
                    business_date: BusinessDate::from_date(c.date_at(bd, "business_date", i)?)?,
                    run_id: c.str_at(run, "run_id", i)?.to_string(),
                })
            })
            .collect()
    }
}
