//! The indexer: a batch of Kafka records in, the TransactionIndex brought up to date.
//!
//! The final state of an item is a function of the *set* of records seen for its key: each
//! side (transaction, signal) keeps its newest record by [`RecordVersion`], and everything
//! else is derived from the two sides and the configuration. Merging is therefore commutative,
//! associative and idempotent, so a batch processed twice, or records in any order, give the
//! same index. Writes are conditional on the version read (optimistic concurrency): a write
//! that loses a race is read again and re-applied.
//!
//! [`RecordVersion`]: crate::index_item::RecordVersion

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::archive::archive_batch;
use super::decode::{Fact, KafkaRecordIn, decode};
use super::enrich::StreamContext;
use crate::error::{Error, Result};
use crate::ids::{BusinessDate, TransactionId};
use crate::index_item::{IndexItem, PolicyFlag, SignalState, TxnState};
use crate::ports::{ConditionalPut, Gsi, IndexQuery, ObjectStore, PutOutcome, TransactionIndex};

/// Attempts of a conditional write that keeps losing races before the batch fails (and is
/// retried whole by the event source mapping, which is safe: indexing is idempotent).
pub const MAX_ATTEMPTS: usize = 8;

/// Items read and written per call to the index.
const CHUNK: usize = crate::ports::INDEX_CHUNK;

/// Counts of one batch. `records = transactions + fraud_signals + rejected` and
/// `transactions + fraud_signals = applied + unchanged`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReport {
    /// Kafka records in the batch.
    pub records: u64,
    /// Valid records of each topic.
    pub transactions: u64,
    /// Valid records of the fraud signals topic.
    pub fraud_signals: u64,
    /// Invalid records (archived with their reason).
    pub rejected: u64,
    /// Valid records that changed the index.
    pub applied: u64,
    /// Valid records that changed nothing: redelivered, older than the state, or superseded by
    /// a newer record of the same batch.
    pub unchanged: u64,
    /// TransactionIndex items written (one per changed transaction, not per record).
    pub items_written: u64,
    /// Keys of this batch whose signal still waits for its transaction.
    pub pending_signals: u64,
    /// Items whose VELOCITY flag was set or cleared after the batch.
    pub velocity_updates: u64,
    /// Conditional writes that lost a race and were re-applied.
    pub conflicts: u64,
    /// Objects written to `stream/archive/` (raw records kept for replay).
    pub archive_objects: u64,
}

impl BatchReport {
    /// Adds the counts of another batch (the report of a whole invocation).
    pub fn add(&mut self, o: &BatchReport) {
        self.records += o.records;
        self.transactions += o.transactions;
        self.fraud_signals += o.fraud_signals;
        self.rejected += o.rejected;
        self.applied += o.applied;
        self.unchanged += o.unchanged;
        self.items_written += o.items_written;
        self.pending_signals += o.pending_signals;
        self.velocity_updates += o.velocity_updates;
        self.conflicts += o.conflicts;
        self.archive_objects += o.archive_objects;
    }
}

/// The newest of the batch's records for one key, per side, and how many there were.
#[derive(Debug, Default)]
struct Group {
    txn: Option<TxnState>,
    signal: Option<SignalState>,
    facts: u64,
}

/// Keeps the newer of two versions of a side (moving, not copying).
fn newer<T>(
    cur: Option<T>,
    new: T,
    version: impl Fn(&T) -> &crate::index_item::RecordVersion,
) -> Option<T> {
    match cur {
        Some(c) if version(&c) >= version(&new) => Some(c),
        _ => Some(new),
    }
}

/// Re-derives an item's enrichment (after one of its sides or the VELOCITY verdict changed),
/// reusing the merchant dimension it already carries.
fn rederive(ctx: &StreamContext, item: &mut IndexItem, velocity: bool) {
    let previous = item.derived.take();
    item.derived = item
        .txn
        .as_ref()
        .map(|t| ctx.derive_from(t, item.signal.as_ref(), velocity, previous));
}

/// The merge of a stored item with the newest records of a batch.
fn merge(
    ctx: &StreamContext,
    old: IndexItem,
    old_hour: Option<(&str, i64)>,
    group: &Group,
) -> IndexItem {
    let before = old.version();
    let mut new = old;
    if let Some(t) = &group.txn
        && new.txn.as_ref().is_none_or(|c| c.version < t.version)
    {
        new.txn = Some(t.clone());
    }
    if let Some(s) = &group.signal
        && new.signal.as_ref().is_none_or(|c| c.version < s.version)
    {
        new.signal = Some(s.clone());
    }
    if new.version() != before {
        // VELOCITY is a verdict on the user's hour: kept while the payment stays in the same
        // hour, settled again by the velocity pass after the batch.
        let velocity = new
            .derived
            .as_ref()
            .is_some_and(|d| d.has(PolicyFlag::Velocity))
            && old_hour == new.user_hour();
        rederive(ctx, &mut new, velocity);
    }
    new
}

/// Applies decoded facts to the index.
pub async fn index_facts<I: TransactionIndex>(
    index: &I,
    ctx: &StreamContext,
    facts: Vec<Fact>,
) -> Result<BatchReport> {
    let mut report = BatchReport::default();
    // Keys in order of first appearance (deterministic for a batch), groups beside them.
    let mut slots: HashMap<TransactionId, usize> = HashMap::with_capacity(facts.len());
    let mut keys: Vec<TransactionId> = Vec::with_capacity(facts.len());
    let mut list: Vec<Group> = Vec::with_capacity(facts.len());
    for f in facts {
        let id = f.id();
        let at = match slots.get(id) {
            Some(i) => *i,
            None => {
                slots.insert(id.clone(), list.len());
                keys.push(id.clone());
                list.push(Group::default());
                list.len() - 1
            }
        };
        let Some(g) = list.get_mut(at) else {
            continue;
        };
        g.facts += 1;
        match f {
            Fact::Txn { state, .. } => {
                report.transactions += 1;
                g.txn = newer(g.txn.take(), state, |t| &t.version);
            }
            Fact::Signal { state, .. } => {
                report.fraud_signals += 1;
                g.signal = newer(g.signal.take(), state, |s| &s.version);
            }
        }
    }
    let group_of = |id: &TransactionId| slots.get(id).and_then(|i| list.get(*i));
    // Payments that joined and left each (user, hour), for the velocity pass.
    let mut hours: HashMap<(String, i64), (u64, u64)> = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let mut todo: Vec<TransactionId> = chunk.to_vec();
        for attempt in 0.. {
            if todo.is_empty() {
                break;
            }
            if attempt == MAX_ATTEMPTS {
                return Err(Error::Invariant(format!(
                    "{} item(s) kept changing under concurrent writers; the batch will be retried",
                    todo.len()
                )));
            }
            // Items come back in the order asked, missing keys left out: a merge with `todo`.
            let mut stored = index.get_many(&todo).await?.into_iter().peekable();
            struct Pending {
                before: crate::index_item::StreamVersion,
                old_hour: Option<(String, i64)>,
                new_hour: Option<(String, i64)>,
                pending_signal: bool,
                facts: u64,
            }
            let mut writes = Vec::new();
            let mut pending = Vec::new();
            for id in &todo {
                let old = match stored.next_if(|i| &i.transaction_id == id) {
                    Some(i) => i,
                    None => IndexItem::empty(id.clone()),
                };
                let Some(group) = group_of(id) else {
                    continue;
                };
                let before = old.version();
                let old_hour = old.user_hour().map(|(u, h)| (u.to_string(), h));
                let new = merge(
                    ctx,
                    old,
                    old_hour.as_ref().map(|(u, h)| (u.as_str(), *h)),
                    group,
                );
                let pending_signal = new.txn.is_none() && new.signal.is_some();
                if new.version() == before {
                    report.unchanged += group.facts;
                    report.pending_signals += u64::from(pending_signal);
                    continue;
                }
                let new_hour = new.user_hour().map(|(u, h)| (u.to_string(), h));
                writes.push(ConditionalPut {
                    expected: before.clone(),
                    item: new,
                });
                pending.push(Pending {
                    before,
                    old_hour,
                    new_hour,
                    pending_signal,
                    facts: group.facts,
                });
            }
            let ids: Vec<TransactionId> = writes
                .iter()
                .map(|w| w.item.transaction_id.clone())
                .collect();
            let after: Vec<crate::index_item::StreamVersion> =
                writes.iter().map(|w| w.item.version()).collect();
            let outcomes = index.put_many(writes).await?;
            if outcomes.len() != ids.len() {
                return Err(Error::Invariant(
                    "index answered a different number of writes".into(),
                ));
            }
            let mut retry = Vec::new();
            for (((id, p), nv), outcome) in ids.into_iter().zip(pending).zip(after).zip(outcomes) {
                if outcome == PutOutcome::Conflict {
                    report.conflicts += 1;
                    retry.push(id);
                    continue;
                }
                report.items_written += 1;
                let effective = u64::from(p.before.transaction != nv.transaction)
                    + u64::from(p.before.signal != nv.signal);
                report.applied += effective;
                report.unchanged += p.facts.saturating_sub(effective);
                report.pending_signals += u64::from(p.pending_signal);
                if p.old_hour != p.new_hour {
                    if let Some(k) = p.old_hour {
                        hours.entry(k).or_default().1 += 1;
                    }
                    if let Some(k) = p.new_hour {
                        hours.entry(k).or_default().0 += 1;
                    }
                }
            }
            todo = retry;
        }
    }
    if let Some(max) = ctx.policies.velocity_max {
        report.velocity_updates = velocity_pass(index, ctx, max, hours).await?;
    }
    Ok(report)
}

/// Settles the VELOCITY flag of every hour whose membership changed and that is, or was,
/// above the limit: every payment of such an hour gets the flag exactly when the hour holds
/// more than `max` payments of the user. (A payment joining an hour that is above the limit
/// needs the flag even when another left it in the same batch, hence joins and leaves are
/// counted apart.)
async fn velocity_pass<I: TransactionIndex>(
    index: &I,
    ctx: &StreamContext,
    max: u64,
    hours: HashMap<(String, i64), (u64, u64)>,
) -> Result<u64> {
    let mut keys: Vec<((String, i64), (u64, u64))> = hours.into_iter().collect();
    keys.sort();
    let mut updates = 0;
    for chunk in keys.chunks(CHUNK) {
        let ks: Vec<(String, i64)> = chunk.iter().map(|(k, _)| k.clone()).collect();
        let counts = index.user_hour_counts(&ks).await?;
        for ((key, (joined, left)), post) in chunk.iter().zip(counts) {
            let prev = (post + left).saturating_sub(*joined);
            if post > max || prev > max {
                updates += settle_hour(index, ctx, max, key).await?;
            }
        }
    }
    Ok(updates)
}

async fn settle_hour<I: TransactionIndex>(
    index: &I,
    ctx: &StreamContext,
    max: u64,
    (user, hour): &(String, i64),
) -> Result<u64> {
    let day = chrono::DateTime::from_timestamp(hour.saturating_mul(3600), 0)
        .map(|t| t.date_naive())
        .ok_or_else(|| Error::Invariant(format!("hour {hour} out of range")))
        .and_then(BusinessDate::from_date)?;
    for _ in 0..MAX_ATTEMPTS {
        let mut members = Vec::new();
        let mut cursor = None;
        loop {
            let page = index
                .query(&IndexQuery {
                    gsi: Gsi::ByUser,
                    key: user.clone(),
                    from: Some(day),
                    to: Some(day),
                    limit: 1000,
                    cursor,
                })
                .await?;
            members.extend(
                page.items
                    .into_iter()
                    .filter(|i| i.txn.as_ref().is_some_and(|t| t.hour() == *hour)),
            );
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let flagged = members.len() as u64 > max;
        let writes: Vec<ConditionalPut> = members
            .into_iter()
            .filter(|m| m.derived.as_ref().map(|d| d.has(PolicyFlag::Velocity)) != Some(flagged))
            .map(|m| {
                let expected = m.version();
                let mut item = m;
                rederive(ctx, &mut item, flagged);
                ConditionalPut { item, expected }
            })
            .collect();
        let n = writes.len() as u64;
        let outcomes = index.put_many(writes).await?;
        if outcomes.iter().all(|o| *o == PutOutcome::Applied) {
            return Ok(n);
        }
    }
    Err(Error::Invariant(
        "a user's hour kept changing under concurrent writers; the batch will be retried".into(),
    ))
}

/// One MSK batch: decode, archive, index. Bad records are archived with their reason and
/// counted; they never fail the batch.
pub async fn process_batch<S: ObjectStore, I: TransactionIndex>(
    store: &S,
    index: &I,
    ctx: &StreamContext,
    records: &[KafkaRecordIn],
) -> Result<BatchReport> {
    let decoded: Vec<_> = records.iter().map(|r| decode(r, &ctx.tokenizer)).collect();
    let archive_objects = archive_batch(store, records, &decoded, &ctx.pii).await?;
    let mut rejected = 0u64;
    let mut facts = Vec::with_capacity(decoded.len());
    for (r, d) in records.iter().zip(decoded) {
        match d {
            Ok(f) => facts.push(f),
            Err(reason) => {
                rejected += 1;
                tracing::warn!(
                    topic = %r.topic,
                    partition = r.partition,
                    offset = r.offset,
                    reason = %reason.0,
                    "stream record rejected"
                );
            }
        }
    }
    ctx.prepare_fx(
        store,
        facts.iter().filter_map(|f| match f {
            Fact::Txn { state, .. } => Some(state.txn_day),
            Fact::Signal { .. } => None,
        }),
    )
    .await?;
    let mut report = index_facts(index, ctx, facts).await?;
    report.records = records.len() as u64;
    report.rejected = rejected;
    report.archive_objects = archive_objects;
    tracing::info!(
        records = report.records,
        transactions = report.transactions,
        fraud_signals = report.fraud_signals,
        rejected = report.rejected,
        applied = report.applied,
        unchanged = report.unchanged,
        pending_signals = report.pending_signals,
        conflicts = report.conflicts,
        "stream batch indexed"
    );
    Ok(report)
}
