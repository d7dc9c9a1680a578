//! A large partition on Spark (§13, `docs/spark.md`): the same rows as `reconcile-partition`,
//! one bank-day spread over Spark's tasks.
//!
//! The job (`infra/emr/reconcile_partition.py`) runs in three steps, each a `recon spark …`
//! command around this module:
//! 1. [`plan_job`] (the driver): reads what `reconcile-partition` reads before it reconciles —
//!    reference data, fingerprint and `run_id`, the previous close's state, the hand-overs —
//!    and writes a [`JobPlan`] naming every input object, so Spark reads them itself;
//! 2. [`run_group`] (one Spark task per group, many at once): Spark splits the bank-day into
//!    `groups` independent match groups (an item named by a line goes with that transaction
//!    id, every other item with its merchant: docs/spark.md) and hands each group's
//!    rows to the kernel, which runs the engine and the break index on them and stages the
//!    group's rows and counts under [`JobPlan::stage`];
//! 3. [`merge_job`] (the driver): merges the groups' sorted rows into the files
//!    `reconcile-partition` writes (the same bytes), adds up the counts and the break
//!    registry, records the run, and writes the [`PartitionSummary`] where the close reads
//!    it back ([`spark_summary_key`]).
//!
//! Why groups give the rows of the whole partition: every pass of the engine matches a line
//! only with the transaction it names (exact id) or with transactions of its own merchant that
//! no line names (composite, many-to-one), and every other outcome is a function of the item
//! alone. A group holds both sides of each such pair, so each item's outcome is the one it
//! gets in the whole partition (`shared/tests/spark_groups.rs` checks it on generated days).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow_array::{Array, Int8Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use super::inputs::{bank_transaction_keys, load_dimensions, parquet_keys};
use super::partition::{
    Carried, OPEN_LINES, OPEN_TRANSACTIONS, Outputs, PartitionRequest, PartitionSummary,
    check_source, drop_handed_over, previous_registry, write_outputs,
};
use super::plan::{chained, fingerprint};
use super::routes::Routes;
use crate::breaks::{Decisions, Reopened};
use crate::columnar::{ParquetWriter, WRITE_BATCH_ROWS};
use crate::error::{Error, Result};
use crate::ids::BusinessDate;
use crate::ingest::load_fx;
use crate::keys::{
    decisions_key, open_key, routes_key, spark_stage_key, spark_stage_prefix, spark_summary_key,
    statements_prefix,
};
use crate::money::Currency;
use crate::ports::{ObjectStore, RunStatus, RunsTable, get_opt};
use crate::reconcile::frame::{line_refs, txn_refs};
use crate::reconcile::open::{self, carry_forward};
use crate::reconcile::{
    BreakRegistry, BreakStats, IndexRow, PartitionIndex, PartitionInput, reconcile,
};

/// A ledger object whose transactions this bank's lines name (a hand-over, §11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingSource {
    /// The curated transactions object.
    pub key: String,
    /// Its ledger date: the item date of what is taken from it.
    pub ledger_date: BusinessDate,
}

/// What the Spark job reads and how it splits the partition; written by [`plan_job`] to
/// `{stage}plan.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlan {
    /// The partition, as `reconcile-partition` would get it (previous close included).
    pub request: PartitionRequest,
    /// `run-` and 16 hex digits of the fingerprint, as `reconcile-partition` computes it.
    pub run_id: String,
    /// The inputs' fingerprint chained to the previous close's.
    pub fingerprint: String,
    /// Number of match groups.
    pub groups: u32,
    /// Prefix of the staged plan and groups (ends with `/`).
    pub stage: String,
    /// The statement currency of every amount the engine compares.
    pub currency: Currency,
    /// The date's curated transactions objects of the bank.
    pub ledger: Vec<String>,
    /// The date's curated statements objects of the bank.
    pub statements: Vec<String>,
    /// The previous close's open transactions and lines, when there was one.
    pub open_transactions: Option<String>,
    /// See `open_transactions`.
    pub open_lines: Option<String>,
    /// Ledger objects of other banks this bank takes transactions from.
    pub incoming: Vec<IncomingSource>,
    /// The ids it takes from them.
    pub incoming_ids: Vec<String>,
    /// The ids it hands over to the banks that settled them.
    pub outgoing_ids: Vec<String>,
    /// The merchants whose acquirer is the bank: the date's own transactions of others moved
    /// away since ingestion.
    pub merchants: Vec<String>,
    /// People's decisions about the bank's breaks: every group honours them, and the items
    /// of a manual match go to one group (`manual` of the job's split).
    #[serde(default)]
    pub decisions: Decisions,
    /// When the job started (ms since the epoch), for the run's duration.
    pub started_ms: u64,
}

/// The `_source` column of a group's rows: where an item came from (counted per group).
pub const SOURCE_COLUMN: &str = "_source";
/// `_source` of an item of the date's own delivery or ledger.
pub const SOURCE_OWN: i8 = 0;
/// `_source` of an item carried in from the bank's previous close.
pub const SOURCE_CARRIED: i8 = 1;
/// `_source` of a transaction taken over from another bank's ledger.
pub const SOURCE_TAKEN: i8 = 2;

impl JobPlan {
    /// Key of the plan in the store.
    pub fn key(&self) -> String {
        spark_stage_key(&self.stage, None, "plan.json")
    }

    /// Key of a group's staged file.
    pub fn group_key(&self, group: u32, file: &str) -> String {
        spark_stage_key(&self.stage, Some(group), file)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Plans the job for `req` in `groups` groups and stages the plan. Reads what
/// `reconcile-partition` checks before it reconciles, but not the bank-day: the inputs'
/// fingerprint comes from their recorded SHA-256 ([`ObjectStore::sha256`]), the previous
/// close's state file and the hand-overs are checked, and Spark reads the data.
pub async fn plan_job<S: ObjectStore>(
    store: &S,
    req: &PartitionRequest,
    groups: u32,
) -> Result<JobPlan> {
    if groups == 0 {
        return Err(Error::InvalidConfig {
            name: "--groups".into(),
            reason: "at least one group".into(),
        });
    }
    let started_ms = now_ms();
    let (date, bank) = (req.business_date, &req.bank_id);
    let dims = load_dimensions(store).await?;
    let (inputs_fp, _) = fingerprint(store, &dims, date, bank).await?;
    let fp = chained(&inputs_fp, req.previous.as_ref(), req.awaiting.is_some());
    let run_id = format!("run-{}", &fp[..16]);
    let statements: Vec<String> = parquet_keys(store, &statements_prefix(date, bank))
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let ledger: Vec<String> = bank_transaction_keys(store, date, bank)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    // A configuration problem of this partition fails it (and only it), naming the file.
    dims.check(bank, statements.iter().map(String::as_str))?;
    if let Some(p) = &req.previous {
        Carried::check(store, bank, p).await?;
    }
    let routes: Routes = match get_opt(store, &routes_key(bank, date)).await? {
        Some(b) => serde_json::from_slice(&b)?,
        None => Routes::default(),
    };
    for s in &routes.sources {
        check_source(s, &store.sha256(&s.key).await?)?;
    }
    let currency = match dims.banks.get(bank).copied().flatten() {
        Some(c) => c,
        None => first_currency(store, req, &statements, &ledger).await?,
    };
    let open = |file| {
        req.previous
            .as_ref()
            .map(|prev| open_key(bank, prev.business_date, file))
    };
    let mut merchants: Vec<String> = dims
        .merchants
        .keys()
        .filter(|m| dims.acquirer(m.as_str()) == Some(bank))
        .map(|m| m.to_string())
        .collect();
    merchants.sort_unstable();
    let mut incoming_ids: Vec<String> = routes
        .incoming
        .iter()
        .map(|i| i.transaction_id.clone())
        .collect();
    incoming_ids.sort_unstable();
    let mut outgoing_ids: Vec<String> = routes
        .outgoing
        .iter()
        .map(|o| o.transaction_id.clone())
        .collect();
    outgoing_ids.sort_unstable();
    if let Some(id) = outgoing_ids
        .iter()
        .find(|id| incoming_ids.binary_search(id).is_ok())
    {
        return Err(Error::Invariant(format!(
            "transaction {id} is both handed over and taken over by {bank} on {date}"
        )));
    }
    let plan = JobPlan {
        request: req.clone(),
        stage: spark_stage_prefix(date, bank, &run_id, groups),
        run_id,
        fingerprint: fp,
        groups,
        currency,
        ledger,
        statements,
        open_transactions: open(OPEN_TRANSACTIONS),
        open_lines: open(OPEN_LINES),
        incoming: routes
            .sources
            .iter()
            .map(|s| IncomingSource {
                key: s.key.clone(),
                ledger_date: s.ledger_date,
            })
            .collect(),
        incoming_ids,
        outgoing_ids,
        merchants,
        decisions: Decisions::read(get_opt(store, &decisions_key(bank)).await?.as_deref())?,
        started_ms,
    };
    let mut json = serde_json::to_vec_pretty(&plan)?;
    json.push(b'\n');
    store.put(&plan.key(), Bytes::from(json)).await?;
    Ok(plan)
}

/// The statement currency `reconcile-partition` takes when the bank's mapping names none: its
/// first line's (the date's own, then the carried), else its first transaction's. Reads
/// objects only until it finds one.
async fn first_currency<S: ObjectStore>(
    store: &S,
    req: &PartitionRequest,
    statements: &[String],
    ledger: &[String],
) -> Result<Currency> {
    use crate::close::partition::read_open;
    use crate::reconcile::frame::{LINE_COLUMNS, TXN_COLUMNS, read_columns};
    use crate::records::{StatementLine, Transaction};
    let date = req.business_date.date();
    for key in statements {
        let batches = read_columns::<StatementLine>(store.get(key).await?, LINE_COLUMNS)?;
        if let Some(l) = line_refs(&batches, date)?.first() {
            return Ok(l.currency);
        }
    }
    if let Some(p) = &req.previous {
        let key = open_key(&req.bank_id, p.business_date, OPEN_LINES);
        let batches = read_open::<StatementLine>(store.get(&key).await?, LINE_COLUMNS)?;
        if let Some(l) = line_refs(&batches, date)?.first() {
            return Ok(l.currency);
        }
    }
    for key in ledger {
        let batches = read_columns::<Transaction>(store.get(key).await?, TXN_COLUMNS)?;
        if let Some(t) = txn_refs(&batches, date)?.first() {
            return Ok(t.currency);
        }
    }
    Err(Error::Invariant("empty partition has no currency".into()))
}

/// What one group staged: its counts and its part of the break registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupResult {
    /// The group.
    pub group: u32,
    /// Transactions reconciled.
    pub transactions: u64,
    /// Lines reconciled.
    pub statement_lines: u64,
    /// Open items carried in.
    pub carried_in: u64,
    /// Transactions and lines left open.
    pub carried_out: (u64, u64),
    /// Transactions handed over to another bank.
    pub handed_over: u64,
    /// Transactions taken over from another bank.
    pub taken_over: u64,
    /// Transactions by reconciled status.
    pub by_status: BTreeMap<String, u64>,
    /// Transactions by match rule.
    pub by_rule: BTreeMap<String, u64>,
    /// Breaks by mismatch type.
    pub by_mismatch: BTreeMap<String, u64>,
    /// New, persisting and resolved breaks of the group.
    pub breaks: BreakStats,
    /// People's resolutions the group found no longer holding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reopened: Vec<Reopened>,
    /// What the group adds to the previous registry ([`BreakRegistry::delta`]).
    pub registry: BreakRegistry,
}

/// The files a group stages, one per output of the partition.
const GROUP_FILES: [&str; 4] = [
    "batch.parquet",
    "mismatches.parquet",
    "open_transactions.parquet",
    "open_lines.parquet",
];
const GROUP_RESULT: &str = "group.json";

/// Reconciles one group's rows: `transactions` and `lines` are record batches with the
/// curated columns, the open-item columns (null for the date's own items) and
/// [`SOURCE_COLUMN`]; stages the group's rows and counts.
pub async fn run_group<S: ObjectStore>(
    store: &S,
    plan: &JobPlan,
    group: u32,
    transactions: &[RecordBatch],
    lines: &[RecordBatch],
) -> Result<GroupResult> {
    let req = &plan.request;
    let (date, bank) = (req.business_date, &req.bank_id);
    let dims = load_dimensions(store).await?;
    let day_fx = load_fx(store, date).await?;
    let previous = previous_registry(store, bank, req.previous.as_ref()).await?;
    let mut txns = txn_refs(transactions, date.date())?;
    let lines_refs = line_refs(lines, date.date())?;
    let txn_sources = sources(transactions)?;
    let line_sources = sources(lines)?;
    let count = |s: &[i8], v: i8| s.iter().filter(|x| **x == v).count() as u64;
    let handed_over = drop_handed_over(&mut txns, &plan.outgoing_ids);
    let categories = dims.categories();
    // A bad FX table fails the groups that convert (and so the job), as it fails the
    // partition on Lambda.
    let fx = if txns.iter().any(|t| t.currency != plan.currency) {
        day_fx.needed()?
    } else {
        &day_fx.table
    };
    let calendar = dims.calendar(bank);
    let input = PartitionInput {
        business_date: date,
        bank_id: bank.clone(),
        settlement_currency: Some(plan.currency),
        transactions: &txns,
        lines: &lines_refs,
        categories: &categories,
        fee_rules: &dims.fee_rules,
        tolerances: &dims.tolerances,
        fx,
        calendar: &calendar,
        awaiting: req.awaiting.is_some(),
        manual: &plan.decisions.manual,
    };
    let result = reconcile(&input)?;
    let carry = carry_forward(&input, &result);
    let mut index = PartitionIndex::new(&result, bank, date, &calendar, &plan.run_id, &previous);
    let reopened = index.honour(&plan.decisions);
    let [by_status, by_rule, by_mismatch] = index.counts();
    let files = [
        index.parquet(&index.rows())?,
        index.parquet(&index.mismatch_rows())?,
        open::transactions_parquet(&result, &carry.transactions)?,
        open::lines_parquet(&result, &carry.lines)?,
    ];
    for (name, bytes) in GROUP_FILES.iter().zip(files) {
        store
            .put(&plan.group_key(group, name), Bytes::from(bytes))
            .await?;
    }
    let out = GroupResult {
        group,
        transactions: result.transactions.len() as u64,
        statement_lines: result.lines.len() as u64,
        carried_in: count(&txn_sources, SOURCE_CARRIED) + count(&line_sources, SOURCE_CARRIED),
        carried_out: (carry.transactions.len() as u64, carry.lines.len() as u64),
        handed_over,
        taken_over: count(&txn_sources, SOURCE_TAKEN),
        by_status,
        by_rule,
        by_mismatch,
        breaks: index.stats,
        reopened,
        registry: index.registry.delta(&previous),
    };
    let mut json = serde_json::to_vec(&out)?;
    json.push(b'\n');
    store
        .put(&plan.group_key(group, GROUP_RESULT), Bytes::from(json))
        .await?;
    Ok(out)
}

/// The [`SOURCE_COLUMN`] of every row of `batches`.
fn sources(batches: &[RecordBatch]) -> Result<Vec<i8>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(SOURCE_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<Int8Array>())
            .ok_or_else(|| {
                Error::Invariant(format!(
                    "a group's rows need an int8 {SOURCE_COLUMN} column"
                ))
            })?;
        out.extend(col.iter().map(|v| v.unwrap_or(SOURCE_OWN)));
    }
    Ok(out)
}

/// Merges the staged `groups` into the partition's outputs, records the run and writes the
/// summary where the close reads it ([`spark_summary_key`]).
pub async fn merge_job<S: ObjectStore, R: RunsTable>(
    store: &S,
    runs: &R,
    plan: &JobPlan,
    groups: &[u32],
) -> Result<PartitionSummary> {
    let req = &plan.request;
    let (date, bank) = (req.business_date, &req.bank_id);
    let mut parts = Vec::with_capacity(groups.len());
    for g in groups {
        let b = store.get(&plan.group_key(*g, GROUP_RESULT)).await?;
        let r: GroupResult = serde_json::from_slice(&b)?;
        if r.group != *g {
            return Err(Error::Invariant(format!(
                "{} is the result of group {}",
                plan.group_key(*g, GROUP_RESULT),
                r.group
            )));
        }
        parts.push(r);
    }
    let sum = |f: &dyn Fn(&GroupResult) -> u64| parts.iter().map(f).sum::<u64>();
    let add = |f: &dyn Fn(&GroupResult) -> &BTreeMap<String, u64>| {
        let mut m = BTreeMap::new();
        for p in &parts {
            for (k, v) in f(p) {
                *m.entry(k.clone()).or_insert(0) += v;
            }
        }
        m
    };
    let mut breaks = BreakStats::default();
    let mut reopened: Vec<Reopened> = Vec::new();
    for p in &parts {
        breaks.add(&p.breaks);
        reopened.extend(p.reopened.iter().cloned());
    }
    reopened.sort_by(|a, b| a.break_id.cmp(&b.break_id));
    let previous = previous_registry(store, bank, req.previous.as_ref()).await?;
    let mut registry = previous.apply(parts.iter().map(|p| p.registry.clone()));
    let outgoing: Vec<&str> = plan.outgoing_ids.iter().map(String::as_str).collect();
    registry.hand_over(&mut breaks, &outgoing, bank, date);
    let mut files: [Vec<Bytes>; 4] = Default::default();
    for g in groups {
        for (i, name) in GROUP_FILES.iter().enumerate() {
            files[i].push(store.get(&plan.group_key(*g, name)).await?);
        }
    }
    let [batch, mismatches, open_txns, open_lines] = files;
    let carried_out = (sum(&|p| p.carried_out.0), sum(&|p| p.carried_out.1));
    let outputs = Outputs {
        batch: merge_sorted(batch, SortKey::IndexRows)?,
        mismatches: merge_sorted(mismatches, SortKey::IndexRows)?,
        open_transactions: merge_sorted(open_txns, SortKey::Column("transaction_id"))?,
        open_lines: merge_sorted(open_lines, SortKey::Column("statement_id"))?,
        registry,
        carried_out,
    };
    let summary = PartitionSummary {
        business_date: date,
        bank_id: bank.clone(),
        status: RunStatus::Succeeded,
        run_id: plan.run_id.clone(),
        transactions: sum(&|p| p.transactions),
        statement_lines: sum(&|p| p.statement_lines),
        carried_in: sum(&|p| p.carried_in),
        carried_out: carried_out.0 + carried_out.1,
        handed_over: sum(&|p| p.handed_over),
        taken_over: sum(&|p| p.taken_over),
        by_status: add(&|p| &p.by_status),
        by_rule: add(&|p| &p.by_rule),
        by_mismatch: add(&|p| &p.by_mismatch),
        breaks,
        reopened,
        duration_ms: now_ms().saturating_sub(plan.started_ms),
    };
    write_outputs(store, runs, req, &plan.fingerprint, outputs, &summary).await?;
    let mut json = serde_json::to_vec_pretty(&summary)?;
    json.push(b'\n');
    store
        .put(&spark_summary_key(date, bank), Bytes::from(json))
        .await?;
    Ok(summary)
}

/// How the rows of a staged file are ordered (each group's file is sorted so).
#[derive(Debug, Clone, Copy)]
enum SortKey {
    /// Index rows: transactions by `transaction_id`, then lines by `statement_ids`.
    IndexRows,
    /// By one string column.
    Column(&'static str),
}

/// A staged file read one batch at a time.
struct Cursor {
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    batch: RecordBatch,
    /// Index of `batch` in the merge's list of batches of the current output chunk.
    slot: usize,
    row: usize,
}

impl SortKey {
    /// The key of row `row` of `b`: (transaction rows first, id).
    fn of(self, b: &RecordBatch, row: usize) -> Result<(u8, String)> {
        let col = |name: &str| -> Result<&StringArray> {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| Error::Invariant(format!("staged rows without a {name} column")))
        };
        Ok(match self {
            SortKey::IndexRows => {
                let kind = col("row_kind")?.value(row);
                if kind == "TRANSACTION" {
                    (0, col("transaction_id")?.value(row).to_string())
                } else {
                    (1, col("statement_ids")?.value(row).to_string())
                }
            }
            SortKey::Column(name) => (0, col(name)?.value(row).to_string()),
        })
    }
}

/// Merges Parquet files whose rows are each sorted by `key` into one file of the same schema,
/// written as the single-process path writes it ([`WRITE_BATCH_ROWS`] rows at a time), one
/// batch of each file in memory at a time.
fn merge_sorted(files: Vec<Bytes>, key: SortKey) -> Result<Vec<u8>> {
    let mut schema: Option<SchemaRef> = None;
    // The writer properties of the table the single-process path writes.
    let writer = |schema: SchemaRef| match key {
        SortKey::IndexRows => ParquetWriter::new::<IndexRow>(),
        SortKey::Column(_) => ParquetWriter::with_schema(schema),
    };
    let mut cursors: Vec<Cursor> = Vec::new();
    for f in files {
        let builder = ParquetRecordBatchReaderBuilder::try_new(f)?;
        schema.get_or_insert_with(|| builder.schema().clone());
        let mut reader = builder.with_batch_size(WRITE_BATCH_ROWS).build()?;
        if let Some(batch) = reader.next().transpose()? {
            cursors.push(Cursor {
                reader,
                batch,
                slot: 0,
                row: 0,
            });
        }
    }
    let schema = schema.ok_or_else(|| Error::Invariant("a merge of no groups".into()))?;
    let mut w = writer(schema.clone())?;
    let mut heap = BinaryHeap::new();
    for (i, c) in cursors.iter().enumerate() {
        heap.push(Reverse((key.of(&c.batch, c.row)?, i)));
    }
    let mut slots: Vec<RecordBatch> = Vec::new();
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(WRITE_BATCH_ROWS);
    let reslot = |cursors: &mut [Cursor], slots: &mut Vec<RecordBatch>| {
        slots.clear();
        for c in cursors.iter_mut() {
            c.slot = slots.len();
            slots.push(c.batch.clone());
        }
    };
    reslot(&mut cursors, &mut slots);
    let mut written = false;
    while let Some(Reverse((_, i))) = heap.pop() {
        let c = &mut cursors[i];
        picks.push((c.slot, c.row));
        c.row += 1;
        if c.row == c.batch.num_rows() {
            if let Some(next) = c.reader.next().transpose()? {
                c.batch = next;
                c.row = 0;
                c.slot = slots.len();
                slots.push(c.batch.clone());
            } else {
                c.row = usize::MAX;
            }
        }
        if c.row != usize::MAX && c.row < c.batch.num_rows() {
            heap.push(Reverse((key.of(&c.batch, c.row)?, i)));
        }
        if picks.len() == WRITE_BATCH_ROWS {
            let refs: Vec<&RecordBatch> = slots.iter().collect();
            w.write(&arrow_select::interleave::interleave_record_batch(
                &refs, &picks,
            )?)?;
            written = true;
            picks.clear();
            reslot(&mut cursors, &mut slots);
        }
    }
    if !picks.is_empty() || !written {
        let refs: Vec<&RecordBatch> = slots.iter().collect();
        let batch = if refs.is_empty() {
            RecordBatch::new_empty(schema)
        } else {
            arrow_select::interleave::interleave_record_batch(&refs, &picks)?
        };
        w.write(&batch)?;
    }
    w.finish()
}

/// The record batches of an Arrow IPC file (what the Spark job hands a group's rows in).
pub fn read_ipc(bytes: Bytes, what: &str) -> Result<Vec<RecordBatch>> {
    let reader = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| Error::Invariant(format!("{what}: not an Arrow IPC file: {e}")))?;
    reader
        .map(|b| b.map_err(|e| Error::Invariant(format!("{what}: {e}"))))
        .collect()
}
