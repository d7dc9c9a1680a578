//! `final-aggregate`: batch index ⊕ the latest transaction state → `index/final`, merchant
//! daily KPIs → `index/kpis`, and the run summary → `runs/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::inputs::objects;
use super::live::{StreamState, changed_settlements, stream_states, write_back_settlement};
use super::rows::{FinalRow, KpiRow};
use super::summary::{CloseSummary, DateSummary, PartitionOutcome};
use crate::columnar::{Columnar, Columns, write_parquet};
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate, MerchantId, TransactionId};
use crate::index_item::SettlementDetail;
use crate::ingest::DATABASE;
use crate::keys::{
    batch_date_prefix, batch_key, final_key, kpis_key, mismatches_prefix, run_summary_key,
    transactions_prefix,
};
use crate::money::Currency;
use crate::ports::{Catalog, ObjectStore, Partition, RunRecord, RunStatus, RunsTable};
use crate::reconcile::frame::{Codes, read_columns};
use crate::reconcile::{IndexRow, RowKind};
use crate::records::{
    BreakStatus, MatchRule, MismatchType, ReconciledStatus, SettlementStatus, Transaction,
    TxnStatus,
};

/// The input of the final aggregation (`FinalAggregate` of the state machine): the date and
/// what the partition steps produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRequest {
    /// The business date being closed.
    pub business_date: BusinessDate,
    /// Name of the state machine execution (names the run summary); `None` locally.
    #[serde(default)]
    pub execution: Option<String>,
    /// Dates whose partitions this close reconciled (default: the business date).
    #[serde(default)]
    pub dates: Vec<BusinessDate>,
    /// Outputs of the Map states: partition summaries, or recorded failures (one list per
    /// bank chain from the state machine, flattened).
    #[serde(default, deserialize_with = "outcomes")]
    pub results: Vec<PartitionOutcome>,
    /// Outputs of the EMR branch's Map state.
    #[serde(default, deserialize_with = "outcomes")]
    pub emr_results: Vec<PartitionOutcome>,
    /// Banks the plan found without a usable statement (not closed, not failed).
    #[serde(default)]
    pub awaiting: Vec<super::plan::AwaitingDelivery>,
    /// The plan's Lambda capacity per bank (shown in the report's forecast).
    #[serde(default)]
    pub capacity: Vec<super::insight::Capacity>,
}

/// Partition outcomes as a flat list, or as the nested Map states give them (a list per bank
/// chain).
fn outcomes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<PartitionOutcome>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Chain(Vec<PartitionOutcome>),
        One(Box<PartitionOutcome>),
    }
    Ok(Vec::<Item>::deserialize(d)?
        .into_iter()
        .flat_map(|i| match i {
            Item::Chain(v) => v,
            Item::One(o) => vec![*o],
        })
        .collect())
}

/// The derive-status rule: a disputed settlement is a chargeback whatever the stream says;
/// otherwise the newest known status (the stream's when it has one, else the ledger's).
pub fn derive_status(
    ledger: TxnStatus,
    stream: Option<TxnStatus>,
    reconciled: ReconciledStatus,
) -> TxnStatus {
    if reconciled == ReconciledStatus::Disputed {
        return TxnStatus::Chargeback;
    }
    stream.unwrap_or(ledger)
}

/// The business date whose close settled a transaction at `reconciliation_timestamp`: the
/// close's cutoff is the next day's 00:00 UTC (docs/deviations.md, 21), so the day before.
/// Where a settlement written back onto the TransactionIndex finds its row of the final index.
pub fn close_date(reconciliation_timestamp: DateTime<Utc>) -> Result<BusinessDate> {
    BusinessDate::from_date(reconciliation_timestamp.date_naive())?.pred()
}

/// What the aggregation reads of a batch index row.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    /// Whether the row is about a ledger transaction or a statement line.
    pub row_kind: RowKind,
    /// The transaction, on transaction rows.
    pub transaction_id: Option<&'a str>,
    /// The merchant, when known.
    pub merchant_id: Option<&'a str>,
    /// The bank of the partition.
    pub bank_id: &'a str,
    /// The statement (settlement) currency of the money below.
    pub currency: Currency,
    /// The amount expected on the statement (refunds negative).
    pub expected_amount: Option<Decimal>,
    /// The fee the bank charged on the line.
    pub fee_charged: Option<Decimal>,
    /// Fee charged minus the fee the rules give, on a line.
    pub fee_variance: Option<Decimal>,
    /// `amount_posted − expected_amount`.
    pub discrepancy: Option<Decimal>,
    /// The reconciliation outcome.
    pub reconciled_status: ReconciledStatus,
    /// The kind of break, NONE when there is none.
    pub mismatch_type: MismatchType,
    /// How the pair was found.
    pub match_rule: MatchRule,
    /// The item's own business date (earlier than the close's for a carried item).
    pub item_date: chrono::NaiveDate,
    /// The close that decided the row.
    pub business_date: chrono::NaiveDate,
    /// The statement lines of a transaction row, `|`-joined.
    pub statement_ids: Option<&'a str>,
    /// The match's confidence.
    pub confidence: Decimal,
    /// The break the row has or resolved.
    pub break_id: Option<&'a str>,
    /// The close that first saw the break.
    pub first_seen: Option<chrono::NaiveDate>,
    /// Business days the break has been open.
    pub age_days: Option<i32>,
    /// The close that resolved the break.
    pub resolved_on: Option<chrono::NaiveDate>,
    /// Where the break stands.
    pub break_status: Option<BreakStatus>,
}

impl BatchView<'_> {
    /// The settlement detail of a transaction row (§11): settled on this close when matched.
    fn detail(&self) -> SettlementDetail {
        let settled = matches!(
            self.reconciled_status,
            ReconciledStatus::Matched
                | ReconciledStatus::PartialMatch
                | ReconciledStatus::Disputed
                | ReconciledStatus::Duplicate
        );
        SettlementDetail {
            settled_on: settled.then_some(self.business_date),
            statement_ids: self
                .statement_ids
                .map(|s| s.split('|').map(str::to_string).collect())
                .unwrap_or_default(),
            match_rule: Some(self.match_rule),
            confidence: Some(self.confidence.normalize()),
            break_id: self.break_id.map(str::to_string),
            first_seen: self.first_seen,
            age_days: self.age_days,
            resolved_on: self.resolved_on,
            break_status: self.break_status,
        }
    }
}

pub(crate) const BATCH_COLUMNS: &[&str] = &[
    "item_date",
    "business_date",
    "statement_ids",
    "confidence",
    "break_id",
    "first_seen",
    "age_days",
    "resolved_on",
    "break_status",
    "row_kind",
    "transaction_id",
    "merchant_id",
    "bank_id",
    "currency",
    "expected_amount",
    "fee_charged",
    "fee_variance",
    "discrepancy",
    "reconciled_status",
    "mismatch_type",
    "match_rule",
];

/// Batch index rows of batches read with at least [`BATCH_COLUMNS`].
pub fn batch_views(batches: &[RecordBatch]) -> Result<Vec<BatchView<'_>>> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    let (mut cur, mut st, mut mm, mut rule) =
        (Codes::new(), Codes::new(), Codes::new(), Codes::new());
    for b in batches {
        let c = Columns::new(IndexRow::TABLE, b);
        let s = |n| c.strings(n);
        let d = |n| c.decimals(n);
        let (kind, tid, mer, bank, currency) = (
            s("row_kind")?,
            s("transaction_id")?,
            s("merchant_id")?,
            s("bank_id")?,
            s("currency")?,
        );
        let (exp, fee, disc) = (d("expected_amount")?, d("fee_charged")?, d("discrepancy")?);
        let fvar = d("fee_variance")?;
        let (status, mismatch, rules) = (
            s("reconciled_status")?,
            s("mismatch_type")?,
            s("match_rule")?,
        );
        let (item, closed) = (c.dates("item_date")?, c.dates("business_date")?);
        let (sids, conf, brk) = (s("statement_ids")?, d("confidence")?, s("break_id")?);
        let (first, resolved) = (c.dates("first_seen")?, c.dates("resolved_on")?);
        let bstat = s("break_status")?;
        let age = b
            .column_by_name("age_days")
            .and_then(|a| a.as_any().downcast_ref::<arrow_array::Int32Array>())
            .ok_or_else(|| Error::Schema {
                table: IndexRow::TABLE,
                column: "age_days".into(),
                reason: "missing or not Int32".into(),
            })?;
        for i in 0..b.num_rows() {
            out.push(BatchView {
                row_kind: match c.str_at(kind, "row_kind", i)? {
                    "TRANSACTION" => RowKind::Transaction,
                    _ => RowKind::StatementLine,
                },
                transaction_id: c.opt_str_at(tid, i),
                merchant_id: c.opt_str_at(mer, i),
                bank_id: c.str_at(bank, "bank_id", i)?,
                currency: cur.get(c.str_at(currency, "currency", i)?, |v| {
                    c.parse("currency", v)
                })?,
                expected_amount: c.opt_dec_at(exp, i)?,
                fee_charged: c.opt_dec_at(fee, i)?,
                fee_variance: c.opt_dec_at(fvar, i)?,
                discrepancy: c.opt_dec_at(disc, i)?,
                reconciled_status: st.get(c.str_at(status, "reconciled_status", i)?, |v| {
                    c.parse("reconciled_status", v)
                })?,
                mismatch_type: mm.get(c.str_at(mismatch, "mismatch_type", i)?, |v| {
                    c.parse("mismatch_type", v)
                })?,
                match_rule: rule.get(c.str_at(rules, "match_rule", i)?, |v| {
                    c.parse("match_rule", v)
                })?,
                item_date: c.date_at(item, "item_date", i)?,
                business_date: c.date_at(closed, "business_date", i)?,
                statement_ids: c.opt_str_at(sids, i),
                confidence: c.dec_at(conf, "confidence", i)?,
                break_id: c.opt_str_at(brk, i),
                first_seen: c.opt_date_at(first, "first_seen", i)?,
                age_days: arrow_array::Array::is_valid(age, i).then(|| age.value(i)),
                resolved_on: c.opt_date_at(resolved, "resolved_on", i)?,
                break_status: c
                    .opt_str_at(bstat, i)
                    .map(|v| c.parse("break_status", v))
                    .transpose()?,
            });
        }
    }
    Ok(out)
}

/// What the aggregation reads of a ledger transaction.
#[derive(Debug, Clone, Copy)]
pub struct LedgerView<'a> {
    /// The transaction.
    pub transaction_id: &'a str,
    /// The curated `user_id`: already the user's token (the normalizer tokenizes it).
    pub user_id: &'a str,
    /// The amount in the transaction's currency.
    pub amount: Decimal,
    /// The transaction's currency.
    pub currency: Currency,
    /// The ledger's status.
    pub status: TxnStatus,
}

const LEDGER_COLUMNS: &[&str] = &["transaction_id", "user_id", "amount", "currency", "status"];

/// Transactions of batches read with at least [`LEDGER_COLUMNS`].
pub fn ledger_views(batches: &[RecordBatch]) -> Result<Vec<LedgerView<'_>>> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    let (mut cur, mut st) = (Codes::new(), Codes::new());
    for b in batches {
        let c = Columns::new(Transaction::TABLE, b);
        let (id, user, amount) = (
            c.strings("transaction_id")?,
            c.strings("user_id")?,
            c.decimals("amount")?,
        );
        let (currency, status) = (c.strings("currency")?, c.strings("status")?);
        for i in 0..b.num_rows() {
            out.push(LedgerView {
                transaction_id: c.str_at(id, "transaction_id", i)?,
                user_id: c.str_at(user, "user_id", i)?,
                amount: c.dec_at(amount, "amount", i)?,
                currency: cur.get(c.str_at(currency, "currency", i)?, |v| {
                    c.parse("currency", v)
                })?,
                status: st.get(c.str_at(status, "status", i)?, |v| c.parse("status", v))?,
            });
        }
    }
    Ok(out)
}

/// Every batch of the Parquet objects under `prefix`, `columns` only.
pub(crate) async fn read_columns_under<S: ObjectStore, T: Columnar>(
    store: &S,
    prefix: &str,
    columns: &[&str],
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for (_, bytes) in objects(store, prefix).await? {
        out.extend(read_columns::<T>(bytes, columns)?);
    }
    Ok(out)
}

/// Builds the final index and KPIs of one date from its batch index and transactions.
pub fn build_final(
    date: BusinessDate,
    batch: &[BatchView<'_>],
    transactions: &[LedgerView<'_>],
    stream: &FxHashMap<TransactionId, StreamState>,
) -> Result<(Vec<FinalRow>, Vec<KpiRow>)> {
    let by_id: FxHashMap<&str, &LedgerView> =
        transactions.iter().map(|t| (t.transaction_id, t)).collect();
    let cutoff = cutoff(date)?;
    // Rows are visited in transaction id order (sorting references, not built rows); the
    // KPIs are exact sums, the same in any order.
    let mut rows: Vec<&BatchView<'_>> = batch.iter().collect();
    rows.sort_by_key(|r| (r.row_kind == RowKind::StatementLine, r.transaction_id));
    let mut finals = Vec::with_capacity(transactions.len());
    let mut kpis: FxHashMap<(&str, Currency), KpiRow> = FxHashMap::default();
    let mut banks: FxHashMap<&str, BankId> = FxHashMap::default();
    for r in rows {
        // A line without a merchant counts in no KPI; a transaction always has one.
        let Some(merchant) = r.merchant_id else {
            if r.row_kind == RowKind::Transaction {
                return Err(Error::Invariant(format!(
                    "batch index row of {} has no merchant_id",
                    r.transaction_id.unwrap_or_default()
                )));
            }
            continue;
        };
        let k = match kpis.entry((merchant, r.currency)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(KpiRow::empty(MerchantId::new(merchant)?, r.currency))
            }
        };
        match r.row_kind {
            RowKind::StatementLine => {
                k.fees += r.fee_charged.unwrap_or_default();
                if r.match_rule == MatchRule::ManyToOne {
                    k.net_discrepancy += r.discrepancy.unwrap_or_default();
                }
                continue;
            }
            RowKind::Transaction => {}
        }
        let Some(id) = r.transaction_id else {
            continue;
        };
        let t = by_id.get(id).ok_or_else(|| {
            Error::Invariant(format!(
                "batch index names {id}, which is not in the day's transactions"
            ))
        })?;
        let s = stream.get(id);
        let expected = r.expected_amount.unwrap_or_default();
        k.transactions += 1;
        if t.status == TxnStatus::Refunded {
            k.refunds += 1;
            k.refund_amount += expected.abs();
        } else {
            k.volume += expected;
        }
        if r.reconciled_status == ReconciledStatus::Disputed {
            k.chargebacks += 1;
        }
        if r.mismatch_type != MismatchType::None {
            k.mismatched += 1;
        }
        match r.break_status {
            Some(BreakStatus::Open) => k.breaks_open += 1,
            Some(BreakStatus::ResolvedByPerson) => k.breaks_resolved_by_people += 1,
            Some(BreakStatus::ResolvedByEngine) => k.breaks_resolved_by_engine += 1,
            None => {}
        }
        if r.match_rule != MatchRule::ManyToOne {
            k.net_discrepancy += r.discrepancy.unwrap_or_default();
        }
        let bank_id = match banks.get(r.bank_id) {
            Some(b) => b.clone(),
            None => {
                let b = BankId::new(r.bank_id)?;
                banks.insert(r.bank_id, b.clone());
                b
            }
        };
        finals.push(FinalRow {
            transaction_id: TransactionId::new(id)?,
            merchant_id: k.merchant_id.clone(),
            bank_id,
            user_token: t.user_id.to_string(),
            amount: t.currency.exact(t.amount)?,
            currency: t.currency,
            status: derive_status(t.status, s.map(|s| s.status), r.reconciled_status),
            settlement_status: SettlementStatus::of(r.reconciled_status),
            fraud_score: s.and_then(|s| s.fraud_score),
            risk_label: s.and_then(|s| s.risk_label),
            policy_flags: s.map(|s| s.policy_flags.clone()).unwrap_or_default(),
            discrepancy: r.discrepancy.map(|d| r.currency.exact(d)).transpose()?,
            statement_currency: r.currency,
            reconciled_status: r.reconciled_status,
            mismatch_type: r.mismatch_type,
            reconciliation_timestamp: cutoff,
            detail: r.detail(),
        });
    }
    let mut kpis: Vec<KpiRow> = kpis
        .into_iter()
        .filter(|(_, k)| k.transactions > 0 || !k.fees.is_zero())
        .map(|(_, mut k)| {
            if k.transactions > 0 {
                k.mismatch_rate =
                    (Decimal::from(k.mismatched) / Decimal::from(k.transactions)).round_dp(4);
            }
            k
        })
        .collect();
    kpis.sort_by(|a, b| {
        (a.merchant_id.as_str(), a.currency.code())
            .cmp(&(b.merchant_id.as_str(), b.currency.code()))
    });
    Ok((finals, kpis))
}

/// Runs the final aggregation of a close: the stream index's live state joins the batch index,
/// and the settlement outcome is written back onto the stream index.
pub async fn final_aggregate<
    S: ObjectStore,
    R: RunsTable,
    I: crate::ports::TransactionIndex,
    C: Catalog,
>(
    store: &S,
    runs: &R,
    index: &I,
    catalog: &C,
    req: &FinalRequest,
) -> Result<CloseSummary> {
    let started = std::time::Instant::now();
    let execution = req
        .execution
        .clone()
        .unwrap_or_else(|| format!("close-{}", req.business_date));
    let mut dates = req.dates.clone();
    if !dates.contains(&req.business_date) {
        dates.push(req.business_date);
    }
    dates.sort();
    let partitions: Vec<PartitionOutcome> = req
        .results
        .iter()
        .chain(&req.emr_results)
        .cloned()
        .collect();
    let failed = partitions.iter().filter(|p| p.is_failed()).count();
    let mut per_date = BTreeMap::new();
    let mut patches: BTreeMap<BusinessDate, Vec<Patch>> = BTreeMap::new();
    let mut todays = None;
    for date in &dates {
        let mut phase = Phases::start();
        let batch_data =
            read_columns_under::<_, IndexRow>(store, &batch_date_prefix(*date), BATCH_COLUMNS)
                .await?;
        let ledger_data = read_columns_under::<_, Transaction>(
            store,
            &transactions_prefix(*date),
            LEDGER_COLUMNS,
        )
        .await?;
        let (mut batch, txns) = (batch_views(&batch_data)?, ledger_views(&ledger_data)?);
        let today = date.date();
        // The close's figures per bank and merchant, from every row of its partitions.
        let (mut figures, largest) = super::insight::figures_of(today, &batch);
        super::insight::open_breaks_of(store, &mut figures).await?;
        super::insight::write_figures(store, &figures).await?;
        if *date == req.business_date {
            todays = Some((figures, largest));
        }
        // Carried items a close settled belong to their own date's final index.
        for r in batch.iter().filter(|r| r.item_date != today) {
            if let (RowKind::Transaction, Some(id)) = (r.row_kind, r.transaction_id) {
                let d = BusinessDate::from_date(r.item_date)?;
                patches.entry(d).or_default().push(Patch::of(r, id, *date)?);
            }
        }
        batch.retain(|r| r.item_date == today);
        phase.lap("read");
        let ids: Vec<TransactionId> = txns
            .iter()
            .map(|t| TransactionId::new(t.transaction_id))
            .collect::<Result<_>>()?;
        let live = stream_states(index, &ids).await?;
        phase.lap("stream_states");
        let (finals, kpis) = build_final(*date, &batch, &txns, &live.streams)?;
        phase.lap("join");
        // The outputs are encoded on another core while the settlements go back to the index.
        let (finals, kpis) = (Arc::new(finals), Arc::new(kpis));
        let encoder = {
            let (finals, kpis) = (Arc::clone(&finals), Arc::clone(&kpis));
            std::thread::spawn(move || {
                Ok::<_, Error>((write_parquet(&finals)?, write_parquet(&kpis)?))
            })
        };
        let changed = changed_settlements(&finals, &live.settlements, *date);
        let written_back = write_back_settlement(index, *date, &changed).await;
        phase.lap("write_back");
        let encoded = encoder
            .join()
            .map_err(|_| Error::Invariant("the final index encoder panicked".into()))?;
        let (final_bytes, kpi_bytes) = encoded?;
        // Logged, not summarised: after a crash the re-run writes fewer, and the summary of a
        // close is the same however often it ran.
        tracing::info!(business_date = %date, written = written_back?, held = finals.len(), "settlements written back");
        store
            .put(&final_key(*date), Bytes::from(final_bytes))
            .await?;
        store.put(&kpis_key(*date), Bytes::from(kpi_bytes)).await?;
        phase.lap("write");
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_mismatch: BTreeMap<String, u64> = BTreeMap::new();
        for f in finals.iter() {
            *by_status
                .entry(f.reconciled_status.to_string())
                .or_default() += 1;
            *by_mismatch.entry(f.mismatch_type.to_string()).or_default() += 1;
        }
        let lines = batch
            .iter()
            .filter(|r| r.row_kind == RowKind::StatementLine)
            .count();
        let unmatched_lines = batch
            .iter()
            .filter(|r| {
                r.row_kind == RowKind::StatementLine
                    && r.reconciled_status != ReconciledStatus::Matched
            })
            .count();
        per_date.insert(
            *date,
            DateSummary {
                by_mismatch,
                by_status,
                merchants: kpis.len() as u64,
                phase_ms: phase.ms,
                settlements_written_back: finals.len() as u64,
                settled_later: 0,
                statement_lines: lines as u64,
                statement_lines_not_matched: unmatched_lines as u64,
                stream_states: live.streams.len() as u64,
                transactions: finals.len() as u64,
            },
        );
    }
    // After every rebuilt date, so a date rebuilt here gets the later closes' settlements.
    for (date, patches) in &patches {
        let settled = settle_later(store, index, *date, patches).await?;
        per_date
            .entry(*date)
            .or_insert_with(DateSummary::default)
            .settled_later += settled;
    }
    let status = if failed == 0 {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    // Each awaited bank has its row in the Runs table, beside the partitions that ran; a
    // partition closed while awaited wrote its own (with its fingerprint).
    let ran: std::collections::BTreeSet<(BusinessDate, &str)> = partitions
        .iter()
        .filter(|p| !p.is_failed())
        .map(|p| {
            let (d, b) = p.partition();
            (d, b.as_str())
        })
        .collect();
    for a in req
        .awaiting
        .iter()
        .filter(|a| !ran.contains(&(a.business_date, a.bank_id.as_str())))
    {
        runs.put(&RunRecord {
            business_date: a.business_date,
            run_id: execution.clone(),
            partition: a.bank_id.to_string(),
            status: RunStatus::AwaitingDelivery,
            fingerprint: String::new(),
            counts: BTreeMap::new(),
            duration_ms: 0,
            error: Some(format!(
                "awaiting the statement of {} from {}: {}",
                a.business_date,
                a.sources
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                a.reason.as_str()
            )),
        })
        .await?;
    }
    // Athena sees what the close wrote (registering again changes nothing).
    for p in index_partitions(&partitions, &dates) {
        catalog.register_partition(&p).await?;
    }
    let mut summary = CloseSummary {
        anomalies: 0,
        awaiting_deliveries: req.awaiting.clone(),
        business_date: req.business_date,
        dates: per_date,
        duration_ms: started.elapsed().as_millis() as u64,
        execution: execution.clone(),
        failed_partitions: failed as u64,
        partitions,
        report: None,
        status,
    };
    // The flags, the forecast and the page, once the close's own figures are written.
    if let Some((figures, largest)) = todays {
        let limits = req
            .capacity
            .iter()
            .map(|c| (c.bank_id.to_string(), c.lambda_limit))
            .collect();
        let published =
            super::insight::publish(store, &summary, &figures, largest, &limits).await?;
        summary.anomalies = published.anomalies;
        summary.report = Some(published.report_key);
        let key = crate::keys::anomalies_key(req.business_date);
        let dir = key.rsplit_once('/').map_or(key.as_str(), |(d, _)| d);
        catalog
            .register_partition(&Partition {
                database: DATABASE.into(),
                table: "anomalies".into(),
                values: vec![("business_date".into(), req.business_date.to_string())],
                location: format!("{dir}/"),
            })
            .await?;
    }
    store
        .put(
            &run_summary_key(req.business_date, &execution),
            Bytes::from(summary.to_file_bytes()?),
        )
        .await?;
    runs.put(&RunRecord {
        business_date: req.business_date,
        run_id: execution,
        partition: "_close".into(),
        status,
        fingerprint: String::new(),
        counts: BTreeMap::from([
            ("failed_partitions".to_string(), failed as u64),
            ("awaiting_deliveries".to_string(), req.awaiting.len() as u64),
            ("dates".to_string(), dates.len() as u64),
        ]),
        duration_ms: started.elapsed().as_millis() as u64,
        error: (failed > 0).then(|| format!("{failed} partition(s) failed")),
    })
    .await?;
    Ok(summary)
}

/// The catalog partitions a close wrote: the batch index and mismatches of every partition
/// that ran (failed ones wrote nothing), the final index and KPIs of every date it aggregated.
pub fn index_partitions(partitions: &[PartitionOutcome], dates: &[BusinessDate]) -> Vec<Partition> {
    let part = |table: &str, values: Vec<(&str, String)>, location: String| Partition {
        database: DATABASE.into(),
        table: table.into(),
        values: values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        location,
    };
    let mut out = Vec::new();
    for p in partitions.iter().filter(|p| !p.is_failed()) {
        let (date, bank) = p.partition();
        let values = || {
            vec![
                ("business_date", date.to_string()),
                ("bank_id", bank.to_string()),
            ]
        };
        let batch = batch_key(date, bank);
        let dir = batch.rsplit_once('/').map_or(batch.as_str(), |(d, _)| d);
        out.push(part("batch_index", values(), format!("{dir}/")));
        out.push(part(
            "mismatches",
            values(),
            mismatches_prefix(date, Some(bank)),
        ));
    }
    for d in dates {
        let values = || vec![("business_date", d.to_string())];
        for (table, key) in [
            ("final_index", final_key(*d)),
            ("merchant_kpis", kpis_key(*d)),
        ] {
            let dir = key.rsplit_once('/').map_or(key.as_str(), |(d, _)| d);
            out.push(part(table, values(), format!("{dir}/")));
        }
    }
    out
}

/// What a later close decided about a transaction of an earlier date (an open item it
/// settled, or whose window ran out), to apply to that date's final index.
#[derive(Debug, Clone)]
struct Patch {
    transaction_id: TransactionId,
    reconciled_status: ReconciledStatus,
    mismatch_type: MismatchType,
    discrepancy: Option<Decimal>,
    currency: Currency,
    close: BusinessDate,
    detail: SettlementDetail,
}

impl Patch {
    fn of(r: &BatchView<'_>, id: &str, close: BusinessDate) -> Result<Self> {
        Ok(Self {
            transaction_id: TransactionId::new(id)?,
            reconciled_status: r.reconciled_status,
            mismatch_type: r.mismatch_type,
            discrepancy: r.discrepancy.map(|d| r.currency.exact(d)).transpose()?,
            currency: r.currency,
            close,
            detail: r.detail(),
        })
    }
}

/// Applies the later closes' decisions to the final index of `date` (in close order, the
/// latest wins) and writes the settlements back onto the index; returns how many rows
/// changed. A date with no final index yet has nothing to apply them to.
async fn settle_later<S: ObjectStore, I: crate::ports::TransactionIndex>(
    store: &S,
    index: &I,
    date: BusinessDate,
    patches: &[Patch],
) -> Result<u64> {
    let key = final_key(date);
    let mut rows: Vec<FinalRow> = match store.get(&key).await {
        Ok(b) => crate::columnar::read_parquet(b)?,
        Err(Error::NotFound { .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let at: FxHashMap<TransactionId, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.transaction_id.clone(), i))
        .collect();
    let mut changed = Vec::new();
    for p in patches {
        let Some(&i) = at.get(&p.transaction_id) else {
            continue;
        };
        let r = &mut rows[i];
        r.reconciled_status = p.reconciled_status;
        r.mismatch_type = p.mismatch_type;
        r.settlement_status = SettlementStatus::of(p.reconciled_status);
        r.discrepancy = p.discrepancy;
        r.statement_currency = p.currency;
        if p.reconciled_status == ReconciledStatus::Disputed {
            r.status = TxnStatus::Chargeback;
        }
        r.reconciliation_timestamp = cutoff(p.close)?;
        r.detail = p.detail.clone();
        changed.push(i);
    }
    changed.sort_unstable();
    changed.dedup();
    let updated: Vec<&FinalRow> = changed.iter().map(|i| &rows[*i]).collect();
    write_back_settlement(index, date, &updated).await?;
    store.put(&key, Bytes::from(write_parquet(&rows)?)).await?;
    Ok(changed.len() as u64)
}

/// The end of a business date (UTC): the reconciliation timestamp of its close.
fn cutoff(date: BusinessDate) -> Result<DateTime<Utc>> {
    (date.date() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .ok_or_else(|| Error::Invariant("cutoff".into()))
}

/// Milliseconds spent in each phase of the aggregation of one date.
struct Phases {
    ms: BTreeMap<String, u64>,
    last: std::time::Instant,
}

impl Phases {
    fn start() -> Self {
        Phases {
            ms: BTreeMap::new(),
            last: std::time::Instant::now(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.ms
            .insert(name.to_string(), (now - self.last).as_millis() as u64);
        self.last = now;
    }
}
