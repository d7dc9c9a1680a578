//! `reconcile-partition`: one (business date, bank) partition into `index/batch` and
//! `index/mismatches`, all or nothing, byte-identical for identical inputs.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::inputs::load_dimensions;
use super::plan::{AwaitReason, PartitionInputs, chained};
use super::routes::Routes;
use crate::breaks::Decisions;
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate};
use crate::keys::{batch_key, mismatches_key, open_key, registry_key};
use crate::ports::{ObjectStore, RunRecord, RunStatus, RunsTable, get_opt};
use crate::reconcile::frame::{
    LINE_COLUMNS, OPEN_COLUMNS, TXN_COLUMNS, TxnRef, line_refs, read_columns, txn_refs,
};
use crate::reconcile::open::{self, OpenState, carry_forward};
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
    /// The bank's previous close, whose open items this one carries forward; `None` for the
    /// bank's first close.
    #[serde(default)]
    pub previous: Option<PreviousClose>,
    /// Why the bank's statement for the date is not in, when it is awaited: the close runs
    /// with the items it has, and no transaction's window runs out.
    #[serde(default)]
    pub awaiting: Option<AwaitReason>,
}

/// The close a partition carries open items from: its date and the fingerprint its open
/// items must name (so a partition never reads what an older run of that close left).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousClose {
    /// The previous close of the bank.
    pub business_date: BusinessDate,
    /// The fingerprint that close ran with.
    pub fingerprint: String,
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
    /// Ledger transactions reconciled (the date's and those carried in).
    pub transactions: u64,
    /// Bank statement lines reconciled (the delivery's and those carried in).
    pub statement_lines: u64,
    /// Open items (transactions and lines) carried in from the bank's previous close.
    #[serde(default, skip_serializing_if = "super::summary::is_zero")]
    pub carried_in: u64,
    /// Open items left for the bank's next close.
    #[serde(default, skip_serializing_if = "super::summary::is_zero")]
    pub carried_out: u64,
    /// Transactions handed over to the partition of the bank that settled them.
    #[serde(default, skip_serializing_if = "super::summary::is_zero")]
    pub handed_over: u64,
    /// Transactions of another bank's partition taken over, named by this bank's lines.
    #[serde(default, skip_serializing_if = "super::summary::is_zero")]
    pub taken_over: u64,
    /// Transactions by reconciled status.
    pub by_status: BTreeMap<String, u64>,
    /// Transactions and lines by match rule, and breaks by mismatch type.
    pub by_rule: BTreeMap<String, u64>,
    /// Breaks by mismatch type.
    pub by_mismatch: BTreeMap<String, u64>,
    /// Breaks new today, persisting from earlier closes, and resolved.
    pub breaks: BreakStats,
    /// People's resolutions this run found no longer holding: the final aggregation records
    /// an event that reopens each (design.md §12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reopened: Vec<crate::breaks::Reopened>,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
}

/// What a partition run writes: the batch index and mismatches (Parquet), the break registry
/// and the open items for the bank's next close.
pub(crate) struct Outputs {
    pub(crate) batch: Vec<u8>,
    pub(crate) mismatches: Vec<u8>,
    pub(crate) registry: BreakRegistry,
    pub(crate) open_transactions: Vec<u8>,
    pub(crate) open_lines: Vec<u8>,
    /// Transactions and lines left open.
    pub(crate) carried_out: (u64, u64),
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
    let fp = chained(
        &inputs.fingerprint(&dims, date, bank)?,
        req.previous.as_ref(),
        req.awaiting.is_some(),
    );
    let run_id = format!("run-{}", &fp[..16]);
    // A configuration problem of this partition fails it (and only it), naming the file.
    dims.check(bank, inputs.statements.iter().map(|(k, _)| k.as_str()))?;
    let carried = Carried::fetch(store, bank, req.previous.as_ref()).await?;
    let mut line_batches = Vec::new();
    for (_, b) in &inputs.statements {
        line_batches.extend(read_columns::<StatementLine>(b.clone(), LINE_COLUMNS)?);
    }
    let mut txn_batches = Vec::new();
    for (_, b) in &inputs.transactions {
        txn_batches.extend(read_columns::<Transaction>(b.clone(), TXN_COLUMNS)?);
    }
    let open_line_batches = carried.lines()?;
    let open_txn_batches = carried.transactions()?;
    let routes = Handed::fetch(store, inputs.routes.as_ref()).await?;
    let mut lines = line_refs(&line_batches, date.date())?;
    let mut transactions = txn_refs(&txn_batches, date.date())?;
    // The split by bank was made at ingestion; a merchant since moved to another acquirer
    // is not this bank's any more.
    transactions.retain(|t| dims.acquirer(t.merchant_id) == Some(bank));
    let carried_in = (
        merge_open(
            &mut transactions,
            txn_refs(&open_txn_batches, date.date())?,
            |t| t.transaction_id,
        ),
        merge_open(
            &mut lines,
            line_refs(&open_line_batches, date.date())?,
            |l| l.statement_id,
        ),
    );
    // Payments settled by another bank leave; those this bank's lines name come in (§11).
    let handed_out = routes.hand_over(&mut transactions);
    let taken_in = merge_open(&mut transactions, routes.taken_in()?, |t| t.transaction_id);
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
    let calendar = dims.calendar(bank);
    let decisions = Decisions::read(inputs.decisions.as_deref())?;
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
        calendar: &calendar,
        awaiting: req.awaiting.is_some(),
        manual: &decisions.manual,
    };
    let result = reconcile(&input)?;
    let carry = carry_forward(&input, &result);
    let mut index = PartitionIndex::new(&result, bank, date, &calendar, &run_id, &carried.registry);
    let reopened = index.honour(&decisions);
    index
        .registry
        .hand_over(&mut index.stats, &routes.outgoing_ids(), bank, date);
    let breaks = index.stats;
    let [by_status, by_rule, by_mismatch] = index.counts();
    let summary = PartitionSummary {
        business_date: date,
        bank_id: bank.clone(),
        status: RunStatus::Succeeded,
        run_id: run_id.clone(),
        transactions: result.transactions.len() as u64,
        statement_lines: result.lines.len() as u64,
        carried_in: carried_in.0 + carried_in.1,
        carried_out: (carry.transactions.len() + carry.lines.len()) as u64,
        handed_over: handed_out,
        taken_over: taken_in,
        by_status,
        by_rule,
        by_mismatch,
        breaks,
        reopened,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let outputs = Outputs {
        batch: index.parquet(&index.rows())?,
        mismatches: index.parquet(&index.mismatch_rows())?,
        open_transactions: open::transactions_parquet(&result, &carry.transactions)?,
        open_lines: open::lines_parquet(&result, &carry.lines)?,
        carried_out: (carry.transactions.len() as u64, carry.lines.len() as u64),
        registry: index.registry,
    };
    write_outputs(store, runs, req, &fp, outputs, &summary).await?;
    Ok(summary)
}

/// Writes a partition run's outputs, the open items' state last but for the Runs record.
pub(crate) async fn write_outputs<S: ObjectStore, R: RunsTable>(
    store: &S,
    runs: &R,
    req: &PartitionRequest,
    fp: &str,
    outputs: Outputs,
    summary: &PartitionSummary,
) -> Result<()> {
    let (date, bank) = (req.business_date, &req.bank_id);
    let breaks = summary.breaks;
    store
        .put(&batch_key(date, bank), Bytes::from(outputs.batch))
        .await?;
    store
        .put(&mismatches_key(date, bank), Bytes::from(outputs.mismatches))
        .await?;
    let mut reg = serde_json::to_vec_pretty(&outputs.registry)?;
    reg.push(b'\n');
    store
        .put(&registry_key(date, bank), Bytes::from(reg))
        .await?;
    store
        .put(
            &open_key(bank, date, OPEN_TRANSACTIONS),
            Bytes::from(outputs.open_transactions),
        )
        .await?;
    store
        .put(
            &open_key(bank, date, OPEN_LINES),
            Bytes::from(outputs.open_lines),
        )
        .await?;
    // Last: the next close reads the open items only once this names its fingerprint.
    let state = OpenState {
        business_date: date,
        bank_id: bank.clone(),
        fingerprint: fp.to_string(),
        transactions: outputs.carried_out.0,
        lines: outputs.carried_out.1,
    };
    let mut state = serde_json::to_vec_pretty(&state)?;
    state.push(b'\n');
    store
        .put(&open_key(bank, date, OPEN_STATE), Bytes::from(state))
        .await?;
    let mut counts = summary.by_status.clone();
    counts.insert("breaks_new".into(), breaks.new);
    counts.insert("breaks_persisting".into(), breaks.persisting);
    counts.insert("breaks_resolved".into(), breaks.resolved);
    counts.insert(
        "breaks_resolved_by_people".into(),
        breaks.resolved_by_people,
    );
    counts.insert("breaks_reopened".into(), breaks.reopened);
    counts.insert("statement_lines".into(), summary.statement_lines);
    runs.put(&RunRecord {
        business_date: date,
        run_id: req
            .execution
            .clone()
            .unwrap_or_else(|| summary.run_id.clone()),
        partition: bank.to_string(),
        // An awaited bank's close ran, and the Runs table says what it waits for.
        status: match req.awaiting {
            Some(_) => RunStatus::AwaitingDelivery,
            None => RunStatus::Succeeded,
        },
        fingerprint: fp.to_string(),
        counts,
        duration_ms: summary.duration_ms,
        error: req.awaiting.map(|r| {
            format!(
                "awaiting the statement of {date}: {}; its transactions stay pending",
                r.as_str()
            )
        }),
    })
    .await?;
    tracing::info!(
        business_date = %date, bank_id = %bank, transactions = summary.transactions, statement_lines = summary.statement_lines,
        breaks_new = breaks.new, breaks_resolved = breaks.resolved, duration_ms = summary.duration_ms, "partition reconciled"
    );
    Ok(())
}

/// The open items file names under `index/open/bank_id={bank}/business_date={date}/`.
pub(crate) const OPEN_TRANSACTIONS: &str = "transactions.parquet";
pub(crate) const OPEN_LINES: &str = "lines.parquet";
/// Written last: the open items of a close are valid once this names its fingerprint.
pub const OPEN_STATE: &str = "state.json";

/// What the bank's previous close left: its open items (Parquet) and its break registry.
pub(crate) struct Carried {
    transactions: Option<Bytes>,
    lines: Option<Bytes>,
    registry: BreakRegistry,
}

impl Carried {
    /// Reads what `previous` left for `bank`; nothing for a first close. Fails when that
    /// close's open items are missing or were written by another run of it than the one
    /// the plan names (the previous close did not finish, or ran again since).
    async fn fetch<S: ObjectStore>(
        store: &S,
        bank: &BankId,
        previous: Option<&PreviousClose>,
    ) -> Result<Self> {
        let Some(p) = previous else {
            return Ok(Self {
                transactions: None,
                lines: None,
                registry: BreakRegistry::default(),
            });
        };
        Self::check(store, bank, p).await?;
        let registry = previous_registry(store, bank, Some(p)).await?;
        Ok(Self {
            transactions: Some(
                store
                    .get(&open_key(bank, p.business_date, OPEN_TRANSACTIONS))
                    .await?,
            ),
            lines: Some(
                store
                    .get(&open_key(bank, p.business_date, OPEN_LINES))
                    .await?,
            ),
            registry,
        })
    }

    /// Fails when the open items `previous` left are missing or were written by another run
    /// of that close than the one the plan names.
    pub(crate) async fn check<S: ObjectStore>(
        store: &S,
        bank: &BankId,
        p: &PreviousClose,
    ) -> Result<()> {
        let state_key = open_key(bank, p.business_date, OPEN_STATE);
        // The plan orders a bank's closes; this holds unless a close was skipped or ran again.
        let stale = |found: &str| {
            Error::Invariant(format!(
                "the open items of the close of {bank} on {} ({state_key}) are {found}: start a new execution of the close, which plans the bank's days in order",
                p.business_date
            ))
        };
        let state: OpenState = match store.get(&state_key).await {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(Error::NotFound { .. }) => return Err(stale("missing")),
            Err(e) => return Err(e),
        };
        if state.fingerprint != p.fingerprint {
            return Err(stale("from another run of that close"));
        }
        Ok(())
    }

    fn transactions(&self) -> Result<Vec<arrow_array::RecordBatch>> {
        Self::read::<Transaction>(self.transactions.as_ref(), TXN_COLUMNS)
    }

    fn lines(&self) -> Result<Vec<arrow_array::RecordBatch>> {
        Self::read::<StatementLine>(self.lines.as_ref(), LINE_COLUMNS)
    }

    fn read<T: crate::columnar::Columnar>(
        bytes: Option<&Bytes>,
        columns: &[&str],
    ) -> Result<Vec<arrow_array::RecordBatch>> {
        bytes.map_or_else(|| Ok(Vec::new()), |b| read_open::<T>(b.clone(), columns))
    }
}

/// Reads open items (`index/open/…`) of table `T`: `columns` and the [`OPEN_COLUMNS`].
pub fn read_open<T: crate::columnar::Columnar>(
    bytes: Bytes,
    columns: &[&str],
) -> Result<Vec<arrow_array::RecordBatch>> {
    let cols: Vec<&str> = columns.iter().chain(OPEN_COLUMNS).copied().collect();
    read_columns::<T>(bytes, &cols)
}

/// Adds the carried items to the date's own, except those the date delivered again (a
/// corrected ledger or statement wins over what an earlier close kept); returns how many
/// were added.
pub fn merge_open<'a, T>(own: &mut Vec<T>, open: Vec<T>, id: impl Fn(&T) -> &'a str) -> u64 {
    let ids = sorted(own.iter().map(&id));
    let before = own.len();
    own.extend(
        open.into_iter()
            .filter(|t| ids.binary_search(&id(t)).is_err()),
    );
    (own.len() - before) as u64
}

/// A partition's hand-overs (§11): the ledger objects its incoming transactions are read
/// from, checked against the plan's hashes.
struct Handed {
    routes: Routes,
    batches: Vec<(BusinessDate, Vec<arrow_array::RecordBatch>)>,
}

impl Handed {
    async fn fetch<S: ObjectStore>(store: &S, routes: Option<&Bytes>) -> Result<Self> {
        let routes: Routes = match routes {
            Some(b) => serde_json::from_slice(b)?,
            None => Routes::default(),
        };
        let mut batches = Vec::new();
        for s in &routes.sources {
            let bytes = store.get(&s.key).await?;
            check_source(s, &hex::encode(Sha256::digest(&bytes)))?;
            batches.push((
                s.ledger_date,
                read_columns::<Transaction>(bytes, TXN_COLUMNS)?,
            ));
        }
        Ok(Self { routes, batches })
    }

    /// Removes the transactions handed over to another bank; returns how many were here.
    fn hand_over(&self, transactions: &mut Vec<TxnRef<'_>>) -> u64 {
        drop_handed_over(transactions, &self.outgoing_ids())
    }

    /// The outgoing transaction ids, sorted.
    fn outgoing_ids(&self) -> Vec<&str> {
        sorted(
            self.routes
                .outgoing
                .iter()
                .map(|o| o.transaction_id.as_str()),
        )
    }

    /// The incoming transactions, each with its ledger date as its item date.
    fn taken_in(&self) -> Result<Vec<TxnRef<'_>>> {
        let wanted = sorted(
            self.routes
                .incoming
                .iter()
                .map(|i| i.transaction_id.as_str()),
        );
        let mut out = Vec::with_capacity(wanted.len());
        for (date, batches) in &self.batches {
            out.extend(
                txn_refs(batches, date.date())?
                    .into_iter()
                    .filter(|t| wanted.binary_search(&t.transaction_id).is_ok()),
            );
        }
        Ok(out)
    }
}

/// The break registry the bank's `previous` close left (empty for a first close, or when
/// that close had none).
pub(crate) async fn previous_registry<S: ObjectStore>(
    store: &S,
    bank: &BankId,
    previous: Option<&PreviousClose>,
) -> Result<BreakRegistry> {
    let Some(p) = previous else {
        return Ok(BreakRegistry::default());
    };
    match get_opt(store, &registry_key(p.business_date, bank)).await? {
        Some(b) => Ok(serde_json::from_slice(&b)?),
        None => Ok(BreakRegistry::default()),
    }
}

/// Removes from `transactions` those handed over to another bank (`outgoing`, sorted);
/// returns how many were there.
pub(crate) fn drop_handed_over<O: AsRef<str>>(
    transactions: &mut Vec<TxnRef<'_>>,
    outgoing: &[O],
) -> u64 {
    let before = transactions.len();
    transactions.retain(|t| {
        outgoing
            .binary_search_by(|o| o.as_ref().cmp(t.transaction_id))
            .is_err()
    });
    (before - transactions.len()) as u64
}

/// Fails when a ledger object a partition takes transactions from is no longer the version
/// its hand-overs were planned with (`sha256`: the object's now).
pub(crate) fn check_source(source: &super::routes::Source, sha256: &str) -> Result<()> {
    if sha256 != source.sha256 {
        return Err(Error::Invariant(format!(
            "{} changed since the close was planned (its hand-overs name another version): start a new execution of the close",
            source.key
        )));
    }
    Ok(())
}

/// `ids` sorted, for binary searches.
fn sorted<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = ids.collect();
    v.sort_unstable();
    v
}
