//! `reconcile-partition`: one (business date, bank) partition into `index/batch` and
//! `index/mismatches`, all or nothing, byte-identical for identical inputs.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::inputs::load_dimensions;
use super::plan::PartitionInputs;
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate};
use crate::keys::{batch_key, mismatches_key, registry_key};
use crate::ports::{ObjectStore, RunRecord, RunStatus, RunsTable};
use crate::reconcile::frame::{LINE_COLUMNS, TXN_COLUMNS, line_refs, read_columns, txn_refs};
use crate::reconcile::{BreakRegistry, BreakStats, PartitionIndex, PartitionInput, reconcile};
use crate::records::{StatementLine, Transaction};

/// The input of `ReconcilePartition`: one bank's statements and transactions of one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRequest {
    /// The business date of the partition's data.
    pub business_date: BusinessDate,
    /// The bank of the partition.
    pub bank_id: BankId,
    /// The close this run belongs to (break ages are counted to this date).
    pub as_of: BusinessDate,
    /// Name of the state machine execution, recorded with the run; `None` locally.
    #[serde(default)]
    pub execution: Option<String>,
}

/// What reconciling one partition produced: its counts, recorded in the Runs table and
/// handed to the final aggregation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSummary {
    /// The business date of the partition.
    pub business_date: BusinessDate,
    /// The bank of the partition.
    pub bank_id: BankId,
    /// How the run ended.
    pub status: RunStatus,
    /// `run-` and 16 hex digits of the inputs' fingerprint: the same inputs give the same id.
    pub run_id: String,
    /// Ledger transactions reconciled.
    pub transactions: u64,
    /// Bank statement lines reconciled.
    pub statement_lines: u64,
    /// Transactions by reconciled status.
    pub by_status: BTreeMap<String, u64>,
    /// Transactions and lines by match rule, and breaks by mismatch type.
    pub by_rule: BTreeMap<String, u64>,
    /// Breaks by mismatch type.
    pub by_mismatch: BTreeMap<String, u64>,
    /// Breaks new today, persisting from earlier closes, and resolved.
    pub breaks: BreakStats,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
}

/// Reconciles one partition and records the run.
pub async fn reconcile_partition<S: ObjectStore, R: RunsTable>(
    store: &S,
    runs: &R,
    req: &PartitionRequest,
) -> Result<PartitionSummary> {
    let started = Instant::now();
    let (date, bank) = (req.business_date, &req.bank_id);
    let dims = load_dimensions(store).await?;
    let inputs = PartitionInputs::fetch(store, date, bank).await?;
    let fp = inputs.fingerprint(&dims, date, bank);
    let run_id = format!("run-{}", &fp[..16]);
    // A configuration problem of this partition fails it (and only it), naming the file.
    dims.check(bank, inputs.statements.iter().map(|(k, _)| k.as_str()))?;
    let mut line_batches = Vec::new();
    for (_, b) in &inputs.statements {
        line_batches.extend(read_columns::<StatementLine>(b.clone(), LINE_COLUMNS)?);
    }
    let mut txn_batches = Vec::new();
    for (_, b) in &inputs.transactions {
        txn_batches.extend(read_columns::<Transaction>(b.clone(), TXN_COLUMNS)?);
    }
    let lines = line_refs(&line_batches)?;
    let mut transactions = txn_refs(&txn_batches)?;
    // The split by bank was made at ingestion; a merchant since moved to another acquirer
    // is not this bank's any more.
    transactions.retain(|t| dims.acquirer(t.merchant_id) == Some(bank));
    let categories = dims.categories();
    let settlement_currency = dims.banks.get(bank).copied().flatten();
    // A bad FX table fails the partitions that convert, not the others.
    let currency = settlement_currency
        .or_else(|| lines.first().map(|l| l.currency))
        .or_else(|| transactions.first().map(|t| t.currency));
    let fx = if transactions.iter().any(|t| Some(t.currency) != currency) {
        inputs.fx.needed()?
    } else {
        &inputs.fx.table
    };
    let input = PartitionInput {
        business_date: date,
        bank_id: bank.clone(),
        settlement_currency,
        transactions: &transactions,
        lines: &lines,
        categories: &categories,
        fee_rules: &dims.fee_rules,
        tolerances: &dims.tolerances,
        fx,
    };
    let result = reconcile(&input)?;
    let previous: BreakRegistry = match store.get(&registry_key(date, bank)).await {
        Ok(b) => serde_json::from_slice(&b)?,
        Err(Error::NotFound { .. }) => BreakRegistry::default(),
        Err(e) => return Err(e),
    };
    let index = PartitionIndex::new(&result, bank, date, req.as_of.date(), &run_id, &previous);
    let batch = index.parquet(&index.rows())?;
    let mismatches = index.parquet(&index.mismatch_rows())?;
    let [by_status, by_rule, by_mismatch] = index.counts();
    let breaks = index.stats;
    let summary = PartitionSummary {
        business_date: date,
        bank_id: bank.clone(),
        status: RunStatus::Succeeded,
        run_id: run_id.clone(),
        transactions: result.transactions.len() as u64,
        statement_lines: lines.len() as u64,
        by_status,
        by_rule,
        by_mismatch,
        breaks,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let registry = index.registry;

    store
        .put(&batch_key(date, bank), Bytes::from(batch))
        .await?;
    store
        .put(&mismatches_key(date, bank), Bytes::from(mismatches))
        .await?;
    let mut reg = serde_json::to_vec_pretty(&registry)?;
    reg.push(b'\n');
    store
        .put(&registry_key(date, bank), Bytes::from(reg))
        .await?;
    let mut counts = summary.by_status.clone();
    counts.insert("breaks_new".into(), breaks.new);
    counts.insert("breaks_persisting".into(), breaks.persisting);
    counts.insert("breaks_resolved".into(), breaks.resolved);
    counts.insert("statement_lines".into(), summary.statement_lines);
    runs.put(&RunRecord {
        business_date: date,
        run_id: req.execution.clone().unwrap_or_else(|| run_id.clone()),
        partition: bank.to_string(),
        status: RunStatus::Succeeded,
        fingerprint: fp,
        counts,
        duration_ms: summary.duration_ms,
        error: None,
    })
    .await?;
    tracing::info!(
        business_date = %date, bank_id = %bank, transactions = summary.transactions, statement_lines = summary.statement_lines,
        breaks_new = breaks.new, breaks_resolved = breaks.resolved, duration_ms = summary.duration_ms, "partition reconciled"
    );
    Ok(summary)
}
