//! `plan-partitions`: the (business date, bank) partitions a close must reconcile.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::inputs::{
    Dimensions, bank_transaction_keys, bank_transaction_objects, dates_with_data, load_dimensions,
    objects, parquet_keys,
};
use crate::error::Result;
use crate::ids::{BankId, BusinessDate, SourceId};
use crate::ingest::{DayFx, load_fx};
use crate::keys::{self, decisions_key, routes_key, statements_prefix, transactions_prefix};
use crate::manifest::MANIFEST_FILE;
use crate::ports::{FileStatus, ManifestTable, ObjectStore, RunStatus, RunsTable, get_opt};
use crate::reconcile::open::OpenState;

use super::insight::{Capacity, capacity};
use super::partition::{OPEN_STATE, PreviousClose};
use super::routes::plan_routes;

/// Default largest partition input a Lambda reconciles; larger ones go to the EMR step.
pub const DEFAULT_LAMBDA_MAX_INPUT_BYTES: u64 = 128 * 1024 * 1024;

/// Earlier business dates a close looks at for late or corrected deliveries.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 7;

fn default_lookback() -> u32 {
    DEFAULT_LOOKBACK_DAYS
}

/// The input of `PlanPartitions`, the first step of the daily close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// The business date to close.
    pub business_date: BusinessDate,
    /// Execution name (`close-{date}-{n}`); recorded with every partition run.
    #[serde(default)]
    pub execution: Option<String>,
    /// Reconcile every partition even when its inputs did not change.
    #[serde(default)]
    pub force: bool,
    /// Earlier business dates to look at for late or corrected deliveries.
    #[serde(default = "default_lookback")]
    pub lookback_days: u32,
    /// Partitions with more input bytes go to EMR (default
    /// [`DEFAULT_LAMBDA_MAX_INPUT_BYTES`]).
    #[serde(default)]
    pub lambda_max_input_bytes: Option<u64>,
}

/// Where a partition is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Route {
    /// In the `reconcile-partition` Lambda function.
    Lambda,
    /// As an EMR step: the inputs are above the Lambda size limit.
    Emr,
}

/// One partition of the plan (the Map state's item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPartition {
    /// The business date of the partition's data.
    pub business_date: BusinessDate,
    /// The bank of the partition.
    pub bank_id: BankId,
    /// Hash of the inputs, reference data, rules and engine version; equal to the last
    /// successful run's means nothing changed.
    pub fingerprint: String,
    /// Size of every input object (statements and transactions) in bytes.
    pub input_bytes: u64,
    /// Size of the bank's curated transactions objects.
    pub transactions_bytes: u64,
    /// Lambda or EMR, by [`Self::input_bytes`].
    pub route: Route,
    /// The close this partition belongs to.
    pub as_of: BusinessDate,
    /// The bank's previous close, whose open items the partition carries forward.
    pub previous: Option<PreviousClose>,
    /// Why the bank's statement for the date is awaited (also in [`Plan::awaiting`]), if it is.
    pub awaiting: Option<AwaitReason>,
}

/// A bank's partitions of one close, in date order: each carries the open items of the one
/// before, so they run one after the other (the inner Map of the state machine), while
/// banks run side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankChain {
    /// The bank.
    pub bank_id: BankId,
    /// Its partitions to reconcile, oldest first.
    pub partitions: Vec<PlannedPartition>,
}

/// What a close will do: the partitions to reconcile by route, the unchanged ones, and the
/// dates to aggregate again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The business date being closed.
    pub business_date: BusinessDate,
    /// Name of the execution the partitions are recorded with.
    pub execution: String,
    /// Banks whose partitions go to the Lambda Map state.
    pub lambda_chains: Vec<BankChain>,
    /// Banks with a partition above the Lambda size limit: the EMR branch runs their chain.
    pub emr_chains: Vec<BankChain>,
    /// Partitions whose inputs match their last successful run: counted, not listed. The
    /// plan is the state machine's payload (at most 256 KB), and a list of every bank's
    /// unchanged days of the window would grow with banks × days for no reader (the Runs table
    /// has each partition's last run).
    pub unchanged: usize,
    /// Dates the final aggregation must rebuild.
    pub dates: Vec<BusinessDate>,
    /// Banks whose statement of a date is not in: their partitions are not closed (their
    /// transactions are not called missing at the bank), and wait for the delivery.
    #[serde(default)]
    pub awaiting: Vec<AwaitingDelivery>,
    /// Payments the closes hand from their merchant's acquirer to the bank that settled
    /// them (a merchant with two acquirers: §11).
    #[serde(default)]
    pub handed_over: usize,
    /// Each bank's Lambda limit against its volume forecast (§14): `outgrows` warns that a
    /// partition of the next business days is expected to go to EMR.
    #[serde(default)]
    pub capacity: Vec<Capacity>,
    /// The Rules table's rules this close uses, when the table is in use (the plan wrote them
    /// to `config/` first: [`super::rules::publish`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<super::rules::RulesInForce>,
}

/// A statement bank whose delivery for a business date is not usable at the close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingDelivery {
    /// The business date of the missing statement.
    pub business_date: BusinessDate,
    /// The bank whose statement is awaited.
    pub bank_id: BankId,
    /// The bank's statement sources.
    pub sources: Vec<SourceId>,
    /// Why the statement is not usable.
    pub reason: AwaitReason,
}

/// Why a bank's statement is not usable at the close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AwaitReason {
    /// No manifest has arrived.
    NotDelivered,
    /// The delivery was refused as a whole (bad manifest, every file quarantined).
    Quarantined,
    /// Accepted, but its normalization has not finished (it is asked for again by the next
    /// validation of the manifest).
    NotNormalized,
}

impl AwaitReason {
    /// The code as serialized (`NOT_DELIVERED`).
    pub fn as_str(self) -> &'static str {
        match self {
            AwaitReason::NotDelivered => "NOT_DELIVERED",
            AwaitReason::Quarantined => "QUARANTINED",
            AwaitReason::NotNormalized => "NOT_NORMALIZED",
        }
    }
}

/// Why `bank`'s statement of `date` is not usable, or `None` when one of its sources delivered
/// it: a delivery counts once it is accepted and every accepted file is normalized.
async fn awaited<M: ManifestTable>(
    manifests: &M,
    sources: &[SourceId],
    date: BusinessDate,
) -> Result<Option<AwaitReason>> {
    let mut reason = None;
    for source in sources {
        let rows = manifests.delivery(source, date).await?;
        let why = match rows.iter().find(|r| r.file == MANIFEST_FILE) {
            None => AwaitReason::NotDelivered,
            Some(m) if m.status == FileStatus::Quarantined => AwaitReason::Quarantined,
            Some(m)
                if rows.iter().any(|r| {
                    r.file != MANIFEST_FILE
                        && r.version == m.version
                        && r.status == FileStatus::Accepted
                }) =>
            {
                AwaitReason::NotNormalized
            }
            Some(_) => return Ok(None),
        };
        // The most advanced state of the bank's sources says the most.
        reason = reason.max(Some(why));
    }
    Ok(reason)
}

/// The fingerprint of a close in its bank's chain: its own inputs', the previous close's,
/// and whether its statement is awaited. A change to an earlier close changes every later
/// one of the bank, so they are planned again, in order.
pub fn chained(inputs: &str, previous: Option<&PreviousClose>, awaiting: bool) -> String {
    let mut h = Sha256::new();
    h.update(inputs.as_bytes());
    if let Some(p) = previous {
        h.update(format!("|after {} {}", p.business_date, p.fingerprint).as_bytes());
    }
    if awaiting {
        h.update(b"|awaiting");
    }
    hex::encode(h.finalize())
}

/// The bank's latest close before `date` that left open items (its state names the
/// fingerprint it ran with), or `None` when the bank has never been closed before `date`.
pub async fn previous_close<S: ObjectStore>(
    store: &S,
    bank: &BankId,
    date: BusinessDate,
) -> Result<Option<PreviousClose>> {
    let mut latest = None;
    for obj in store.list(&keys::open_bank_prefix(bank)).await? {
        if !obj.key.ends_with(OPEN_STATE) {
            continue;
        }
        if let Some(d) = keys::open_date(&obj.key).filter(|d| *d < date)
            && latest.as_ref().is_none_or(|(l, _)| d > *l)
        {
            latest = Some((d, obj.key.clone()));
        }
    }
    let Some((business_date, key)) = latest else {
        return Ok(None);
    };
    let state: OpenState = serde_json::from_slice(&store.get(&key).await?)?;
    Ok(Some(PreviousClose {
        business_date,
        fingerprint: state.fingerprint,
    }))
}

/// Fingerprint of one partition's inputs (its statements, the day's transactions, FX,
/// reference data, rules and the engine version) and their size in bytes, from the objects'
/// recorded SHA-256 ([`ObjectStore::sha256`]: a HEAD on S3), without reading them.
pub async fn fingerprint<S: ObjectStore>(
    store: &S,
    dims: &Dimensions,
    date: BusinessDate,
    bank: &BankId,
) -> Result<(String, u64)> {
    let mut objects = parquet_keys(store, &statements_prefix(date, bank)).await?;
    objects.extend(bank_transaction_keys(store, date, bank).await?);
    let mut digests = Vec::with_capacity(objects.len());
    for o in &objects {
        let hex = store.sha256(&o.key).await?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&hex, &mut digest).map_err(|e| {
            crate::error::Error::Invariant(format!("the SHA-256 of {} is not hex: {e}", o.key))
        })?;
        digests.push((o.key.as_str(), digest));
    }
    let fx = load_fx(store, date).await?;
    let routes = get_opt(store, &routes_key(bank, date)).await?;
    let decisions = get_opt(store, &decisions_key(bank)).await?;
    let fp = fingerprint_of(
        dims,
        date,
        bank,
        digests.into_iter(),
        fx.bytes.as_deref(),
        routes.as_deref(),
        decisions.as_deref(),
    )?;
    Ok((fp, objects.iter().map(|o| o.size).sum()))
}

/// The fingerprint of a partition: the reference data's, the rules it can use
/// ([`Dimensions::rules_digest`]), the partition's, each input object's key and SHA-256 in key
/// order (statements, then transactions), the FX table's bytes, the hand-overs' and people's
/// decisions about the bank's breaks. The plan (from recorded digests) and the partition run
/// (from the bytes it read) compute it the same way.
fn fingerprint_of<'k>(
    dims: &Dimensions,
    date: BusinessDate,
    bank: &BankId,
    objects: impl Iterator<Item = (&'k str, [u8; 32])>,
    fx: Option<&[u8]>,
    routes: Option<&[u8]>,
    decisions: Option<&[u8]>,
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(dims.fingerprint.as_bytes());
    h.update(dims.rules_digest(bank, date)?);
    h.update(format!("{date}|{bank}").as_bytes());
    for (key, digest) in objects {
        h.update(key.as_bytes());
        h.update(digest);
    }
    if let Some(fx) = fx {
        h.update(fx);
    }
    if let Some(routes) = routes {
        h.update(b"|routes");
        h.update(routes);
    }
    if let Some(decisions) = decisions {
        h.update(b"|decisions");
        h.update(decisions);
    }
    Ok(hex::encode(h.finalize()))
}

/// The objects a partition is reconciled from, fetched once: for its fingerprint and its data.
pub struct PartitionInputs {
    /// The bank's curated statements objects of the date, key and bytes.
    pub statements: Vec<(String, bytes::Bytes)>,
    /// The curated transactions objects of the date for the bank, key and bytes.
    pub transactions: Vec<(String, bytes::Bytes)>,
    /// The day's FX table.
    pub fx: DayFx,
    /// The partition's hand-overs (`routes.json`), when it has some.
    pub routes: Option<bytes::Bytes>,
    /// People's decisions about the bank's breaks (`decisions.json`), when there are some.
    pub decisions: Option<bytes::Bytes>,
}

impl PartitionInputs {
    /// Reads the statements and transactions of `bank` on `date`, and the day's FX table.
    pub async fn fetch<S: ObjectStore>(
        store: &S,
        date: BusinessDate,
        bank: &BankId,
    ) -> Result<Self> {
        Ok(Self {
            statements: objects(store, &statements_prefix(date, bank)).await?,
            transactions: bank_transaction_objects(store, date, bank).await?,
            fx: load_fx(store, date).await?,
            routes: get_opt(store, &routes_key(bank, date)).await?,
            decisions: get_opt(store, &decisions_key(bank)).await?,
        })
    }

    /// Hash of the inputs with the reference data, rules and engine version (the plan's
    /// [`fingerprint`] of the same objects).
    pub fn fingerprint(
        &self,
        dims: &Dimensions,
        date: BusinessDate,
        bank: &BankId,
    ) -> Result<String> {
        let objects = self
            .statements
            .iter()
            .chain(&self.transactions)
            .map(|(k, b)| (k.as_str(), <[u8; 32]>::from(Sha256::digest(b))));
        fingerprint_of(
            dims,
            date,
            bank,
            objects,
            self.fx.bytes.as_deref(),
            self.routes.as_deref(),
            self.decisions.as_deref(),
        )
    }
}

/// Plans a close: every partition with data in the lookback window, minus those whose
/// fingerprint equals that of their last successful run, as one chain per bank in date order
/// (each partition carries the open items of the one before: §11).
///
/// A bank that has statement sources but no usable delivery for a date is still closed for
/// that date (its transactions stay PENDING) and listed in [`Plan::awaiting`] (for the close's
/// own date, every such bank); when the delivery arrives, its fingerprint changes and the bank
/// is closed again from that date on. Partitions recorded as succeeded by this same execution
/// are planned again: an execution that never finished (a crash of the local runner) is re-run
/// whole, as it would have run.
pub async fn plan<S: ObjectStore, R: RunsTable, M: ManifestTable>(
    store: &S,
    runs: &R,
    manifests: &M,
    req: &PlanRequest,
) -> Result<Plan> {
    let dims = load_dimensions(store).await?;
    let execution = req
        .execution
        .clone()
        .unwrap_or_else(|| format!("close-{}", req.business_date));
    let max_bytes = req
        .lambda_max_input_bytes
        .unwrap_or(DEFAULT_LAMBDA_MAX_INPUT_BYTES);
    let mut out = Plan {
        business_date: req.business_date,
        execution,
        lambda_chains: Vec::new(),
        emr_chains: Vec::new(),
        unchanged: 0,
        dates: Vec::new(),
        awaiting: Vec::new(),
        handed_over: 0,
        capacity: Vec::new(),
        rules: None,
    };
    // Each bank's partitions of the window, in date order.
    let mut by_bank: BTreeMap<BankId, Vec<(BusinessDate, u64, Option<AwaitReason>)>> =
        BTreeMap::new();
    let mut done: BTreeSet<(BusinessDate, String, String)> = BTreeSet::new();
    let mut changed_dates = BTreeSet::new();
    for date in dates_with_data(store, req.business_date, req.lookback_days).await? {
        // Banks with statements that day, and banks whose merchants transacted that day.
        let mut banks: BTreeMap<BankId, u64> = BTreeMap::new();
        for obj in store.list(&keys::statements_date_prefix(date)).await? {
            if let Some(b) = keys::statements_bank(&obj.key) {
                banks.entry(BankId::new(b)?).or_default();
            }
        }
        for obj in store.list(&transactions_prefix(date)).await? {
            if let Some(b) = keys::transactions_bank(&obj.key) {
                *banks.entry(BankId::new(b)?).or_default() += obj.size;
            }
        }
        for (bank, txns) in banks {
            let reason = match dims.statement_sources.get(&bank) {
                Some(sources) if dims.calendar(&bank).is_business_day(date.date()) => {
                    awaited(manifests, sources, date).await?
                }
                _ => None,
            };
            by_bank.entry(bank).or_default().push((date, txns, reason));
        }
        if date == req.business_date {
            // Banks with nothing curated for the day at all are awaited too.
            for (bank, sources) in &dims.statement_sources {
                if by_bank
                    .get(bank)
                    .is_some_and(|d| d.last().is_some_and(|(d, _, _)| *d == date))
                    || !dims.calendar(bank).is_business_day(date.date())
                {
                    continue;
                }
                if let Some(reason) = awaited(manifests, sources, date).await? {
                    out.awaiting.push(AwaitingDelivery {
                        business_date: date,
                        bank_id: bank.clone(),
                        sources: sources.clone(),
                        reason,
                    });
                }
            }
        }
        if date == req.business_date {
            changed_dates.insert(date);
        }
        for r in runs.runs(date).await? {
            // A close of an awaited bank ran (its items pending) and records the wait.
            let ran = matches!(r.status, RunStatus::Succeeded | RunStatus::AwaitingDelivery)
                && !r.fingerprint.is_empty();
            if ran && r.run_id != out.execution {
                done.insert((date, r.partition, r.fingerprint));
            }
        }
    }
    for days in by_bank.values_mut() {
        days.sort_by_key(|(d, _, _)| *d);
    }
    // Hand-overs between banks first: they are part of the partitions' fingerprints.
    let closes: BTreeMap<BankId, Vec<BusinessDate>> = by_bank
        .iter()
        .map(|(b, days)| (b.clone(), days.iter().map(|(d, _, _)| *d).collect()))
        .collect();
    out.handed_over = plan_routes(store, &dims, &closes).await?;
    let mut sizes: BTreeMap<BankId, Vec<(BusinessDate, u64)>> = BTreeMap::new();
    for (bank, days) in by_bank {
        let first = days
            .first()
            .map(|(d, _, _)| *d)
            .unwrap_or(req.business_date);
        let mut previous = previous_close(store, &bank, first).await?;
        let mut chain = BankChain {
            bank_id: bank.clone(),
            partitions: Vec::new(),
        };
        let mut emr = false;
        for (date, txns, reason) in days {
            if let (Some(reason), Some(sources)) = (reason, dims.statement_sources.get(&bank)) {
                out.awaiting.push(AwaitingDelivery {
                    business_date: date,
                    bank_id: bank.clone(),
                    sources: sources.clone(),
                    reason,
                });
            }
            let (inputs_fp, input_bytes) = fingerprint(store, &dims, date, &bank).await?;
            sizes
                .entry(bank.clone())
                .or_default()
                .push((date, input_bytes));
            let fp = chained(&inputs_fp, previous.as_ref(), reason.is_some());
            let p = PlannedPartition {
                business_date: date,
                route: if input_bytes > max_bytes {
                    Route::Emr
                } else {
                    Route::Lambda
                },
                bank_id: bank.clone(),
                fingerprint: fp.clone(),
                input_bytes,
                transactions_bytes: txns,
                as_of: req.business_date,
                previous: previous.clone(),
                awaiting: reason,
            };
            previous = Some(PreviousClose {
                business_date: date,
                fingerprint: fp.clone(),
            });
            if !req.force && done.contains(&(date, bank.to_string(), fp)) {
                out.unchanged += 1;
                continue;
            }
            changed_dates.insert(date);
            emr |= p.route == Route::Emr;
            chain.partitions.push(p);
        }
        if chain.partitions.is_empty() {
            continue;
        }
        if emr {
            out.emr_chains.push(chain);
        } else {
            out.lambda_chains.push(chain);
        }
    }
    out.capacity = capacity(store, &dims, req.business_date, &sizes, max_bytes).await?;
    out.dates = changed_dates.into_iter().collect();
    out.awaiting
        .sort_by(|a, b| (a.business_date, &a.bank_id).cmp(&(b.business_date, &b.bank_id)));
    tracing::info!(
        business_date = %req.business_date, lambda = out.lambda_chains.len(), emr = out.emr_chains.len(),
        unchanged = out.unchanged, awaiting = out.awaiting.len(), "close planned"
    );
    Ok(out)
}
